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
 * @module
 */

import { CipherpostError } from "../util/errors.ts";
import { writeFileAtomic } from "../util/fsutil.ts";
import type { Bundle } from "./bundle.ts";
import { projectsDir } from "./config.ts";
import { listSessions } from "./discover.ts";
import { findProjectDirName } from "./project_dir.ts";
import { transcriptLines } from "./transcript.ts";

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
  action: PlaceAction;
  /** the ID `claude --resume` takes (new when forked) */
  sessionId: string;
  originalId: string;
  /** physical target directory */
  targetDir: string;
  /** `<config>/projects/<enc>` */
  folder: string;
  /** the sender's directory differs from the target: paths were rewritten */
  rewritten: boolean;
  transcript: Uint8Array;
  sidecar: Map<string, Uint8Array>;
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

function rewritePath(v: string, from: string, to: string): string {
  if (v === from) return to;
  if (v.startsWith(`${from}/`)) return to + v.slice(from.length);
  return v;
}

/** Rewrite the working-directory fields of one parsed JSON value, in place; true if changed. */
function rewriteValue(o: unknown, from: string, to: string, fromId: string, toId: string): boolean {
  let changed = false;
  const marker = `Primary working directory: ${from}`;
  const walk = (x: unknown): unknown => {
    if (Array.isArray(x)) {
      for (let i = 0; i < x.length; i++) x[i] = walk(x[i]);
      return x;
    }
    if (typeof x === "string") {
      if (from !== to && x.includes(marker)) {
        const esc = marker.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
        const y = x.replace(
          new RegExp(`${esc}(?=[\\n/]|$)`, "g"),
          () => `Primary working directory: ${to}`,
        );
        if (y !== x) changed = true;
        return y;
      }
      return x;
    }
    if (typeof x === "object" && x !== null) {
      const r = x as Record<string, unknown>;
      for (const k of Object.keys(r)) {
        const v = r[k];
        if (typeof v === "string" && (k === "cwd" || k === "workingDirectory")) {
          const w = rewritePath(v, from, to);
          if (w !== v) {
            r[k] = w;
            changed = true;
          }
        } else if (k === "sessionId" && v === fromId && fromId !== toId) {
          r[k] = toId;
          changed = true;
        } else r[k] = walk(v);
      }
      return r;
    }
    return x;
  };
  walk(o);
  return changed;
}

/**
 * Rewrite a JSONL text: lines that mention `from` (or the session ID being replaced) are
 * parsed, rewritten and re-serialized; all other lines are kept byte for byte.
 */
export function rewriteJsonl(
  text: string,
  from: string,
  to: string,
  fromId = "",
  toId = "",
): string {
  const ends = text.endsWith("\n");
  const out = transcriptLines(text).map((line) => {
    const touch = (from !== to && line.includes(from)) ||
      (fromId !== toId && line.includes(fromId));
    if (!touch) return line;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      return line;
    }
    return rewriteValue(o, from, to, fromId, toId) ? JSON.stringify(o) : line;
  });
  return out.join("\n") + (ends && out.length ? "\n" : "");
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function rewriteFiles(
  b: Bundle,
  from: string,
  to: string,
  fromId: string,
  toId: string,
): { transcript: Uint8Array; sidecar: Map<string, Uint8Array> } {
  const conv = (bytes: Uint8Array) =>
    enc.encode(rewriteJsonl(dec.decode(bytes), from, to, fromId, toId));
  const sidecar = new Map<string, Uint8Array>();
  for (const [k, v] of b.sidecar) {
    sidecar.set(k, /\.(jsonl|json)$/.test(k) ? conv(v) : v);
  }
  return { transcript: conv(b.transcript), sidecar };
}

type Relation = "same" | "local_prefix" | "incoming_prefix" | "diverged";

function relation(local: string[], incoming: string[]): Relation {
  const n = Math.min(local.length, incoming.length);
  for (let i = 0; i < n; i++) if (local[i] !== incoming[i]) return "diverged";
  if (local.length === incoming.length) return "same";
  return local.length < incoming.length ? "local_prefix" : "incoming_prefix";
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
      throw new CipherpostError(
        "config",
        `configuration error: --project ${o.project} is not a directory`,
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
  const same = rewriteFiles(b, from, targetDir, id, id);
  const base = { originalId: id, targetDir, folder, rewritten };

  let existing: Uint8Array | null = null;
  try {
    existing = await Deno.readFile(`${folder}/${id}.jsonl`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (existing === null) return { ...base, action: "new", sessionId: id, ...same };
  const rel = relation(
    transcriptLines(dec.decode(existing)),
    transcriptLines(dec.decode(same.transcript)),
  );
  if (rel === "same") return { ...base, action: "same", sessionId: id, ...same };
  if (rel === "local_prefix") return { ...base, action: "replace", sessionId: id, ...same };
  if (rel === "incoming_prefix") return { ...base, action: "keep", sessionId: id, ...same };
  if (!o.fork) {
    throw new CipherpostError(
      "config",
      `session conflict: session ${id} here and the one received have diverged (each has turns the other lacks); nothing was placed`,
      "pass --fork to place the received one under a new session ID",
    );
  }
  const newId = (o.newId ?? (() => crypto.randomUUID()))();
  return {
    ...base,
    action: "fork",
    sessionId: newId,
    ...rewriteFiles(b, from, targetDir, id, newId),
  };
}

/** Write a planned placement (nothing for "keep" and "same"). */
export async function applyPlacement(p: Placement): Promise<void> {
  if (p.action === "keep" || p.action === "same") return;
  await Deno.mkdir(p.folder, { recursive: true, mode: 0o755 });
  const side = `${p.folder}/${p.sessionId}`;
  for (const [rel, bytes] of p.sidecar) {
    const path = `${side}/${rel}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true, mode: 0o755 });
    await writeFileAtomic(path, bytes, 0o600);
  }
  await writeFileAtomic(`${p.folder}/${p.sessionId}.jsonl`, p.transcript, 0o600);
}
