/**
 * Minimal OpenPGP packet walker for the `pgp_key` material (private to `material.ts`).
 *
 * Reads old- and new-format packet headers, parses the public part of key packets (tags 5, 6,
 * 7, 14; versions 4 and 6) far enough for the fingerprint, algorithm label and creation time,
 * and writes RFC 4880 ASCII armor. No cryptography beyond hashing for fingerprints.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { sha1 } from "@noble/hashes/legacy.js";
import { base64, hex } from "@scure/base";
import { CipherpostError } from "../util/errors.ts";

/** One top-level packet. */
export interface PgpPacket {
  tag: number;
  body: Uint8Array;
}

/** Result of walking a packet stream. */
export interface PgpWalk {
  packets: PgpPacket[];
  /** bytes covered by complete packets; less than the input when the stream ends mid-packet */
  consumed: number;
}

/** Parsed public part of a key packet. */
export interface PgpKeyInfo {
  version: number;
  created: Date;
  algorithm: number;
  /** display label, e.g. `EdDSA-Legacy`, `RSA-3072`, `ECDH-Curve25519`, `<algo-99>` */
  label: string;
  /** uppercase hex fingerprint (40 chars for v4, 64 for v6) */
  fingerprint: string;
}

/** Key packet tags. */
export const TAG = { secretKey: 5, publicKey: 6, secretSubkey: 7, userId: 13, publicSubkey: 14 };

/** The single curated failure of this module. */
export function pgpMalformed(): CipherpostError {
  return new CipherpostError(
    "invalid_material",
    "invalid material: variant=pgp_key, reason=malformed PGP packet stream",
  );
}

/**
 * Walks top-level packets. A packet whose header or body runs past the end stops the walk
 * (reported through `consumed`); a byte that is not a packet header, a reserved tag, an
 * indeterminate or partial length, or a key packet that does not parse throws `pgpMalformed()`.
 */
export function walkPackets(bytes: Uint8Array): PgpWalk {
  const packets: PgpPacket[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const h = bytes[pos];
    if ((h & 0x80) === 0) throw pgpMalformed();
    let tag: number;
    let len: number;
    let p = pos + 1;
    if (h & 0x40) {
      tag = h & 0x3f;
      if (p >= bytes.length) break;
      const o1 = bytes[p];
      if (o1 < 192) {
        len = o1;
        p += 1;
      } else if (o1 < 224) {
        if (p + 1 >= bytes.length) break;
        len = ((o1 - 192) << 8) + bytes[p + 1] + 192;
        p += 2;
      } else if (o1 === 255) {
        if (p + 4 >= bytes.length) break;
        len = readU32(bytes, p + 1);
        p += 5;
      } else {
        throw pgpMalformed(); // partial body lengths never occur in key material
      }
    } else {
      tag = (h >> 2) & 0x0f;
      const lt = h & 0x03;
      if (lt === 3) throw pgpMalformed();
      const n = 1 << lt;
      if (p + n > bytes.length) break;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + bytes[p + i];
      p += n;
    }
    if (tag === 0) throw pgpMalformed();
    if (p + len > bytes.length) break;
    const body = bytes.subarray(p, p + len);
    if (
      tag === TAG.publicKey || tag === TAG.secretKey || tag === TAG.publicSubkey ||
      tag === TAG.secretSubkey
    ) {
      parseKeyPacket(tag, body);
    }
    packets.push({ tag, body });
    pos = p + len;
  }
  return { packets, consumed: pos };
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) >>> 0) + (b[at + 1] << 16) + (b[at + 2] << 8) + b[at + 3];
}

/** Byte-level cursor over a key body; every overrun throws `pgpMalformed()`. */
class Reader {
  pos = 0;
  constructor(readonly b: Uint8Array) {}
  take(n: number): Uint8Array {
    if (this.pos + n > this.b.length) throw pgpMalformed();
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  u8(): number {
    return this.take(1)[0];
  }
  /** An MPI; returns its magnitude bytes with leading zero bytes removed. */
  mpi(): Uint8Array {
    const hdr = this.take(2);
    const bits = (hdr[0] << 8) | hdr[1];
    const v = this.take((bits + 7) >> 3);
    let i = 0;
    while (i < v.length && v[i] === 0) i++;
    return v.subarray(i);
  }
  /** A length-prefixed curve OID (RFC 9580 §9.2). */
  oid(): Uint8Array {
    const n = this.u8();
    if (n === 0 || n === 0xff) throw pgpMalformed();
    return this.take(n);
  }
}

const ALGO_NAMES: Record<number, string> = {
  16: "Elgamal",
  17: "DSA",
  20: "Elgamal",
  22: "EdDSA-Legacy",
  25: "X25519",
  26: "X448",
  27: "Ed25519",
  28: "Ed448",
};

const CURVE_NAMES: Record<string, string> = {
  "2a8648ce3d030107": "NIST P-256",
  "2b81040022": "NIST P-384",
  "2b81040023": "NIST P-521",
  "2b8104000a": "secp256k1",
  "2b2403030208010107": "brainpoolP256r1",
  "2b240303020801010b": "brainpoolP384r1",
  "2b240303020801010d": "brainpoolP512r1",
  "2b060104019755010501": "Curve25519",
  "2b06010401da470f01": "Ed25519",
};

const ECDSA_CURVES: Record<string, string> = {
  "2a8648ce3d030107": "P-256",
  "2b81040022": "P-384",
  "2b81040023": "P-521",
  "2b8104000a": "secp256k1",
};

function oidDotted(oid: Uint8Array): string {
  const parts: number[] = [Math.floor(oid[0] / 40), oid[0] % 40];
  let v = 0;
  for (let i = 1; i < oid.length; i++) {
    v = v * 128 + (oid[i] & 0x7f);
    if ((oid[i] & 0x80) === 0) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join(".");
}

function bitLength(mag: Uint8Array): number {
  if (mag.length === 0) return 0;
  return (mag.length - 1) * 8 + (32 - Math.clz32(mag[0]));
}

/** Reads the algorithm-specific public key material and returns the display label. */
function readPublicMaterial(r: Reader, algo: number, end: number | null): string {
  switch (algo) {
    case 1:
    case 2:
    case 3: {
      const n = r.mpi();
      r.mpi();
      return `RSA-${bitLength(n)}`;
    }
    case 16:
    case 20:
      for (let i = 0; i < 3; i++) r.mpi();
      return ALGO_NAMES[algo];
    case 17:
      for (let i = 0; i < 4; i++) r.mpi();
      return ALGO_NAMES[algo];
    case 19: {
      const oid = hex.encode(r.oid());
      r.mpi();
      return ECDSA_CURVES[oid]
        ? `ECDSA ${ECDSA_CURVES[oid]}`
        : `ECDSA <${oidDotted(hex.decode(oid))}>`;
    }
    case 18: {
      const oid = r.oid();
      r.mpi();
      const kdf = r.u8();
      if (kdf === 0 || kdf === 0xff) throw pgpMalformed();
      r.take(kdf);
      return `ECDH-${CURVE_NAMES[hex.encode(oid)] ?? oidDotted(oid)}`;
    }
    case 22:
      r.oid();
      r.mpi();
      return ALGO_NAMES[algo];
    case 25:
      r.take(32);
      return ALGO_NAMES[algo];
    case 26:
      r.take(56);
      return ALGO_NAMES[algo];
    case 27:
      r.take(32);
      return ALGO_NAMES[algo];
    case 28:
      r.take(57);
      return ALGO_NAMES[algo];
    default:
      // Unknown algorithm: only a public packet (whose body is all public) can be delimited.
      if (end === null) throw pgpMalformed();
      r.take(end - r.pos);
      return `<algo-${algo}>`;
  }
}

/**
 * Parses the public part of a key packet (tag 5, 6, 7 or 14) and computes its fingerprint:
 * v4 = SHA-1(0x99 ‖ u16 len ‖ public part), v6 = SHA-256(0x9b ‖ u32 len ‖ public part).
 */
export function parseKeyPacket(tag: number, body: Uint8Array): PgpKeyInfo {
  const r = new Reader(body);
  const version = r.u8();
  if (version !== 4 && version !== 6) throw pgpMalformed();
  const t = r.take(4);
  const created = new Date(readU32(t, 0) * 1000);
  const algorithm = r.u8();
  const isPublicPacket = tag === TAG.publicKey || tag === TAG.publicSubkey;
  let label: string;
  if (version === 6) {
    const len = readU32(r.take(4), 0);
    const end = r.pos + len;
    if (end > body.length) throw pgpMalformed();
    label = readPublicMaterial(r, algorithm, end);
    if (r.pos !== end) throw pgpMalformed();
  } else {
    label = readPublicMaterial(r, algorithm, isPublicPacket ? body.length : null);
  }
  if (isPublicPacket && r.pos !== body.length) throw pgpMalformed();
  const pub = body.subarray(0, r.pos);
  let fp: Uint8Array;
  if (version === 4) {
    if (pub.length > 0xffff) throw pgpMalformed();
    fp = sha1(concat(new Uint8Array([0x99, pub.length >> 8, pub.length & 0xff]), pub));
  } else {
    const l = pub.length;
    fp = sha256(
      concat(new Uint8Array([0x9b, l >>> 24, (l >> 16) & 0xff, (l >> 8) & 0xff, l & 0xff]), pub),
    );
  }
  return { version, created, algorithm, label, fingerprint: hex.encode(fp).toUpperCase() };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** CRC-24 of RFC 4880 §6.1 (a checksum, not cryptography). */
export function crc24(data: Uint8Array): number {
  let crc = 0xb704ce;
  for (const byte of data) {
    crc ^= byte << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

/**
 * ASCII armor for a binary key stream: `PUBLIC KEY BLOCK` or `PRIVATE KEY BLOCK` by the given
 * primary kind, no headers, 64-char base64 lines, `=` CRC-24 line, LF endings.
 */
export function pgpArmor(bytes: Uint8Array, secret: boolean): string {
  const kind = secret ? "PRIVATE KEY BLOCK" : "PUBLIC KEY BLOCK";
  const b64 = base64.encode(bytes);
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  const c = crc24(bytes);
  const crc = base64.encode(new Uint8Array([c >> 16, (c >> 8) & 0xff, c & 0xff]));
  return `-----BEGIN PGP ${kind}-----\n\n${lines.join("\n")}\n=${crc}\n-----END PGP ${kind}-----\n`;
}

/**
 * The binary packet stream inside ASCII armor (RFC 4880 §6.2): the first `-----BEGIN PGP …`
 * block, armor headers skipped, base64 body, and the `=` CRC-24 line checked when present.
 * Returns null when the text is not armored; throws `pgpMalformed` on a damaged block.
 */
export function pgpDearmor(input: Uint8Array): Uint8Array | null {
  const text = new TextDecoder("latin1").decode(input).replace(/\r\n/g, "\n");
  const begin = /^\s*-----BEGIN PGP ([A-Z ]+)-----\n/.exec(text);
  if (!begin) return null;
  const endMarker = `-----END PGP ${begin[1]}-----`;
  const end = text.indexOf(endMarker, begin[0].length);
  if (end < 0 || text.slice(end + endMarker.length).trim() !== "") throw pgpMalformed();
  const lines = text.slice(begin[0].length, end).split("\n");
  // armor headers ("Key: value") end at the first empty line, when there are any
  let i = 0;
  if (lines.some((l) => l.trim() === "") && /^[A-Za-z-]+: /.test(lines[0] ?? "")) {
    while (i < lines.length && lines[i].trim() !== "") i++;
  }
  let body = "";
  let crc: string | null = null;
  for (const raw of lines.slice(i)) {
    const l = raw.trim();
    if (l === "") continue;
    if (l.startsWith("=") && l.length === 5) crc = l.slice(1);
    else body += l;
  }
  let bytes: Uint8Array;
  try {
    bytes = base64.decode(body);
  } catch {
    throw pgpMalformed();
  }
  if (crc !== null) {
    let want: Uint8Array;
    try {
      want = base64.decode(crc);
    } catch {
      throw pgpMalformed();
    }
    const c = crc24(bytes);
    if (want[0] !== c >> 16 || want[1] !== ((c >> 8) & 0xff) || want[2] !== (c & 0xff)) {
      throw pgpMalformed();
    }
  }
  return bytes;
}
