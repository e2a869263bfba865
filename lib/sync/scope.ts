/**
 * What Claude sync carries (docs/PROTOCOL.md §8.4): the `sessions` scope, the files never
 * synced, and the walk over a config folder.
 *
 * @module
 */

import { CipherpostError } from "../util/errors.ts";

/** The top-level entries of the `sessions` scope. */
export const SESSIONS_SCOPE: readonly string[] = ["projects", "history.jsonl", "tasks", "plans"];

/** The suffix of a conflict copy: `<file>.sync-conflict-<UTC time>` (never synced). */
export const CONFLICT_MARK = ".sync-conflict-";

/** Most files one sync walks. */
export const MAX_FILES = 200_000;
/** Deepest folder nesting walked. */
const MAX_DEPTH = 32;

/** True when a config-relative path is never synced, whatever the scope. */
export function excluded(rel: string): boolean {
  const name = rel.slice(rel.lastIndexOf("/") + 1);
  if (rel === ".credentials.json" || rel.startsWith("sessions/")) return true;
  if (name.startsWith(".claude.json")) return true;
  if (name.endsWith(".lock") || name.endsWith(".tmp")) return true;
  if (name.includes(CONFLICT_MARK)) return true;
  // temp files of our own writers and of Claude Code's
  if (name.startsWith(".cipherpost-") || name.startsWith(".cpsync-")) return true;
  return false;
}

/** True when a config-relative path is in the `sessions` scope. */
export function inScope(rel: string): boolean {
  if (excluded(rel)) return false;
  return SESSIONS_SCOPE.some((s) => rel === s || rel.startsWith(`${s}/`));
}

/** A regular file found by {@link walkScope}. */
export interface FoundFile {
  /** config-relative path */
  rel: string;
  info: Deno.FileInfo;
}

/**
 * Every regular file of the scope below `configDir`, sorted by path; symbolic links and other
 * nodes are skipped. More than {@link MAX_FILES} is an error. `onTemp` gets the
 * config-relative path of every temp file a killed pull left (`.cpsync-*.tmp`).
 */
export async function walkScope(
  configDir: string,
  onTemp?: (rel: string) => void,
): Promise<FoundFile[]> {
  const out: FoundFile[] = [];
  const visit = async (rel: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) return;
    let names: string[];
    try {
      names = [];
      for await (const e of Deno.readDir(`${configDir}/${rel}`)) names.push(e.name);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    names.sort();
    for (const n of names) {
      const p = rel ? `${rel}/${n}` : n;
      if (/^\.cpsync-[0-9a-f]{8}\.tmp$/.test(n)) onTemp?.(p);
      if (excluded(p)) continue;
      let info: Deno.FileInfo;
      try {
        info = await Deno.lstat(`${configDir}/${p}`);
      } catch {
        continue;
      }
      if (info.isDirectory) await visit(p, depth + 1);
      else if (info.isFile) {
        out.push({ rel: p, info });
        if (out.length > MAX_FILES) {
          throw new CipherpostError(
            "config",
            `configuration error: more than ${MAX_FILES} files in the sync scope`,
          );
        }
      }
    }
  };
  if (onTemp) {
    try {
      for await (const e of Deno.readDir(configDir)) {
        if (e.isFile && /^\.cpsync-[0-9a-f]{8}\.tmp$/.test(e.name)) onTemp(e.name);
      }
    } catch { /* no config folder yet */ }
  }
  for (const top of SESSIONS_SCOPE) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(`${configDir}/${top}`);
    } catch {
      continue;
    }
    if (info.isDirectory) await visit(top, 1);
    else if (info.isFile && !excluded(top)) out.push({ rel: top, info });
  }
  return out;
}
