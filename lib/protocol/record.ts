/**
 * cipherpost v1 records (docs/PROTOCOL.md §2): the Envelope (age plaintext), the OuterRecord
 * (the signed `_cipherpost` TXT payload) and the Receipt (the signed `_cprcpt-<ref>` payload),
 * their canonical signable bytes, inner Ed25519 signatures and `share_ref`.
 *
 * Every parse or verification failure of data from the network is a signature-lane error
 * (exit 3, one message), whatever its cause.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import {
  canonicalize,
  compactJson,
  field,
  type JsonValue,
  parseJson,
} from "../util/canonical_json.ts";
import { b64decode, b64encode, concat, fromUtf8, toHex } from "../util/encoding.ts";
import { CipherpostError, signatureError } from "../util/errors.ts";
import { sign, verifyStrict } from "../crypto/keys.ts";
import { encodeZ32, parsePublicKey } from "../pkarr/public_key.ts";
import type { MaterialType } from "../material/material.ts";

/** How far ahead of our clock a share's `created_at` or a receipt's `accepted_at` may be. */
export const MAX_CLOCK_SKEW_SECONDS = 300;
/** The latest instant a JavaScript Date can show (year 275760): later times are refused. */
export const MAX_TIME_SECONDS = 8_640_000_000_000;

const HEX32 = /^[0-9a-f]{32}$/;
const HEX64 = /^[0-9a-f]{64}$/;
/** Standard padded base64 of a 64-byte Ed25519 signature. */
const SIG_B64 = /^[A-Za-z0-9+/]{86}==$/;
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// deno-lint-ignore no-control-regex
const C0 = /[\u0000-\u001f]/;

/** The current Unix time in seconds. */
function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * A key field: exactly the canonical z-base-32 of a valid point (not another spelling).
 * @throws Error naming `what` otherwise (callers map it to their lane)
 */
export function checkKey(z32: string, what: string): void {
  let canonical: string;
  try {
    canonical = encodeZ32(parsePublicKey(z32));
  } catch {
    throw new Error(`${what} is not a public key`);
  }
  if (canonical !== z32) throw new Error(`${what} is not canonical z-base-32`);
}

/**
 * The validity window of a share, checked before anything of it is shown: `created_at` at most
 * {@link MAX_CLOCK_SKEW_SECONDS} ahead of `nowSec`, `created_at + ttl_seconds` representable
 * as a date, and not yet reached.
 *
 * @throws CipherpostError("expired") for a share dated in the future or past its expiry;
 *   a signature-lane error for times that no honest sender produces (negative, undisplayable).
 */
export function checkShareTimes(
  createdAt: number,
  ttlSeconds: bigint,
  nowSec = nowSeconds(),
): void {
  if (createdAt < 0 || createdAt > MAX_TIME_SECONDS) {
    throw signatureError("created_at out of range");
  }
  if (BigInt(createdAt) + ttlSeconds > BigInt(MAX_TIME_SECONDS)) {
    throw signatureError("expiry out of range");
  }
  if (createdAt > nowSec + MAX_CLOCK_SKEW_SECONDS) {
    const ahead = createdAt - nowSec;
    throw new CipherpostError(
      "expired",
      `share not valid yet: it is dated ${describeSpan(ahead)} in the future`,
      "the sender's clock (or yours) is wrong; fix it and send again",
    );
  }
  const exp = expiresAt(createdAt, ttlSeconds);
  if (BigInt(nowSec) >= exp) {
    const at = new Date(Number(exp) * 1000).toISOString().slice(0, 16).replace("T", " ");
    throw new CipherpostError(
      "expired",
      `share expired at ${at} UTC (${describeSpan(Math.max(60, nowSec - Number(exp)))} ago)`,
      "it can no longer be received: ask the sender to send it again",
    );
  }
}

function describeSpan(seconds: number): string {
  const n = (k: number, unit: string) => `${k} ${unit}${k === 1 ? "" : "s"}`;
  if (seconds < 3600) return n(Math.max(1, Math.floor(seconds / 60)), "minute");
  if (seconds < 86400 * 2) return n(Math.round(seconds / 3600), "hour");
  return n(Math.round(seconds / 86400), "day");
}

const MATERIAL_TYPES: readonly MaterialType[] = [
  "generic_secret",
  "x509_cert",
  "pgp_key",
  "ssh_key",
  "claude_session",
];

/** The age plaintext of a share: what the sender signed inside the encryption. */
export interface Envelope {
  /** The sender asked that the share be accepted once only. */
  burnAfterRead: boolean;
  /** When the sender made the share, in Unix seconds. */
  createdAt: number;
  /** The secret itself and its declared type (checked against the bytes on receive). */
  material: { type: MaterialType; bytes: Uint8Array };
  /** 1 or 2. */
  protocolVersion: number;
  /**
   * The sender's note to the recipient: no C0 controls, but DEL, C1 and bidi controls may
   * remain, so escape it before display.
   */
  purpose: string;
}

/** Canonical bytes of an Envelope (what gets encrypted and what `cleartext_hash` covers). */
export function encodeEnvelope(e: Envelope): Uint8Array {
  const obj: Record<string, JsonValue> = {
    created_at: e.createdAt,
    material: { bytes: b64encode(e.material.bytes), type: e.material.type },
    protocol_version: e.protocolVersion,
    purpose: e.purpose,
  };
  if (e.burnAfterRead) obj.burn_after_read = true;
  return canonicalize(obj);
}

/** The fields every Envelope has, material or large-share pointer alike. */
export interface EnvelopeFields {
  burnAfterRead: boolean;
  createdAt: number;
  protocolVersion: number;
  purpose: string;
}

/**
 * The Envelope rules every kind of share follows (§2.2, §5.2): `burn_after_read` a boolean if
 * present, integer `created_at` and `protocol_version`, and a purpose without C0 controls (the
 * receipt signs the purpose canonically, which cannot hold one: such a share is refused before
 * anything of it is shown; no honest sender writes one, and v1.1 could not receive it either).
 * Throws an Error naming the broken rule.
 */
export function envelopeFields(o: { [k: string]: JsonValue }): EnvelopeFields {
  const burn = o.burn_after_read;
  if (burn !== undefined && typeof burn !== "boolean") throw new Error("bad burn");
  const purpose = field.str(o.purpose ?? "");
  if (C0.test(purpose)) throw new Error("control character in purpose");
  return {
    burnAfterRead: burn === true,
    createdAt: field.int(o.created_at),
    protocolVersion: field.int(o.protocol_version),
    purpose,
  };
}

/** Parse decrypted Envelope bytes (serde semantics: unknown fields ignored). Fails → exit 3. */
export function parseEnvelope(bytes: Uint8Array): Envelope {
  try {
    const o = parseJson(fromUtf8(bytes));
    if (!field.isObject(o) || !field.isObject(o.material)) throw new Error("not an object");
    const type = field.str(o.material.type) as MaterialType;
    if (!MATERIAL_TYPES.includes(type)) throw new Error("unknown material");
    // v1.1 has no such type: a claude_session inside a v1 Envelope is not ours
    if (type === "claude_session" && o.protocol_version !== 2) throw new Error("v2-only material");
    return {
      ...envelopeFields(o),
      material: { type, bytes: b64decode(field.str(o.material.bytes)) },
    };
  } catch (e) {
    throw signatureError(`envelope: ${(e as Error).message}`);
  }
}

/** The signed `_cipherpost` record. */
export interface OuterRecord {
  blob: string;
  createdAt: number;
  pinRequired: boolean;
  protocolVersion: number;
  pubkey: string;
  recipient: string | null;
  shareRef: string;
  signature: string;
  ttlSeconds: bigint;
}

/** The fields of an OuterRecord in struct (= alphabetical) order, with or without signature. */
function outerFields(
  r: Omit<OuterRecord, "signature">,
  signature?: string,
): Record<string, JsonValue> {
  const o: Record<string, JsonValue> = { blob: r.blob, created_at: r.createdAt };
  if (r.pinRequired) o.pin_required = true;
  o.protocol_version = r.protocolVersion;
  o.pubkey = r.pubkey;
  o.recipient = r.recipient;
  o.share_ref = r.shareRef;
  if (signature !== undefined) o.signature = signature;
  o.ttl_seconds = r.ttlSeconds;
  return o;
}

/** Canonical signable bytes of an OuterRecord (all fields but `signature`). */
export function outerSignable(r: Omit<OuterRecord, "signature">): Uint8Array {
  return canonicalize(outerFields(r));
}

/** Sign an OuterRecord with the sender's seed. */
export function signOuterRecord(r: Omit<OuterRecord, "signature">, seed: Uint8Array): OuterRecord {
  return { ...r, signature: b64encode(sign(seed, outerSignable(r))) };
}

/** The TXT payload of an OuterRecord (serde_json compact, struct order). */
export function outerRecordJson(r: OuterRecord): string {
  return compactJson(outerFields(r, r.signature));
}

function verifySigned(signable: Uint8Array, keyZ32: string, signatureB64: string): void {
  let pk: Uint8Array, sig: Uint8Array;
  try {
    pk = parsePublicKey(keyZ32);
    sig = b64decode(signatureB64);
  } catch {
    throw signatureError("bad key or signature encoding");
  }
  if (!verifyStrict(pk, signable, sig)) throw signatureError("inner signature");
}

/**
 * Parse a `_cipherpost` TXT payload, check the format of every field (share_ref 32 lowercase
 * hex, keys canonical z-base-32, blob and signature base64, times in range) and verify its
 * inner signature. Any failure → exit 3. The validity window is the caller's
 * ({@link checkShareTimes}).
 */
export function parseAndVerifyOuterRecord(text: string): OuterRecord {
  let r: OuterRecord;
  try {
    const o = parseJson(text);
    if (!field.isObject(o)) throw new Error("not an object");
    const pin = o.pin_required;
    if (pin !== undefined && typeof pin !== "boolean") throw new Error("bad pin_required");
    const rcpt = o.recipient;
    if (rcpt !== undefined && rcpt !== null && typeof rcpt !== "string") {
      throw new Error("bad recipient");
    }
    r = {
      blob: field.str(o.blob),
      createdAt: field.int(o.created_at),
      pinRequired: pin === true,
      protocolVersion: field.int(o.protocol_version),
      pubkey: field.str(o.pubkey),
      recipient: rcpt ?? null,
      shareRef: field.str(o.share_ref),
      signature: field.str(o.signature),
      ttlSeconds: field.u64(o.ttl_seconds),
    };
    if (!HEX32.test(r.shareRef)) throw new Error("bad share_ref");
    checkKey(r.pubkey, "pubkey");
    if (r.recipient !== null) checkKey(r.recipient, "recipient");
    if (!B64.test(r.blob)) throw new Error("blob is not base64");
    if (!SIG_B64.test(r.signature)) throw new Error("bad signature encoding");
    if (r.createdAt < 0) throw new Error("created_at before 1970");
  } catch (e) {
    throw signatureError(`record: ${(e as Error).message}`);
  }
  let signable: Uint8Array;
  try {
    signable = outerSignable(r);
  } catch {
    throw signatureError("record not canonicalizable");
  }
  verifySigned(signable, r.pubkey, r.signature);
  return r;
}

/** `share_ref = hex(SHA-256(ciphertext ‖ i64be(created_at))[0..16])`. */
export function shareRef(ciphertext: Uint8Array, createdAt: number): string {
  const ts = new Uint8Array(8);
  new DataView(ts.buffer).setBigInt64(0, BigInt(createdAt));
  return toHex(sha256(concat(ciphertext, ts)).slice(0, 16));
}

/** Unix seconds at which a record expires (saturating). */
export function expiresAt(createdAt: number, ttlSeconds: bigint): bigint {
  const max = (1n << 63n) - 1n;
  const e = BigInt(createdAt) + ttlSeconds;
  return e > max ? max : e;
}

/**
 * A signed delivery receipt: the recipient's statement that it accepted a share, published in
 * the recipient's own packet (and, for v2, in the share's receipt slot). The fields are the
 * wire fields in camelCase (`accepted_at` → `acceptedAt`); PROTOCOL §2 gives their rules.
 */
export interface Receipt {
  /** When the recipient accepted the share, in Unix seconds. */
  acceptedAt: number;
  /** SHA-256 (64 lowercase hex) of the share's ciphertext: the bytes `shareRef` covers. */
  ciphertextHash: string;
  /** SHA-256 (64 lowercase hex) of the decrypted Envelope's canonical bytes. */
  cleartextHash: string;
  /** 16 random bytes (32 lowercase hex) chosen by the recipient. */
  nonce: string;
  /** The protocol version of the share: 1 or 2. */
  protocolVersion: number;
  /**
   * The share's purpose, as the sender wrote it: no C0 controls, but DEL, C1 and bidi controls
   * may remain, so escape it before display.
   */
  purpose: string;
  /** The recipient's key, canonical z-base-32: the key that signed this receipt. */
  recipientPubkey: string;
  /** The sender's key, canonical z-base-32. */
  senderPubkey: string;
  /** The share's reference (32 lowercase hex). */
  shareRef: string;
  /** Padded base64 of the recipient's Ed25519 signature over the canonical JSON of the rest. */
  signature: string;
}

function receiptFields(
  r: Omit<Receipt, "signature">,
  signature?: string,
): Record<string, JsonValue> {
  const o: Record<string, JsonValue> = {
    accepted_at: r.acceptedAt,
    ciphertext_hash: r.ciphertextHash,
    cleartext_hash: r.cleartextHash,
    nonce: r.nonce,
    protocol_version: r.protocolVersion,
    purpose: r.purpose,
    recipient_pubkey: r.recipientPubkey,
    sender_pubkey: r.senderPubkey,
    share_ref: r.shareRef,
  };
  if (signature !== undefined) o.signature = signature;
  return o;
}

/** Canonical signable bytes of a Receipt. */
export function receiptSignable(r: Omit<Receipt, "signature">): Uint8Array {
  return canonicalize(receiptFields(r));
}

/** Sign a receipt with the recipient's seed. */
export function signReceipt(r: Omit<Receipt, "signature">, seed: Uint8Array): Receipt {
  return { ...r, signature: b64encode(sign(seed, receiptSignable(r))) };
}

/** The TXT payload / archive form of a receipt (compact JSON, struct order). */
export function receiptJson(r: Receipt): string {
  return compactJson(receiptFields(r, r.signature));
}

/** The receipt as a JSON object (struct order), for pretty output. */
export function receiptObject(r: Receipt): Record<string, JsonValue> {
  return receiptFields(r, r.signature);
}

/**
 * Parse receipt JSON and check the format of every field: protocol_version 1 or 2, share_ref and
 * nonce 32 lowercase hex, the hashes 64, keys canonical z-base-32, the signature base64,
 * `accepted_at` from 1970 to at most {@link MAX_CLOCK_SKEW_SECONDS} ahead of `nowSec`, and a
 * purpose without C0 controls. It does not check the signature: follow it with
 * {@link verifyReceipt}, or use {@link parseAndVerifyReceipt}.
 *
 * @param text The receipt's JSON (the TXT record's text).
 * @param nowSec The verifier's clock in Unix seconds (default: now).
 * @returns The receipt, unverified.
 * @throws {Error} a plain `Error` (not a {@link CipherpostError}) when `text` is not a
 *   well-formed receipt; its message names the first field found wrong.
 */
export function parseReceipt(text: string, nowSec: number = nowSeconds()): Receipt {
  const o = parseJson(text);
  if (!field.isObject(o)) throw new Error("malformed receipt");
  const r: Receipt = {
    acceptedAt: field.int(o.accepted_at),
    ciphertextHash: field.str(o.ciphertext_hash),
    cleartextHash: field.str(o.cleartext_hash),
    nonce: field.str(o.nonce),
    protocolVersion: field.int(o.protocol_version),
    purpose: field.str(o.purpose),
    recipientPubkey: field.str(o.recipient_pubkey),
    senderPubkey: field.str(o.sender_pubkey),
    shareRef: field.str(o.share_ref),
    signature: field.str(o.signature),
  };
  if (r.protocolVersion !== 1 && r.protocolVersion !== 2) throw new Error("bad protocol_version");
  if (!HEX32.test(r.shareRef) || !HEX32.test(r.nonce)) throw new Error("bad share_ref or nonce");
  if (!HEX64.test(r.ciphertextHash) || !HEX64.test(r.cleartextHash)) throw new Error("bad hash");
  checkKey(r.recipientPubkey, "recipient_pubkey");
  checkKey(r.senderPubkey, "sender_pubkey");
  if (!SIG_B64.test(r.signature)) throw new Error("bad signature encoding");
  if (r.acceptedAt < 0 || r.acceptedAt > nowSec + MAX_CLOCK_SKEW_SECONDS) {
    throw new Error("accepted_at out of range");
  }
  if (C0.test(r.purpose)) throw new Error("control character in purpose");
  return r;
}

/**
 * Verify a receipt's Ed25519 signature by its own `recipientPubkey` (strict verification). This
 * proves who signed it, not that it is the receipt of a given share: compare `shareRef`,
 * `senderPubkey`, `recipientPubkey` and `ciphertextHash` with the share's (PROTOCOL §2.1).
 *
 * @throws {CipherpostError} `signature` (message {@link SIGNATURE_FAILED}) when the signature
 *   does not verify or the receipt cannot be canonicalized.
 */
export function verifyReceipt(r: Receipt): void {
  let signable: Uint8Array;
  try {
    signable = receiptSignable(r);
  } catch {
    throw signatureError("receipt not canonicalizable");
  }
  verifySigned(signable, r.recipientPubkey, r.signature);
}

/**
 * Parse (with every format check of {@link parseReceipt}) and verify a receipt.
 *
 * @param text The receipt's JSON (the TXT record's text).
 * @param nowSec The verifier's clock in Unix seconds (default: now).
 * @returns The receipt, its signature verified.
 * @throws {CipherpostError} `signature` (message {@link SIGNATURE_FAILED}) on any failure,
 *   malformed or badly signed alike.
 */
export function parseAndVerifyReceipt(text: string, nowSec: number = nowSeconds()): Receipt {
  let r: Receipt;
  try {
    r = parseReceipt(text, nowSec);
  } catch {
    throw signatureError("malformed receipt");
  }
  verifyReceipt(r);
  return r;
}

/** SHA-256 hex. */
export function sha256Hex(b: Uint8Array): string {
  return toHex(sha256(b));
}
