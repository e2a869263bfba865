/**
 * What the acceptance screen and `claude list` show about a session: project path, session
 * ID, message count, the last prompt shortened and escaped, and the size. Everything that came
 * from a transcript is escaped before it can reach a terminal.
 *
 * @module
 */

import type { Bundle } from "./bundle.ts";
import { formatBytes, truncate } from "../util/human.ts";
import { escapeControl } from "../util/encoding.ts";

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

/** At most `limit` characters (code points); longer text ends in `…`. */
export function shorten(s: string, limit = 72): string {
  return truncate(s.replace(/\s+/g, " ").trim(), limit);
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

/** The session lines of the acceptance screen (every value escaped). */
export function summaryLines(s: SessionSummary, bundleBytes: number): string[] {
  const prompt = s.lastPrompt === null
    ? "(none)"
    : `"${escapeControl(shorten(s.lastPrompt), { backslash: true })}"`;
  return [
    `--- Claude Code session ${"-".repeat(41)}`,
    `Project:     ${escapeControl(s.project, { backslash: true })}`,
    `Session:     ${s.sessionId}`,
    `Messages:    ${s.messages}`,
    `Last prompt: ${prompt}`,
    `Size:        ${formatBytes(s.size)} (${s.sidecarFiles} sidecar files; ${
      formatBytes(bundleBytes)
    } compressed)`,
    ...(s.claudeVersion
      ? [`Written by:  Claude Code ${escapeControl(s.claudeVersion, { backslash: true })}`]
      : []),
  ];
}
