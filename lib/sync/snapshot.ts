/**
 * Snapshots (docs/PROTOCOL.md §8.3): a device's whole synced tree, split into pages by a keyed
 * hash of each path (each page stored as a chunk object), under a head that commits to the
 * pages, signed by the identity and age-encrypted to it; and chunk objects (§8.2), padded to
 * 4 KiB buckets. Every read failure is a signature-class error (exit 3).
 *
 * @module
 */

import { ageDecrypt, ageEncrypt } from "../crypto/age.ts";
import { AgeFileOpener, ageStreamEncrypt } from "../crypto/age_stream.ts";
import { sign, verifyStrict } from "../crypto/keys.ts";
import { canonicalize, field, type JsonValue, parseJson } from "../util/canonical_json.ts";
import { bytesEqual, concat, fromUtf8, utf8 } from "../util/encoding.ts";
import { type CipherpostError, signatureError } from "../util/errors.ts";
import { BLOCK, type ChunkRef } from "./chunker.ts";
import { CHUNK_RE, DEVICE_RE, type SyncKeys } from "./keys.ts";

const MAGIC = utf8("CPSYNC02");
const SIG_CONTEXT = utf8("cipherpost/v1/sync-snapshot\0");
/** Largest head object read or written, and largest sum of a snapshot's pages. */
export const MAX_SNAPSHOT = 64 << 20;
/** Most pages a snapshot has. */
export const MAX_PAGES = 4096;
/** Chunk objects are padded to a multiple of this. */
export const PAD = 4096;

/** Where a version first appeared: `[device_id, seq]`. */
export type Origin = [device: string, seq: number];

/** A synced file. */
export interface FileEntry {
  path: string;
  /** the project `root` token, for files of a project folder */
  root?: string;
  mode: number;
  /** Unix ms */
  mtime: number;
  size: number;
  hash: string;
  chunks: ChunkRef[];
  origin: Origin;
}

/** A deletion. */
export interface Tombstone {
  path: string;
  root?: string;
  /** Unix ms */
  time: number;
  origin: Origin;
}

/** A device's snapshot, its pages put together. */
export interface Manifest {
  v: 2;
  device: string;
  label: string;
  seq: number;
  prev: string | null;
  time: number;
  seen: Record<string, number>;
  files: FileEntry[];
  gone: Tombstone[];
}

/** The key of a file in a tree: its root and path. */
export function keyOf(e: { path: string; root?: string }): string {
  return JSON.stringify([e.root ?? "", e.path]);
}

function cmpKey(a: { path: string; root?: string }, b: { path: string; root?: string }): number {
  const ka = `${a.root ?? ""}\0${a.path}`, kb = `${b.root ?? ""}\0${b.path}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function entryJson(e: FileEntry): JsonValue {
  const o: Record<string, JsonValue> = {
    path: e.path,
    mode: e.mode,
    mtime: e.mtime,
    size: e.size,
    hash: e.hash,
    chunks: e.chunks.map(([id, len]) => [id, len]),
    origin: [e.origin[0], e.origin[1]],
  };
  if (e.root !== undefined) o.root = e.root;
  return o;
}

function tombJson(t: Tombstone): JsonValue {
  const o: Record<string, JsonValue> = {
    path: t.path,
    time: t.time,
    origin: [t.origin[0], t.origin[1]],
  };
  if (t.root !== undefined) o.root = t.root;
  return o;
}

/** The page count for `n` entries: the smallest power of two with P² ≥ n (at most 4096). */
export function pageCount(n: number): number {
  let p = 1;
  while (p * p < n && p < MAX_PAGES) p *= 2;
  return p;
}

function bucketOf(keys: SyncKeys, e: { path: string; root?: string }, pages: number): number {
  return pages === 1 ? 0 : keys.pathHash(e.root, e.path) >>> (32 - Math.log2(pages));
}

/** A page of a snapshot: its `page_id` and plaintext (stored as a chunk object). */
export interface Page {
  id: string;
  plain: Uint8Array;
}

/** A sealed snapshot: the head object and every page (upload the ones not stored yet). */
export interface SealedSnapshot {
  head: Uint8Array;
  pages: Page[];
}

/** The canonical bytes of a page (entries sorted). */
function pageBytes(files: FileEntry[], gone: Tombstone[]): Uint8Array {
  return canonicalize({
    files: [...files].sort(cmpKey).map(entryJson),
    gone: [...gone].sort(cmpKey).map(tombJson),
  });
}

/** The head's fields besides the pages. */
type HeadFields = Omit<Manifest, "files" | "gone">;

function headBytes(
  m: HeadFields,
  nfiles: number,
  ngone: number,
  pages: [string, number][],
): Uint8Array {
  return canonicalize({
    v: 2,
    device: m.device,
    label: m.label,
    seq: m.seq,
    prev: m.prev,
    time: m.time,
    seen: { ...m.seen },
    nfiles,
    ngone,
    pages: pages.map(([id, len]) => [id, len]),
  });
}

/** Split a manifest into pages, sign the head and encrypt it. */
export async function sealSnapshot(m: Manifest, keys: SyncKeys): Promise<SealedSnapshot> {
  const n = pageCount(m.files.length + m.gone.length);
  const fb: FileEntry[][] = Array.from({ length: n }, () => []);
  const gb: Tombstone[][] = Array.from({ length: n }, () => []);
  for (const f of m.files) fb[bucketOf(keys, f, n)].push(f);
  for (const g of m.gone) gb[bucketOf(keys, g, n)].push(g);
  const pages: Page[] = fb.map((f, i) => {
    const plain = pageBytes(f, gb[i]);
    return { id: keys.chunkId(plain), plain };
  });
  const body = headBytes(
    m,
    m.files.length,
    m.gone.length,
    pages.map((p) => [p.id, p.plain.length]),
  );
  const sig = sign(keys.me.seed, concat(SIG_CONTEXT, body));
  return { head: await ageEncrypt(concat(MAGIC, sig, body), keys.recipient), pages };
}

// deno-lint-ignore no-control-regex
const safeText = (s: string) => !/[\u0000-\u001f\u007f]/.test(s);

function relPath(v: JsonValue | undefined): string {
  const s = field.str(v);
  if (
    s === "" || s.startsWith("/") || s.length > 4096 || !safeText(s) ||
    s.split("/").some((p) => p === "" || p === "." || p === "..") || s.includes("\\")
  ) throw new Error("bad path");
  return s;
}

function root(v: JsonValue | undefined): string | undefined {
  if (v === undefined) return undefined;
  const s = field.str(v);
  if (s === "" || s.length > 4096 || !safeText(s)) throw new Error("bad root");
  if (s.startsWith("?")) {
    if (!/^\?[A-Za-z0-9-]{1,255}$/.test(s)) throw new Error("bad folder root");
  } else if (!s.startsWith("/") && !s.startsWith("${HOME}")) throw new Error("bad root");
  if (s.split("/").some((p) => p === "." || p === "..")) throw new Error("bad root");
  return s;
}

function origin(v: JsonValue | undefined): Origin {
  if (!Array.isArray(v) || v.length !== 2) throw new Error("bad origin");
  const d = field.str(v[0]);
  if (!DEVICE_RE.test(d)) throw new Error("bad origin device");
  const s = field.int(v[1]);
  if (s < 1) throw new Error("bad origin seq");
  return [d, s];
}

function nonNeg(v: JsonValue | undefined): number {
  const n = field.int(v);
  if (n < 0) throw new Error("negative");
  return n;
}

function fileEntry(f: JsonValue): FileEntry {
  if (!field.isObject(f)) throw new Error("bad file");
  const chunksV = f.chunks;
  if (!Array.isArray(chunksV)) throw new Error("bad chunks");
  let total = 0;
  const chunks: ChunkRef[] = chunksV.map((c) => {
    if (!Array.isArray(c) || c.length !== 2) throw new Error("bad chunk");
    const id = field.str(c[0]);
    const len = field.int(c[1]);
    if (!CHUNK_RE.test(id) || len < 1 || len > BLOCK) throw new Error("bad chunk");
    total += len;
    return [id, len];
  });
  const size = nonNeg(f.size);
  if (total !== size) throw new Error("chunks do not add up");
  const hash = field.str(f.hash);
  if (!CHUNK_RE.test(hash)) throw new Error("bad hash");
  const mode = nonNeg(f.mode);
  if (mode > 0o777) throw new Error("bad mode");
  const e: FileEntry = {
    path: relPath(f.path),
    mode,
    mtime: nonNeg(f.mtime),
    size,
    hash,
    chunks,
    origin: origin(f.origin),
  };
  const r = root(f.root);
  if (r !== undefined) e.root = r;
  return e;
}

function tombstone(g: JsonValue): Tombstone {
  if (!field.isObject(g)) throw new Error("bad tombstone");
  const t: Tombstone = { path: relPath(g.path), time: nonNeg(g.time), origin: origin(g.origin) };
  const r = root(g.root);
  if (r !== undefined) t.root = r;
  return t;
}

/** A head read and checked: its fields and the pages it commits to. */
export interface OpenedHead extends HeadFields {
  nfiles: number;
  ngone: number;
  pages: [id: string, len: number][];
}

function parseHead(body: Uint8Array): OpenedHead {
  const o = parseJson(fromUtf8(body));
  if (!field.isObject(o) || o.v !== 2) throw new Error("not a v2 head");
  const device = field.str(o.device);
  if (!DEVICE_RE.test(device)) throw new Error("bad device");
  const label = field.str(o.label);
  if (label.length > 64 || !safeText(label)) throw new Error("bad label");
  const seq = field.int(o.seq);
  if (seq < 1) throw new Error("bad seq");
  const prev = o.prev === null ? null : field.str(o.prev);
  if (prev !== null && !DEVICE_RE.test(prev)) throw new Error("bad prev");
  const time = nonNeg(o.time);
  if (!field.isObject(o.seen)) throw new Error("bad seen");
  const seen: Record<string, number> = {};
  for (const [k, v] of Object.entries(o.seen)) {
    if (!DEVICE_RE.test(k)) throw new Error("bad seen device");
    seen[k] = nonNeg(v);
  }
  const nfiles = nonNeg(o.nfiles), ngone = nonNeg(o.ngone);
  if (!Array.isArray(o.pages)) throw new Error("bad pages");
  const n = o.pages.length;
  if (n < 1 || n > MAX_PAGES || (n & (n - 1)) !== 0) throw new Error("bad page count");
  let total = 0;
  const pages: [string, number][] = o.pages.map((p) => {
    if (!Array.isArray(p) || p.length !== 2) throw new Error("bad page");
    const id = field.str(p[0]);
    const len = field.int(p[1]);
    if (!CHUNK_RE.test(id) || len < 1 || len > MAX_SNAPSHOT) throw new Error("bad page");
    total += len;
    return [id, len];
  });
  if (total > MAX_SNAPSHOT) throw new Error("pages too large");
  return { v: 2, device, label, seq, prev, time, seen, nfiles, ngone, pages };
}

/**
 * Open a head object read from `/pub/cipherpost/sync/<device>/…`: decrypt, check the magic, the
 * signature by our own key, the canonical form and that it names `device`. The pages are not
 * read: {@link openPages} does that.
 * @throws CipherpostError("signature") on any failure
 */
export async function openHead(
  sealed: Uint8Array,
  keys: SyncKeys,
  device: string,
): Promise<OpenedHead> {
  let plain: Uint8Array;
  try {
    plain = await ageDecrypt(sealed, keys.ageIdentity);
  } catch {
    throw signatureError("snapshot does not decrypt");
  }
  if (plain.length < 72 || !bytesEqual(plain.subarray(0, 8), MAGIC)) {
    throw signatureError("snapshot magic");
  }
  const sig = plain.subarray(8, 72);
  const body = plain.subarray(72);
  if (!verifyStrict(keys.me.publicKey, concat(SIG_CONTEXT, body), sig)) {
    throw signatureError("snapshot signature");
  }
  let h: OpenedHead;
  try {
    h = parseHead(body);
  } catch (e) {
    throw signatureError(`snapshot head: ${(e as Error).message}`);
  }
  if (!bytesEqual(headBytes(h, h.nfiles, h.ngone, h.pages), body)) {
    throw signatureError("snapshot not canonical");
  }
  if (h.device !== device) throw signatureError("snapshot of another device");
  return h;
}

/**
 * Put a head's pages together into the manifest. `fetchPage` returns a page's plaintext checked
 * as a chunk (its id and length: lib/flows/sync/common.ts `fetchChunk`), in page order; each
 * page must be canonical, hold only entries of its own bucket, and the counts must match.
 * @throws CipherpostError("signature") on any failure
 */
export async function openPages(
  head: OpenedHead,
  keys: SyncKeys,
  fetchPage: (id: string, len: number) => Promise<Uint8Array>,
): Promise<Manifest> {
  const files: FileEntry[] = [], gone: Tombstone[] = [];
  const n = head.pages.length;
  for (let i = 0; i < n; i++) {
    const [id, len] = head.pages[i];
    const plain = await fetchPage(id, len);
    let pf: FileEntry[], pg: Tombstone[];
    try {
      const o = parseJson(fromUtf8(plain));
      if (!field.isObject(o) || !Array.isArray(o.files) || !Array.isArray(o.gone)) {
        throw new Error("bad page");
      }
      if (files.length + o.files.length > head.nfiles || gone.length + o.gone.length > head.ngone) {
        throw new Error("more entries than the head says");
      }
      pf = o.files.map(fileEntry);
      pg = o.gone.map(tombstone);
    } catch (e) {
      throw signatureError(`snapshot page: ${(e as Error).message}`);
    }
    if (!bytesEqual(pageBytes(pf, pg), plain)) throw signatureError("snapshot page not canonical");
    for (const e of [...pf, ...pg]) {
      if (bucketOf(keys, e, n) !== i) throw signatureError("snapshot entry in another page");
    }
    files.push(...pf);
    gone.push(...pg);
  }
  if (files.length !== head.nfiles || gone.length !== head.ngone) {
    throw signatureError("snapshot counts");
  }
  const keysSeen = new Set<string>();
  for (const e of [...files, ...gone]) {
    const k = keyOf(e);
    if (keysSeen.has(k)) throw signatureError("snapshot: duplicate path");
    keysSeen.add(k);
  }
  const { device, label, seq, prev, time, seen } = head;
  return { v: 2, device, label, seq, prev, time, seen, files, gone };
}

/**
 * Encrypt a chunk's plaintext into its object (zero-padded to {@link PAD}): a standard age file,
 * its payload sealed with the native ChaCha20-Poly1305 (lib/crypto/age_stream.ts; typage's pure
 * JS takes ~10× longer per MiB).
 */
export async function sealChunk(plain: Uint8Array, keys: SyncKeys): Promise<Uint8Array> {
  const padded = new Uint8Array(Math.max(PAD, Math.ceil(plain.length / PAD) * PAD));
  padded.set(plain);
  const e = await ageStreamEncrypt(keys.recipient);
  return concat(e.head, e.sealer.push(padded), e.sealer.finish());
}

/**
 * Open a chunk object: decrypt, take `len` bytes, require zero padding and the id.
 * @throws CipherpostError("signature") on any failure
 */
export async function openChunk(
  sealed: Uint8Array,
  id: string,
  len: number,
  keys: SyncKeys,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  try {
    const o = new AgeFileOpener(keys.ageIdentity, (b) => parts.push(b.slice()));
    await o.push(sealed);
    o.finish();
  } catch {
    throw signatureError("chunk does not decrypt");
  }
  const padded = concat(...parts);
  if (padded.length !== Math.max(PAD, Math.ceil(len / PAD) * PAD)) {
    throw signatureError("chunk length");
  }
  for (let i = len; i < padded.length; i++) {
    if (padded[i] !== 0) throw signatureError("chunk padding");
  }
  const plain = padded.subarray(0, len);
  if (keys.chunkId(plain) !== id) throw signatureError("chunk id");
  return plain;
}

/** The sealed size of a chunk object at most (for reads). */
export function maxChunkObject(len: number): number {
  return Math.max(PAD, Math.ceil(len / PAD) * PAD) + 64 * 1024;
}

/** A snapshot object too large to read. */
export function snapshotTooLarge(): CipherpostError {
  return signatureError("snapshot too large");
}
