/**
 * Placing a received session where `claude --resume` finds it (issue 11 "Placing"):
 *
 * - target directory: `--project DIR`; else the directory of a transcript with the same ID
 *   already here (a hand-back returns home); else the session's original directory if it
 *   exists here; else the current directory. Its physical path names the folder.
 * - when the target differs from the sender's directory, every `cwd` and every
 *   `workingDirectory` (the environment snapshot), and the "Primary working directory" line of
 *   the rendered environment, are rewritten (paths below the directory keep their tail);
 *   other lines stay byte for byte.
 * - same ID here: incoming extends local → replace; local extends incoming → keep (and say
 *   so); equal → nothing to do; diverged → refuse, or with `fork` place it under a new ID.
 * - sidecar files first, transcript last, each written atomically; files 0600, folders 0755
 *   (Claude Code's modes).
 *
 * Nothing is held in memory: the bundle is streamed again for the comparison and for writing,
 * and rewriting works line by line on the JSON text (lines over `LINE_CAP` pass unchanged).
 *
 * @module
 */

import { CipherpostError, configError } from "../util/errors.ts";
import { writeFileAtomic } from "../util/fsutil.ts";
import { type Bundle, readBundle } from "./bundle.ts";
import { projectsDir } from "./config.ts";
import { listSessions } from "./discover.ts";
import { findProjectDirName } from "./project_dir.ts";
import { LINE_CAP, type LineSink, LineSplitter } from "./transcript.ts";

/** Where and how to place. */
export interface PlaceOptions {
  configDir: string;
  /** the current directory */
  cwd: string;
  /** `--project DIR` */
  project?: string;
  /** on divergence, place under a new ID instead of refusing */
  fork: boolean;
  /** new session IDs (tests may fix them) */
  newId?: () => string;
}

/** What placing will do or did. */
export type PlaceAction = "new" | "replace" | "keep" | "same" | "fork";

/** A planned placement. Nothing is written until {@link applyPlacement}. */
export interface Placement {
  /** What placing does to a local copy of the same session. */
  action: PlaceAction;
  /** the ID `claude --resume` takes (new when forked) */
  sessionId: string;
  /** The session's ID as it arrived. */
  originalId: string;
  /** physical target directory */
  targetDir: string;
  /** `<config>/projects/<enc>` */
  folder: string;
  /** the sender's directory differs from the target: paths were rewritten */
  rewritten: boolean;
  /** the bundle to write */
  bundle: Bundle;
  /** the sender's directory, rewritten to `targetDir` */
  from: string;
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

const escRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
/** A string as it appears inside a JSON string literal (as JSON.stringify writes it). */
const inJson = (s: string) => JSON.stringify(s).slice(1, -1);

/**
 * Rewrites the working-directory fields of JSONL text in place, on the JSON text itself (the
 * compact JSON Claude Code writes): every `"cwd"` and `"workingDirectory"` string equal to
 * `from` or below it, the "Primary working directory" line of the rendered environment, and
 * (for a fork) `"sessionId"` equal to the replaced ID. All other bytes stay as they are.
 */
export class Rewriter {
  readonly #subs: [RegExp, string][] = [];
  readonly #needles: string[] = [];

  constructor(from: string, to: string, fromId = "", toId = "") {
    if (from !== to) {
      const [f, t] = [escRe(inJson(from)), inJson(to)];
      this.#subs.push(
        [new RegExp(`("(?:cwd|workingDirectory)":")${f}(?=["/])`, "g"), t],
        [new RegExp(`(Primary working directory: )${f}(?=\\\\n|/|")`, "g"), t],
      );
      this.#needles.push(inJson(from));
    }
    if (fromId !== toId) {
      this.#subs.push([new RegExp(`("sessionId":")${escRe(inJson(fromId))}(?=")`, "g"), toId]);
      this.#needles.push(fromId);
    }
  }

  /** True when there is something to rewrite. */
  get active(): boolean {
    return this.#subs.length > 0;
  }

  /** Rewrite text (a line, or whole lines). */
  text(s: string): string {
    if (!this.#needles.some((n) => s.includes(n))) return s;
    for (const [re, to] of this.#subs) s = s.replace(re, (_m, head: string) => head + to);
    return s;
  }
}

/**
 * Rewrite a JSONL text (see {@link Rewriter}): lines that hold `from` (or the session ID being
 * replaced) in a working-directory field are changed there; all other bytes stay.
 */
export function rewriteJsonl(
  text: string,
  from: string,
  to: string,
  fromId = "",
  toId = "",
): string {
  return new Rewriter(from, to, fromId, toId).text(text);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A {@link LineSink} that collects the rewritten stream, unchanged runs as views of the input. */
class RewriteSink implements LineSink {
  #out: Uint8Array[] = [];
  #run: Uint8Array | null = null;
  #start = 0;
  #end = 0;

  constructor(private readonly rw: Rewriter) {}

  line(buf: Uint8Array, start: number, end: number, nl: boolean): void {
    const stop = nl ? end + 1 : end;
    if (end > start) {
      const text = dec.decode(buf.subarray(start, end));
      const out = this.rw.text(text);
      if (out !== text) {
        this.#flush();
        this.#out.push(enc.encode(nl ? `${out}\n` : out));
        return;
      }
    }
    if (this.#run === buf && this.#end === start) {
      this.#end = stop;
      return;
    }
    this.#flush();
    [this.#run, this.#start, this.#end] = [buf, start, stop];
  }

  empty(buf: Uint8Array, start: number, end: number): void {
    if (this.#run === buf && this.#end === start) {
      this.#end = end;
      return;
    }
    this.#flush();
    [this.#run, this.#start, this.#end] = [buf, start, end];
  }

  long(piece: Uint8Array): void {
    this.#flush();
    this.#out.push(piece);
  }

  #flush(): void {
    if (this.#run && this.#end > this.#start) {
      this.#out.push(this.#run.subarray(this.#start, this.#end));
    }
    this.#run = null;
  }

  take(): Uint8Array[] {
    this.#flush();
    const o = this.#out;
    this.#out = [];
    return o;
  }
}

/** A JSONL byte stream rewritten line by line (see {@link Rewriter}). */
export async function* rewriteStream(
  chunks: AsyncIterable<Uint8Array>,
  rw: Rewriter,
): AsyncGenerator<Uint8Array> {
  if (!rw.active) {
    yield* chunks;
    return;
  }
  const sink = new RewriteSink(rw);
  const split = new LineSplitter(LINE_CAP, sink);
  for await (const c of chunks) {
    split.push(c);
    yield* sink.take();
  }
  split.end();
  yield* sink.take();
}

type Relation = "same" | "local_prefix" | "incoming_prefix" | "diverged";

const NL = new Uint8Array([0x0a]);

/** The stream with a newline added after a last line that has none. */
async function* wholeLines(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let last = 0x0a;
  for await (const c of chunks) {
    if (c.length === 0) continue;
    last = c[c.length - 1];
    yield c;
  }
  if (last !== 0x0a) yield NL;
}

/**
 * How two transcripts relate as lists of lines, compared as streams: with a newline added after
 * an unterminated last line, one list of lines is a prefix of the other exactly when its bytes
 * are a prefix of the other's bytes.
 */
async function relation(
  local: AsyncIterable<Uint8Array>,
  incoming: AsyncIterable<Uint8Array>,
): Promise<Relation> {
  const a = wholeLines(local);
  const b = wholeLines(incoming);
  let [ab, ao, bb, bo]: [Uint8Array, number, Uint8Array, number] = [
    new Uint8Array(),
    0,
    new Uint8Array(),
    0,
  ];
  try {
    while (true) {
      if (ao >= ab.length) {
        const r = await a.next();
        if (!r.done) [ab, ao] = [r.value, 0];
      }
      if (bo >= bb.length) {
        const r = await b.next();
        if (!r.done) [bb, bo] = [r.value, 0];
      }
      const [aEnd, bEnd] = [ao >= ab.length, bo >= bb.length];
      if (aEnd && bEnd) return "same";
      if (aEnd) return "local_prefix";
      if (bEnd) return "incoming_prefix";
      const n = Math.min(ab.length - ao, bb.length - bo);
      for (let i = 0; i < n; i++) if (ab[ao + i] !== bb[bo + i]) return "diverged";
      ao += n;
      bo += n;
    }
  } finally {
    await a.return(undefined);
    await b.return(undefined);
  }
}

/**
 * Decide the target and what to write.
 * @throws CipherpostError("config") when `--project` is not a directory, or when a local
 *   transcript with the same ID has diverged and `fork` is off
 */
export async function planPlacement(b: Bundle, o: PlaceOptions): Promise<Placement> {
  const id = b.meta.sessionId;
  let target: string;
  const local = (await listSessions(o.configDir)).filter((s) => s.sessionId === id);
  if (o.project !== undefined) {
    if (!await isDir(o.project)) {
      throw configError(
        `--project ${o.project} is not a directory`,
      );
    }
    target = o.project;
  } else {
    let home: string | null = null;
    for (const s of local) if (s.cwd && await isDir(s.cwd)) home ??= s.cwd;
    if (home) target = home;
    else if (b.meta.cwd && await isDir(b.meta.cwd)) target = b.meta.cwd;
    else target = o.cwd;
  }
  const targetDir = await Deno.realPath(target);
  const root = projectsDir(o.configDir);
  const folder = `${root}/${await findProjectDirName(root, targetDir)}`;
  const from = b.meta.cwd || targetDir;
  const rewritten = from !== targetDir;
  const base = { originalId: id, targetDir, folder, rewritten, bundle: b, from };

  let here: Deno.FsFile;
  try {
    here = await Deno.open(`${folder}/${id}.jsonl`, { read: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    return { ...base, action: "new", sessionId: id };
  }
  let rel = "diverged" as Relation;
  try {
    await readBundle(b.open, {
      transcript: async (body) => {
        rel = await relation(here.readable, rewriteStream(body, new Rewriter(from, targetDir)));
      },
    });
  } finally {
    try {
      here.close();
    } catch { /* the stream closed it */ }
  }
  if (rel === "same") return { ...base, action: "same", sessionId: id };
  if (rel === "local_prefix") return { ...base, action: "replace", sessionId: id };
  if (rel === "incoming_prefix") return { ...base, action: "keep", sessionId: id };
  if (!o.fork) {
    throw new CipherpostError(
      "config",
      `session conflict: session ${id} here and the one received have diverged (each has turns the other lacks); nothing was placed`,
      "pass --fork to place the received one under a new session ID",
    );
  }
  const newId = (o.newId ?? (() => crypto.randomUUID()))();
  return { ...base, action: "fork", sessionId: newId };
}

/**
 * Write a planned placement (nothing for "keep" and "same"): one pass over the bundle writes
 * the sidecar files, a second the transcript, each streamed (rewritten line by line) into an
 * atomic write.
 */
export async function applyPlacement(p: Placement): Promise<void> {
  if (p.action === "keep" || p.action === "same") return;
  const rw = new Rewriter(p.from, p.targetDir, p.originalId, p.sessionId);
  await Deno.mkdir(p.folder, { recursive: true, mode: 0o755 });
  const side = `${p.folder}/${p.sessionId}`;
  await readBundle(p.bundle.open, {
    sidecar: async (rel, body) => {
      const path = `${side}/${rel}`;
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true, mode: 0o755 });
      await writeFileAtomic(
        path,
        /\.(jsonl|json)$/.test(rel) ? rewriteStream(body, rw) : body,
        0o600,
      );
    },
  });
  await readBundle(p.bundle.open, {
    transcript: (body) =>
      writeFileAtomic(`${p.folder}/${p.sessionId}.jsonl`, rewriteStream(body, rw), 0o600),
  });
}
