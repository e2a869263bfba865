/**
 * Error kinds, their user-facing messages and exit codes.
 *
 * One place maps every failure to an exit code. The table follows cipherpost v1.1
 * (protocol digest §9) and adds a few kinds of its own (marked "new"). The README's exit-code
 * table is generated from the same facts: keep the two in step.
 *
 * Oracle rules: every signature-class failure prints exactly `signature verification failed`
 * and exits 3; every credential-class failure (wrong passphrase, wrong PIN, tampered inner
 * ciphertext) prints one line and exits 4. Messages never contain secrets or parser internals.
 *
 * @module
 */

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
} as const;

/** The kinds of failure the program reports. */
export type ErrorKind =
  | "config"
  | "usage"
  | "invalid_uri"
  | "share_ref_mismatch"
  | "too_large"
  | "invalid_material"
  | "identity_not_found"
  | "identity_corrupt"
  | "identity_exists"
  | "io"
  | "expired"
  | "signature"
  | "decrypt"
  | "permissions"
  | "passphrase_input"
  | "not_found"
  | "network"
  | "declined"
  | "no_homeserver"
  | "homeserver"
  | "homeserver_auth"
  | "homeserver_forbidden"
  | "homeserver_quota"
  | "rate_limited";

const EXIT_OF: Record<ErrorKind, number> = {
  config: Exit.general,
  usage: Exit.usage,
  invalid_uri: Exit.general,
  share_ref_mismatch: Exit.general,
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
  // new (issue 10): the homeserver tier
  no_homeserver: Exit.notFound,
  homeserver: Exit.network,
  homeserver_auth: Exit.credential,
  homeserver_forbidden: Exit.credential,
  homeserver_quota: Exit.general,
  rate_limited: Exit.network,
};

/** The single line printed for every signature-lane failure (oracle rule). */
export const SIGNATURE_FAILED = "signature verification failed";
/** The single line printed for every credential-lane decryption failure (oracle rule). */
export const DECRYPT_FAILED = "wrong passphrase or identity decryption failed";

/**
 * The one error type the program throws on purpose. `message` is what the user sees (one line,
 * no secrets); `hint` is an optional second line telling the user what to do next.
 */
export class CipherpostError extends Error {
  readonly kind: ErrorKind;
  readonly hint?: string;

  constructor(kind: ErrorKind, message: string, hint?: string) {
    super(message);
    this.name = "CipherpostError";
    this.kind = kind;
    this.hint = hint;
  }

  /** The exit code for this error. */
  get exitCode(): number {
    return EXIT_OF[this.kind];
  }
}

/** A signature-lane failure. `detail` is kept for debugging only and never shown. */
export function signatureError(detail?: string): CipherpostError {
  const e = new CipherpostError("signature", SIGNATURE_FAILED);
  if (detail) e.cause = detail;
  return e;
}

/** A credential-lane decryption failure. */
export function decryptError(): CipherpostError {
  return new CipherpostError("decrypt", DECRYPT_FAILED);
}

/** `configuration error: <msg>` (exit 1). */
export function configError(msg: string, hint?: string): CipherpostError {
  return new CipherpostError("config", `configuration error: ${msg}`, hint);
}

/** The exit code for any thrown value: unknown errors are exit 1. */
export function exitCodeOf(e: unknown): number {
  return e instanceof CipherpostError ? e.exitCode : Exit.general;
}

/**
 * The lines to print on stderr for any thrown value. Unknown errors print a generic line:
 * their messages may carry library internals (or, in the worst case, data), so they are only
 * shown when `CIPHERPOST_DEBUG=1`.
 */
export function describeError(e: unknown, debug = false): string[] {
  if (e instanceof CipherpostError) {
    const lines = [e.message];
    if (e.hint) lines.push(`hint: ${e.hint}`);
    if (debug && e.cause) lines.push(`debug: ${String(e.cause)}`);
    return lines;
  }
  const lines = ["internal error (set CIPHERPOST_DEBUG=1 for details)"];
  if (debug) lines.push(`debug: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  return lines;
}
