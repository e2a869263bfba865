/**
 * The network settings of a CLI command: `--bootstrap`, `--relay`, `--no-dht`, `--no-relay` and
 * `--timeout`, else `CIPHERPOST_BOOTSTRAP`, `CIPHERPOST_RELAYS` and `CIPHERPOST_TIMEOUT` (flags
 * win), and debug lines to stderr with `CIPHERPOST_DEBUG=1`. The library (lib/pkarr/transport.ts)
 * reads none of these: it takes the typed {@link TransportOptions} this module builds.
 *
 * Homeserver requests (docs/PROTOCOL.md §4.5): `CIPHERPOST_HOMESERVER_TIMEOUT` (milliseconds,
 * default 30000) is both the first-byte and the idle timeout; `CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK=1`
 * lets a homeserver endpoint be plain http on a loopback address (what `cipherpost testnet`
 * prints; never the default); `CIPHERPOST_HOMESERVER_ALLOW_HTTP=a.b.c.d:port` lets that one
 * endpoint be plain http (what `cipherpost testnet --host` prints; never the default). The
 * library takes them as {@link HomeserverHttp}.
 *
 * @module
 */

import { CipherpostError } from "../util/errors.ts";
import { type TransportOptions, transportOptions } from "../pkarr/transport.ts";
import type { HomeserverHttp } from "../homeserver/endpoint_policy.ts";

/** The network flags as commander parses them (`relay` is false after `--no-relay`). */
export interface NetworkFlags {
  bootstrap?: string;
  relay?: string | boolean;
  dht?: boolean;
  timeout?: number;
}

/** Reads an environment variable (a seam for tests; default `Deno.env.get`). */
export type EnvGet = (name: string) => string | undefined;

/** Splits a comma-separated list, dropping blanks. */
function list(s: string | undefined): string[] {
  return s?.split(",").map((x) => x.trim()).filter((x) => x) ?? [];
}

/** `CIPHERPOST_TIMEOUT` in ms, or undefined when unset; `usage` error when malformed. */
function envTimeout(env: EnvGet): number | undefined {
  const v = env("CIPHERPOST_TIMEOUT");
  if (v === undefined || v === "") return undefined;
  if (!/^[0-9]{1,6}$/.test(v) || Number(v) < 50) {
    throw new CipherpostError(
      "usage",
      "CIPHERPOST_TIMEOUT must be a number of milliseconds (50 or more)",
    );
  }
  return Number(v);
}

/**
 * Transport options from the command's flags and the environment (flags win). Throws `usage`
 * on a malformed `CIPHERPOST_TIMEOUT` and when `--no-dht` and `--no-relay` are both given.
 */
export function networkOptionsFrom(
  flags: NetworkFlags,
  env: EnvGet = (name) => Deno.env.get(name),
): TransportOptions {
  const debug = env("CIPHERPOST_DEBUG") === "1";
  return transportOptions({
    bootstrap: list(flags.bootstrap ?? env("CIPHERPOST_BOOTSTRAP")),
    relays: list(
      (typeof flags.relay === "string" ? flags.relay : undefined) ?? env("CIPHERPOST_RELAYS"),
    ),
    useDht: flags.dht !== false,
    useRelays: flags.relay !== false,
    timeoutMs: flags.timeout ?? envTimeout(env) ?? 2000,
    ...(debug ? { log: (line: string) => console.error(`debug: ${line}`) } : {}),
  });
}

/** The variable that lets homeserver endpoints be plain http on loopback (a local testnet). */
export const ALLOW_LOOPBACK_ENV = "CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK";
/**
 * The variable naming the one `a.b.c.d:port` a homeserver endpoint may be plain http on (a
 * testnet on a private test address, `cipherpost testnet --host`).
 */
export const ALLOW_HTTP_ENV = "CIPHERPOST_HOMESERVER_ALLOW_HTTP";
/** The variable holding the homeserver first-byte and idle timeout, in milliseconds. */
export const HOMESERVER_TIMEOUT_ENV = "CIPHERPOST_HOMESERVER_TIMEOUT";

/**
 * The homeserver settings the environment asks for: `CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK` is
 * `1` (allowed) or unset, empty or `0` (not); `CIPHERPOST_HOMESERVER_ALLOW_HTTP` is unset, empty
 * or one `a.b.c.d:port`; `CIPHERPOST_HOMESERVER_TIMEOUT` is 100 to 3600000 ms. Throws `usage` on any other value.
 */
export function homeserverHttpFrom(
  env: EnvGet = (name) => Deno.env.get(name),
): HomeserverHttp {
  const http: HomeserverHttp = {};
  const loop = env(ALLOW_LOOPBACK_ENV);
  if (loop === "1") http.allowLoopback = true;
  else if (loop !== undefined && loop !== "" && loop !== "0") {
    throw new CipherpostError("usage", `${ALLOW_LOOPBACK_ENV} must be 1 (allow) or 0 (refuse)`);
  }
  const one = env(ALLOW_HTTP_ENV);
  if (one !== undefined && one !== "") {
    if (!isIpv4HostPort(one)) {
      throw new CipherpostError(
        "usage",
        `${ALLOW_HTTP_ENV} must name one endpoint as an IPv4 address and a port (a.b.c.d:port)`,
      );
    }
    http.allowHttp = one;
  }
  const t = env(HOMESERVER_TIMEOUT_ENV);
  if (t !== undefined && t !== "") {
    if (!/^[0-9]{3,7}$/.test(t) || Number(t) < 100 || Number(t) > 3_600_000) {
      throw new CipherpostError(
        "usage",
        `${HOMESERVER_TIMEOUT_ENV} must be a number of milliseconds (100 to 3600000)`,
      );
    }
    http.firstByteTimeoutMs = http.idleTimeoutMs = Number(t);
  }
  return http;
}

/** Whether `s` is `a.b.c.d:port` exactly as a URL's host spells it (no leading zeros, port 1–65535). */
export function isIpv4HostPort(s: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}):(\d{1,5})$/.exec(s);
  if (!m) return false;
  const canon = (x: string, max: number) => String(Number(x)) === x && Number(x) <= max;
  return m.slice(1, 5).every((x) => canon(x, 255)) && canon(m[5], 65535) && Number(m[5]) > 0;
}
