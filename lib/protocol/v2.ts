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
 * Everything here stops before decryption of the blob: the caller decrypts, checks the
 * Envelope and the recipient, and verifies receipts.
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
import { expiresAt, shareRef as computeShareRef } from "./record.ts";
import { type SignedPacket, signPacket } from "../pkarr/signed_packet.ts";
import type { Transport } from "../pkarr/transport.ts";

/** Bytes of blob per part packet (the last part holds the rest). */
export const PART_SIZE = 900;
/** Most parts a manifest may announce. */
export const MAX_PARTS = 128;
/** Largest blob (ciphertext, PIN salt included) a v2 share may carry. */
export const MAX_BLOB_BYTES = 98_304;

const PROTOCOL_V2 = 2;
const RECORD_TTL = 300;
const CONCURRENCY = 32;
/** Parts fetched at once: all of them (≤ MAX_PARTS); k-rpc's own cap bounds the queries. */
const FETCH_CONCURRENCY = 128;
/** A part read asks relays only if the DHT has not delivered it within this many ms. */
const HEDGE_MS = 400;
/** Rounds of publishing or fetching before the missing packets are reported. */
const ROUNDS = 3;
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

/** Parse manifest JSON and verify the sender's signature; any failure → exit 3. */
function parseAndVerifyManifest(text: string): Manifest {
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
export function recordBytes(p: SignedPacket, label: string): Uint8Array | null {
  const name = `${label}.${encodeZ32(p.publicKey)}`;
  const r = p.records.find((r) => r.name === name && r.data.type === "TXT");
  return r && r.data.type === "TXT" ? concat(...r.data.strings) : null;
}

/** `C` of the share_ref: the blob without the 32-byte PIN salt. */
function shareRefOf(blob: Uint8Array, pinRequired: boolean, createdAt: number): string {
  return computeShareRef(pinRequired ? blob.subarray(32) : blob, createdAt);
}

/** The pause before round `round` (> 1): lets a loaded network or relay catch up. */
function pause(round: number): Promise<void> {
  return new Promise((r) => setTimeout(r, 250 * (round - 1)));
}

/** Run `fn` over `items` with at most `limit` calls in flight. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
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
  const packets = [signPacket(keys.manifest.seed, [binaryTxt("_cpm", sealed)], ts)];
  for (let i = 0; i < parts; i++) {
    const bytes = blob.subarray(i * PART_SIZE, Math.min((i + 1) * PART_SIZE, blob.length));
    packets.push(signPacket(keys.part(i).seed, [binaryTxt("_cpp", bytes)], ts));
  }
  return { locator, manifest, packets };
}

/**
 * Publish packets with at most `concurrency` in flight, in up to 3 rounds (each retrying the
 * packets that no node or relay stored). Every packet must be stored by at least one DHT node or relay. A BEP44 302 (equal or newer seq) counts as
 * stored when the network is found to hold this exact packet (then `stored` is a lower bound).
 *
 * @returns per packet, how many nodes and relays stored it
 * @throws CipherpostError("network") naming how many of how many packets failed.
 */
export async function publishPackets(
  t: Transport,
  packets: SignedPacket[],
  concurrency = CONCURRENCY,
): Promise<{ stored: number[] }> {
  const stored = packets.map(() => 0);
  const publishOne = async (i: number) => {
    const p = packets[i];
    try {
      const r = await t.publish(p, undefined, { relays: "fallback" });
      stored[i] = r.dhtStored + r.relaysStored;
    } catch {
      // failed this round (Transport.publish already counts "our own packet got there first"
      // as stored); retried in the next round
    }
  };
  let failed = packets.map((_, i) => i);
  for (let round = 1; round <= ROUNDS && failed.length > 0; round++) {
    if (round > 1) await pause(round);
    await pool(failed, Math.max(1, concurrency), publishOne);
    failed = failed.filter((i) => stored[i] === 0);
  }
  if (failed.length > 0) {
    throw new CipherpostError(
      "network",
      `network error: publish failed for ${failed.length} of ${packets.length} packets`,
      "check connectivity and send again",
    );
  }
  return { stored };
}

/** Steps 1–2 of §3.5: the verified manifest of `locator`. */
async function fetchManifest(
  t: Transport,
  keys: V2Keys,
  expectedSender: string,
): Promise<Manifest> {
  const resolved = await t.resolve(
    keys.manifest.publicKey,
    (p) => recordBytes(p, "_cpm") !== null,
  );
  const sealed = resolved && recordBytes(resolved.packet, "_cpm");
  if (!sealed) {
    throw new CipherpostError(
      "not_found",
      "share not found: no manifest on the DHT or the relays",
      "it may have expired, or not be published yet; ask the sender to republish",
    );
  }
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

/** Step 4 of §3.5: every part, in rounds; missing → network, wrong → signature. */
async function fetchParts(t: Transport, keys: V2Keys, m: Manifest): Promise<Uint8Array[]> {
  const expectedLen = (i: number) => Math.min(m.partSize, m.ciphertextLen - i * m.partSize);
  const got: (Uint8Array | null)[] = Array.from({ length: m.parts }, () => null);
  let wrong = false;
  for (let round = 1; round <= ROUNDS; round++) {
    const missing = got.flatMap((b, i) => (b ? [] : [i]));
    if (missing.length === 0) break;
    if (round > 1) await pause(round);
    await pool(missing, FETCH_CONCURRENCY, async (i) => {
      let resolved;
      try {
        resolved = await t.resolve(
          keys.part(i).publicKey,
          (p) => recordBytes(p, "_cpp")?.length === expectedLen(i),
          { hedgeMs: HEDGE_MS },
        );
      } catch {
        return; // unreachable this round: still missing
      }
      if (!resolved) return;
      const bytes = recordBytes(resolved.packet, "_cpp");
      if (bytes?.length === expectedLen(i)) got[i] = bytes;
      else wrong = true;
    });
    if (wrong) throw signatureError("part length");
  }
  const missing = got.flatMap((b, i) => (b ? [] : [i]));
  if (missing.length > 0) {
    const shown = missing.length > 10 ? [...missing.slice(0, 10), "…"] : missing;
    throw new CipherpostError(
      "network",
      `share incomplete: ${missing.length} of ${m.parts} parts missing (parts ${shown.join(", ")})`,
      "try again later, or ask the sender to run `cipherpost republish`",
    );
  }
  return got as Uint8Array[];
}

/**
 * Steps 1–5 of §3.5: resolve, unseal and verify the manifest (sender = `expectedSender`,
 * manifest key, version, part arithmetic, length limit), check the TTL at `nowSec`, fetch every
 * part, and check the whole-blob hash and `share_ref`. The recipient check is the caller's.
 * Nothing is decrypted.
 *
 * @param expectedSender the z32 sender key from the share URI
 * @throws CipherpostError "not_found" (none or revoked), "signature" (any check), "expired",
 *   "network" (parts missing after 3 rounds, or no network at all).
 */
export async function fetchV2Share(
  t: Transport,
  expectedSender: string,
  locator: Uint8Array,
  nowSec: number = Math.floor(Date.now() / 1000),
): Promise<{ manifest: Manifest; blob: Uint8Array }> {
  const keys = deriveV2Keys(locator);
  const manifest = await fetchManifest(t, keys, expectedSender);
  if (BigInt(nowSec) >= expiresAt(manifest.createdAt, manifest.ttlSeconds)) {
    throw new CipherpostError("expired", "share expired");
  }
  const blob = concat(...await fetchParts(t, keys, manifest));
  if (toHex(sha256(blob)) !== manifest.ciphertextSha256) throw signatureError("blob hash");
  if (shareRefOf(blob, manifest.pinRequired, manifest.createdAt) !== manifest.shareRef) {
    throw signatureError("share_ref");
  }
  return { manifest, blob };
}

/** Publish `record` as the only record under `kp`, newer than whatever is there. */
async function replaceSlot(t: Transport, kp: Keypair, record: DnsRecord): Promise<void> {
  await t.update(kp.seed, kp.publicKey, () => [record]);
}

/** Revoke a share: publish a newer manifest packet whose `_cpm` is `revoked`. */
export async function revokeV2(t: Transport, locator: Uint8Array): Promise<void> {
  const keys = deriveV2Keys(locator);
  await replaceSlot(t, keys.manifest, binaryTxt("_cpm", utf8(REVOKED)));
}

/** Bytes of sealed receipt per receipt packet (leaves room for the `_cprn` count record). */
const RECEIPT_CHUNK = 860;
/** At most this many receipt packets (a purpose of several KiB still fits). */
const MAX_RECEIPT_CHUNKS = 8;

/** The key of receipt packet `i` (0 = `R`). */
function receiptKey(locator: Uint8Array, keys: V2Keys, i: number): Keypair {
  return i === 0 ? keys.receipt : keypairFromSeed(hkdf32(NO_SALT, locator, `${INFO.receipt}/${i}`));
}

/**
 * Publish the receipt JSON, sealed to the share's seal key, under `R` (a newer packet replaces
 * an older one). A sealed receipt larger than one packet (a long purpose) continues under
 * `R_i = HKDF(L, "cipherpost/v2/receipt-key/<i>")`, and `R`'s packet says how many with a TXT
 * `_cprn`; the continuation packets are published first.
 */
export async function publishV2Receipt(
  t: Transport,
  locator: Uint8Array,
  receiptJson: string,
): Promise<void> {
  const keys = deriveV2Keys(locator);
  const sealed = await ageEncrypt(utf8(receiptJson), keys.sealRecipient);
  const n = Math.ceil(sealed.length / RECEIPT_CHUNK);
  if (n > MAX_RECEIPT_CHUNKS) {
    throw new CipherpostError("too_large", `receipt too large: ${sealed.length} bytes sealed`);
  }
  const chunk = (i: number) => sealed.subarray(i * RECEIPT_CHUNK, (i + 1) * RECEIPT_CHUNK);
  await Promise.all(
    Array.from({ length: n - 1 }, (_, k) => k + 1).map((i) =>
      replaceSlot(t, receiptKey(locator, keys, i), binaryTxt("_cpr", chunk(i)))
    ),
  );
  const first = [binaryTxt("_cpr", chunk(0))];
  if (n > 1) first.push(binaryTxt("_cprn", utf8(String(n))));
  await t.update(keys.receipt.seed, keys.receipt.publicKey, () => first);
}

/**
 * The unsealed receipt JSON text under `R` (and its continuation packets), or null when there
 * is none. The receipt itself is not verified here (use `parseAndVerifyReceipt`).
 *
 * @throws signature error (exit 3) when a receipt packet is there but does not unseal.
 */
export async function fetchV2Receipt(t: Transport, locator: Uint8Array): Promise<string | null> {
  const keys = deriveV2Keys(locator);
  const resolved = await t.resolve(keys.receipt.publicKey, (p) => recordBytes(p, "_cpr") !== null);
  const head = resolved && recordBytes(resolved.packet, "_cpr");
  if (!head) return null;
  const countBytes = recordBytes(resolved.packet, "_cprn");
  const n = countBytes ? Number(new TextDecoder().decode(countBytes)) : 1;
  if (!Number.isInteger(n) || n < 1 || n > MAX_RECEIPT_CHUNKS) {
    throw signatureError("receipt chunk count");
  }
  const rest = await Promise.all(
    Array.from({ length: n - 1 }, (_, k) => k + 1).map(async (i) => {
      const kp = receiptKey(locator, keys, i);
      const r = await t.resolve(kp.publicKey, (p) => recordBytes(p, "_cpr") !== null);
      const b = r && recordBytes(r.packet, "_cpr");
      if (!b) throw new CipherpostError("network", `receipt incomplete: part ${i} of ${n} missing`);
      return b;
    }),
  );
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(
      await ageDecrypt(concat(head, ...rest), keys.sealIdentity),
    );
  } catch {
    throw signatureError("receipt unseal");
  }
}
