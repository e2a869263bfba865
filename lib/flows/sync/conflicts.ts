/**
 * `claude sync conflicts`: the conflict copies pulls left here (never synced), and keeping one
 * side of each (docs/PROTOCOL.md §8.7). Local only: no network, no identity.
 *
 * @module
 */

import { withSyncLock } from "../../sync/lock.ts";
import { CONFLICT_MARK } from "../../sync/scope.ts";
import { loadState, saveState } from "../../sync/state.ts";
import { escapeControl } from "../../util/encoding.ts";
import { CipherpostError } from "../../util/errors.ts";
import type { SyncEnv } from "./common.ts";

/** A conflict copy. */
export interface ConflictCopy {
  /** the copy, relative to the config folder */
  copy: string;
  /** the file it is a copy of, relative to the config folder */
  file: string;
  /** when the pull made it (ISO 8601, from its name) */
  time: string;
  /** Its size in bytes. */
  size: number;
  /** which version the copy holds: the other device's (`remote`) or the local one that lost */
  side: "local" | "remote";
  /** the label of the device whose version met the local one, when recorded */
  from: string | null;
}

/** A copy resolved. */
export interface Resolution {
  /** the copy, relative to the config folder */
  copy: string;
  /** the file, relative to the config folder */
  file: string;
  /** `replaced`: the copy was renamed over the file; `removed`: the copy was deleted */
  action: "replaced" | "removed";
}

/** What `conflicts` found and did. */
export interface ConflictsResult {
  /** The copies left (after resolving, none of those resolved), sorted by file and time. */
  conflicts: ConflictCopy[];
  /** The copies resolved (with `keep`). */
  resolved: Resolution[];
}

const COPY_RE = /^(.+)\.sync-conflict-(\d{8})T(\d{6})Z$/;
/** Most entries walked when looking for copies. */
const MAX_ENTRIES = 200_000;
const MAX_DEPTH = 32;

async function findCopies(configDir: string): Promise<{ rel: string; size: number }[]> {
  const out: { rel: string; size: number }[] = [];
  let seen = 0;
  const visit = async (rel: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) return;
    const dir = rel ? `${configDir}/${rel}` : configDir;
    try {
      for await (const e of Deno.readDir(dir)) {
        if (++seen > MAX_ENTRIES) {
          throw new CipherpostError(
            "config",
            `configuration error: more than ${MAX_ENTRIES} entries below ${configDir}`,
          );
        }
        const p = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory && !e.isSymlink) await visit(p, depth + 1);
        else if (e.isFile && e.name.includes(CONFLICT_MARK) && COPY_RE.test(e.name)) {
          const st = await Deno.lstat(`${configDir}/${p}`).catch(() => null);
          if (st?.isFile) out.push({ rel: p, size: st.size });
        }
      }
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
  };
  await visit("", 0);
  return out;
}

function matches(p: string, c: ConflictCopy): boolean {
  const q = p.replace(/\/+$/, "");
  return [c.copy, c.file].some((x) => x === q || x.startsWith(`${q}/`));
}

/**
 * List the conflict copies below the config folder (those matching `paths`, when given); with
 * `keep`, resolve them: the side kept stays (or is renamed over the file, one rename), the
 * other is deleted. A copy with no record of its side holds the remote version.
 * @throws CipherpostError("usage") when a path matches no copy
 */
export async function syncConflicts(
  ctx: { home: string },
  env: Pick<SyncEnv, "configDir">,
  o: { keep?: "local" | "remote"; paths?: string[] } = {},
): Promise<ConflictsResult> {
  if (!o.keep) return await conflictsLocked(ctx, env, o);
  return await withSyncLock(ctx.home, () => conflictsLocked(ctx, env, o));
}

async function conflictsLocked(
  ctx: { home: string },
  env: Pick<SyncEnv, "configDir">,
  o: { keep?: "local" | "remote"; paths?: string[] },
): Promise<ConflictsResult> {
  const state = await loadState(ctx.home);
  const all: ConflictCopy[] = [];
  for (const f of await findCopies(env.configDir)) {
    const m = COPY_RE.exec(f.rel.slice(f.rel.lastIndexOf("/") + 1))!;
    const dir = f.rel.includes("/") ? f.rel.slice(0, f.rel.lastIndexOf("/") + 1) : "";
    const d = m[2], t = m[3];
    const rec = state.conflicts?.[f.rel];
    all.push({
      copy: f.rel,
      file: `${dir}${m[1]}`,
      time: `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}T${t.slice(0, 2)}:${t.slice(2, 4)}:${
        t.slice(4)
      }Z`,
      size: f.size,
      side: rec?.side ?? "remote",
      from: rec?.from ?? null,
    });
  }
  all.sort((a, b) => a.file < b.file ? -1 : a.file > b.file ? 1 : a.time < b.time ? -1 : 1);
  let chosen = all;
  if (o.paths?.length) {
    chosen = all.filter((c) => o.paths!.some((p) => matches(p, c)));
    for (const p of o.paths) {
      if (!all.some((c) => matches(p, c))) {
        throw new CipherpostError(
          "usage",
          `no conflict copy matches ${escapeControl(p.slice(0, 200), { backslash: true })}`,
        );
      }
    }
  }
  if (!o.keep) return { conflicts: chosen, resolved: [] };
  const resolved: Resolution[] = [];
  // oldest first: where several copies of a file are kept, the newest ends in place
  for (const c of chosen) {
    const copy = `${env.configDir}/${c.copy}`;
    if (c.side === o.keep) {
      await Deno.rename(copy, `${env.configDir}/${c.file}`);
      resolved.push({ copy: c.copy, file: c.file, action: "replaced" });
    } else {
      await Deno.remove(copy).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
      resolved.push({ copy: c.copy, file: c.file, action: "removed" });
    }
    if (state.conflicts?.[c.copy]) {
      delete state.conflicts[c.copy];
      await saveState(ctx.home, state);
    }
  }
  const done = new Set(resolved.map((r) => r.copy));
  return { conflicts: all.filter((c) => !done.has(c.copy)), resolved };
}
