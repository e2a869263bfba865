/**
 * Keys as people type or paste them: `--share` and `--accept` take the z-base-32 key, its `pk:`
 * form, or (for `--share`) a contact name. The other lines of `identity show` (the fingerprint,
 * the `age1…` recipient) and secret keys are recognised and refused with a message that names
 * the line to use instead.
 *
 * @module
 */

import { CipherpostError } from "../util/errors.ts";
import { encodeZ32, parsePublicKey } from "../pkarr/public_key.ts";
import { type Contact, type Contacts, isContactName } from "../state/contacts.ts";

/** Where the key came from. */
export interface ResolvedKey {
  /** 32-byte Ed25519 public key */
  publicKey: Uint8Array;
  z32: string;
  /** the contact it was named by, or that holds it */
  contact: Contact | null;
}

const WHICH_LINE =
  "use the first line of `cipherpost identity show` (52 characters), or its pk: form";

/**
 * Explain why `text` is not a public key when it is recognisably something else; null otherwise.
 */
export function misplacedKeyMessage(text: string, flag: string): CipherpostError | null {
  const t = text.trim();
  if (/^(ed25519:)?SHA256:/i.test(t)) {
    return new CipherpostError(
      "usage",
      `${flag} got a fingerprint (the fingerprint: line of \`identity show\`), not a public key`,
      `a fingerprint is for comparing keys by eye; ${WHICH_LINE}`,
    );
  }
  if (/^age1[0-9a-z]+$/i.test(t)) {
    return new CipherpostError(
      "usage",
      `${flag} got an age recipient (the age: line of \`identity show\`), not a cipherpost key`,
      WHICH_LINE,
    );
  }
  if (/^AGE-SECRET-KEY-1/i.test(t) || /^-----BEGIN .*PRIVATE KEY/.test(t)) {
    return new CipherpostError(
      "usage",
      `${flag} got a SECRET key; never paste it anywhere`,
      WHICH_LINE,
    );
  }
  if (/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-)/.test(t)) {
    return new CipherpostError(
      "usage",
      `${flag} got an SSH public key, not a cipherpost key`,
      WHICH_LINE,
    );
  }
  return null;
}

/**
 * Parse a public key typed for `flag` (`--accept`, `dht resolve`, …): z-base-32, `pk:<z32>`, or
 * a URL holding it. @throws CipherpostError("usage") with a hint naming the right line.
 */
export function parseKeyArg(text: string, flag: string): Uint8Array {
  const mis = misplacedKeyMessage(text, flag);
  if (mis) throw mis;
  try {
    return parsePublicKey(text.trim());
  } catch (e) {
    const why = e instanceof CipherpostError ? e.message.replace(/^invalid public key: /, "") : "";
    throw new CipherpostError(
      "usage",
      `${flag} needs a public key${why ? ` (${why})` : ""}`,
      WHICH_LINE,
    );
  }
}

/**
 * Resolve a `--share` value: a key (z32, `pk:`, URL) or a contact name.
 * @throws CipherpostError("usage") for anything else, naming what was given and what to use.
 */
export async function resolveRecipient(
  text: string,
  contacts: Contacts,
  flag = "--share",
): Promise<ResolvedKey> {
  const mis = misplacedKeyMessage(text, flag);
  if (mis) throw mis;
  let pk: Uint8Array | null = null;
  try {
    pk = parsePublicKey(text.trim());
  } catch { /* maybe a name */ }
  if (pk) {
    const z32 = encodeZ32(pk);
    return { publicKey: pk, z32, contact: (await contacts.byKey(z32))[0] ?? null };
  }
  if (isContactName(text)) {
    const c = await contacts.get(text);
    if (c) return { publicKey: parsePublicKey(c.key), z32: c.key, contact: c };
    throw new CipherpostError(
      "usage",
      `${flag}: no contact named '${text.toLowerCase()}' (and it is not a public key)`,
      `add one with: cipherpost contacts add ${text.toLowerCase()} <their key>; see cipherpost contacts list`,
    );
  }
  parseKeyArg(text, flag); // not a key: throws with the reason
  throw new CipherpostError("usage", `${flag} needs a public key or a contact name`, WHICH_LINE);
}
