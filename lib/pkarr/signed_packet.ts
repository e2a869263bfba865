/**
 * PKARR SignedPacket (Rust pkarr 7): signing, verification, the canonical byte form
 * `pk | sig | ts u64 BE | v`, ordering, TTL and name lookup. (The relay payload `sig | ts | v` is
 * in relay_payload.ts.)
 *
 * @module
 */

import { ed25519 } from "@noble/curves/ed25519.js";
import { CipherpostError, signatureError } from "../util/errors.ts";
import { decodeDnsPacket, type DnsRecord, encodeDnsPacket, normalizeName } from "./dns.ts";
import { compareBytes, concat } from "../util/encoding.ts";
import { encodeZ32, isValidPoint } from "./public_key.ts";
import { verifyPacketSignature } from "../crypto/keys.ts";

/** A signed PKARR packet. `timestamp` is µs since the epoch and equals the BEP44 `seq`. */
export interface SignedPacket {
  /** The 32-byte Ed25519 key that signed it: whose packet it is. */
  publicKey: Uint8Array;
  /** The 64-byte Ed25519 signature over the BEP44 signable of `timestamp` and `v`. */
  signature: Uint8Array;
  /** Microseconds since the epoch; the more recent packet of a key wins. */
  timestamp: number;
  /** the encoded DNS packet (BEP44 `v`) */
  v: Uint8Array;
  /** the answers of `v` */
  records: DnsRecord[];
}

/** Largest `v` (DNS packet) in bytes. */
export const MAX_V_BYTES = 1000;
/** Smallest / largest canonical SignedPacket (`pk|sig|ts|v`). */
export const SIGNED_PACKET_MIN_BYTES = 104;
export const SIGNED_PACKET_MAX_BYTES = 1104;
/** pkarr's default TTL clamp. */
export const DEFAULT_MINIMUM_TTL = 300;
export const DEFAULT_MAXIMUM_TTL = 86400;

const enc = new TextEncoder();

function checkTimestamp(ts: number): void {
  if (!Number.isSafeInteger(ts) || ts < 0) {
    throw new CipherpostError("invalid_material", "invalid packet timestamp");
  }
}

/** The BEP44 signable: `3:seqi<seq>e1:v<len>:` followed by `v` (no salt). */
export function signable(seq: number, v: Uint8Array): Uint8Array {
  checkTimestamp(seq);
  const prefix = enc.encode(`3:seqi${BigInt(seq)}e1:v${v.length}:`);
  const out = new Uint8Array(prefix.length + v.length);
  out.set(prefix);
  out.set(v, prefix.length);
  return out;
}

/**
 * Builds and signs a packet like `SignedPacket::new`: every owner name is normalized against the
 * signer's z-base-32 key, the DNS packet is name-compressed, and `v` may be at most 1000 bytes.
 *
 * @throws CipherpostError("too_large") when the DNS packet exceeds 1000 bytes.
 */
export function signPacket(
  seed: Uint8Array,
  records: DnsRecord[],
  timestampUs: number,
): SignedPacket {
  checkTimestamp(timestampUs);
  const publicKey = ed25519.getPublicKey(seed);
  const origin = encodeZ32(publicKey);
  const normalized = records.map((r): DnsRecord => ({
    name: normalizeName(origin, r.name.split(".").filter((l) => l !== "").join(".")),
    ttl: r.ttl,
    class: (r.class ?? 1) & 0x7fff, // the mDNS cache-flush bit is dropped
    data: r.data,
  }));
  const v = encodeDnsPacket(normalized);
  if (v.length > MAX_V_BYTES) {
    throw new CipherpostError(
      "too_large",
      `packet too large: ${v.length} bytes of DNS, limit is ${MAX_V_BYTES}`,
    );
  }
  const signature = ed25519.sign(signable(timestampUs, v), seed);
  return { publicKey, signature, timestamp: timestampUs, v, records: decodeDnsPacket(v) };
}

/**
 * Checks a received packet: key, sizes, the Ed25519 signature over the signable (ZIP-215 rules,
 * which accept every signature ed25519-dalek's `verify` accepts), then parses the DNS packet.
 *
 * `signatureChecked` skips the signature for items whose signature the DHT client or relay
 * client has just verified (each packet is checked once).
 *
 * @throws the signature-lane error (`signatureError`) on any failure.
 */
export function verifyPacket(
  publicKey: Uint8Array,
  signature: Uint8Array,
  timestamp: number,
  v: Uint8Array,
  signatureChecked = false,
): SignedPacket {
  if (v.length > MAX_V_BYTES) throw signatureError("packet too large");
  if (!isValidPoint(publicKey)) throw signatureError("invalid public key");
  if (signature.length !== 64) throw signatureError("signature is not 64 bytes");
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw signatureError("timestamp out of range");
  }
  if (!signatureChecked && !verifyPacketSignature(publicKey, signable(timestamp, v), signature)) {
    throw signatureError("bad signature");
  }
  let records: DnsRecord[];
  try {
    records = decodeDnsPacket(v);
  } catch (e) {
    throw signatureError(e instanceof Error ? e.message : "malformed DNS packet");
  }
  return {
    publicKey: publicKey.slice(),
    signature: signature.slice(),
    timestamp,
    v: v.slice(),
    records,
  };
}

function u64be(ts: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(ts));
  return b;
}

/** Canonical bytes (`as_bytes`): `pk(32) | sig(64) | ts(8, u64 BE) | v`. */
export function packetToBytes(p: SignedPacket): Uint8Array {
  return concat(p.publicKey, p.signature, u64be(p.timestamp), p.v);
}

/**
 * Parses and verifies canonical bytes (`from_bytes`): 104..1104 bytes, valid key, signature, DNS.
 *
 * @throws the signature-lane error (`signatureError`) on any failure.
 */
export function packetFromBytes(b: Uint8Array): SignedPacket {
  if (b.length < SIGNED_PACKET_MIN_BYTES) throw signatureError("signed packet too short");
  if (b.length > SIGNED_PACKET_MAX_BYTES) throw signatureError("signed packet too large");
  const ts = new DataView(b.buffer, b.byteOffset + 96, 8).getBigUint64(0);
  if (ts > BigInt(Number.MAX_SAFE_INTEGER)) throw signatureError("timestamp out of range");
  return verifyPacket(b.subarray(0, 32), b.subarray(32, 96), Number(ts), b.subarray(104));
}

/**
 * `more_recent_than`: the larger timestamp wins; on equal timestamps the byte-wise larger `v`
 * wins. Identical packets are not more recent than each other.
 */
export function moreRecentThan(
  a: Pick<SignedPacket, "timestamp" | "v">,
  b: Pick<SignedPacket, "timestamp" | "v">,
): boolean {
  if (a.timestamp !== b.timestamp) return a.timestamp > b.timestamp;
  return compareBytes(a.v, b.v) > 0;
}

/** The packet TTL: the smallest record TTL clamped to `[min, max]`; `min` with no records. */
export function packetTtl(
  p: Pick<SignedPacket, "records">,
  min: number = DEFAULT_MINIMUM_TTL,
  max: number = DEFAULT_MAXIMUM_TTL,
): number {
  if (p.records.length === 0) return min;
  const lowest = Math.min(...p.records.map((r) => r.ttl));
  return Math.min(Math.max(lowest, min), max);
}

/**
 * The records named `name` (`resource_records`): `name` is normalized against the packet's key
 * (`@`/`.` = apex). A leading `*` matches exactly one extra label. Comparison is case-sensitive.
 */
export function recordsNamed(
  p: Pick<SignedPacket, "publicKey" | "records">,
  name: string,
): DnsRecord[] {
  const q = normalizeName(encodeZ32(p.publicKey), name);
  if (q.startsWith("*")) {
    const suffix = q.slice(1);
    return p.records.filter((r) =>
      r.name.endsWith(suffix) && !r.name.slice(0, r.name.length - suffix.length).includes(".")
    );
  }
  return p.records.filter((r) => r.name === q);
}
