/**
 * What Claude sync carries (docs/PROTOCOL.md §8.4): the `sessions` and `full` scopes, the
 * optional entries, the user's exclude globs, the files never synced, and the walk over a
 * config folder.
 *
 * @module
 */

import { CipherpostError } from "../util/errors.ts";

/** The top-level entries of the `sessions` scope. */
export const SESSIONS_SCOPE: readonly string[] = ["projects", "history.jsonl", "tasks", "plans"];

/**
 * The top-level entries of the `full` scope: `sessions` plus the user's own configuration.
 * `plugins/` is not in it (installed plugin trees are large and machine-specific): it is an
 * {@link OPTIONAL_ENTRIES optional entry}.
 */
export const FULL_SCOPE: readonly string[] = [
  ...SESSIONS_SCOPE,
  "CLAUDE.md",
  "settings.json",
  "settings.local.json",
  "agents",
  "commands",
  "skills",
  "rules",
  "workflows",
  "output-styles",
];

/** Top-level entries that only an explicit include adds (to either scope). */
export const OPTIONAL_ENTRIES: readonly string[] = ["plugins"];

/** The scopes. */
export type ScopeName = "sessions" | "full";

/** What one machine syncs: the scope's entries, the includes, minus the exclude globs. */
export interface ScopeRules {
  /** the top-level entries walked */
  tops: readonly string[];
  /** compiled exclude globs */
  excludes: readonly RegExp[];
}

/** The `sessions` scope without excludes (the default). */
export const DEFAULT_RULES: ScopeRules = { tops: SESSIONS_SCOPE, excludes: [] };

/** Longest exclude glob accepted. */
export const MAX_GLOB = 512;
/** Most exclude globs accepted. */
export const MAX_GLOBS = 256;

/**
 * A glob's regular expression, or null when the glob is not acceptable (empty, too long, a
 * control character, `..` or a leading `/`). `*` is any run of characters but `/`, `**` any run
 * including `/`, `?` one character but `/`; everything else is literal. A glob without `/`
 * is tried against every name in the path; one with `/` against the path from the config
 * folder. A glob that matches a folder matches everything below it.
 */
export function globRegExp(glob: string): RegExp | null {
  let g = glob.replace(/\/+$/, "");
  // deno-lint-ignore no-control-regex
  if (!g || g.length > MAX_GLOB || /[\u0000-\u001f\u007f]/.test(g)) return null;
  if (g.startsWith("/") || g.split("/").includes("..")) return null;
  const anywhere = !g.includes("/");
  if (g.startsWith("./")) g = g.slice(2);
  let re = "";
  for (let i = 0; i < g.length; i++) {
    const c = g[i];
    if (c === "*" && g[i + 1] === "*") {
      if (g[i + 2] === "/") {
        re += "(?:.*/)?";
        i += 2;
      } else {
        re += ".*";
        i++;
      }
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(anywhere ? `(?:^|/)${re}(?:/|$)` : `^${re}(?:/|$)`);
}

/**
 * The rules of a scope with optional entries and exclude globs.
 * @throws CipherpostError `config` for an unknown scope, include or a glob {@link globRegExp}
 *   does not accept
 */
export function scopeRules(
  scope: ScopeName,
  include: readonly string[] = [],
  exclude: readonly string[] = [],
): ScopeRules {
  const base = scope === "full" ? FULL_SCOPE : scope === "sessions" ? SESSIONS_SCOPE : null;
  if (base === null) {
    throw new CipherpostError("config", "configuration error: the sync scope is sessions or full");
  }
  const tops = [...base];
  for (const i of include) {
    if (!OPTIONAL_ENTRIES.includes(i) && !FULL_SCOPE.includes(i)) {
      throw new CipherpostError(
        "config",
        `configuration error: cannot include ${JSON.stringify(i)} (one of: ${
          [...OPTIONAL_ENTRIES, ...FULL_SCOPE].join(", ")
        })`,
      );
    }
    if (!tops.includes(i)) tops.push(i);
  }
  if (exclude.length > MAX_GLOBS) {
    throw new CipherpostError("config", `configuration error: more than ${MAX_GLOBS} excludes`);
  }
  const excludes = exclude.map((g) => {
    const re = globRegExp(g);
    if (!re) {
      throw new CipherpostError(
        "config",
        `configuration error: ${JSON.stringify(g.slice(0, 80))} is not an exclude glob`,
      );
    }
    return re;
  });
  return { tops, excludes };
}

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

/** True when a config-relative path is in the scope of `rules` (default: `sessions`). */
export function inScope(rel: string, rules: ScopeRules = DEFAULT_RULES): boolean {
  if (excluded(rel)) return false;
  if (!rules.tops.some((s) => rel === s || rel.startsWith(`${s}/`))) return false;
  return !rules.excludes.some((re) => re.test(rel));
}

/** A regular file found by {@link walkScope}. */
export interface FoundFile {
  /** config-relative path */
  rel: string;
  info: Deno.FileInfo;
}

/**
 * Every regular file of the scope (`rules`, default `sessions`) below `configDir`, sorted by
 * path within each top-level entry; symbolic links and other nodes are skipped, excluded
 * folders are not entered. More than {@link MAX_FILES} is an error. `onTemp` gets the
 * config-relative path of every temp file a killed pull left (`.cpsync-*.tmp`).
 */
export async function walkScope(
  configDir: string,
  onTemp?: (rel: string) => void,
  rules: ScopeRules = DEFAULT_RULES,
): Promise<FoundFile[]> {
  const dropped = (p: string) => excluded(p) || rules.excludes.some((re) => re.test(p));
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
      if (dropped(p)) continue;
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
  for (const top of rules.tops) {
    if (dropped(top)) continue;
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(`${configDir}/${top}`);
    } catch {
      continue;
    }
    if (info.isDirectory) await visit(top, 1);
    else if (info.isFile) out.push({ rel: top, info });
  }
  return out;
}
