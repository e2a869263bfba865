/**
 * Key derivations: Argon2id (hash-wasm) followed by HKDF-SHA256 with a purpose string, for the
 * identity key-encryption key and for PIN shares (protocol digest §1.3, §6.1).
 *
 * @module
 */

import { argon2id } from "hash-wasm";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { utf8 } from "../util/encoding.ts";

/** Argon2id cost parameters (memory in KiB). */
export interface Argon2Params {
  m: number;
  t: number;
  p: number;
}

/** v1.1 defaults for identities and the fixed PIN parameters. */
export const DEFAULT_ARGON2: Argon2Params = { m: 65536, t: 3, p: 1 };

/** HKDF purpose strings (domain separation). */
export const HKDF_INFO = {
  identityKek: "cipherpost/v1/identity-kek",
  pin: "cipherpost/v1/pin",
} as const;

/** Argon2id v0x13 with a 32-byte output. */
export async function argon2(
  password: Uint8Array,
  salt: Uint8Array,
  params: Argon2Params,
): Promise<Uint8Array> {
  return await argon2id({
    password,
    salt,
    parallelism: params.p,
    iterations: params.t,
    memorySize: params.m,
    hashLength: 32,
    outputType: "binary",
  });
}

/** HKDF-SHA256 → 32 bytes. */
export function hkdf32(salt: Uint8Array, ikm: Uint8Array, info: string): Uint8Array {
  return hkdf(sha256, ikm, salt, utf8(info), 32);
}

/** The identity file's key-encryption key (an X25519 secret). */
export async function identityKek(
  passphrase: Uint8Array,
  salt: Uint8Array,
  params: Argon2Params,
): Promise<Uint8Array> {
  return hkdf32(salt, await argon2(passphrase, salt, params), HKDF_INFO.identityKek);
}

/** The PIN key of a PIN share (an X25519 secret); parameters fixed by v1.1. */
export async function pinKey(pin: string, salt: Uint8Array): Promise<Uint8Array> {
  return hkdf32(salt, await argon2(utf8(pin), salt, DEFAULT_ARGON2), HKDF_INFO.pin);
}
