/**
 * Ed25519 keys and what cipherpost derives from them: signatures (strict verification, as
 * dalek's `verify_strict`), the X25519 image of a key used for age, the age recipient and
 * identity strings, and the OpenSSH-style fingerprint.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createPublicKey, verify as nodeVerify } from "node:crypto";
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { sha256, sha512 } from "@noble/hashes/sha2.js";
import { bech32 } from "@scure/base";
import { b64encodeNoPad, concat, utf8 } from "../util/encoding.ts";

/** An Ed25519 keypair: the 32-byte seed is the secret. */
export interface Keypair {
  /** The 32-byte secret seed (RFC 8032); whoever holds it is this identity. */
  seed: Uint8Array;
  /** The 32-byte public key, the identity's address (z-base-32 in text). */
  publicKey: Uint8Array;
}

/**
 * The keypair of a 32-byte seed. The seed is kept by reference, not copied.
 *
 * @throws {Error} when `seed` is not 32 bytes (a programming error, not a {@link CipherpostError}).
 */
export function keypairFromSeed(seed: Uint8Array): Keypair {
  if (seed.length !== 32) throw new Error("seed must be 32 bytes");
  return { seed, publicKey: ed25519.getPublicKey(seed) };
}

/** A fresh random keypair. */
export function generateKeypair(): Keypair {
  return keypairFromSeed(crypto.getRandomValues(new Uint8Array(32)));
}

/** Ed25519 signature by `seed` over `msg`. */
export function sign(seed: Uint8Array, msg: Uint8Array): Uint8Array {
  return ed25519.sign(msg, seed);
}

function isSmallOrder(bytes: Uint8Array): boolean {
  try {
    return ed25519.Point.fromBytes(bytes, false).isSmallOrder();
  } catch {
    return true;
  }
}

/**
 * Strict Ed25519 verification, mirroring dalek `verify_strict`: canonical encodings only
 * (no ZIP-215 leniency), small-order public keys and R values rejected. Never throws.
 */
export function verifyStrict(publicKey: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  try {
    if (publicKey.length !== 32 || sig.length !== 64) return false;
    if (isSmallOrder(publicKey) || isSmallOrder(sig.subarray(0, 32))) return false;
    return ed25519.verify(sig, msg, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");

/**
 * Plain (cofactorless, RFC 8032) Ed25519 verification through the runtime's native crypto, as
 * pkarr checks packet signatures. About 20× faster than the pure-JS verifier, which matters on
 * the DHT path where every received packet is checked. Never throws.
 */
export function verifyPacketSignature(
  publicKey: Uint8Array,
  msg: Uint8Array,
  sig: Uint8Array,
): boolean {
  try {
    if (publicKey.length !== 32 || sig.length !== 64) return false;
    const key = createPublicKey({
      key: Buffer.concat([SPKI_ED25519, publicKey]),
      format: "der",
      type: "spki",
    });
    return nodeVerify(null, msg, key, sig);
  } catch {
    return false;
  }
}

/**
 * {@link verifyStrict}'s rules with the runtime's native verifier for the equation: the key and
 * R must decode canonically and not be of small order (checked here, as `verifyStrict` does),
 * then the native RFC 8032 check (canonical S, cofactorless). About 15× faster than
 * `verifyStrict`; used where many signatures by one key are checked (a streaming large share's
 * parts, PROTOCOL §5.7). Never throws.
 */
export function verifyStrictNative(
  publicKey: Uint8Array,
  msg: Uint8Array,
  sig: Uint8Array,
): boolean {
  if (publicKey.length !== 32 || sig.length !== 64) return false;
  if (isSmallOrder(publicKey) || isSmallOrder(sig.subarray(0, 32))) return false;
  return verifyPacketSignature(publicKey, msg, sig);
}

/** The X25519 public key of an Ed25519 public key (Edwards → Montgomery). Throws if invalid. */
export function x25519PublicFromEd(publicKey: Uint8Array): Uint8Array {
  return ed25519.utils.toMontgomery(publicKey);
}

/**
 * The X25519 secret of an Ed25519 seed: the first 32 bytes of SHA-512(seed), unclamped (as
 * the v1.1 fixtures store it; X25519 clamps when it is used, so results are the same).
 */
export function x25519SecretFromSeed(seed: Uint8Array): Uint8Array {
  return sha512(seed).slice(0, 32);
}

/** The X25519 public key of an X25519 secret. */
export function x25519PublicFromSecret(secret: Uint8Array): Uint8Array {
  return x25519.getPublicKey(secret);
}

/** The X25519 shared secret of our X25519 secret and their X25519 public key. */
export function x25519Shared(secret: Uint8Array, theirPublic: Uint8Array): Uint8Array {
  return x25519.getSharedSecret(secret, theirPublic);
}

/** `age1…` recipient string of an X25519 public key (bech32, HRP `age`). */
export function ageRecipientOf(x25519Public: Uint8Array): string {
  return bech32.encode("age", bech32.toWords(x25519Public), 1023);
}

/** `AGE-SECRET-KEY-1…` identity string of an X25519 secret. */
export function ageIdentityOf(x25519Secret: Uint8Array): string {
  return bech32.encode("age-secret-key-", bech32.toWords(x25519Secret), 1023).toUpperCase();
}

/**
 * The age recipient (`age1…`) that an Ed25519 public key converts to (Edwards → Montgomery):
 * what a share to that key is encrypted to, usable with any age implementation.
 *
 * @throws {RangeError} (from noble) when `publicKey` is not 32 bytes naming an Ed25519 point.
 */
export function ageRecipientOfEd(publicKey: Uint8Array): string {
  return ageRecipientOf(x25519PublicFromEd(publicKey));
}

/** The age identity that an Ed25519 seed converts to. */
export function ageIdentityOfSeed(seed: Uint8Array): string {
  return ageIdentityOf(x25519SecretFromSeed(seed));
}

/**
 * OpenSSH-style fingerprint: `ed25519:SHA256:` + unpadded standard base64 of the SHA-256 of the
 * SSH wire encoding of the key.
 */
export function sshFingerprint(publicKey: Uint8Array): string {
  const u32 = (n: number) => new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
  const blob = concat(u32(11), utf8("ssh-ed25519"), u32(32), publicKey);
  return `ed25519:SHA256:${b64encodeNoPad(sha256(blob))}`;
}
