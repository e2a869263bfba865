/**
 * Reading facts out of a Claude Code transcript (JSONL, one object per line; the format is
 * Claude Code's own and unstable, so every reader here tolerates lines it does not know).
 *
 * @module
 */

/** How far into a transcript the first `cwd` is looked for. */
const HEAD_BYTES = 256 * 1024;
const HEAD_LINES = 50;

/** The lines of a transcript (the trailing empty piece after the last newline dropped). */
export function transcriptLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

function parseLine(line: string): Record<string, unknown> | null {
  try {
    const o = JSON.parse(line);
    return typeof o === "object" && o !== null && !Array.isArray(o) ? o : null;
  } catch {
    return null;
  }
}

/** The first non-empty `cwd` among the first lines of `text`, or null. */
export function firstCwdOf(text: string): string | null {
  const lines = transcriptLines(text).slice(0, HEAD_LINES);
  for (const l of lines) {
    const o = parseLine(l);
    if (o && typeof o.cwd === "string" && o.cwd !== "") return o.cwd;
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
    return firstCwdOf(new TextDecoder().decode(buf.subarray(0, n)));
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

/** Count messages and find the start directory, last prompt and version of a transcript. */
export function transcriptFacts(text: string): TranscriptFacts {
  let cwd: string | null = null;
  let messages = 0;
  let lastPrompt: string | null = null;
  let lastTyped: string | null = null;
  let version = "";
  for (const l of transcriptLines(text)) {
    const o = parseLine(l);
    if (!o) continue;
    if (cwd === null && typeof o.cwd === "string" && o.cwd !== "") cwd = o.cwd;
    if (typeof o.version === "string") version = o.version;
    if (o.type === "user" || o.type === "assistant") messages++;
    if (o.type === "last-prompt" && typeof o.lastPrompt === "string") lastPrompt = o.lastPrompt;
    if (o.type === "user" && o.isMeta !== true && o.isSidechain !== true) {
      const t = promptText(o);
      if (t !== null) lastTyped = t;
    }
  }
  return { cwd, messages, lastPrompt: lastPrompt ?? lastTyped, version };
}
