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
import { parseTar, tarEnd, type TarEntry, tarHeader, tarPadding } from "./tar.ts";
import { transcriptFacts } from "./transcript.ts";

/** The metadata entry's name. */
export const META_ENTRY = "cipherpost-session.json";
/** Largest uncompressed bundle a receiver accepts. */
export const MAX_UNPACKED = 256 * 1024 * 1024;

/** Where a session's files are on this machine. */
export interface SessionFiles {
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

/** A parsed, validated bundle. */
export interface Bundle {
  meta: BundleMeta;
  transcript: Uint8Array;
  /** sidecar files by path relative to `<id>/` */
  sidecar: Map<string, Uint8Array>;
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
  const facts = transcriptFacts(new TextDecoder().decode(transcript));
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
        c.enqueue(tarHeader(path, data.length, mtime) as Uint8Array<ArrayBuffer>);
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
        c.enqueue(tarEnd() as Uint8Array<ArrayBuffer>);
        c.close();
      } catch (e) {
        c.error(e);
      }
    },
  });
  const gz = tar.pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(gz).arrayBuffer());
}

function concatChunks(chunks: Uint8Array[], len: number): Uint8Array {
  const out = new Uint8Array(len);
  let o = 0;
  for (const c of chunks) {
    const n = Math.min(c.length, len - o);
    out.set(c.subarray(0, n), o);
    o += n;
    if (o >= len) break;
  }
  return out;
}

/** A transcript being written may end mid-line: keep whole lines only. */
function cutAtLastNewline(b: Uint8Array): Uint8Array {
  if (b.length === 0 || b[b.length - 1] === 0x0a) return b;
  const i = b.lastIndexOf(0x0a);
  return i < 0 ? b : b.subarray(0, i + 1);
}

async function gunzipCapped(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const c of stream) {
      total += c.length;
      if (total > MAX_UNPACKED) throw invalid("bundle unpacks to more than 256 MiB");
      chunks.push(c);
    }
  } catch (e) {
    if (e instanceof CipherpostError) throw e;
    throw invalid("not a gzip stream");
  }
  return concatChunks(chunks, total);
}

function safeRelative(path: string): boolean {
  // deno-lint-ignore no-control-regex
  if (path === "" || path.includes("\\") || /[\u0000-\u001f\u007f]/.test(path)) return false;
  return path.split("/").every((c) => c !== "" && c !== "." && c !== "..");
}

/**
 * Gunzip, untar and validate a bundle (every rule of PROTOCOL.md §6.1).
 * @throws CipherpostError("invalid_material") when any rule fails
 */
export async function parseBundle(bytes: Uint8Array): Promise<Bundle> {
  const entries: TarEntry[] = parseTar(await gunzipCapped(bytes));
  if (entries.length < 2 || entries[0].path !== META_ENTRY) throw invalid("no session metadata");
  let meta: BundleMeta;
  try {
    const o = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(entries[0].bytes));
    if (o.format !== 1) throw new Error();
    if (typeof o.session_id !== "string" || !isSessionId(o.session_id)) throw new Error();
    if (typeof o.cwd !== "string" || typeof o.claude_version !== "string") throw new Error();
    meta = { claudeVersion: o.claude_version, cwd: o.cwd, format: 1, sessionId: o.session_id };
  } catch {
    throw invalid("bad session metadata");
  }
  const id = meta.sessionId;
  if (entries[1].path !== `${id}.jsonl`) throw invalid("transcript missing");
  const seen = new Set<string>([META_ENTRY, entries[1].path]);
  const sidecar = new Map<string, Uint8Array>();
  for (const e of entries.slice(2)) {
    if (seen.has(e.path)) throw invalid("a path appears twice");
    seen.add(e.path);
    if (!e.path.startsWith(`${id}/`)) throw invalid("a file outside the session");
    const rel = e.path.slice(id.length + 1);
    if (!safeRelative(rel)) throw invalid("unsafe path in bundle");
    sidecar.set(rel, e.bytes);
  }
  return { meta, transcript: entries[1].bytes, sidecar };
}
