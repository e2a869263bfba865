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
 * A next step the library knows of but cannot spell: it belongs to whatever drives the library
 * (the CLI names its flags and commands for each, lib/cli/remedies.ts; a library user words
 * them their own way). `data` carries the values the step needs (a path, a key, a share ref).
 */
export interface Remedy {
  /** which step */
  step: RemedyStep;
  /** values the step names */
  data?: Record<string, string>;
}

/** The next steps a library error can point at (see {@link Remedy}). */
export type RemedyStep =
  /** the target exists: choose another one, or allow replacing it */
  | "replace_target"
  /** the operation needs an output path (a large share is never written to stdout) */
  | "give_output_path"
  /** the sender's homeserver account: sign up (or in) first */
  | "homeserver_signup"
  /** the homeserver's quota is used up: collect garbage, or ask for more */
  | "homeserver_gc"
  /** signup needs a token from the homeserver's operator */
  | "signup_token"
  /** no identity in this home: generate (or import) one */
  | "identity_generate"
  /** a recipient must be a key: ask them for theirs */
  | "recipient_key"
  /** the share is not what this command takes: receive it with the general receive */
  | "receive_general"
  /** a session diverged from the local copy: place it under a new ID instead */
  | "fork_session"
  /** the share does not fit protocol v1: send it as v2 */
  | "use_protocol_v2"
  /** revoke the live v1 share first (`data.ref`) or send as v2 */
  | "revoke_or_v2"
  /** binary material for a terminal: write it to a file (`data.armor`: an armored form exists) */
  | "binary_output"
  /** no hand-off pointer found: use the URI the sender printed, or another sender */
  | "pickup_uri"
  /** a file drop of a sensitive path: only the human's explicit override drops it */
  | "allow_sensitive";

/**
 * The one error type the program throws on purpose. `message` is what the user sees (one line,
 * no secrets); `hint` is an optional second line telling the user what to do next, in words
 * that name no command or flag; `remedy`, when set, is that next step as data, for a front end
 * to spell in its own terms.
 */
export class CipherpostError extends Error {
  /** What went wrong, as a class of failure; the CLI maps each kind to one exit code. */
  readonly kind: ErrorKind;
  /** A second line telling the user what to do next, when there is one. */
  readonly hint?: string;
  /** The next step as data (see {@link Remedy}), when the library knows one. */
  readonly remedy?: Remedy;

  /**
   * An error of `kind` with a message for the user.
   *
   * @param kind The class of failure.
   * @param message One line for the user, without secrets or parser internals.
   * @param hint An optional next step for the user: words, or a {@link Remedy} (its words are
   *   then the step's generic ones; a front end renders its own).
   */
  constructor(kind: ErrorKind, message: string, hint?: string | Remedy) {
    super(message);
    this.name = "CipherpostError";
    this.kind = kind;
    if (typeof hint === "object") {
      this.remedy = hint;
      this.hint = REMEDY_WORDS[hint.step];
    } else this.hint = hint;
  }
}

/** The words of each {@link RemedyStep} for a reader who is not at the CLI. */
const REMEDY_WORDS: Record<RemedyStep, string> = {
  replace_target: "choose another path, or allow replacing it",
  give_output_path: "give a path to write it to",
  homeserver_signup: "sign up with your homeserver first",
  homeserver_gc: "delete blobs no live share needs, or ask the operator for more quota",
  signup_token: "ask the homeserver's operator for a signup token",
  identity_generate: "generate or import an identity first",
  recipient_key: "ask the recipient for their public key",
  receive_general: "receive it as an ordinary share",
  fork_session: "place the received session under a new session ID",
  use_protocol_v2: "send it with protocol v2",
  revoke_or_v2: "revoke the live v1 share first, or send with protocol v2",
  binary_output: "write it to a file, or to the terminal anyway",
  pickup_uri: "use the URI the sender printed, or check whose hand-off you asked for",
  allow_sensitive: "choose another file; only the user can override this, explicitly",
};

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
export function configError(msg: string, hint?: string | Remedy): CipherpostError {
  return new CipherpostError("config", `configuration error: ${msg}`, hint);
}
