/**
 * The CLI's words for the library's next steps ({@link Remedy}): the one place where an error's
 * hint names a cipherpost command or flag. The library's own error text never does.
 *
 * @module
 */

import type { Remedy, RemedyStep } from "../util/errors.ts";

type Words = (data: Record<string, string>) => string;

const WORDS: Record<RemedyStep, Words> = {
  replace_target: (d) => `choose another path, or pass --force${d.also ? `; ${d.also}` : ""}`,
  give_output_path: (d) => `e.g. cipherpost receive <uri> -o ${d.example ?? "PATH"}`,
  homeserver_signup: () => "sign up with: cipherpost homeserver signup <homeserver-key>",
  homeserver_gc: () =>
    "free space with: cipherpost homeserver gc, or ask the operator for more quota",
  signup_token: () => "ask the operator for one and pass it with --signup-token-file FILE",
  identity_generate: () => "create one with: cipherpost identity generate",
  recipient_key: () => "ask the recipient for the output of: cipherpost identity show",
  receive_general: (d) =>
    `receive it with: cipherpost receive URI${d.output ? ` -o ${d.output}` : ""}`,
  fork_session: () => "pass --fork to place the received one under a new session ID",
  use_protocol_v2: () => "drop --protocol 1 to send it as a v2 multi-packet share",
  revoke_or_v2: () => "revoke it first (cipherpost revoke <share_ref>), or drop --protocol 1",
  binary_output: (d) =>
    "write it to a file with -o FILE, or pass -o - to print it anyway" +
    (d.armor ? " (--armor gives a text form)" : ""),
  pickup_uri: () => "pass the URI the sender printed, or check --from",
  allow_sensitive: () => "choose another file, or pass --allow-sensitive if you mean it",
};

/** The hint line for a remedy, in the CLI's terms (`data.also` is added after a semicolon). */
export function remedyHint(r: Remedy): string {
  const d = r.data ?? {};
  return `${WORDS[r.step](d)}${d.also ? `; ${d.also}` : ""}`;
}
