/**
 * The one tar codec (docs/PROTOCOL.md §5.4 for directory shares, §6.1 for session bundles): a
 * small streaming POSIX ustar codec with pax `x` records for long names and big sizes; regular
 * files, directories and symbolic links only. Pure: headers are built from entry descriptions,
 * and the reader turns a byte stream into entries whose bodies stream, in memory bounded by a
 * block plus one pax header ({@link MAX_PAX_HEADER}), whatever the archive.
 *
 * The reader is strict, and checks here what no caller may forget: every header checksum and
 * the ustar magic; safe relative paths (no absolute path, no `..` or empty component, no
 * control character); no body on a non-file; pax headers parsed in one linear pass and capped;
 * the two zero blocks of the end marker, and nothing after them. The file-system side of
 * directory shares is `lib/flows/large/tar_fs.ts`; the bundle rules are `lib/claude/bundle.ts`.
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

/** Largest pax extended header a reader accepts (its records hold one path and one link). */
export const MAX_PAX_HEADER = 64 * 1024;

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
  // deno-lint-ignore no-control-regex
  if (/[\u0001-\u001f\u007f-\u009f]/.test(path)) throw new Error("control character in path");
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path) || path.includes("\\")) {
    throw new Error("absolute or non-POSIX path");
  }
  for (const c of path.split("/")) {
    if (c === "" || c === "." || c === "..") throw new Error("unsafe path component");
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

function ustar(
  name: Uint8Array,
  e: TarEntry,
  flag: string,
  size: number,
  link: Uint8Array,
  prefix: Uint8Array = new Uint8Array(),
) {
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
  h.set(prefix.subarray(0, 155), 345);
  let sum = 0;
  for (const b of h) sum += b;
  const s = sum.toString(8).padStart(6, "0");
  h.set(enc.encode(s), 148);
  h[154] = 0;
  h[155] = 0x20;
  return h;
}

/** Split a path into ustar (prefix, name): name ≤ 100 bytes, prefix ≤ 155 bytes; or null. */
function splitUstar(b: Uint8Array): [Uint8Array, Uint8Array] | null {
  if (b.length <= 100) return [new Uint8Array(0), b];
  for (let i = Math.min(b.length - 2, 155); i > 0; i--) {
    if (b[i] === 0x2f && b.length - i - 1 <= 100) return [b.subarray(0, i), b.subarray(i + 1)];
  }
  return null;
}

/** How headers are written. */
export interface TarHeaderOptions {
  /**
   * Plain ustar only (session bundles, §6.1): a long name goes into the `prefix` field and the
   * name's UTF-8 bytes are written as they are; a name that does not fit throws a RangeError.
   * Otherwise (directory shares, §5.4) a pax `x` header carries long or non-ASCII names.
   */
  ustarOnly?: boolean;
}

/** The header block(s) of an entry: a pax `x` header first when a field needs it. */
export function encodeTarHeader(e: TarEntry, o: TarHeaderOptions = {}): Uint8Array {
  checkEntryPath(e.path);
  const flag = e.type === "file" ? "0" : e.type === "dir" ? "5" : "2";
  const path = e.type === "dir" ? `${e.path}/` : e.path;
  const name = enc.encode(path);
  const link = enc.encode(e.linkname ?? "");
  const size = e.type === "file" ? e.size : 0;
  if (o.ustarOnly) {
    const split = splitUstar(name);
    if (!split || link.length > 100 || size > 8 ** 11 - 1) {
      throw new RangeError("entry does not fit a plain ustar header");
    }
    return ustar(split[1], e, flag, size, link, split[0]);
  }
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

  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  private async fill(): Promise<boolean> {
    const r = await this.reader.read();
    if (r.done) return false;
    this.buf = r.value;
    this.off = 0;
    return true;
  }

  /**
   * Exactly `n` bytes, or null at a clean end of stream (throws on a torn one). Copies each
   * byte once, whatever the chunking of the stream.
   */
  async exact(n: number): Promise<Uint8Array | null> {
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      if (this.off >= this.buf.length && !await this.fill()) {
        if (got === 0) return null;
        throw new Error("archive ends early");
      }
      const k = Math.min(n - got, this.buf.length - this.off);
      out.set(this.buf.subarray(this.off, this.off + k), got);
      this.off += k;
      got += k;
    }
    return out;
  }

  /** Up to `max` bytes (at least 1), or throws at end of stream. */
  async some(max: number): Promise<Uint8Array> {
    if (this.off >= this.buf.length && !await this.fill()) throw new Error("archive ends early");
    const n = Math.min(max, this.buf.length - this.off);
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }

  async skip(n: number): Promise<void> {
    while (n > 0) n -= (await this.some(n)).length;
  }

  /** True when the stream holds no further byte. */
  async atEnd(): Promise<boolean> {
    while (this.off >= this.buf.length) {
      if (!await this.fill()) return true;
    }
    return false;
  }
}

const utf8Strict = new TextDecoder("utf-8", { fatal: true });

function decodeUtf8(b: Uint8Array, what: string): string {
  try {
    return utf8Strict.decode(b);
  } catch {
    throw new Error(`${what} is not UTF-8`);
  }
}

function str(h: Uint8Array, off: number, len: number): string {
  const f = h.subarray(off, off + len);
  const z = f.indexOf(0);
  return decodeUtf8(z < 0 ? f : f.subarray(0, z), "a header field");
}

function num(h: Uint8Array, off: number, len: number): number {
  const s = str(h, off, len).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw new Error("bad octal field");
  return parseInt(s, 8);
}

/**
 * Parse the records of a pax extended header (`<len> <key>=<value>\n`, `len` counting the
 * whole record) in one pass over the bytes: each record is located by its length prefix, so
 * the work is linear in the header's size (which the caller caps at {@link MAX_PAX_HEADER}).
 */
export function parsePax(body: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < body.length) {
    let n = 0;
    let j = i;
    while (j < body.length && j - i < 8 && body[j] >= 0x30 && body[j] <= 0x39) {
      n = n * 10 + body[j] - 0x30;
      j++;
    }
    if (j === i || body[j] !== 0x20 || n <= j - i + 1 || i + n > body.length) {
      throw new Error("bad pax record");
    }
    const end = i + n - 1; // the record's newline
    if (body[end] !== 0x0a) throw new Error("bad pax record");
    const eq = body.subarray(j + 1, end).indexOf(0x3d);
    if (eq <= 0) throw new Error("bad pax record");
    const key = decodeUtf8(body.subarray(j + 1, j + 1 + eq), "a pax record");
    out[key] = decodeUtf8(body.subarray(j + 2 + eq, end), "a pax record");
    i += n;
  }
  return out;
}

/** An entry being read: its header and (files) its body, which must be consumed in order. */
export interface TarReadEntry {
  entry: TarEntry;
  /** the body chunks (files; empty otherwise); read it fully before the next entry */
  body: AsyncIterable<Uint8Array>;
}

function typeError(flag: string): Error {
  if (flag === "L" || flag === "K") {
    return new Error(
      `unsupported entry type ${flag} (a GNU long name; cipherpost archives carry long names in pax headers)`,
    );
  }
  return new Error(`unsupported entry type ${JSON.stringify(flag)}`);
}

/**
 * Read a tar stream entry by entry. Throws (a plain Error) on anything §5.4 refuses: unknown
 * types (GNU long names included), unsafe paths, a bad checksum, a pax header over
 * {@link MAX_PAX_HEADER} or without an entry after it, a torn archive, a missing end marker,
 * and any byte after the end marker.
 */
export async function* readTar(stream: ReadableStream<Uint8Array>): AsyncGenerator<TarReadEntry> {
  const reader = stream.getReader();
  const b = new Bytes(reader);
  let pax: Record<string, string> | null = null;
  let finished = false;
  try {
    while (true) {
      const h = await b.exact(BLOCK);
      if (h === null) throw new Error("archive has no end marker");
      if (h.every((x) => x === 0)) {
        const h2 = await b.exact(BLOCK);
        if (h2 === null || !h2.every((x) => x === 0)) throw new Error("bad end marker");
        if (pax !== null) throw new Error("pax header without an entry");
        if (!await b.atEnd()) throw new Error("bytes after the end marker");
        finished = true;
        return;
      }
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
      if (num(h, 148, 8) !== sum) throw new Error("bad header checksum");
      if (str(h, 257, 6) !== "ustar") throw new Error("not a ustar header");
      const flag = String.fromCharCode(h[156] || 0x30);
      let size = num(h, 124, 12);
      if (flag === "x") {
        if (pax !== null) throw new Error("two pax headers in a row");
        if (size > MAX_PAX_HEADER) throw new Error("pax header too large");
        const body = await b.exact(size);
        if (body === null) throw new Error("archive ends early");
        await b.skip(tarPadding(size).length);
        pax = parsePax(body);
        continue;
      }
      if (flag !== "0" && flag !== "5" && flag !== "2") throw typeError(flag);
      const prefix = str(h, 345, 155);
      let path = pax?.path ?? (prefix ? `${prefix}/${str(h, 0, 100)}` : str(h, 0, 100));
      if (pax?.size !== undefined) {
        if (!/^[0-9]{1,16}$/.test(pax.size)) throw new Error("bad pax size");
        size = Number(pax.size);
      }
      if (!Number.isSafeInteger(size)) throw new Error("bad size");
      const linkname = pax?.linkpath ?? str(h, 157, 100);
      pax = null;
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
    // a refused or abandoned archive: stop its source (a gunzip, a file) from running on
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
