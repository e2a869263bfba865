/**
 * Key derivations: Argon2id (hash-wasm) followed by HKDF-SHA256 with a purpose string, for the
 * identity key-encryption key and for PIN shares (docs/PROTOCOL.md §1.4, §2).
 *
 * @module
 */

import { argon2id } from "hash-wasm";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { utf8 } from "../util/encoding.ts";

/** Argon2id cost parameters, as in a PHC string (`m=…,t=…,p=…`). */
export interface Argon2Params {
  /** Memory in KiB. */
  m: number;
  /** Iterations (passes over the memory). */
  t: number;
  /** Parallelism (lanes). */
  p: number;
}

/** The identity default (64 MiB, 3 passes, 1 lane), also the fixed parameters of PIN shares. */
export const DEFAULT_ARGON2: Argon2Params = { m: 65536, t: 3, p: 1 };

/** HKDF purpose strings (domain separation). */
export const HKDF_INFO = {
  identityKek: "cipherpost/v1/identity-kek",
  pin: "cipherpost/v1/pin",
  inviteSlot: "cipherpost/v1/invite-slot",
  answerSlot: "cipherpost/v1/invite-answer-slot",
  invite: "cipherpost/v1/invite",
} as const;

/**
 * Argon2id v0x13 with a 32-byte output. It runs in a short-lived Web Worker
 * (`argon2_worker.ts`) so that its memory (64 MiB for the defaults, ~76 MiB of RSS measured)
 * is returned when it ends: the process that then streams a large share stays under its memory
 * bound. Where a worker cannot start (a build that left the worker module out), it runs here.
 */
export async function argon2(
  password: Uint8Array,
  salt: Uint8Array,
  params: Argon2Params,
): Promise<Uint8Array> {
  let w: Worker;
  try {
    w = new Worker(new URL("./argon2_worker.ts", import.meta.url), { type: "module" });
  } catch {
    return await argon2Here(password, salt, params);
  }
  try {
    const r = await new Promise<{ ok?: Uint8Array; error?: string; failed?: true }>((resolve) => {
      w.onmessage = (e) => resolve(e.data);
      // the worker's module did not load or threw outside the job
      w.onerror = (e) => {
        e.preventDefault();
        resolve({ failed: true });
      };
      w.postMessage({ password, salt, params });
    });
    if (r.failed) return await argon2Here(password, salt, params);
    if (r.ok) return r.ok;
    throw new Error(r.error ?? "argon2 failed");
  } finally {
    w.terminate();
  }
}

/** {@link argon2} on the calling thread (what `argon2_worker.ts` runs; the fallback here). */
export async function argon2Here(
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

/** The two DHT slots of a contact invite (Ed25519 seeds), derived from its code and time window. */
export async function inviteSlots(
  code: string,
  window: number,
): Promise<{ invite: Uint8Array; answer: Uint8Array }> {
  // the salt names the time window, so no table of codes computed in advance outlives it
  const salt = sha256(utf8(`cipherpost/v1/invite-window/${window}`)).subarray(0, 16);
  const k = await argon2(utf8(code), salt, DEFAULT_ARGON2);
  return {
    invite: hkdf32(salt, k, HKDF_INFO.inviteSlot),
    answer: hkdf32(salt, k, HKDF_INFO.answerSlot),
  };
}

/** The key a contact-invite message is encrypted to (an X25519 secret): its code, a random salt. */
export async function inviteKey(code: string, salt: Uint8Array): Promise<Uint8Array> {
  return hkdf32(salt, await argon2(utf8(code), salt, DEFAULT_ARGON2), HKDF_INFO.invite);
}
