/**
 * The network settings of a CLI command: `--bootstrap`, `--relay`, `--no-dht`, `--no-relay` and
 * `--timeout`, else `CIPHERPOST_BOOTSTRAP`, `CIPHERPOST_RELAYS` and `CIPHERPOST_TIMEOUT` (flags
 * win), and debug lines to stderr with `CIPHERPOST_DEBUG=1`. The library (lib/pkarr/transport.ts)
 * reads none of these: it takes the typed {@link TransportOptions} this module builds.
 *
 * @module
 */

import { CipherpostError } from "../util/errors.ts";
import { type TransportOptions, transportOptions } from "../pkarr/transport.ts";

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
