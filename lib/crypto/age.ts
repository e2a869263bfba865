/**
 * age encryption to one X25519 recipient (typage, `npm:age-encryption`), binary format, as
 * cipherpost v1.1 uses it. Any decryption failure is the credential lane (exit 4).
 *
 * @module
 */

import { Decrypter, Encrypter } from "age-encryption";
import { decryptError } from "../util/errors.ts";

/** age-encrypt `plaintext` to one `age1…` recipient; returns the binary age file. */
export async function ageEncrypt(plaintext: Uint8Array, recipient: string): Promise<Uint8Array> {
  const e = new Encrypter();
  e.addRecipient(recipient);
  return await e.encrypt(plaintext);
}

/** Decrypt a binary age file with one `AGE-SECRET-KEY-1…` identity; any failure → exit 4. */
export async function ageDecrypt(ciphertext: Uint8Array, identity: string): Promise<Uint8Array> {
  try {
    const d = new Decrypter();
    d.addIdentity(identity);
    return await d.decrypt(ciphertext);
  } catch {
    throw decryptError();
  }
}
