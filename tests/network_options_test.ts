// The CLI's network settings (lib/cli/network_options.ts): flags over environment over
// defaults, the CIPHERPOST_TIMEOUT check, both paths off refused, debug lines only with
// CIPHERPOST_DEBUG=1. The environment is injected: nothing here reads the real one.
import assert from "node:assert/strict";
import { networkOptionsFrom } from "../lib/cli/network_options.ts";
import { DEFAULT_BOOTSTRAP, DEFAULT_RELAYS, transportOptions } from "../lib/pkarr/transport.ts";
import { CipherpostError } from "../lib/util/errors.ts";

const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

const usage = (re: RegExp) => (e: unknown) =>
  e instanceof CipherpostError && e.kind === "usage" && re.test(e.message);

Deno.test("network options: defaults with no flag and no environment", () => {
  const o = networkOptionsFrom({}, envOf({}));
  assert.deepEqual(o, {
    bootstrap: DEFAULT_BOOTSTRAP,
    relays: DEFAULT_RELAYS,
    useDht: true,
    useRelays: true,
    timeoutMs: 2000,
  });
});

Deno.test("network options: the environment is read, flags win over it", () => {
  const env = envOf({
    CIPHERPOST_BOOTSTRAP: "127.0.0.1:1, 127.0.0.1:2,",
    CIPHERPOST_RELAYS: "http://127.0.0.1:3",
    CIPHERPOST_TIMEOUT: "300",
  });
  const fromEnv = networkOptionsFrom({}, env);
  assert.deepEqual(fromEnv.bootstrap, ["127.0.0.1:1", "127.0.0.1:2"]);
  assert.deepEqual(fromEnv.relays, ["http://127.0.0.1:3"]);
  assert.equal(fromEnv.timeoutMs, 300);
  const fromFlags = networkOptionsFrom(
    { bootstrap: "127.0.0.1:9", relay: "http://127.0.0.1:8", timeout: 700 },
    env,
  );
  assert.deepEqual(fromFlags.bootstrap, ["127.0.0.1:9"]);
  assert.deepEqual(fromFlags.relays, ["http://127.0.0.1:8"]);
  assert.equal(fromFlags.timeoutMs, 700);
  // --no-relay: commander sets `relay` to false; the relay list falls back to the environment.
  const noRelay = networkOptionsFrom({ relay: false }, env);
  assert.equal(noRelay.useRelays, false);
  assert.equal(noRelay.useDht, true);
});

Deno.test("network options: a malformed CIPHERPOST_TIMEOUT is a usage error, unless --timeout", () => {
  for (const bad of ["abc", "49", "-5", "1e3", "1234567"]) {
    assert.throws(
      () => networkOptionsFrom({}, envOf({ CIPHERPOST_TIMEOUT: bad })),
      usage(/^CIPHERPOST_TIMEOUT must be a number of milliseconds/),
      bad,
    );
  }
  assert.equal(networkOptionsFrom({}, envOf({ CIPHERPOST_TIMEOUT: "" })).timeoutMs, 2000);
  assert.equal(
    networkOptionsFrom({ timeout: 100 }, envOf({ CIPHERPOST_TIMEOUT: "abc" })).timeoutMs,
    100,
  );
});

Deno.test("network options: --no-dht with --no-relay is refused", () => {
  assert.throws(
    () => networkOptionsFrom({ dht: false, relay: false }, envOf({})),
    usage(/--no-dht and --no-relay together/),
  );
  assert.throws(
    () => transportOptions({ useDht: false, useRelays: false }),
    usage(/leave no network/),
  );
});

Deno.test("network options: a debug log only with CIPHERPOST_DEBUG=1", () => {
  assert.equal(networkOptionsFrom({}, envOf({})).log, undefined);
  assert.equal(networkOptionsFrom({}, envOf({ CIPHERPOST_DEBUG: "0" })).log, undefined);
  assert.equal(typeof networkOptionsFrom({}, envOf({ CIPHERPOST_DEBUG: "1" })).log, "function");
});
