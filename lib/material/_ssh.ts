/**
 * OpenSSH v1 private-key container (`openssh-key-v1\0`) for the `ssh_key` material (private to
 * `material.ts`): ingest with canonical re-wrapping, and the facts the acceptance banner shows.
 *
 * Only the container structure is parsed; nothing is decrypted and no key is used.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { base64, base64nopad } from "@scure/base";
import { CipherpostError } from "../util/errors.ts";
import { bytesEqual, concat } from "../util/encoding.ts";

const BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END = "-----END OPENSSH PRIVATE KEY-----";
const MAGIC = new TextEncoder().encode("openssh-key-v1\0");
/** Line width of the canonical re-encoding. */
const LINE = 70;

/** Facts about an OpenSSH v1 key shown on the acceptance screen. */
export interface SshKeyInfo {
  /** wire algorithm name, e.g. `ssh-ed25519`, `ssh-rsa` */
  keyType: string;
  /** key size in bits, when known */
  bits: number | null;
  /** `SHA256:` + unpadded standard base64 of SHA-256(public-key blob) */
  fingerprint: string;
  /** comment from the unencrypted private section; `""` if none or encrypted */
  comment: string;
}

function malformed(): CipherpostError {
  return new CipherpostError(
    "invalid_material",
    "invalid material: variant=ssh_key, reason=malformed OpenSSH v1 blob",
  );
}

function isAsciiWs(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0c || b === 0x0d;
}

/**
 * §8.1 ingest for `ssh_key`: OpenSSH v1 PEM only (anything else is "format not supported"),
 * whitespace only after the first END marker, structurally valid container; returns the
 * canonical text (70-char base64 lines, LF, trailing newline) as UTF-8 bytes.
 */
export function sshCanonicalFromInput(input: Uint8Array): Uint8Array {
  const text = new TextDecoder("latin1").decode(input);
  let start = 0;
  while (start < input.length && isAsciiWs(input[start])) start++;
  if (!text.startsWith(BEGIN, start)) {
    throw new CipherpostError(
      "invalid_material",
      "SSH key format not supported — convert to OpenSSH v1",
      "convert with: ssh-keygen -p -o -f <path>",
    );
  }
  const endAt = text.indexOf(END, start);
  if (endAt !== -1) {
    for (let i = endAt + END.length; i < input.length; i++) {
      if (!isAsciiWs(input[i])) {
        throw new CipherpostError(
          "invalid_material",
          "invalid material: variant=ssh_key, reason=trailing bytes after OpenSSH v1 blob",
        );
      }
    }
  }
  const blob = decodePem(text.slice(start, endAt === -1 ? text.length : endAt + END.length));
  parseContainer(blob);
  return new TextEncoder().encode(encodePem(blob));
}

/** Parses stored canonical bytes (or any accepted OpenSSH v1 PEM) into banner facts. */
export function parseOpenSsh(bytes: Uint8Array): SshKeyInfo {
  const text = new TextDecoder("latin1").decode(bytes).trim();
  return parseContainer(decodePem(text));
}

/** BEGIN line, base64 body (any line width, LF or CRLF), END line → container bytes. */
function decodePem(pem: string): Uint8Array {
  if (!pem.startsWith(BEGIN) || !pem.endsWith(END)) throw malformed();
  const inner = pem.slice(BEGIN.length, pem.length - END.length);
  if (!/^\r?\n/.test(inner) || !/\r?\n$/.test(inner)) throw malformed();
  const b64 = inner.replace(/\r?\n/g, "");
  try {
    return base64.decode(b64);
  } catch {
    throw malformed();
  }
}

function encodePem(blob: Uint8Array): string {
  const b64 = base64.encode(blob);
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += LINE) lines.push(b64.slice(i, i + LINE));
  return `${BEGIN}\n${lines.join("\n")}\n${END}\n`;
}

/** SSH wire-format cursor; every overrun throws `malformed()`. */
class Reader {
  pos = 0;
  constructor(readonly b: Uint8Array) {}
  get done(): boolean {
    return this.pos === this.b.length;
  }
  take(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.b.length) throw malformed();
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  u32(): number {
    const x = this.take(4);
    return ((x[0] << 24) >>> 0) + (x[1] << 16) + (x[2] << 8) + x[3];
  }
  bytes(): Uint8Array {
    return this.take(this.u32());
  }
  str(): string {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(this.bytes());
    } catch {
      throw malformed();
    }
  }
}

type Field = "s" | "b"; // s = length-prefixed string/mpint, b = one byte

/** Public-blob fields after the type name, and private-section fields after the type name. */
interface KeyShape {
  pub: number;
  priv: Field[];
  /** indices into the private fields that re-form the public blob, in public order */
  pubFromPriv: number[];
}

const SHAPES: Record<string, KeyShape> = {
  "ssh-ed25519": { pub: 1, priv: ["s", "s"], pubFromPriv: [0] },
  "ssh-rsa": { pub: 2, priv: ["s", "s", "s", "s", "s", "s"], pubFromPriv: [1, 0] },
  "ssh-dss": { pub: 4, priv: ["s", "s", "s", "s", "s"], pubFromPriv: [0, 1, 2, 3] },
  "ecdsa-sha2-nistp256": { pub: 2, priv: ["s", "s", "s"], pubFromPriv: [0, 1] },
  "ecdsa-sha2-nistp384": { pub: 2, priv: ["s", "s", "s"], pubFromPriv: [0, 1] },
  "ecdsa-sha2-nistp521": { pub: 2, priv: ["s", "s", "s"], pubFromPriv: [0, 1] },
  "sk-ssh-ed25519@openssh.com": {
    pub: 2,
    priv: ["s", "s", "b", "s", "s"],
    pubFromPriv: [0, 1],
  },
  "sk-ecdsa-sha2-nistp256@openssh.com": {
    pub: 3,
    priv: ["s", "s", "s", "b", "s", "s"],
    pubFromPriv: [0, 1, 2],
  },
};

const CIPHERS: Record<string, { block: number; tag: number }> = {
  "aes128-ctr": { block: 16, tag: 0 },
  "aes192-ctr": { block: 16, tag: 0 },
  "aes256-ctr": { block: 16, tag: 0 },
  "aes128-cbc": { block: 16, tag: 0 },
  "aes192-cbc": { block: 16, tag: 0 },
  "aes256-cbc": { block: 16, tag: 0 },
  "aes128-gcm@openssh.com": { block: 16, tag: 16 },
  "aes256-gcm@openssh.com": { block: 16, tag: 16 },
  "chacha20-poly1305@openssh.com": { block: 8, tag: 16 },
};

/** Splits a byte string into its raw (length-prefixed) field encodings. */
function readFields(r: Reader, fields: Field[]): Uint8Array[] {
  return fields.map((f) => {
    const at = r.pos;
    if (f === "b") r.take(1);
    else r.bytes();
    return r.b.subarray(at, r.pos);
  });
}

/** Size in bits of an mpint field (raw, with its length prefix): bytes × 8 after one 0x00. */
function mpintBits(raw: Uint8Array): number {
  const v = raw.subarray(4);
  return (v.length > 0 && v[0] === 0 ? v.length - 1 : v.length) * 8;
}

function keyBits(type: string, pubFields: Uint8Array[]): number | null {
  switch (type) {
    case "ssh-ed25519":
    case "sk-ssh-ed25519@openssh.com":
    case "ecdsa-sha2-nistp256":
    case "sk-ecdsa-sha2-nistp256@openssh.com":
      return 256;
    case "ecdsa-sha2-nistp384":
      return 384;
    case "ecdsa-sha2-nistp521":
      return 521;
    case "ssh-rsa":
      return mpintBits(pubFields[1]);
    case "ssh-dss":
      return mpintBits(pubFields[0]);
    default:
      return null;
  }
}

/** Validates the container structure and extracts the banner facts. */
function parseContainer(blob: Uint8Array): SshKeyInfo {
  const r = new Reader(blob);
  if (!bytesEqual(r.take(MAGIC.length), MAGIC)) throw malformed();
  const cipher = r.str();
  const kdf = r.str();
  const kdfOptions = r.bytes();
  if (r.u32() !== 1) throw malformed();
  const pubBlob = r.bytes();
  const priv = r.bytes();

  const pr = new Reader(pubBlob);
  const keyType = pr.str();
  const shape = SHAPES[keyType];
  if (!shape) throw malformed();
  const pubFields = readFields(pr, new Array<Field>(shape.pub).fill("s"));
  if (!pr.done) throw malformed();

  let comment = "";
  if (cipher === "none") {
    if (kdf !== "none" || kdfOptions.length !== 0 || !r.done) throw malformed();
    comment = parsePrivateSection(priv, keyType, shape, pubBlob);
  } else {
    const c = CIPHERS[cipher];
    if (!c || kdf !== "bcrypt" || priv.length % c.block !== 0) throw malformed();
    const ko = new Reader(kdfOptions);
    ko.bytes();
    ko.u32();
    if (!ko.done) throw malformed();
    r.take(c.tag);
    if (!r.done) throw malformed();
  }
  return {
    keyType,
    bits: keyBits(keyType, pubFields),
    fingerprint: `SHA256:${base64nopad.encode(sha256(pubBlob))}`,
    comment,
  };
}

/** Checks the unencrypted private section and returns its comment. */
function parsePrivateSection(
  priv: Uint8Array,
  keyType: string,
  shape: KeyShape,
  pubBlob: Uint8Array,
): string {
  if (priv.length % 8 !== 0) throw malformed();
  const r = new Reader(priv);
  if (r.u32() !== r.u32()) throw malformed();
  const typeAt = r.pos;
  if (r.str() !== keyType) throw malformed();
  const typeField = priv.subarray(typeAt, r.pos);
  const fields = readFields(r, shape.priv);
  const rebuilt = [typeField, ...shape.pubFromPriv.map((i) => fields[i])];
  if (!bytesEqual(concat(...rebuilt), pubBlob)) throw malformed();
  const comment = r.str();
  const pad = r.take(priv.length - r.pos);
  if (pad.length >= 8 || !pad.every((x, i) => x === i + 1)) throw malformed();
  return comment;
}
