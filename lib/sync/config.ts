/**
 * What this machine syncs (docs/PROTOCOL.md §8.4), kept in `$CIPHERPOST_HOME/sync/config.json`:
 * the scope, the optional entries included, the user's exclude globs, the path map and the
 * `mcpServers` opt-in. Local to the machine: it never travels (each machine decides what it
 * sends and what it accepts).
 *
 * @module
 */

import { fromUtf8, utf8 } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import { ensurePrivateDir, writeFileAtomic } from "../util/fsutil.ts";
import { HOME_TOKEN, type PathMapRule } from "./canonical.ts";
import { MAX_GLOBS, type ScopeName, type ScopeRules, scopeRules } from "./scope.ts";
import { withSyncLock } from "./lock.ts";
import { loadState, saveState, syncDir } from "./state.ts";

/** `sync/config.json`. */
export interface SyncConfig {
  /** `sessions` (the default) or `full` */
  scope: ScopeName;
  /** optional top-level entries added to the scope (e.g. `plugins`) */
  include: string[];
  /** globs of config-relative paths never synced from or to this machine */
  exclude: string[];
  /** the path map: other machines' root prefixes → local directories */
  map: PathMapRule[];
  /** sync the `mcpServers` object of Claude Code's `.claude.json` (nothing else of it) */
  mcpServers: boolean;
}

/** The configuration of a home that has none. */
export function defaultSyncConfig(): SyncConfig {
  return { scope: "sessions", include: [], exclude: [], map: [], mcpServers: false };
}

/** Most path map rules. */
const MAX_MAP = 256;
/** Longest path in a map rule. */
const MAX_PATH = 4096;

/** `sync/config.json` of a home. */
export function syncConfigPath(home: string): string {
  return `${syncDir(home)}/config.json`;
}

function normalDir(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, "") : p;
}

/**
 * A path map rule from `FROM=TO` (split at the first `=/`): `FROM` an absolute path, `${HOME}` or `${HOME}/…`; `TO` an absolute path; neither `/`
 * alone, a `.` or `..` component, a control character or over 4096 characters.
 * @throws CipherpostError `usage` for anything else
 */
export function parseMapRule(spec: string): PathMapRule {
  const i = spec.indexOf("=/");
  const bad = (why: string) =>
    new CipherpostError("usage", `--map takes FROM=TO with absolute paths: ${why}`);
  if (i < 0) throw bad("no =/ in it");
  const from = normalDir(spec.slice(0, i)), to = normalDir(spec.slice(i + 1));
  checkMapPath(from, true, bad);
  checkMapPath(to, false, bad);
  return { from, to };
}

function checkMapPath(p: string, token: boolean, bad: (why: string) => Error): void {
  const rest = token && (p === HOME_TOKEN || p.startsWith(`${HOME_TOKEN}/`))
    ? p.slice(HOME_TOKEN.length) || "/x"
    : p;
  if (!rest.startsWith("/") || rest === "/") throw bad(`${JSON.stringify(p)} is not absolute`);
  // deno-lint-ignore no-control-regex
  if (p.length > MAX_PATH || /[\u0000-\u001f\u007f]/.test(p)) throw bad("unreadable path");
  if (rest.split("/").some((c) => c === "." || c === "..")) throw bad(". or .. in a path");
}

/**
 * Check a configuration and compile its scope.
 * @throws CipherpostError `config` (or `usage` for a map rule) when something is not acceptable
 */
export function checkSyncConfig(c: SyncConfig): ScopeRules {
  const rules = scopeRules(c.scope, c.include, c.exclude);
  if (c.map.length > MAX_MAP) {
    throw new CipherpostError("config", `configuration error: more than ${MAX_MAP} map rules`);
  }
  for (const r of c.map) parseMapRule(`${r.from}=${r.to}`);
  return rules;
}

/**
 * The configuration of `home` (the default when there is none), checked.
 * @throws CipherpostError `config` when the file is not a configuration this version reads
 */
export function readSyncConfig(home: string): SyncConfig {
  const path = syncConfigPath(home);
  let text: string;
  try {
    text = fromUtf8(Deno.readFileSync(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return defaultSyncConfig();
    throw e;
  }
  const damaged = () => new CipherpostError("config", `configuration error: ${path} is damaged`);
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text);
  } catch {
    throw damaged();
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw damaged();
  const strings = (v: unknown, max: number) => {
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.length > max || v.some((x) => typeof x !== "string")) {
      throw damaged();
    }
    return v as string[];
  };
  const map = o.map ?? [];
  if (
    !Array.isArray(map) || map.length > MAX_MAP ||
    map.some((r) => typeof r?.from !== "string" || typeof r?.to !== "string")
  ) throw damaged();
  const c: SyncConfig = {
    scope: (o.scope ?? "sessions") as ScopeName,
    include: strings(o.include, 16),
    exclude: strings(o.exclude, MAX_GLOBS),
    map: (map as PathMapRule[]).map((r) => ({ from: r.from, to: r.to })),
    mcpServers: o.mcp_servers === true,
  };
  try {
    checkSyncConfig(c);
  } catch {
    throw damaged();
  }
  return c;
}

/**
 * Check and save the configuration of `home` (atomic, 0600).
 * @throws CipherpostError `config`/`usage` when it is not acceptable (nothing is written)
 */
export async function saveSyncConfig(home: string, c: SyncConfig): Promise<void> {
  checkSyncConfig(c);
  await ensurePrivateDir(syncDir(home));
  const o = {
    scope: c.scope,
    include: c.include,
    exclude: c.exclude,
    map: c.map,
    mcp_servers: c.mcpServers,
  };
  await writeFileAtomic(syncConfigPath(home), utf8(JSON.stringify(o, null, 2) + "\n"), 0o600);
}

/**
 * After the path map changed: forget the cached roots of the project folders (under the sync
 * lock), so the next push and pull compute them with the new map. A folder whose root changes
 * is sent under its new root; the old one is recorded as deleted.
 */
export async function forgetRoots(home: string): Promise<void> {
  await withSyncLock(home, async () => {
    const st = await loadState(home);
    if (Object.keys(st.roots).length === 0) return;
    st.roots = {};
    await saveState(home, st);
  });
}
