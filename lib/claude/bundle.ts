/**
 * Session bundles (PROTOCOL.md §6.1): gzip of a ustar tar holding `cipherpost-session.json`,
 * the transcript `<id>.jsonl` and the files of the `<id>/` sidecar folder. Nothing else is
 * ever read into a bundle: not `~/.claude.json`, not credentials, not settings or history.
 *
 * @module
 */

import { CipherpostError } from "../util/errors.ts";
import { compactJson } from "../util/canonical_json.ts";
import { isSessionId } from "./config.ts";
import { encodeTarHeader, readTar, TAR_END, tarPadding } from "../material/tar.ts";
import { FactsReader, LINE_CAP, splitLines, type TranscriptFacts } from "./transcript.ts";

/** The metadata entry's name. */
export const META_ENTRY = "cipherpost-session.json";
/**
 * Largest uncompressed bundle a receiver accepts. Real transcripts are mostly under 20 MB, but
 * long sessions reach 100–165 MB (reports in anthropics/claude-code issues 21022 and 87909, and
 * 155.8 MiB in apache/maka issue 5140); a bundle is read as a stream, so the cap bounds disk
 * and time, not memory.
 */
export const MAX_UNPACKED = 256 * 1024 * 1024;
/** Largest metadata entry. */
const MAX_META = 64 * 1024;
/** Most sidecar files in a bundle (subagent transcripts and tool results). */
export const MAX_SIDECAR_FILES = 10_000;

/** Where a session's files are on this machine. */
export interface SessionFiles {
  /** The session's ID (a UUID). */
  sessionId: string;
  /** `<config>/projects/<enc>` */
  projectFolder: string;
  /** `<projectFolder>/<id>.jsonl` */
  transcript: string;
  /** `<projectFolder>/<id>` (may not exist) */
  sidecar: string;
}

/** The metadata of a bundle. */
export interface BundleMeta {
  claudeVersion: string;
  cwd: string;
  format: 1;
  sessionId: string;
}

/** The compressed bytes of a bundle: in memory, or a function that opens them again. */
export type BundleSource = Uint8Array | (() => ReadableStream<Uint8Array>);

/**
 * A validated bundle. Its files are not held: {@link Bundle.open} streams the compressed bytes
 * again, and every pass ({@link readBundle}) checks every rule again.
 */
export interface Bundle {
  meta: BundleMeta;
  /** bytes of the transcript */
  transcriptSize: number;
  /** sidecar files: path relative to `<id>/` → size in bytes */
  sidecar: Map<string, number>;
  /** what the transcript says (read line by line while it was validated) */
  facts: TranscriptFacts;
  /** the compressed bundle, from its start */
  open: () => ReadableStream<Uint8Array>;
}

function invalid(reason: string): CipherpostError {
  return new CipherpostError(
    "invalid_material",
    `invalid material: variant=claude_session, reason=${reason}`,
  );
}

async function listFiles(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return out;
    throw e;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await listFiles(`${dir}/${e.name}`, r));
    else if (e.isFile) out.push(r); // symlinks and specials are never followed or bundled
  }
  return out;
}

/**
 * Build the bundle of a session: tar bytes streamed into `CompressionStream("gzip")`, one file
 * at a time. A transcript that is being appended to is cut at its last complete line.
 * Returns the compressed bytes.
 */
export async function buildBundle(files: SessionFiles): Promise<Uint8Array> {
  if (!isSessionId(files.sessionId)) throw new Error("not a session ID");
  const transcript = cutAtLastNewline(await Deno.readFile(files.transcript));
  const tStat = await Deno.stat(files.transcript);
  const reader = new FactsReader();
  await splitLines([transcript], LINE_CAP, reader);
  const facts = reader.facts;
  const metaBytes = new TextEncoder().encode(compactJson({
    claude_version: facts.version,
    cwd: facts.cwd ?? "",
    format: 1,
    session_id: files.sessionId,
  }));
  const side = await listFiles(files.sidecar);
  const id = files.sessionId;
  const mtimeOf = (st: Deno.FileInfo) => Math.floor((st.mtime?.getTime() ?? 0) / 1000);
  const tar = new ReadableStream<BufferSource>({
    async start(c) {
      const put = (path: string, data: Uint8Array, mtime: number) => {
        let h: Uint8Array;
        try {
          h = encodeTarHeader(
            { path, type: "file", mode: 0o600, size: data.length, mtime },
            { ustarOnly: true },
          );
        } catch {
          throw new CipherpostError(
            "config",
            `configuration error: a session file's path cannot be bundled: ${
              JSON.stringify(path.slice(0, 80))
            }`,
          );
        }
        c.enqueue(h as Uint8Array<ArrayBuffer>);
        c.enqueue(data as Uint8Array<ArrayBuffer>);
        c.enqueue(tarPadding(data.length) as Uint8Array<ArrayBuffer>);
      };
      try {
        put(META_ENTRY, metaBytes, mtimeOf(tStat));
        put(`${id}.jsonl`, transcript, mtimeOf(tStat));
        for (const r of side) {
          const file = `${files.sidecar}/${r}`;
          put(`${id}/${r}`, await Deno.readFile(file), mtimeOf(await Deno.stat(file)));
        }
        c.enqueue(TAR_END.slice() as Uint8Array<ArrayBuffer>);
        c.close();
      } catch (e) {
        c.error(e);
      }
    },
  });
  const gz = tar.pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(gz).arrayBuffer());
}

/** A transcript being written may end mid-line: keep whole lines only. */
function cutAtLastNewline(b: Uint8Array): Uint8Array {
  if (b.length === 0 || b[b.length - 1] === 0x0a) return b;
  const i = b.lastIndexOf(0x0a);
  return i < 0 ? b : b.subarray(0, i + 1);
}

function opener(src: BundleSource): () => ReadableStream<Uint8Array> {
  if (typeof src === "function") return src;
  return () => new Blob([src as BlobPart]).stream();
}

/**
 * Gunzip is fed compressed slices sized so that each yields about 64 KiB: the slice is
 * 64 KiB divided by the expansion seen so far, between 64 bytes (deflate expands at most
 * ~1032:1, so a bomb gives ≤ 66 KB per slice) and 4 KiB (≤ 4 MiB if the stream turns into a
 * bomb). Backpressure holds the next slice until the output is read. Measured on a 250 MiB
 * newline bomb: fixed 4 KiB slices peaked at 277 MB RSS, 1 KiB at 185 MB, 64 bytes at 83 MB.
 */
function gunzipped(open: () => ReadableStream<Uint8Array>): {
  stream: ReadableStream<Uint8Array>;
  count: (n: number) => void;
} {
  const src = open().getReader();
  let [fed, out, off] = [0, 0, 0];
  let cur: Uint8Array = new Uint8Array();
  const sliced = new ReadableStream<BufferSource>({
    async pull(c) {
      while (off >= cur.length) {
        const r = await src.read();
        if (r.done) return c.close();
        cur = r.value;
        off = 0;
      }
      const ratio = fed > 0 ? out / fed : 1032;
      const n = Math.max(64, Math.min(4096, Math.floor(65536 / Math.max(1, ratio))));
      const piece = cur.subarray(off, off + n);
      c.enqueue(piece as Uint8Array<ArrayBuffer>);
      off += piece.length;
      fed += piece.length;
    },
    cancel(reason) {
      return src.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
  return {
    stream: sliced.pipeThrough(new DecompressionStream("gzip")),
    count: (n) => out += n,
  };
}

/** The tar stream inside a bundle, failing with invalid material past {@link MAX_UNPACKED}. */
function unpacked(open: () => ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const g = gunzipped(open);
  const r = g.stream.getReader();
  let total = 0;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      let x: ReadableStreamReadResult<Uint8Array>;
      try {
        x = await r.read();
      } catch {
        throw invalid("not a gzip stream");
      }
      if (x.done) return c.close();
      total += x.value.length;
      g.count(x.value.length);
      if (total > MAX_UNPACKED) throw invalid("bundle unpacks to more than 256 MiB");
      c.enqueue(x.value);
    },
    cancel(reason) {
      return r.cancel(reason).catch(() => {});
    },
  });
}

function safeRelative(path: string): boolean {
  // deno-lint-ignore no-control-regex
  if (path === "" || path.includes("\\") || /[\u0000-\u001f\u007f-\u009f]/.test(path)) return false;
  return path.split("/").every((c) => c !== "" && c !== "." && c !== "..");
}

function parseMeta(bytes: Uint8Array): BundleMeta {
  try {
    const o = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    if (o.format !== 1) throw new Error();
    if (typeof o.session_id !== "string" || !isSessionId(o.session_id)) throw new Error();
    if (typeof o.cwd !== "string" || typeof o.claude_version !== "string") throw new Error();
    return { claudeVersion: o.claude_version, cwd: o.cwd, format: 1, sessionId: o.session_id };
  } catch {
    throw invalid("bad session metadata");
  }
}

async function readAll(body: AsyncIterable<Uint8Array>, size: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  let o = 0;
  for await (const c of body) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** What a pass over a bundle hands to its visitor; each body must be read before it returns. */
export interface BundleVisitor {
  /** the transcript's bytes (absent: skipped) */
  transcript?: (body: AsyncIterable<Uint8Array>, meta: BundleMeta) => Promise<void>;
  /** a sidecar file (path relative to `<id>/`) (absent: skipped) */
  sidecar?: (rel: string, body: AsyncIterable<Uint8Array>, size: number) => Promise<void>;
}

/** The shape of a bundle, as one pass found it. */
export interface BundleShape {
  meta: BundleMeta;
  transcriptSize: number;
  sidecar: Map<string, number>;
}

/**
 * One streamed pass over a bundle (gunzip → tar → each file to `visit`), checking every rule
 * of PROTOCOL.md §6.1 on the way. Memory is bounded by a tar block, a pax header and what the
 * visitor keeps, whatever the bundle.
 * @throws CipherpostError("invalid_material") when any rule fails
 */
export async function readBundle(
  src: BundleSource,
  visit: BundleVisitor = {},
): Promise<BundleShape> {
  let meta: BundleMeta | null = null;
  let transcriptSize = -1;
  const sidecar = new Map<string, number>();
  const dirs = new Set<string>();
  try {
    for await (const { entry, body } of readTar(unpacked(opener(src)))) {
      if (entry.type !== "file") throw invalid("bundle holds something other than files");
      if (meta === null) {
        if (entry.path !== META_ENTRY || entry.size > MAX_META) {
          throw invalid("no session metadata");
        }
        meta = parseMeta(await readAll(body, entry.size));
        continue;
      }
      const id = meta.sessionId;
      if (transcriptSize < 0) {
        if (entry.path !== `${id}.jsonl`) throw invalid("transcript missing");
        transcriptSize = entry.size;
        await visit.transcript?.(body, meta);
        continue;
      }
      if (!entry.path.startsWith(`${id}/`)) {
        if (entry.path === META_ENTRY || entry.path === `${id}.jsonl`) {
          throw invalid("a path appears twice");
        }
        throw invalid("a file outside the session");
      }
      const rel = entry.path.slice(id.length + 1);
      if (!safeRelative(rel)) throw invalid("unsafe path in bundle");
      if (sidecar.has(rel)) throw invalid("a path appears twice");
      // a file may not also be a folder of another file (either order): placing would fail
      if (dirs.has(rel)) throw invalid("a path is both a file and a folder");
      for (let i = rel.indexOf("/"); i > 0; i = rel.indexOf("/", i + 1)) {
        const dir = rel.slice(0, i);
        if (sidecar.has(dir)) throw invalid("a path is both a file and a folder");
        dirs.add(dir);
      }
      if (sidecar.size >= MAX_SIDECAR_FILES) {
        throw invalid(`more than ${MAX_SIDECAR_FILES} sidecar files`);
      }
      sidecar.set(rel, entry.size);
      await visit.sidecar?.(rel, body, entry.size);
    }
  } catch (e) {
    if (e instanceof CipherpostError) throw e;
    throw invalid(`bad tar: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (meta === null) throw invalid("no session metadata");
  if (transcriptSize < 0) throw invalid("transcript missing");
  return { meta, transcriptSize, sidecar };
}

/**
 * Gunzip, untar and validate a bundle (every rule of PROTOCOL.md §6.1), reading the transcript's
 * facts line by line on the way; nothing of the bundle's files is kept. `src` is the compressed
 * bytes, or a function that opens them (e.g. a kept file), called again by each later pass.
 * @throws CipherpostError("invalid_material") when any rule fails
 */
export async function parseBundle(src: BundleSource): Promise<Bundle> {
  const facts = new FactsReader();
  const shape = await readBundle(src, {
    transcript: (body) => splitLines(body, LINE_CAP, facts),
  });
  return { ...shape, facts: facts.facts, open: opener(src) };
}

/** {@link parseBundle} of a bundle file, opened again for every pass (never read whole). */
export function parseBundleFile(path: string): Promise<Bundle> {
  return parseBundle(() => {
    let f: Deno.FsFile | null = null;
    return new ReadableStream<Uint8Array>({
      async pull(c) {
        f ??= await Deno.open(path, { read: true });
        const buf = new Uint8Array(64 * 1024);
        const n = await f.read(buf);
        if (n === null) {
          f.close();
          c.close();
        } else c.enqueue(buf.subarray(0, n));
      },
      cancel() {
        f?.close();
      },
    });
  });
}
