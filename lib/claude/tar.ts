/**
 * A minimal POSIX ustar writer and reader for session bundles (PROTOCOL.md §6.1): regular
 * files only, 512-byte blocks, names split into `prefix`/`name`, two zero blocks at the end.
 * The reader checks every header checksum and refuses everything that is not a regular file.
 *
 * @module
 */

import { CipherpostError } from "../util/errors.ts";

/** One file of an archive. */
export interface TarEntry {
  path: string;
  bytes: Uint8Array;
  /** modification time, Unix seconds */
  mtime: number;
}

const BLOCK = 512;
const enc = new TextEncoder();

function invalid(reason: string): CipherpostError {
  return new CipherpostError(
    "invalid_material",
    `invalid material: variant=claude_session, reason=${reason}`,
  );
}

function putString(h: Uint8Array, off: number, len: number, s: Uint8Array): void {
  if (s.length > len) throw new Error("tar field too long");
  h.set(s, off);
}

function putOctal(h: Uint8Array, off: number, len: number, n: number): void {
  const s = n.toString(8).padStart(len - 1, "0");
  if (s.length > len - 1) throw new Error("tar number too large");
  h.set(enc.encode(s), off);
  h[off + len - 1] = 0;
}

/** Split a path into ustar (prefix, name): name ≤ 100 bytes, prefix ≤ 155 bytes. */
function splitPath(path: string): [Uint8Array, Uint8Array] {
  const b = enc.encode(path);
  if (b.length <= 100) return [new Uint8Array(0), b];
  for (let i = b.length - 1; i > 0; i--) {
    if (b[i] === 0x2f && i <= 155 && b.length - i - 1 <= 100 && b.length - i - 1 > 0) {
      return [b.subarray(0, i), b.subarray(i + 1)];
    }
  }
  throw new CipherpostError(
    "config",
    `configuration error: a session file's path is too long to bundle: ${path.slice(0, 80)}…`,
  );
}

/** The 512-byte header of an entry. */
export function tarHeader(path: string, size: number, mtime: number): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const [prefix, name] = splitPath(path);
  putString(h, 0, 100, name);
  putOctal(h, 100, 8, 0o600);
  putOctal(h, 108, 8, 0);
  putOctal(h, 116, 8, 0);
  putOctal(h, 124, 12, size);
  putOctal(h, 136, 12, Math.max(0, Math.floor(mtime)));
  h.fill(0x20, 148, 156);
  h[156] = 0x30; // '0': regular file
  putString(h, 257, 6, enc.encode("ustar\0"));
  putString(h, 263, 2, enc.encode("00"));
  putString(h, 345, 155, prefix);
  let sum = 0;
  for (const x of h) sum += x;
  putOctal(h, 148, 7, sum);
  h[155] = 0x20;
  return h;
}

/** Zero bytes that pad `size` up to a whole block. */
export function tarPadding(size: number): Uint8Array {
  return new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The end-of-archive marker (two zero blocks). */
export function tarEnd(): Uint8Array {
  return new Uint8Array(2 * BLOCK);
}

function readString(h: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && h[end] !== 0) end++;
  return new TextDecoder("utf-8", { fatal: true }).decode(h.subarray(off, end));
}

function readOctal(h: Uint8Array, off: number, len: number): number {
  const s = new TextDecoder().decode(h.subarray(off, off + len)).replace(/[\0 ]+$/, "").trim();
  if (!/^[0-7]+$/.test(s)) throw invalid("bad tar number");
  const n = parseInt(s, 8);
  if (!Number.isSafeInteger(n)) throw invalid("bad tar number");
  return n;
}

/**
 * Parse a whole archive (regular files only).
 * @throws CipherpostError("invalid_material") on any malformed or non-file entry
 */
export function parseTar(bytes: Uint8Array): TarEntry[] {
  const out: TarEntry[] = [];
  let off = 0;
  while (true) {
    if (off + BLOCK > bytes.length) throw invalid("tar truncated");
    const h = bytes.subarray(off, off + BLOCK);
    if (h.every((x) => x === 0)) break;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    if (readOctal(h, 148, 8) !== sum) throw invalid("tar header checksum");
    const type = h[156];
    if (type !== 0x30 && type !== 0) throw invalid("bundle holds something other than files");
    let path: string;
    try {
      const name = readString(h, 0, 100);
      const prefix = readString(h, 345, 155);
      path = prefix ? `${prefix}/${name}` : name;
    } catch {
      throw invalid("tar name is not UTF-8");
    }
    const size = readOctal(h, 124, 12);
    const mtime = readOctal(h, 136, 12);
    off += BLOCK;
    if (off + size > bytes.length) throw invalid("tar truncated");
    out.push({ path, bytes: bytes.slice(off, off + size), mtime });
    off += size + tarPadding(size).length;
  }
  return out;
}
