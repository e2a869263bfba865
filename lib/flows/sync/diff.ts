/**
 * `claude sync diff`: each file here against the newest remote version of it, both against the
 * last synced one (docs/PROTOCOL.md §8.7). Reads the heads, no chunk; writes nothing.
 *
 * @module
 */

import type { FileEntry, Tombstone } from "../../sync/snapshot.ts";
import type { FlowUi } from "../share/ui.ts";
import {
  counters,
  displayPath,
  fileKey,
  type Head,
  localEntry,
  localFiles,
  openSync,
  readHeads,
  replacedTest,
  syncClient,
  type SyncContext,
  type SyncCounters,
  type SyncEnv,
} from "./common.ts";

/** How one side differs from the last synced version. */
export type DiffSide = "added" | "modified" | "deleted" | "same";

/** One file whose local and newest remote versions differ. */
export interface DiffEntry {
  /** `root//path` or the config-relative path */
  path: string;
  /** the local file against the last synced version */
  local: DiffSide;
  /** the newest remote version against the last synced version */
  remote: DiffSide;
  /** canonical size of the local file (null: none here) */
  localSize: number | null;
  /** size of the newest remote version (null: deleted or absent) */
  remoteSize: number | null;
  /**
   * label of the device that made the newest remote version (null: none; from the homeserver:
   * escape it before it reaches a terminal)
   */
  from: string | null;
}

/** What `diff` found. */
export interface DiffResult {
  /** The devices whose checked heads make the remote state (this one included). */
  devices: { device: string; label: string; seq: number }[];
  /** The files that differ, sorted by key. */
  files: DiffEntry[];
  /** What the diff read (no chunk is fetched). */
  counters: SyncCounters;
}

interface Version {
  file?: FileEntry;
  gone?: Tombstone;
  head: Head;
}

/** The newest remote version of every key over `heads` (those seen and replaced dropped). */
function newestRemote(heads: Head[]): Map<string, Version> {
  const byKey = new Map<string, Version[]>();
  for (const h of heads) {
    for (const f of h.manifest.files) {
      const k = fileKey(f.root, f.path);
      byKey.set(k, [...byKey.get(k) ?? [], { file: f, head: h }]);
    }
    for (const g of h.manifest.gone) {
      const k = fileKey(g.root, g.path);
      byKey.set(k, [...byKey.get(k) ?? [], { gone: g, head: h }]);
    }
  }
  const replaced = replacedTest(heads);
  const out = new Map<string, Version>();
  for (const [key, list] of byKey) {
    const live = list.filter((v) => !replaced(v.head, key, (v.file ?? v.gone)!.origin));
    const time = (v: Version) => v.file?.mtime ?? v.gone!.time;
    const best = (live.length ? live : list).reduce((a, b) => {
      const ta = time(a), tb = time(b);
      if (ta !== tb) return tb > ta ? b : a;
      return (b.file ?? b.gone)!.origin[1] > (a.file ?? a.gone)!.origin[1] ? b : a;
    });
    out.set(key, best);
  }
  return out;
}

/** The label of a device from its head, if it has one. */
function labelOf(heads: Head[], device: string): string | null {
  return heads.find((h) => h.device === device)?.manifest.label ?? null;
}

function side(base: string | null, v: string | null): DiffSide {
  if (base === v) return "same";
  if (base === null) return "added";
  return v === null ? "deleted" : "modified";
}

/** Each file here against the newest remote state. */
export async function syncDiff(
  ctx: SyncContext,
  env: SyncEnv,
  _ui?: FlowUi,
): Promise<DiffResult> {
  const { keys, state } = await openSync(ctx);
  const count = counters();
  const heads = await readHeads(await syncClient(ctx), keys, state);
  const remote = newestRemote(heads);
  const local = await localFiles(env, state);
  const keys2 = new Set([...remote.keys(), ...local.keys()]);
  for (const [k, fs] of Object.entries(state.files)) if (fs.base?.file) keys2.add(k);
  const files: DiffEntry[] = [];
  for (const key of [...keys2].sort()) {
    const lf = local.get(key);
    const base = state.files[key]?.base?.file ?? null;
    const l = lf ? (await localEntry(lf, state.files[key], env, keys, count)).entry : null;
    const r = remote.get(key);
    const rf = r?.file ?? null;
    const lh = l?.hash ?? null, rh = rf?.hash ?? null;
    if (lh === rh) continue;
    const ref = l ?? rf ?? base ?? r!.gone!;
    files.push({
      path: displayPath(ref.root, ref.path),
      local: side(base?.hash ?? null, lh),
      remote: side(base?.hash ?? null, rh),
      localSize: l?.size ?? null,
      remoteSize: rf?.size ?? null,
      from: r ? labelOf(heads, (r.file ?? r.gone!).origin[0]) ?? r.head.manifest.label : null,
    });
  }
  return {
    devices: heads.map((h) => ({
      device: h.device,
      label: h.manifest.label,
      seq: h.manifest.seq,
    })),
    files,
    counters: count,
  };
}
