/**
 * Reading facts out of a Claude Code transcript (JSONL, one object per line; the format is
 * Claude Code's own and unstable, so every reader here tolerates lines it does not know).
 *
 * Everything here works line by line on a stream, in memory bounded by {@link LINE_CAP}
 * whatever the transcript (PROTOCOL.md §6.1): empty lines cost nothing, lines over
 * {@link PARSE_CAP} are never given to `JSON.parse`, lines over {@link LINE_CAP} are never held
 * whole (they pass through byte for byte).
 *
 * @module
 */

/** How far into a transcript the first `cwd` is looked for. */
const HEAD_BYTES = 256 * 1024;
const HEAD_LINES = 50;

/**
 * Longest line held whole (for rewriting paths, §6.1). Claude Code writes a tool result into
 * its line: a 12.8-million-character line was reported for a `git diff` (anthropics/claude-code
 * issue 24118). Longer lines pass through unchanged, in pieces.
 */
export const LINE_CAP = 16 * 1024 * 1024;

/**
 * Longest line given to `JSON.parse` for the summary. Parsing builds every nested value: a
 * hostile 4 MiB line of `{},{},…` took 230 MB of RSS, 16 MiB 640 MB (measured, Deno 2.9.6), so
 * the cap keeps a parse near 50 MB. Lines that long are tool output or progress records, not
 * the prompts and turns the summary counts.
 */
export const PARSE_CAP = 1024 * 1024;

/** Receives the lines of a byte stream from a {@link LineSplitter}. */
export interface LineSink {
  /**
   * A line of at most the splitter's cap: `buf[start, end)`, without its newline. `nl` says a
   * newline follows it, and then `buf[end]` is that newline. `buf` may be the caller's chunk:
   * read it during the call, or keep it unchanged.
   */
  line(buf: Uint8Array, start: number, end: number, nl: boolean): void;
  /** A piece of a line longer than the cap, as it came (the last piece holds its newline). */
  long?(piece: Uint8Array): void;
  /**
   * A run of empty lines, `buf[start, end)` all newlines (absent: {@link LineSink.line} is
   * called for each). Lets a stream of newlines cost one byte scan, not a call per line.
   */
  empty?(buf: Uint8Array, start: number, end: number): void;
}

/**
 * Splits a byte stream into lines without copying complete lines out of their chunk. Only a
 * line cut by a chunk boundary is gathered, up to `cap` bytes; a longer one goes to
 * {@link LineSink.long} in pieces.
 */
export class LineSplitter {
  #pend: Uint8Array[] = [];
  #pendLen = 0;
  #long = false;

  constructor(readonly cap: number, readonly sink: LineSink) {}

  /** Feed the next chunk. */
  push(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (chunk[i] === 0x0a && this.#pendLen === 0 && !this.#long) {
        let j = i + 1;
        while (j < chunk.length && chunk[j] === 0x0a) j++;
        if (this.sink.empty) this.sink.empty(chunk, i, j);
        else for (let k = i; k < j; k++) this.sink.line(chunk, k, k, true);
        i = j;
        continue;
      }
      const nl = chunk.indexOf(0x0a, i);
      const stop = nl < 0 ? chunk.length : nl;
      const upto = nl < 0 ? chunk.length : nl + 1;
      if (this.#long) {
        this.sink.long?.(chunk.subarray(i, upto));
        this.#long = nl < 0;
      } else if (this.#pendLen === 0 && nl >= 0 && stop - i <= this.cap) {
        this.sink.line(chunk, i, stop, true);
      } else if (this.#pendLen + stop - i > this.cap) {
        for (const p of this.#pend) this.sink.long?.(p);
        this.#pend = [];
        this.#pendLen = 0;
        this.sink.long?.(chunk.subarray(i, upto));
        this.#long = nl < 0;
      } else if (nl < 0) {
        this.#pend.push(chunk.slice(i));
        this.#pendLen += chunk.length - i;
      } else {
        const buf = this.#gather(chunk.subarray(i, stop), true);
        this.sink.line(buf, 0, buf.length - 1, true);
      }
      i = upto;
    }
  }

  /** The stream ended: a last line without a newline is delivered now. */
  end(): void {
    if (this.#pendLen > 0) {
      const buf = this.#gather(new Uint8Array(), false);
      this.sink.line(buf, 0, buf.length, false);
    }
    this.#long = false;
  }

  #gather(tail: Uint8Array, nl: boolean): Uint8Array {
    const buf = new Uint8Array(this.#pendLen + tail.length + (nl ? 1 : 0));
    let o = 0;
    for (const p of this.#pend) {
      buf.set(p, o);
      o += p.length;
    }
    buf.set(tail, o);
    if (nl) buf[buf.length - 1] = 0x0a;
    this.#pend = [];
    this.#pendLen = 0;
    return buf;
  }
}

const dec = new TextDecoder();

function parseLine(line: string): Record<string, unknown> | null {
  if (line.length === 0 || line.length > PARSE_CAP || line.charCodeAt(0) !== 0x7b) return null;
  try {
    const o = JSON.parse(line);
    return typeof o === "object" && o !== null && !Array.isArray(o) ? o : null;
  } catch {
    return null;
  }
}

/** The first non-empty `cwd` among the first lines of `text`, or null. */
export function firstCwdOf(text: string): string | null {
  let i = 0;
  for (let n = 0; n < HEAD_LINES && i < text.length; n++) {
    const j = text.indexOf("\n", i);
    const end = j < 0 ? text.length : j;
    const o = end - i > PARSE_CAP ? null : parseLine(text.slice(i, end));
    if (o && typeof o.cwd === "string" && o.cwd !== "") return o.cwd;
    i = end + 1;
  }
  return null;
}

/** The first `cwd` of a transcript file, reading only its head. */
export async function firstCwdOfFile(path: string): Promise<string | null> {
  const f = await Deno.open(path, { read: true });
  try {
    const buf = new Uint8Array(HEAD_BYTES);
    let n = 0;
    while (n < buf.length) {
      const r = await f.read(buf.subarray(n));
      if (r === null) break;
      n += r;
    }
    return firstCwdOf(dec.decode(buf.subarray(0, n)));
  } finally {
    f.close();
  }
}

/** Facts shown about a session. */
export interface TranscriptFacts {
  /** the first `cwd` (the start directory), or null */
  cwd: string | null;
  /** `user` and `assistant` lines */
  messages: number;
  /** the last prompt the user typed, or null */
  lastPrompt: string | null;
  /** the Claude Code version that last wrote the transcript, or "" */
  version: string;
}

function promptText(o: Record<string, unknown>): string | null {
  const m = o.message as { content?: unknown } | undefined;
  if (!m) return null;
  if (typeof m.content === "string") return m.content;
  if (Array.isArray(m.content)) {
    if (m.content.some((b) => b?.type === "tool_result")) return null;
    const texts = m.content.filter((b) => b?.type === "text" && typeof b.text === "string")
      .map((b) => b.text as string).filter((t) => !t.startsWith("<system-reminder>"));
    return texts.length ? texts.join(" ") : null;
  }
  return null;
}

/**
 * Gathers {@link TranscriptFacts} line by line: feed it as a {@link LineSink} (or call
 * {@link FactsReader.text} per line), then read {@link FactsReader.facts}. Empty lines and lines
 * over {@link PARSE_CAP} are skipped unparsed.
 */
export class FactsReader implements LineSink {
  #cwd: string | null = null;
  #messages = 0;
  #lastPrompt: string | null = null;
  #lastTyped: string | null = null;
  #version = "";

  /** {@link LineSink.empty}: nothing to read in empty lines */
  empty(): void {}

  /** {@link LineSink.line} */
  line(buf: Uint8Array, start: number, end: number): void {
    if (end === start || end - start > PARSE_CAP || buf[start] !== 0x7b) return;
    this.text(dec.decode(buf.subarray(start, end)));
  }

  /** One line of text. */
  text(l: string): void {
    const o = parseLine(l);
    if (!o) return;
    if (this.#cwd === null && typeof o.cwd === "string" && o.cwd !== "") this.#cwd = o.cwd;
    if (typeof o.version === "string") this.#version = o.version;
    if (o.type === "user" || o.type === "assistant") this.#messages++;
    if (o.type === "last-prompt" && typeof o.lastPrompt === "string") {
      this.#lastPrompt = o.lastPrompt;
    }
    if (o.type === "user" && o.isMeta !== true && o.isSidechain !== true) {
      const t = promptText(o);
      if (t !== null) this.#lastTyped = t;
    }
  }

  /** What was gathered so far. */
  get facts(): TranscriptFacts {
    return {
      cwd: this.#cwd,
      messages: this.#messages,
      lastPrompt: this.#lastPrompt ?? this.#lastTyped,
      version: this.#version,
    };
  }
}

/** Count messages and find the start directory, last prompt and version of a transcript. */
export function transcriptFacts(text: string): TranscriptFacts {
  const r = new FactsReader();
  let i = 0;
  while (i < text.length) {
    const j = text.indexOf("\n", i);
    const end = j < 0 ? text.length : j;
    if (end > i && end - i <= PARSE_CAP) r.text(text.slice(i, end));
    i = end + 1;
  }
  return r.facts;
}

/** Feed a byte stream through a {@link LineSplitter} into `sink`. */
export async function splitLines(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  cap: number,
  sink: LineSink,
): Promise<void> {
  const s = new LineSplitter(cap, sink);
  for await (const c of chunks) s.push(c);
  s.end();
}

/**
 * {@link transcriptFacts} of a transcript file, streamed: memory is bounded by
 * {@link PARSE_CAP} whatever the file (what `claude list` should call per session).
 */
export async function transcriptFactsOfFile(path: string): Promise<TranscriptFacts> {
  const f = await Deno.open(path, { read: true });
  const r = new FactsReader();
  await splitLines(f.readable, PARSE_CAP, r);
  return r.facts;
}
