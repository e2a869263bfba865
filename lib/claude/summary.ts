/**
 * What the acceptance screen and `claude list` show about a session: project path, session
 * ID, message count, the last prompt shortened and escaped, and the size. Everything that came
 * from a transcript is escaped before it can reach a terminal.
 *
 * @module
 */

import type { Bundle } from "./bundle.ts";

/** The shown facts of a session. */
export interface SessionSummary {
  /** The session's ID. */
  sessionId: string;
  /** The project folder the transcript records (sender-controlled). */
  project: string;
  /** User and assistant messages in the transcript. */
  messages: number;
  /** The last prompt typed (sender-controlled), or null. */
  lastPrompt: string | null;
  /** bytes of the transcript plus sidecar files */
  size: number;
  /** Files in the session's sidecar folder. */
  sidecarFiles: number;
  /** The Claude Code version that wrote it (sender-controlled). */
  claudeVersion: string;
}

/**
 * Escape text for a terminal: C0, DEL and C1 controls, line and paragraph separators and the
 * bidirectional overrides become `\xNN` / `\u{…}`; a backslash becomes `\\`.
 */
export function escapeText(s: string): string {
  return s.replace(
    // deno-lint-ignore no-control-regex
    /[\\\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g,
    (c) => {
      if (c === "\\") return "\\\\";
      if (c === "\n") return "\\n";
      if (c === "\t") return "\\t";
      const n = c.codePointAt(0)!;
      return n <= 0xff ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u{${n.toString(16)}}`;
    },
  );
}

/** At most `limit` characters (code points); longer text ends in `…`. */
export function shorten(s: string, limit = 72): string {
  const chars = Array.from(s.replace(/\s+/g, " ").trim());
  return chars.length <= limit ? chars.join("") : chars.slice(0, limit - 1).join("") + "…";
}

/** The summary of a received bundle. */
export function summarizeBundle(b: Bundle): SessionSummary {
  const f = b.facts;
  let size = b.transcriptSize;
  for (const v of b.sidecar.values()) size += v;
  return {
    sessionId: b.meta.sessionId,
    project: b.meta.cwd || f.cwd || "",
    messages: f.messages,
    lastPrompt: f.lastPrompt,
    size,
    sidecarFiles: b.sidecar.size,
    claudeVersion: b.meta.claudeVersion,
  };
}

/** Bytes as `123 B`, `4.5 KiB`, `1.2 MiB`. */
export function formatSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** The session lines of the acceptance screen (every value escaped). */
export function summaryLines(s: SessionSummary, bundleBytes: number): string[] {
  const prompt = s.lastPrompt === null ? "(none)" : `"${escapeText(shorten(s.lastPrompt))}"`;
  return [
    `--- Claude Code session ${"-".repeat(41)}`,
    `Project:     ${escapeText(s.project)}`,
    `Session:     ${s.sessionId}`,
    `Messages:    ${s.messages}`,
    `Last prompt: ${prompt}`,
    `Size:        ${formatSize(s.size)} (${s.sidecarFiles} sidecar files; ${
      formatSize(bundleBytes)
    } compressed)`,
    ...(s.claudeVersion ? [`Written by:  Claude Code ${escapeText(s.claudeVersion)}`] : []),
  ];
}
