/**
 * Exit codes: the one table that maps every error kind to a process exit code, and the lines
 * the CLI prints for a failure. Only the CLI knows exit codes; the library throws
 * {@link CipherpostError} with a kind.
 *
 * The table follows cipherpost v1.1 (docs/cli.md, "Exit codes") and adds a few kinds of its own. The
 * README's "Exit codes" table states the same facts: keep the two in step.
 *
 * Oracle rules: every signature-class failure prints exactly `signature verification failed`
 * and exits 3; every credential-class failure (wrong passphrase, wrong PIN, tampered inner
 * ciphertext) prints one line and exits 4. Messages never contain secrets or parser internals.
 *
 * @module
 */

import { remedyHint } from "./remedies.ts";
import { CipherpostError, type ErrorKind } from "../util/errors.ts";

/** Process exit codes. */
export const Exit = {
  ok: 0,
  /** configuration, content, I/O and other local errors */
  general: 1,
  /** usage errors (unknown flag, missing argument) and expired shares */
  usage: 2,
  expired: 2,
  /** any signature-class failure: one message for all */
  signature: 3,
  /** wrong passphrase/PIN, undecryptable ciphertext, loose key-file permissions */
  credential: 4,
  /** no record for that key / share on the network */
  notFound: 5,
  /** network unreachable, timeouts, missing parts of a multi-packet share */
  network: 6,
  /** the user declined, typed the wrong key, or the share was already burned */
  declined: 7,
  /** Ctrl-C at a prompt or during a large send (128 + SIGINT, as a shell reports it) */
  interrupted: 130,
} as const;

/** The exit code of every error kind. */
export const EXIT_OF: Readonly<Record<ErrorKind, number>> = {
  config: Exit.general,
  usage: Exit.usage,
  invalid_uri: Exit.general,
  share_ref_mismatch: Exit.signature,
  too_large: Exit.general,
  invalid_material: Exit.general,
  identity_not_found: Exit.general,
  identity_corrupt: Exit.general,
  identity_exists: Exit.general,
  io: Exit.general,
  expired: Exit.expired,
  signature: Exit.signature,
  decrypt: Exit.credential,
  permissions: Exit.credential,
  passphrase_input: Exit.credential,
  not_found: Exit.notFound,
  network: Exit.network,
  declined: Exit.declined,
  interrupted: Exit.interrupted,
  // the homeserver tier (issue 10)
  no_homeserver: Exit.notFound,
  homeserver: Exit.network,
  homeserver_auth: Exit.credential,
  homeserver_forbidden: Exit.credential,
  homeserver_quota: Exit.general,
  rate_limited: Exit.network,
};

/** The next step printed for an error of a kind when the error itself names none. */
const DEFAULT_HINT: Partial<Record<ErrorKind, string>> = {
  share_ref_mismatch: "the URI may be mistyped or cut short: copy it again from the sender",
};

/** The exit code for any thrown value: unknown errors are exit 1. */
export function exitCodeOf(e: unknown): number {
  return e instanceof CipherpostError ? EXIT_OF[e.kind] : Exit.general;
}

/**
 * The lines to print on stderr for any thrown value. Unknown errors print a generic line:
 * their messages may carry library internals (or, in the worst case, data), so they are only
 * shown when `debug` is set (the CLI sets it from `CIPHERPOST_DEBUG=1`).
 */
export function describeError(e: unknown, debug = false): string[] {
  if (e instanceof CipherpostError) {
    const lines = [e.message];
    const hint = e.remedy ? remedyHint(e.remedy) : e.hint ?? DEFAULT_HINT[e.kind];
    if (hint) lines.push(`hint: ${hint}`);
    if (debug && e.cause) lines.push(`debug: ${String(e.cause)}`);
    return lines;
  }
  const lines = ["internal error (set CIPHERPOST_DEBUG=1 for details)"];
  if (debug) lines.push(`debug: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  return lines;
}
