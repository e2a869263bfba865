/**
 * PKARR public keys: z-base-32 text form, `PublicKey::from_str` parsing rules of Rust pkarr 7,
 * and the DHT target `sha1(pk)`.
 *
 * @module
 */

import { ed25519 } from "@noble/curves/ed25519.js";
import { sha1 } from "@noble/hashes/legacy.js";
import { CipherpostError } from "../util/errors.ts";

const ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769";
const DECODE: Record<string, number> = Object.fromEntries(
  [...ALPHABET].map((c, i) => [c, i]),
);

/** Length of a z-base-32 encoded 32-byte public key. */
export const Z32_KEY_LENGTH = 52;

/**
 * Encodes bytes as z-base-32 (MSB-first 5-bit groups, lowercase, no padding).
 * 32 bytes give 52 characters.
 */
export function encodeZ32(bytes: Uint8Array): string {
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >> bits) & 31];
    }
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31];
  return out;
}

/**
 * Decodes z-base-32 like the Rust `base32` crate (0.5, `Alphabet::Z`): lowercase only, leftover
 * trailing bits are ignored. It checks only the alphabet: to read a key, use
 * {@link parsePublicKey}, which also checks the length and the point.
 *
 * @throws {CipherpostError} `config` ("invalid public key: not z-base-32") on a character
 *   outside the alphabet.
 */
export function decodeZ32(s: string): Uint8Array {
  const out = new Uint8Array(Math.floor((s.length * 5) / 8));
  let acc = 0;
  let bits = 0;
  let n = 0;
  for (const c of s) {
    const v = DECODE[c];
    if (v === undefined) {
      throw new CipherpostError("config", "invalid public key: not z-base-32");
    }
    acc = ((acc << 5) | v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  return out.subarray(0, n);
}

const byteLength = (s: string): number => new TextEncoder().encode(s).length;

/** Applies one stripping step only while the candidate is still longer than 52 bytes. */
function stripKeyText(input: string): string {
  let s = input;
  const long = () => byteLength(s) > Z32_KEY_LENGTH;
  const after = (sep: string) => {
    const i = s.indexOf(sep);
    if (i >= 0) s = s.slice(i + sep.length);
  };
  const before = (sep: string) => {
    const i = s.indexOf(sep);
    if (i >= 0) s = s.slice(0, i);
  };
  if (long()) after(":"); // scheme
  if (long() && s.startsWith("//")) s = s.slice(2);
  if (long()) after("@"); // userinfo
  if (long()) before(":"); // port
  if (long()) before("/"); // path
  if (long()) before("?"); // query
  if (long()) before("#"); // fragment
  if (long()) {
    if (s.endsWith(".")) s = s.replace(/^\.+|\.+$/g, "");
    const i = s.lastIndexOf(".");
    if (i >= 0) s = s.slice(i + 1);
  }
  return s;
}

/**
 * Parses a public key the way pkarr's `PublicKey::from_str` does: a bare z-base-32 key, `pk:<key>`,
 * or a URL whose host ends in the key (scheme, userinfo, port, path, query, fragment, trailing dots
 * and sub-domains are stripped; the last dot-label wins). The result must be 32 bytes and a valid
 * Ed25519 point.
 *
 * @returns The 32-byte public key.
 * @throws {CipherpostError} `config` ("invalid public key: …") when the text holds no such key.
 */
export function parsePublicKey(input: string): Uint8Array {
  const bytes = decodeZ32(stripKeyText(input));
  if (bytes.length !== 32) {
    throw new CipherpostError(
      "config",
      `invalid public key: wrong length (${bytes.length} bytes, expected 32)`,
    );
  }
  if (!isValidPoint(bytes)) {
    throw new CipherpostError("config", "invalid public key: not a valid Ed25519 point");
  }
  return bytes;
}

/**
 * True if `pk` is 32 bytes that decompress to an Ed25519 point. Like ed25519-dalek's
 * `CompressedEdwardsY::decompress`, non-canonical encodings are accepted.
 */
export function isValidPoint(pk: Uint8Array): boolean {
  if (pk.length !== 32) return false;
  try {
    ed25519.Point.fromBytes(pk, true);
    return true;
  } catch {
    return false;
  }
}

/** The BEP44 DHT target (and pkarr cache key) of a public key: `sha1(pk)`, 20 bytes. */
export function dhtTarget(pk: Uint8Array): Uint8Array {
  return sha1(pk);
}
