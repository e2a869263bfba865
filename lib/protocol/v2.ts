/**
 * Protocol v2: multi-packet shares (docs/PROTOCOL.md §3).
 *
 * A share is addressed by a random 32-byte locator `L`. From it derive the manifest key `M`,
 * one part key `P_i` per 900-byte slice of the blob, the receipt key `R` and the seal key `S`
 * (an X25519 age identity). The manifest packet under `M` carries the sender-signed manifest,
 * sealed to `S`; each part packet under `P_i` carries raw ciphertext bytes.
 *
 * Wire note: `_cpm` and `_cpr` hold the sealed age file as raw bytes split into TXT
 * character-strings of ≤ 255 bytes (like `_cpp`), not as base64 text: a sealed manifest is
 * about 775 bytes, so its base64 (about 1,036 bytes) cannot fit a 1000-byte packet. A revoked
 * manifest's `_cpm` bytes are exactly `revoked` (never a valid age file).
 *
 * Everything here is pure (bytes in, bytes out): keys, the manifest codec, the part and receipt
 * records. Publishing and fetching them is `lib/flows/v2_transfer.ts`. Nothing here decrypts
 * the blob: the caller decrypts, checks the Envelope and the recipient, and verifies receipts.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { ageDecrypt, ageEncrypt } from "../crypto/age.ts";
import {
  canonicalize,
  compactJson,
  field,
  type JsonValue,
  parseJson,
} from "../util/canonical_json.ts";
import type { DnsRecord } from "../pkarr/dns.ts";
import { b64decode, b64encode, bytesEqual, concat, toHex, utf8 } from "../util/encoding.ts";
import { CipherpostError, signatureError } from "../util/errors.ts";
import { hkdf32 } from "../crypto/kdf.ts";
import {
  ageIdentityOf,
  ageRecipientOf,
  type Keypair,
  keypairFromSeed,
  sign,
  verifyStrict,
  x25519PublicFromSecret,
} from "../crypto/keys.ts";
import { encodeZ32, parsePublicKey } from "../pkarr/public_key.ts";
import { checkKey, shareRef as computeShareRef } from "./record.ts";
import { type SignedPacket, signPacket } from "../pkarr/signed_packet.ts";
import {
  MANIFEST_LABEL,
  PART_LABEL,
  RECEIPT_COUNT_LABEL,
  RECEIPT_SLOT_LABEL,
  type RecordSet,
  txtRecordsNamed,
} from "./labels.ts";

/** Bytes of blob per part packet (the last part holds the rest). */
export const PART_SIZE = 900;
/** Most parts a manifest may announce. */
export const MAX_PARTS = 128;
/** Largest blob (ciphertext, PIN salt included) a v2 share may carry. */
export const MAX_BLOB_BYTES = 98_304;

const PROTOCOL_V2 = 2;
const RECORD_TTL = 300;
const REVOKED = "revoked";
const NO_SALT = new Uint8Array(0);
const INFO = {
  manifest: "cipherpost/v2/manifest-key",
  part: "cipherpost/v2/part-key/",
  receipt: "cipherpost/v2/receipt-key",
  seal: "cipherpost/v2/seal",
} as const;

/** The keys of one v2 share, all derived from its locator (§3.2). */
export interface V2Keys {
  /** signs the manifest packet */
  manifest: Keypair;
  /** signs the receipt packet */
  receipt: Keypair;
  /** `AGE-SECRET-KEY-1…` identity that unseals the manifest and the receipt */
  sealIdentity: string;
  /** `age1…` recipient that seals the manifest and the receipt */
  sealRecipient: string;
  /** the key of part `i` (0-based) */
  part(i: number): Keypair;
}

/**
 * Derive every key of a share from its 32-byte locator: HKDF-SHA256 (empty salt) of the
 * locator with one info string per use.
 */
export function deriveV2Keys(locator: Uint8Array): V2Keys {
  if (locator.length !== 32) throw new Error("v2 locator must be 32 bytes");
  const L = locator.slice();
  const seal = hkdf32(NO_SALT, L, INFO.seal);
  return {
    manifest: keypairFromSeed(hkdf32(NO_SALT, L, INFO.manifest)),
    receipt: keypairFromSeed(hkdf32(NO_SALT, L, INFO.receipt)),
    sealIdentity: ageIdentityOf(seal),
    sealRecipient: ageRecipientOf(x25519PublicFromSecret(seal)),
    part(i: number): Keypair {
      if (!Number.isSafeInteger(i) || i < 0) throw new Error("part index must be ≥ 0");
      return keypairFromSeed(hkdf32(NO_SALT, L, `${INFO.part}${i}`));
    },
  };
}

/** The signed manifest of a v2 share (§3.3). */
export interface Manifest {
  ciphertextLen: number;
  ciphertextSha256: string;
  createdAt: number;
  manifestKey: string;
  partSize: number;
  parts: number;
  pinRequired: boolean;
  protocolVersion: 2;
  pubkey: string;
  recipient: string | null;
  shareRef: string;
  signature: string;
  ttlSeconds: bigint;
}

/** Manifest fields in wire (= alphabetical) order, with or without the signature. */
function manifestFields(
  m: Omit<Manifest, "signature">,
  signature?: string,
): Record<string, JsonValue> {
  const o: Record<string, JsonValue> = {
    ciphertext_len: m.ciphertextLen,
    ciphertext_sha256: m.ciphertextSha256,
    created_at: m.createdAt,
    manifest_key: m.manifestKey,
    part_size: m.partSize,
    parts: m.parts,
  };
  if (m.pinRequired) o.pin_required = true;
  o.protocol_version = m.protocolVersion;
  o.pubkey = m.pubkey;
  o.recipient = m.recipient;
  o.share_ref = m.shareRef;
  if (signature !== undefined) o.signature = signature;
  o.ttl_seconds = m.ttlSeconds;
  return o;
}

/** Parse manifest JSON and verify the sender's signature (nothing else); any failure → exit 3. */
export function parseAndVerifyManifest(text: string): Manifest {
  let m: Manifest;
  try {
    const o = parseJson(text);
    if (!field.isObject(o)) throw new Error("not an object");
    const pin = o.pin_required;
    if (pin !== undefined && typeof pin !== "boolean") throw new Error("bad pin_required");
    const rcpt = o.recipient;
    if (rcpt !== null && typeof rcpt !== "string") throw new Error("bad recipient");
    if (field.int(o.protocol_version) !== PROTOCOL_V2) throw new Error("not protocol 2");
    m = {
      ciphertextLen: field.int(o.ciphertext_len),
      ciphertextSha256: field.str(o.ciphertext_sha256),
      createdAt: field.int(o.created_at),
      manifestKey: field.str(o.manifest_key),
      partSize: field.int(o.part_size),
      parts: field.int(o.parts),
      pinRequired: pin === true,
      protocolVersion: PROTOCOL_V2,
      pubkey: field.str(o.pubkey),
      recipient: rcpt,
      shareRef: field.str(o.share_ref),
      signature: field.str(o.signature),
      ttlSeconds: field.u64(o.ttl_seconds),
    };
    if (!/^[0-9a-f]{32}$/.test(m.shareRef)) throw new Error("bad share_ref");
    if (!/^[0-9a-f]{64}$/.test(m.ciphertextSha256)) throw new Error("bad ciphertext_sha256");
    checkKey(m.pubkey, "pubkey");
    checkKey(m.manifestKey, "manifest_key");
    if (m.recipient !== null) checkKey(m.recipient, "recipient");
    if (!/^[A-Za-z0-9+/]{86}==$/.test(m.signature)) throw new Error("bad signature encoding");
    if (m.createdAt < 0) throw new Error("created_at before 1970");
  } catch (e) {
    throw signatureError(`manifest: ${(e as Error).message}`);
  }
  let ok = false;
  try {
    ok = verifyStrict(
      parsePublicKey(m.pubkey),
      canonicalize(manifestFields(m)),
      b64decode(m.signature),
    );
  } catch {
    ok = false;
  }
  if (!ok) throw signatureError("manifest signature");
  return m;
}

/** A TXT record whose character-strings (≤ 255 bytes each) concatenate to `bytes`. */
export function binaryTxt(name: string, bytes: Uint8Array): DnsRecord {
  const strings: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += 255) strings.push(bytes.slice(i, i + 255));
  if (strings.length === 0) strings.push(new Uint8Array(0));
  return { name, ttl: RECORD_TTL, class: 1, data: { type: "TXT", strings } };
}

/** The concatenated bytes of the TXT record `label` of a packet, or null when absent. */
export function recordBytes(p: RecordSet, label: string): Uint8Array | null {
  const r = txtRecordsNamed(p, label)[0];
  return r && r.data.type === "TXT" ? concat(...r.data.strings) : null;
}

/** The sealed manifest bytes of a manifest packet (`_cpm`), or null when absent. */
export function manifestBytes(p: RecordSet): Uint8Array | null {
  return recordBytes(p, MANIFEST_LABEL);
}

/** The ciphertext bytes of a part packet (`_cpp`), or null when absent. */
export function partBytes(p: RecordSet): Uint8Array | null {
  return recordBytes(p, PART_LABEL);
}

/** The length part `i` of a manifest's blob must have. */
export function partLength(m: Manifest, i: number): number {
  return Math.min(m.partSize, m.ciphertextLen - i * m.partSize);
}

/** The only record of a revoked manifest packet: `_cpm` = `revoked`. */
export function revocationRecord(): DnsRecord {
  return binaryTxt(MANIFEST_LABEL, utf8(REVOKED));
}

/** `C` of the share_ref: the blob without the 32-byte PIN salt. */
function shareRefOf(blob: Uint8Array, pinRequired: boolean, createdAt: number): string {
  return computeShareRef(pinRequired ? blob.subarray(32) : blob, createdAt);
}

/**
 * Steps 1–2 of §3.5 after the fetch: unseal the `_cpm` bytes and verify the manifest (sender =
 * `expectedSender`, manifest key, version, part arithmetic, length limit).
 *
 * @throws CipherpostError "not_found" (revoked), "signature" (any check).
 */
export async function openManifest(
  sealed: Uint8Array,
  keys: V2Keys,
  expectedSender: string,
): Promise<Manifest> {
  if (bytesEqual(sealed, utf8(REVOKED))) {
    throw new CipherpostError("not_found", "share revoked by the sender");
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(
      await ageDecrypt(sealed, keys.sealIdentity),
    );
  } catch {
    throw signatureError("manifest unseal");
  }
  const m = parseAndVerifyManifest(text);
  if (m.pubkey !== expectedSender) throw signatureError("manifest sender");
  if (m.manifestKey !== encodeZ32(keys.manifest.publicKey)) throw signatureError("manifest key");
  const len = m.ciphertextLen;
  if (len < 1 || len > MAX_BLOB_BYTES) throw signatureError("manifest length");
  if (m.partSize < 1 || m.partSize > PART_SIZE) throw signatureError("manifest part size");
  if (m.parts < 1 || m.parts > MAX_PARTS || m.parts !== Math.ceil(len / m.partSize)) {
    throw signatureError("manifest parts");
  }
  return m;
}

/** Step 5 of §3.5: the whole blob's hash and `share_ref` match the manifest (else exit 3). */
export function checkBlob(manifest: Manifest, blob: Uint8Array): void {
  if (toHex(sha256(blob)) !== manifest.ciphertextSha256) throw signatureError("blob hash");
  if (shareRefOf(blob, manifest.pinRequired, manifest.createdAt) !== manifest.shareRef) {
    throw signatureError("share_ref");
  }
}

/**
 * Build and sign the manifest and every packet of a share (manifest packet first, then the
 * parts in order). Nothing is published.
 *
 * @throws CipherpostError("too_large") when the blob exceeds {@link MAX_BLOB_BYTES}.
 */
export async function buildV2Share(args: {
  sender: Keypair;
  recipient: string | null;
  /** the full blob, PIN salt included */
  blob: Uint8Array;
  shareRef: string;
  createdAt: number;
  ttlSeconds: bigint;
  pinRequired: boolean;
  /** random when absent */
  locator?: Uint8Array;
  /** packet timestamp (µs); now when absent */
  timestampUs?: number;
}): Promise<{ locator: Uint8Array; manifest: Manifest; packets: SignedPacket[] }> {
  const { blob } = args;
  if (blob.length === 0) throw new Error("v2 blob is empty");
  if (blob.length > MAX_BLOB_BYTES) {
    throw new CipherpostError(
      "too_large",
      `share too large: ${blob.length} bytes of ciphertext, limit is ${MAX_BLOB_BYTES}`,
    );
  }
  if (shareRefOf(blob, args.pinRequired, args.createdAt) !== args.shareRef) {
    throw new Error("share_ref does not match the blob");
  }
  const locator = args.locator ?? crypto.getRandomValues(new Uint8Array(32));
  const keys = deriveV2Keys(locator);
  const parts = Math.ceil(blob.length / PART_SIZE);
  const unsigned: Omit<Manifest, "signature"> = {
    ciphertextLen: blob.length,
    ciphertextSha256: toHex(sha256(blob)),
    createdAt: args.createdAt,
    manifestKey: encodeZ32(keys.manifest.publicKey),
    partSize: PART_SIZE,
    parts,
    pinRequired: args.pinRequired,
    protocolVersion: PROTOCOL_V2,
    pubkey: encodeZ32(args.sender.publicKey),
    recipient: args.recipient,
    shareRef: args.shareRef,
    ttlSeconds: args.ttlSeconds,
  };
  const signature = b64encode(sign(args.sender.seed, canonicalize(manifestFields(unsigned))));
  const manifest: Manifest = { ...unsigned, signature };
  const sealed = await ageEncrypt(
    utf8(compactJson(manifestFields(manifest, signature))),
    keys.sealRecipient,
  );
  const ts = args.timestampUs ?? Date.now() * 1000;
  const packets = [signPacket(keys.manifest.seed, [binaryTxt(MANIFEST_LABEL, sealed)], ts)];
  for (let i = 0; i < parts; i++) {
    const bytes = blob.subarray(i * PART_SIZE, Math.min((i + 1) * PART_SIZE, blob.length));
    packets.push(signPacket(keys.part(i).seed, [binaryTxt(PART_LABEL, bytes)], ts));
  }
  return { locator, manifest, packets };
}

/** Bytes of sealed receipt per receipt packet (leaves room for the `_cprn` count record). */
const RECEIPT_CHUNK = 860;
/** At most this many receipt packets (a purpose of several KiB still fits). */
export const MAX_RECEIPT_CHUNKS = 8;

/** The key of receipt packet `i` (0 = `R`). */
export function receiptKey(locator: Uint8Array, keys: V2Keys, i: number): Keypair {
  return i === 0 ? keys.receipt : keypairFromSeed(hkdf32(NO_SALT, locator, `${INFO.receipt}/${i}`));
}

/**
 * The receipt JSON sealed to the share's seal key, as the records of each receipt packet
 * (index 0 = `R`). A sealed receipt larger than one packet (a long purpose) continues under
 * `R_i = HKDF(L, "cipherpost/v2/receipt-key/<i>")`, and `R`'s packet says how many with a TXT
 * `_cprn`.
 *
 * @throws CipherpostError("too_large") beyond {@link MAX_RECEIPT_CHUNKS} packets.
 */
export async function sealV2Receipt(
  locator: Uint8Array,
  receiptJson: string,
): Promise<Array<{ key: Keypair; records: DnsRecord[] }>> {
  const keys = deriveV2Keys(locator);
  const sealed = await ageEncrypt(utf8(receiptJson), keys.sealRecipient);
  const n = Math.ceil(sealed.length / RECEIPT_CHUNK);
  if (n > MAX_RECEIPT_CHUNKS) {
    throw new CipherpostError("too_large", `receipt too large: ${sealed.length} bytes sealed`);
  }
  return Array.from({ length: n }, (_, i) => {
    const records = [
      binaryTxt(RECEIPT_SLOT_LABEL, sealed.subarray(i * RECEIPT_CHUNK, (i + 1) * RECEIPT_CHUNK)),
    ];
    if (i === 0 && n > 1) records.push(binaryTxt(RECEIPT_COUNT_LABEL, utf8(String(n))));
    return { key: receiptKey(locator, keys, i), records };
  });
}

/** The sealed receipt bytes of a receipt packet (`_cpr`), or null when absent. */
export function receiptChunk(p: RecordSet): Uint8Array | null {
  return recordBytes(p, RECEIPT_SLOT_LABEL);
}

/**
 * How many receipt packets `R`'s packet announces (1 without `_cprn`).
 *
 * @throws signature error (exit 3) for a count that is not 1…{@link MAX_RECEIPT_CHUNKS}.
 */
export function receiptChunkCount(head: RecordSet): number {
  const countBytes = recordBytes(head, RECEIPT_COUNT_LABEL);
  const n = countBytes ? Number(new TextDecoder().decode(countBytes)) : 1;
  if (!Number.isInteger(n) || n < 1 || n > MAX_RECEIPT_CHUNKS) {
    throw signatureError("receipt chunk count");
  }
  return n;
}

/** Unseal the concatenated receipt chunks to the receipt JSON text (else exit 3). */
export async function unsealV2Receipt(keys: V2Keys, chunks: Uint8Array[]): Promise<string> {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(
      await ageDecrypt(concat(...chunks), keys.sealIdentity),
    );
  } catch {
    throw signatureError("receipt unseal");
  }
}
