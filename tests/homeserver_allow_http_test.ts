// `cipherpost testnet --host ADDR` and CIPHERPOST_HOMESERVER_ALLOW_HTTP (issue 21): a testnet on
// a private test address publishes that address in its homeserver's packet, and plain http to
// it is admitted only for the one `a.b.c.d:port` the switch names (never the default). The real
// parts run on 127.0.0.2, a loopback address that is not 127.0.0.1, so the CLI treats it as a
// `--host` address and the loopback switch is not what lets the requests through.
import assert from "node:assert/strict";
import { endpointInPacket, endpointOf } from "../lib/homeserver/discovery.ts";
import { bindHomeserverHttp, checkEndpoint } from "../lib/homeserver/endpoint_policy.ts";
import { homeserverHttpFrom, isIpv4HostPort } from "../lib/cli/network_options.ts";
import { EXIT_OF } from "../lib/cli/exit_codes.ts";
import { generateKeypair } from "../lib/crypto/keys.ts";
import { signPacket } from "../lib/pkarr/signed_packet.ts";
import { Transport } from "../lib/pkarr/transport.ts";
import { homeserverRecords } from "../lib/testing/homeserver.ts";
import { CipherpostError } from "../lib/util/errors.ts";
import { cli, cliCommand, tmpDir } from "./_helpers.ts";

function refusedBy(f: () => unknown): CipherpostError {
  try {
    f();
  } catch (e) {
    if (e instanceof CipherpostError) return e;
    throw e;
  }
  throw new Error("expected a refusal");
}

Deno.test("allow-http: admits plain http to exactly the named a.b.c.d:port, nothing else", () => {
  const one = { allowHttp: "10.213.0.1:8080" };
  assert.equal(checkEndpoint("http://10.213.0.1:8080/pub/x", one).host, "10.213.0.1:8080");
  for (
    const url of [
      "http://10.213.0.1:8081/", // another port
      "http://10.213.0.2:8080/", // another address
      "http://10.213.0.1/", // port 80
      "https://10.213.0.1:8080/", // https to an IP literal stays refused
      "http://user:pw@10.213.0.1:8080/", // credentials
      "http://127.0.0.1:8080/", // loopback needs its own switch
    ]
  ) {
    const e = refusedBy(() => checkEndpoint(url, one));
    assert.equal(e.kind, "homeserver", url);
    assert.match(e.message, /^homeserver refused: /, url);
  }
  // never the default
  assert.equal(refusedBy(() => checkEndpoint("http://10.213.0.1:8080/")).kind, "homeserver");
  assert.equal(
    refusedBy(() => checkEndpoint("http://10.213.0.1:8080/", { allowLoopback: true })).kind,
    "homeserver",
  );
});

Deno.test("allow-http: CIPHERPOST_HOMESERVER_ALLOW_HTTP takes one a.b.c.d:port; anything else is usage (exit 2)", () => {
  const env = (v: string) => (n: string) =>
    n === "CIPHERPOST_HOMESERVER_ALLOW_HTTP" ? v : undefined;
  assert.deepEqual(homeserverHttpFrom(env("10.213.0.1:8080")), { allowHttp: "10.213.0.1:8080" });
  assert.deepEqual(homeserverHttpFrom(env("")), {});
  for (
    const bad of [
      "10.213.0.1",
      "10.213.0.1:0",
      "10.213.0.1:65536",
      "010.213.0.1:80",
      "10.213.0.256:80",
      "example.com:443",
      "[::1]:80",
      "10.213.0.1:80,10.213.0.2:80",
      "http://10.213.0.1:80",
    ]
  ) {
    const e = refusedBy(() => homeserverHttpFrom(env(bad)));
    assert.equal(EXIT_OF[e.kind], 2, bad);
    assert.ok(!isIpv4HostPort(bad), bad);
  }
});

Deno.test("allow-http: a --host homeserver packet names its address (ipv4hint); the default packet is unchanged", () => {
  const seed = generateKeypair().seed;
  const at = (host?: string) =>
    endpointInPacket(signPacket(seed, homeserverRecords(4321, host), Date.now() * 1000));
  assert.equal(at(), "http://127.0.0.1:4321");
  assert.equal(at("10.213.0.1"), "http://10.213.0.1:4321");
  // the default records carry no ipv4hint on the localhost endpoint (wire bytes as before)
  const local = homeserverRecords(4321).find((r) =>
    r.data.type === "HTTPS" && r.data.target === "localhost"
  );
  assert.ok(local && local.data.type === "HTTPS");
  assert.deepEqual(local.data.params.map(([k]) => k), [65280]);
});

Deno.test("cli: testnet --host 127.0.0.2 --homeserver listens there, prints ALLOW_HTTP for its one endpoint, and signup works through it", async () => {
  const child = cliCommand([
    "testnet",
    "--nodes",
    "4",
    "--host",
    "127.0.0.2",
    "--homeserver",
    "--signup-mode",
    "open",
  ]).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const env: Record<string, string> = {};
  let buf = "";
  const base = await tmpDir("cp-allow-http-");
  try {
    // bounded: the testnet prints 4 lines then waits; it exits only if it fails
    for (let i = 0; i < 100 && env.CIPHERPOST_HOMESERVER_ALLOW_HTTP === undefined; i++) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      for (const line of buf.split("\n")) {
        const m = /^(CIPHERPOST_[A-Z_]+)=(.*)$/.exec(line);
        if (m) env[m[1]] = m[2];
      }
    }
    assert.match(env.CIPHERPOST_RELAYS, /^http:\/\/127\.0\.0\.2:\d+$/);
    assert.ok(env.CIPHERPOST_BOOTSTRAP.split(",").every((b) => b.startsWith("127.0.0.2:")));
    assert.match(env.CIPHERPOST_HOMESERVER_ALLOW_HTTP, /^127\.0\.0\.2:\d+$/);
    assert.equal(env.CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK, undefined);

    // discovery finds the --host endpoint; refused without the printed switch, admitted with it
    const t = new Transport({
      bootstrap: [],
      relays: [env.CIPHERPOST_RELAYS],
      useDht: false,
      useRelays: true,
      timeoutMs: 2000,
    });
    try {
      const e = await endpointOf(t, env.CIPHERPOST_HOMESERVER).then(
        () => null,
        (e) => e,
      );
      assert.ok(e instanceof CipherpostError && e.kind === "homeserver", String(e));
      bindHomeserverHttp(t, homeserverHttpFrom((n) => env[n]));
      assert.equal(
        await endpointOf(t, env.CIPHERPOST_HOMESERVER),
        `http://${env.CIPHERPOST_HOMESERVER_ALLOW_HTTP}`,
      );
    } finally {
      await t.close();
    }

    // the real CLI signs up through the printed lines (no loopback switch)
    const o = { home: `${base}/alice`, env: { ...env, CIPHERPOST_PASSPHRASE: "allow http" } };
    const g = await cli(["identity", "generate"], o);
    assert.equal(g.code, 0, g.stderr);
    const s = await cli(["homeserver", "signup", env.CIPHERPOST_HOMESERVER], o);
    assert.equal(s.code, 0, s.stderr);
    const { CIPHERPOST_HOMESERVER_ALLOW_HTTP: _, ...without } = env;
    const r = await cli(["homeserver", "status"], { ...o, env: { ...without } });
    assert.equal(r.code, 6, r.stdout + r.stderr);
    assert.match(r.stderr, /homeserver refused: http:\/\/127\.0\.0\.2:/);
  } finally {
    child.kill("SIGTERM");
    await reader.cancel();
    await child.stderr.cancel();
    await child.status;
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("cli: testnet --host refuses a value that is no IPv4 address (exit 2)", async () => {
  const r = await cli(["testnet", "--nodes", "1", "--host", "example.com"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--host must be an IPv4 address/);
});
