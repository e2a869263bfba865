/**
 * A small streaming POSIX tar codec (ustar headers, pax `x` records for long names and big
 * sizes), as docs/PROTOCOL.md §5.4 specifies: regular files, directories and symbolic links
 * only. Pure: headers are built from entry descriptions, and the reader turns a byte stream into
 * entries whose bodies stream. Path safety (no absolute path, no `..`) is checked here so no
 * caller can forget it; the file system side lives in `lib/flows/large_tar_fs.ts`.
 *
 * @module
 */

/** One archive entry. */
export interface TarEntry {
  /** relative path, `/`-separated, no trailing slash */
  path: string;
  type: "file" | "dir" | "symlink";
  /** permission bits (masked to 0o777 by the writer and the reader) */
  mode: number;
  /** body bytes (files only; 0 otherwise) */
  size: number;
  /** seconds since the epoch */
  mtime: number;
  /** symlink text */
  linkname?: string;
}

const BLOCK = 512;
const enc = new TextEncoder();

/** The two zero blocks that end an archive. */
export const TAR_END: Uint8Array = new Uint8Array(2 * BLOCK);

/** Zero bytes that pad a body of `size` bytes to a block boundary. */
export function tarPadding(size: number): Uint8Array {
  return new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK);
}

/** Throws unless `path` is a safe relative archive path (§5.4). */
export function checkEntryPath(path: string): void {
  if (path.length === 0) throw new Error("empty path");
  if (path.includes("\0")) throw new Error("NUL in path");
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path) || path.includes("\\")) {
    throw new Error("absolute or non-POSIX path");
  }
  for (const c of path.split("/")) {
    if (c === "" || c === "." || c === "..") throw new Error(`unsafe path component in ${path}`);
  }
}

function octal(buf: Uint8Array, off: number, len: number, value: number): void {
  const s = value.toString(8).padStart(len - 1, "0");
  if (s.length > len - 1) throw new RangeError("octal field overflow");
  buf.set(enc.encode(s), off);
  buf[off + len - 1] = 0;
}

function paxRecord(key: string, value: string): Uint8Array {
  const body = ` ${key}=${value}\n`;
  const bodyLen = enc.encode(body).length;
  let n = bodyLen + 1;
  while (String(n).length + bodyLen !== n) n = String(n).length + bodyLen;
  return enc.encode(`${n}${body}`);
}

function ustar(name: Uint8Array, e: TarEntry, flag: string, size: number, link: Uint8Array) {
  const h = new Uint8Array(BLOCK);
  h.set(name.subarray(0, 100), 0);
  octal(h, 100, 8, e.mode & 0o777);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, Math.max(0, Math.min(Math.floor(e.mtime), 8 ** 11 - 1)));
  h.fill(0x20, 148, 156);
  h[156] = flag.charCodeAt(0);
  h.set(link.subarray(0, 100), 157);
  h.set(enc.encode("ustar\u000000"), 257);
  let sum = 0;
  for (const b of h) sum += b;
  const s = sum.toString(8).padStart(6, "0");
  h.set(enc.encode(s), 148);
  h[154] = 0;
  h[155] = 0x20;
  return h;
}

/** The header block(s) of an entry: a pax `x` header first when a field needs it. */
export function encodeTarHeader(e: TarEntry): Uint8Array {
  checkEntryPath(e.path);
  const flag = e.type === "file" ? "0" : e.type === "dir" ? "5" : "2";
  const path = e.type === "dir" ? `${e.path}/` : e.path;
  const name = enc.encode(path);
  const link = enc.encode(e.linkname ?? "");
  const size = e.type === "file" ? e.size : 0;
  const pax: Uint8Array[] = [];
  const ascii = (s: string) => /^[\x20-\x7e]*$/.test(s);
  if (name.length > 100 || !ascii(path)) pax.push(paxRecord("path", path));
  if (link.length > 100 || !ascii(e.linkname ?? "")) pax.push(paxRecord("linkpath", e.linkname!));
  if (size > 8 ** 11 - 1) pax.push(paxRecord("size", String(size)));
  const main = ustar(name, e, flag, size > 8 ** 11 - 1 ? 0 : size, link);
  if (pax.length === 0) return main;
  const body = new Uint8Array(pax.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of pax) {
    body.set(p, off);
    off += p.length;
  }
  const ph = ustar(
    enc.encode("PaxHeader"),
    { ...e, mode: 0o644 },
    "x",
    body.length,
    new Uint8Array(),
  );
  const out = new Uint8Array(BLOCK + body.length + tarPadding(body.length).length + BLOCK);
  out.set(ph, 0);
  out.set(body, BLOCK);
  out.set(main, out.length - BLOCK);
  return out;
}

/** Reads exact byte counts from a stream of chunks. */
class Bytes {
  private buf: Uint8Array = new Uint8Array(0);
  private off = 0;
  /** bytes consumed so far */
  consumed = 0;

  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  private async fill(): Promise<boolean> {
    const r = await this.reader.read();
    if (r.done) return false;
    this.buf = this.off < this.buf.length ? concat2(this.buf.subarray(this.off), r.value) : r.value;
    this.off = 0;
    return true;
  }

  /** Exactly `n` bytes, or null at a clean end of stream (throws on a torn one). */
  async exact(n: number): Promise<Uint8Array | null> {
    while (this.buf.length - this.off < n) {
      if (!await this.fill()) {
        if (this.buf.length === this.off) return null;
        throw new Error("archive ends early");
      }
    }
    const out = this.buf.slice(this.off, this.off + n);
    this.off += n;
    this.consumed += n;
    return out;
  }

  /** Up to `max` bytes (at least 1), or throws at end of stream. */
  async some(max: number): Promise<Uint8Array> {
    if (this.off >= this.buf.length && !await this.fill()) throw new Error("archive ends early");
    const n = Math.min(max, this.buf.length - this.off);
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    this.consumed += n;
    return out;
  }

  async skip(n: number): Promise<void> {
    while (n > 0) n -= (await this.some(n)).length;
  }
}

function concat2(a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = new Uint8Array(a.length + b.length);
  o.set(a);
  o.set(b, a.length);
  return o;
}

function str(h: Uint8Array, off: number, len: number): string {
  const f = h.subarray(off, off + len);
  const z = f.indexOf(0);
  return new TextDecoder("utf-8", { fatal: true }).decode(z < 0 ? f : f.subarray(0, z));
}

function num(h: Uint8Array, off: number, len: number): number {
  const s = str(h, off, len).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw new Error("bad octal field");
  return parseInt(s, 8);
}

function parsePax(body: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  const text = new TextDecoder("utf-8", { fatal: true }).decode(body);
  let i = 0;
  while (i < text.length) {
    const sp = text.indexOf(" ", i);
    const n = Number(text.slice(i, sp));
    if (sp < 0 || !Number.isSafeInteger(n) || n <= 0) throw new Error("bad pax record");
    const rec = enc.encode(text.slice(i)).subarray(0, n);
    const line = new TextDecoder().decode(rec);
    const kv = line.slice(line.indexOf(" ") + 1, -1);
    const eq = kv.indexOf("=");
    if (eq < 0 || !line.endsWith("\n")) throw new Error("bad pax record");
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
    i += line.length;
  }
  return out;
}

/** An entry being read: its header and (files) its body, which must be consumed in order. */
export interface TarReadEntry {
  entry: TarEntry;
  /** the body chunks (files; empty otherwise); read it fully before the next entry */
  body: AsyncIterable<Uint8Array>;
}

/**
 * Read a tar stream entry by entry. Throws (a plain Error) on anything §5.4 refuses: unknown
 * types, unsafe paths, a bad checksum, a torn archive, a missing end marker.
 */
export async function* readTar(stream: ReadableStream<Uint8Array>): AsyncGenerator<TarReadEntry> {
  const reader = stream.getReader();
  const b = new Bytes(reader);
  let pax: Record<string, string> = {};
  try {
    while (true) {
      const h = await b.exact(BLOCK);
      if (h === null) throw new Error("archive has no end marker");
      if (h.every((x) => x === 0)) {
        const h2 = await b.exact(BLOCK);
        if (h2 === null || !h2.every((x) => x === 0)) throw new Error("bad end marker");
        return;
      }
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
      if (num(h, 148, 8) !== sum) throw new Error("bad header checksum");
      if (str(h, 257, 6) !== "ustar") throw new Error("not a ustar header");
      const flag = String.fromCharCode(h[156] || 0x30);
      let size = num(h, 124, 12);
      if (flag === "x") {
        if (size > 1 << 20) throw new Error("pax header too large");
        const body = (await b.exact(size)) ?? new Uint8Array();
        await b.skip(tarPadding(size).length);
        pax = parsePax(body);
        continue;
      }
      if (flag !== "0" && flag !== "5" && flag !== "2") {
        throw new Error(`unsupported entry type ${flag}`);
      }
      const prefix = str(h, 345, 155);
      let path = pax.path ?? (prefix ? `${prefix}/${str(h, 0, 100)}` : str(h, 0, 100));
      if (pax.size !== undefined) {
        if (!/^[0-9]+$/.test(pax.size)) throw new Error("bad pax size");
        size = Number(pax.size);
      }
      const linkname = pax.linkpath ?? str(h, 157, 100);
      pax = {};
      if (flag === "5") path = path.replace(/\/$/, "");
      checkEntryPath(path);
      const type = flag === "0" ? "file" : flag === "5" ? "dir" : "symlink";
      if (type !== "file" && size !== 0) throw new Error("non-file entry with a body");
      const entry: TarEntry = {
        path,
        type,
        mode: num(h, 100, 8) & 0o777,
        size,
        mtime: num(h, 136, 12),
        linkname: type === "symlink" ? linkname : undefined,
      };
      let left = size;
      const body = {
        async *[Symbol.asyncIterator]() {
          while (left > 0) {
            const c = await b.some(left);
            left -= c.length;
            yield c;
          }
        },
      };
      yield { entry, body };
      while (left > 0) left -= (await b.some(left)).length;
      await b.skip(tarPadding(size).length);
    }
  } finally {
    reader.releaseLock();
  }
}
