/**
 * Error kinds and the one error type the library throws, {@link CipherpostError}.
 *
 * The library never decides exit codes: the CLI maps each kind to one (lib/cli/exit_codes.ts).
 *
 * Oracle rules: every signature-class failure has kind `signature` and the one message
 * `signature verification failed`; every credential-class failure (wrong passphrase, wrong PIN,
 * tampered inner ciphertext) has one line. Messages never contain secrets or parser internals.
 *
 * @module
 */

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
  | "interrupted"
  | "no_homeserver"
  | "homeserver"
  | "homeserver_auth"
  | "homeserver_forbidden"
  | "homeserver_quota"
  | "rate_limited";

/** The single line printed for every signature-lane failure (oracle rule). */
export const SIGNATURE_FAILED = "signature verification failed";
/** The single line printed for every credential-lane decryption failure (oracle rule). */
export const DECRYPT_FAILED = "wrong passphrase or identity decryption failed";

/**
 * The one error type the program throws on purpose. `message` is what the user sees (one line,
 * no secrets); `hint` is an optional second line telling the user what to do next.
 */
export class CipherpostError extends Error {
  /** What went wrong, as a class of failure; the CLI maps each kind to one exit code. */
  readonly kind: ErrorKind;
  /** A second line telling the user what to do next, when there is one. */
  readonly hint?: string;

  /**
   * An error of `kind` with a message for the user.
   *
   * @param kind The class of failure.
   * @param message One line for the user, without secrets or parser internals.
   * @param hint An optional next step for the user.
   */
  constructor(kind: ErrorKind, message: string, hint?: string) {
    super(message);
    this.name = "CipherpostError";
    this.kind = kind;
    this.hint = hint;
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

/** `configuration error: <msg>` (kind `config`). */
export function configError(msg: string, hint?: string): CipherpostError {
  return new CipherpostError("config", `configuration error: ${msg}`, hint);
}
