/**
 * The PIN layer of a share (docs/PROTOCOL.md §1, "PIN"): the Envelope is age-encrypted to the
 * X25519 key that the PIN and a fresh 32-byte salt give ({@link pinKey}), that inner file to the
 * recipient, and the blob is `salt ‖ outer`. The share_ref and the receipt's ciphertext hash
 * cover `outer` only. One implementation for every kind of share (small, large pointer, Claude
 * session); the receive side splits the blob and opens the layer with the same helpers.
 *
 * @module
 */

import { ageDecrypt, ageEncrypt } from "./age.ts";
import { pinKey } from "./kdf.ts";
import { ageIdentityOf, ageRecipientOf, x25519PublicFromSecret } from "./keys.ts";
import { concat } from "../util/encoding.ts";
import { signatureError } from "../util/errors.ts";

/** Bytes of the salt in front of a PIN share's blob. */
export const PIN_SALT_BYTES = 32;

/** A PIN turned into a key once (Argon2id is costly), for sealing one or more blobs. */
export interface PinLayer {
  /** the 32 random bytes in front of the blob */
  salt: Uint8Array;
  /** the age recipient of the PIN key */
  recipient: string;
}

/** A sealed share: the blob that travels, and the age ciphertext its share_ref covers. */
export interface SealedShare {
  /** `salt ‖ outer` with a PIN, else `outer` */
  blob: Uint8Array;
  /** the age ciphertext to the recipient (what share_ref and the receipt hash cover) */
  outer: Uint8Array;
}

/** Derive the PIN layer of a new share: a fresh random salt and the key of `pin` under it. */
export async function newPinLayer(pin: string): Promise<PinLayer> {
  const salt = crypto.getRandomValues(new Uint8Array(PIN_SALT_BYTES));
  return { salt, recipient: ageRecipientOf(x25519PublicFromSecret(await pinKey(pin, salt))) };
}

/**
 * Encrypt `plaintext` to the age recipient `recipient`, inside the PIN layer when `pin` is given
 * (the same layer may seal several blobs: one Argon2id for a share sealed as v1 and v2).
 */
export async function sealShare(
  plaintext: Uint8Array,
  recipient: string,
  pin: PinLayer | null,
): Promise<SealedShare> {
  if (pin === null) {
    const outer = await ageEncrypt(plaintext, recipient);
    return { blob: outer, outer };
  }
  const outer = await ageEncrypt(await ageEncrypt(plaintext, pin.recipient), recipient);
  return { blob: concat(pin.salt, outer), outer };
}

/**
 * Split a received blob: with `pinRequired`, the salt and the age ciphertext after it, else no
 * salt and the whole blob.
 *
 * @throws CipherpostError("signature") when a PIN blob is shorter than its salt.
 */
export function splitPinBlob(
  blob: Uint8Array,
  pinRequired: boolean,
): { salt: Uint8Array | null; outer: Uint8Array } {
  if (!pinRequired) return { salt: null, outer: blob };
  if (blob.length < PIN_SALT_BYTES) throw signatureError("PIN blob shorter than its salt");
  return { salt: blob.subarray(0, PIN_SALT_BYTES), outer: blob.subarray(PIN_SALT_BYTES) };
}

/**
 * Remove the PIN layer from `inner` (the outer file already decrypted by the recipient).
 *
 * @throws CipherpostError("decrypt") when the PIN is wrong (or the layer damaged).
 */
export async function openPinLayer(
  inner: Uint8Array,
  salt: Uint8Array,
  pin: string,
): Promise<Uint8Array> {
  return await ageDecrypt(inner, ageIdentityOf(await pinKey(pin, salt)));
}
