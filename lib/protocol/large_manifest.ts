/**
 * The large-share pointer (docs/PROTOCOL.md §5.1): the `large_pointer` material of a v2 share
 * that names the homeserver folder, the part layout, our own SHA-256 per part and the
 * whole-ciphertext hash. Pure codec and checks; bytes in, bytes out.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { canonicalize, field, type JsonValue, parseJson } from "../util/canonical_json.ts";
import {
  b64decode,
  b64encode,
  bytesEqual,
  concat,
  fromHex,
  fromUtf8,
  toHex,
  utf8,
} from "../util/encoding.ts";
import { signatureError } from "../util/errors.ts";
import { parsePublicKey } from "../pkarr/public_key.ts";
import { envelopeFields } from "./record.ts";

/** The Envelope material type of a pointer. */
export const LARGE_POINTER_TYPE = "large_pointer";
/** Most parts a pointer may list. */
export const MAX_LARGE_PARTS = 512;
/** Smallest and largest plaintext part size. */
export const MIN_PART_SIZE = 1 << 20;
export const MAX_PART_SIZE = 63 << 20;
/** Default plaintext part size. */
export const DEFAULT_PART_SIZE = 16 << 20;
/** Top-level entries a directory pointer shows at most. */
export const MAX_TOP_ENTRIES = 20;
/** Largest payload a pointer can describe. */
export const MAX_LARGE_SIZE = MAX_LARGE_PARTS * MAX_PART_SIZE;

/** The pointer of a large share. */
export interface LargePointer {
  blobId: string;
  ciphertextHash: string;
  compression: "none";
  contentIdentity: string;
  fileCount: number;
  homeserver: string;
  kind: "file" | "directory";
  name: string;
  partHashes: string[];
  partSize: number;
  parts: number;
  size: number;
  topEntries: string[];
  version: 1;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const AGE_SECRET = /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/;

/** The part count for `size` bytes in parts of `partSize` (at least 1). */
export function partCount(size: number, partSize: number): number {
  return Math.max(1, Math.ceil(size / partSize));
}

/** The plaintext length of part `i`. */
export function partLength(p: Pick<LargePointer, "size" | "partSize">, i: number): number {
  return Math.max(0, Math.min(p.partSize, p.size - i * p.partSize));
}

/** The largest stored (age ciphertext) length a part of `plain` bytes may have. */
export function maxCipherLength(plain: number): number {
  return plain + 16 * (Math.floor(plain / 65536) + 1) + 4096;
}

/** The plaintext part size for a payload of `size` bytes: 16 MiB, raised to keep ≤ 512 parts. */
export function choosePartSize(size: number): number {
  if (size > MAX_LARGE_SIZE) {
    throw new RangeError(`payload of ${size} bytes exceeds ${MAX_LARGE_SIZE}`);
  }
  let p = DEFAULT_PART_SIZE;
  while (partCount(size, p) > MAX_LARGE_PARTS) p += 1 << 20;
  return p;
}

/** The whole-ciphertext hash: SHA-256 of the concatenated 32-byte part hashes. */
export function ciphertextHashOf(partHashes: string[]): string {
  const h = sha256.create();
  for (const x of partHashes) h.update(fromHex(x));
  return toHex(h.digest());
}

/** The homeserver folder that holds one folder per large share's blob (trailing slash). */
export const BLOBS_DIR = "/pub/cipherpost/blobs/";

/** The homeserver path of part `i` of a blob folder. */
export function partPath(blobId: string, i: number): string {
  return `${blobDir(blobId)}part-${String(i).padStart(5, "0")}`;
}

/** The homeserver folder of a blob (trailing slash). */
export function blobDir(blobId: string): string {
  return `${BLOBS_DIR}${blobId}/`;
}

/** The blob_id of a path inside a blob folder (`/pub/cipherpost/blobs/<hex32>/…`), or null. */
export function blobIdOfPath(path: string): string | null {
  const m = /^\/pub\/cipherpost\/blobs\/([0-9a-f]{32})\//.exec(path);
  return m ? m[1] : null;
}

/** Where a blob's upload stands, as its status file says (§5.3): a hint, never a proof. */
export type BlobStatus = "uploading" | "complete";

/** The homeserver path of a blob's status file. */
export function statusPath(blobId: string): string {
  return `${blobDir(blobId)}status`;
}

/** The status file's bytes: canonical JSON `{"parts":N,"state":…}`. */
export function encodeBlobStatus(parts: number, state: BlobStatus): Uint8Array {
  return canonicalize({ parts, state });
}

/** The state a status file gives for a blob of `parts` parts, or null when it says nothing valid. */
export function parseBlobStatus(bytes: Uint8Array, parts: number): BlobStatus | null {
  try {
    const o = parseJson(fromUtf8(bytes));
    if (o === null || typeof o !== "object" || Array.isArray(o) || o.parts !== parts) return null;
    return o.state === "uploading" || o.state === "complete" ? o.state : null;
  } catch {
    return null;
  }
}

function toJson(p: LargePointer): Record<string, JsonValue> {
  return {
    blob_id: p.blobId,
    ciphertext_hash: p.ciphertextHash,
    compression: p.compression,
    content_identity: p.contentIdentity,
    file_count: p.fileCount,
    homeserver: p.homeserver,
    kind: p.kind,
    name: p.name,
    part_hashes: p.partHashes,
    part_size: p.partSize,
    parts: p.parts,
    size: p.size,
    top_entries: p.topEntries,
    version: p.version,
  };
}

/** Canonical JSON bytes of a pointer (the material bytes), either version. */
export function encodePointer(p: AnyPointer): Uint8Array {
  if (p.version === 2) {
    checkStreamPointer(p);
    return canonicalize(streamToJson(p));
  }
  checkPointer(p);
  return canonicalize(toJson(p));
}

/** Every bound and binding of §5.1; throws a plain Error naming the first failure. */
function checkPointer(p: LargePointer): void {
  if (p.version !== 1) throw new Error("version");
  if (!HEX32.test(p.blobId)) throw new Error("blob_id");
  if (p.compression !== "none") throw new Error("compression");
  if (!AGE_SECRET.test(p.contentIdentity)) throw new Error("content_identity");
  if (p.kind !== "file" && p.kind !== "directory") throw new Error("kind");
  parsePublicKey(p.homeserver);
  if (new TextEncoder().encode(p.name).length > 255) throw new Error("name");
  if (!Number.isSafeInteger(p.size) || p.size < 0 || p.size > MAX_LARGE_SIZE) {
    throw new Error("size");
  }
  if (p.partSize < MIN_PART_SIZE || p.partSize > MAX_PART_SIZE) throw new Error("part_size");
  if (p.parts !== partCount(p.size, p.partSize) || p.parts > MAX_LARGE_PARTS) {
    throw new Error("parts");
  }
  if (p.partHashes.length !== p.parts || !p.partHashes.every((h) => HEX64.test(h))) {
    throw new Error("part_hashes");
  }
  if (!HEX64.test(p.ciphertextHash) || ciphertextHashOf(p.partHashes) !== p.ciphertextHash) {
    throw new Error("ciphertext_hash");
  }
  if (!Number.isSafeInteger(p.fileCount) || p.fileCount < 0) throw new Error("file_count");
  if (p.kind === "file" && (p.fileCount !== 1 || p.topEntries.length !== 0)) {
    throw new Error("file entries");
  }
  if (p.topEntries.length > MAX_TOP_ENTRIES) throw new Error("top_entries");
}

/** Parse and check pointer bytes (version 1, §5.1, or 2, §5.7); any failure → signature error (exit 3). */
export function parsePointer(bytes: Uint8Array): AnyPointer {
  try {
    const o = parseJson(fromUtf8(bytes));
    if (!field.isObject(o)) throw new Error("not an object");
    const strings = (v: JsonValue | undefined): string[] => {
      if (!Array.isArray(v)) throw new Error("not an array");
      return v.map((x) => field.str(x));
    };
    if (o.version === 2) {
      const sp: StreamPointer = {
        blobId: field.str(o.blob_id),
        compression: field.str(o.compression) as "none",
        contentIdentity: field.str(o.content_identity),
        fileCount: field.int(o.file_count),
        homeserver: field.str(o.homeserver),
        kind: field.str(o.kind) as "file",
        name: field.str(o.name),
        partSize: field.int(o.part_size),
        signingKey: field.str(o.signing_key),
        topEntries: strings(o.top_entries),
        version: 2,
      };
      if (o.size !== undefined) sp.size = field.int(o.size);
      const known = new Set([...Object.keys(streamToJson(sp))]);
      for (const k of Object.keys(o)) if (!known.has(k)) throw new Error(`unknown field ${k}`);
      checkStreamPointer(sp);
      return sp;
    }
    const p: LargePointer = {
      blobId: field.str(o.blob_id),
      ciphertextHash: field.str(o.ciphertext_hash),
      compression: field.str(o.compression) as "none",
      contentIdentity: field.str(o.content_identity),
      fileCount: field.int(o.file_count),
      homeserver: field.str(o.homeserver),
      kind: field.str(o.kind) as "file",
      name: field.str(o.name),
      partHashes: strings(o.part_hashes),
      partSize: field.int(o.part_size),
      parts: field.int(o.parts),
      size: field.int(o.size),
      topEntries: strings(o.top_entries),
      version: field.int(o.version) as 1,
    };
    checkPointer(p);
    return p;
  } catch (e) {
    throw signatureError(`large pointer: ${(e as Error).message}`);
  }
}

/** Envelope fields of a pointer share (same canonical form as every Envelope, §2). */
export interface PointerEnvelope {
  burnAfterRead: boolean;
  createdAt: number;
  purpose: string;
  pointer: AnyPointer;
}

/** The canonical Envelope bytes carrying a pointer (protocol_version 2). */
export function encodePointerEnvelope(e: PointerEnvelope): Uint8Array {
  const obj: Record<string, JsonValue> = {
    created_at: e.createdAt,
    material: { bytes: b64encode(encodePointer(e.pointer)), type: LARGE_POINTER_TYPE },
    protocol_version: 2,
    purpose: e.purpose,
  };
  if (e.burnAfterRead) obj.burn_after_read = true;
  return canonicalize(obj);
}

/** True when decrypted Envelope bytes carry a `large_pointer` material (cheap test, no checks). */
export function isPointerEnvelope(bytes: Uint8Array): boolean {
  try {
    const o = parseJson(fromUtf8(bytes));
    return field.isObject(o) && field.isObject(o.material) &&
      o.material.type === LARGE_POINTER_TYPE;
  } catch {
    return false;
  }
}

/** Parse a pointer Envelope; any failure → signature error (exit 3). */
export function parsePointerEnvelope(bytes: Uint8Array): PointerEnvelope & {
  protocolVersion: number;
} {
  let o: JsonValue;
  try {
    o = parseJson(fromUtf8(bytes));
    if (!field.isObject(o) || !field.isObject(o.material)) throw new Error("not an object");
    if (o.material.type !== LARGE_POINTER_TYPE) throw new Error("not a pointer");
    return {
      ...envelopeFields(o),
      pointer: parsePointer(b64decode(field.str(o.material.bytes))),
    };
  } catch (e) {
    if (e instanceof Error && e.name === "CipherpostError") throw e;
    throw signatureError(`pointer envelope: ${(e as Error).message}`);
  }
}

/** SHA-256 hex of pointer Envelope bytes (the receipt's `cleartext_hash`). */
export function envelopeHash(bytes: Uint8Array): string {
  return toHex(sha256(bytes));
}

// ---------------------------------------------------------------------------------------------
// Streaming pointers (§5.7)

/** A streaming pointer (§5.7): published before the payload is sealed. */
export interface StreamPointer {
  blobId: string;
  compression: "none";
  contentIdentity: string;
  fileCount: number;
  homeserver: string;
  kind: "file" | "directory";
  name: string;
  partSize: number;
  /** z-base-32 of the share's part-signing key (Ed25519) */
  signingKey: string;
  /** total plaintext bytes, when the sender knows them */
  size?: number;
  topEntries: string[];
  version: 2;
}

/** A pointer of either version. */
export type AnyPointer = LargePointer | StreamPointer;

/** Most parts a streaming blob may have (31.5 GiB in 1 MiB parts). */
export const MAX_STREAM_PARTS = MAX_LARGE_SIZE / MIN_PART_SIZE;
/** The sender's default part size of a streaming share. */
export const DEFAULT_STREAM_PART_SIZE = 8 << 20;
/** Largest stored closing record. */
export const MAX_CLOSE_BYTES = 4096;
/** Bytes of a part's signature before its age file. */
export const PART_SIG_BYTES = 64;

function streamToJson(p: StreamPointer): Record<string, JsonValue> {
  const o: Record<string, JsonValue> = {
    blob_id: p.blobId,
    compression: p.compression,
    content_identity: p.contentIdentity,
    file_count: p.fileCount,
    homeserver: p.homeserver,
    kind: p.kind,
    name: p.name,
    part_size: p.partSize,
    signing_key: p.signingKey,
    top_entries: p.topEntries,
    version: p.version,
  };
  if (p.size !== undefined) o.size = p.size;
  return o;
}

function checkStreamPointer(p: StreamPointer): void {
  if (p.version !== 2) throw new Error("version");
  if (!HEX32.test(p.blobId)) throw new Error("blob_id");
  if (p.compression !== "none") throw new Error("compression");
  if (!AGE_SECRET.test(p.contentIdentity)) throw new Error("content_identity");
  if (p.kind !== "file" && p.kind !== "directory") throw new Error("kind");
  parsePublicKey(p.homeserver);
  parsePublicKey(p.signingKey);
  if (new TextEncoder().encode(p.name).length > 255) throw new Error("name");
  if (
    p.size !== undefined &&
    (!Number.isSafeInteger(p.size) || p.size < 0 || p.size > MAX_LARGE_SIZE)
  ) throw new Error("size");
  if (p.partSize < MIN_PART_SIZE || p.partSize > MAX_PART_SIZE) throw new Error("part_size");
  if (!Number.isSafeInteger(p.fileCount) || p.fileCount < 0) throw new Error("file_count");
  if (p.kind === "file" && (p.fileCount !== 1 || p.topEntries.length !== 0)) {
    throw new Error("file entries");
  }
  if (p.topEntries.length > MAX_TOP_ENTRIES) throw new Error("top_entries");
}

function u32be(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function u64be(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

/** The bytes a part's signature signs (§5.7): domain, blob id, index, length, SHA-256. */
export function partSigMessage(
  blobId: string,
  index: number,
  ageLength: number,
  ageSha256: Uint8Array,
): Uint8Array {
  return concat(
    utf8("cipherpost-large-part-v2\n"),
    fromHex(blobId),
    u32be(index),
    u64be(ageLength),
    ageSha256,
  );
}

/** The closing record of a streaming blob (§5.7). */
export interface CloseRecord {
  blobId: string;
  ciphertextHash: string;
  parts: number;
  size: number;
}

const CLOSE_DOMAIN = "cipherpost-large-close-v2\n";

/** The canonical JSON of a closing record (what its signature covers, after the domain). */
export function closeJson(c: CloseRecord): Uint8Array {
  return canonicalize({
    blob_id: c.blobId,
    ciphertext_hash: c.ciphertextHash,
    parts: c.parts,
    size: c.size,
    version: 2,
  });
}

/** The bytes a closing record's signature signs. */
export function closeSigMessage(json: Uint8Array): Uint8Array {
  return concat(utf8(CLOSE_DOMAIN), json);
}

/** The homeserver path of a blob's closing record. */
export function closePath(blobId: string): string {
  return `${blobDir(blobId)}close`;
}

/**
 * Check a closing record's fields against its pointer (§5.7): blob id, bounds, and the size
 * against the part count and the pointer's `size`. Throws a signature error (exit 3).
 */
export function parseCloseJson(json: Uint8Array, p: StreamPointer): CloseRecord {
  try {
    const o = parseJson(fromUtf8(json));
    if (!field.isObject(o) || o.version !== 2) throw new Error("version");
    const c: CloseRecord = {
      blobId: field.str(o.blob_id),
      ciphertextHash: field.str(o.ciphertext_hash),
      parts: field.int(o.parts),
      size: field.int(o.size),
    };
    if (c.blobId !== p.blobId) throw new Error("blob_id");
    if (!HEX64.test(c.ciphertextHash)) throw new Error("ciphertext_hash");
    if (c.parts < 1 || c.parts > MAX_STREAM_PARTS) throw new Error("parts");
    if (!Number.isSafeInteger(c.size) || c.size < 0 || c.size > MAX_LARGE_SIZE) {
      throw new Error("size");
    }
    if (partCount(c.size, p.partSize) !== c.parts) throw new Error("parts and size disagree");
    if (p.size !== undefined && p.size !== c.size) throw new Error("size differs from the pointer");
    if (!bytesEqual(closeJson(c), json)) throw new Error("not canonical");
    return c;
  } catch (e) {
    throw signatureError(`closing record: ${(e as Error).message}`);
  }
}
