/**
 * `claude sync restore`: the files of a past snapshot, into place or into another folder
 * (docs/PROTOCOL.md §8.7). Every chunk is staged and checked before any file is written; each
 * file is then replaced by one rename; in place, the state is saved last.
 *
 * @module
 */

import { withSyncLock } from "../../sync/lock.ts";
import type { FileEntry } from "../../sync/snapshot.ts";
import { saveState, statSig, syncDir } from "../../sync/state.ts";
import { escapeControl } from "../../util/encoding.ts";
import { CipherpostError } from "../../util/errors.ts";
import { ensurePrivateDir, exists } from "../../util/fsutil.ts";
import type { FlowUi } from "../share/ui.ts";
import {
  counters,
  displayPath,
  fileKey,
  localEntry,
  localFiles,
  localPathOf,
  openSync,
  quietUi,
  readHeads,
  stageEntry,
  syncClient,
  type SyncContext,
  type SyncCounters,
  type SyncEnv,
} from "./common.ts";
import { readSnapshotAt, resolveSnapshotId, snapshotId } from "./history.ts";
import { materialize } from "./pull.ts";

/** What to restore. */
export interface RestoreOptions {
  /** the snapshot: `DEVICE:SEQ` or `SEQ` (this device), as `sync log` names it */
  at: string;
  /**
   * the files: display paths (`root//path`), config-relative paths, or folders of either;
   * empty or absent: every file of the snapshot
   */
  paths?: string[];
  /** write below this folder (at config-relative places) instead of into place */
  outDir?: string;
  /** replace files changed here since the last sync (in place) or existing ones (`outDir`) */
  force?: boolean;
}

/** One file restored (or, when `unchanged`, already equal to the snapshot's version). */
export interface RestoredFile {
  /** `root//path` or the config-relative path */
  path: string;
  /** where it was written (absolute) */
  to: string;
  /** Its size (bytes of the canonical content). */
  size: number;
  /** true: the file in place already was that version; nothing written */
  unchanged: boolean;
}

/** What a restore did. */
export interface RestoreResult {
  /** The snapshot restored from: its name, device, label, seq and time. */
  snapshot: { id: string; device: string; label: string; seq: number; time: number };
  /** The files chosen, in key order. */
  files: RestoredFile[];
  /** What the restore read and fetched. */
  counters: SyncCounters;
}

function matches(p: string, candidates: string[]): boolean {
  const q = p.replace(/\/+$/, "");
  return candidates.some((c) => c === q || c.startsWith(`${q}/`));
}

/** Restore files of a past snapshot (holding the home's sync lock, as push and pull do). */
export async function syncRestore(
  ctx: SyncContext,
  env: SyncEnv,
  o: RestoreOptions,
  uiIn?: FlowUi,
): Promise<RestoreResult> {
  if (o.outDir === "") throw new CipherpostError("usage", "the output folder is empty");
  return await withSyncLock(ctx.home, () => restoreLocked(ctx, env, o, uiIn));
}

async function restoreLocked(
  ctx: SyncContext,
  env: SyncEnv,
  o: RestoreOptions,
  uiIn?: FlowUi,
): Promise<RestoreResult> {
  const ui = quietUi(uiIn);
  const { keys, device, state } = await openSync(ctx);
  const count = counters();
  const client = await syncClient(ctx);
  const heads = await readHeads(client, keys, state);
  const { head, seq } = resolveSnapshotId(o.at, heads, device);
  const snap = await readSnapshotAt(client, keys, head, seq);
  const id = snapshotId(head.device, seq);
  const outDir = o.outDir === undefined ? undefined : o.outDir.replace(/\/+$/, "") || "/";

  // choose the files, and where each goes
  const chosen: { e: FileEntry; key: string; shown: string; dst: string }[] = [];
  const used = new Set<string>();
  for (const e of snap.files) {
    const local = await localPathOf(e.root, e.path, env, state);
    if (local === null) continue; // a ${HOME} root on a machine without HOME
    const rel = local.slice(env.configDir.length + 1);
    const shown = displayPath(e.root, e.path);
    if (o.paths?.length) {
      const hit = o.paths.filter((p) => matches(p, [shown, rel]));
      if (hit.length === 0) continue;
      for (const p of hit) used.add(p);
    }
    chosen.push({
      e,
      key: fileKey(e.root, e.path),
      shown,
      dst: outDir === undefined ? local : `${outDir}/${rel}`,
    });
  }
  for (const p of o.paths ?? []) {
    if (!used.has(p)) {
      throw new CipherpostError(
        "usage",
        `no file of snapshot ${id} matches ${escapeControl(p.slice(0, 200), { backslash: true })}`,
      );
    }
  }

  // what is there now: unchanged files are skipped; nothing is clobbered without force
  const files: RestoredFile[] = [];
  const todo: typeof chosen = [];
  const refused: string[] = [];
  const local = outDir === undefined ? await localFiles(env, state) : null;
  for (const c of chosen) {
    let unchanged = false;
    if (local) {
      const lf = local.get(c.key);
      if (lf) {
        const fs = state.files[c.key];
        const { entry } = await localEntry(lf, fs, env, keys, count);
        if (entry.hash === c.e.hash) unchanged = true;
        else if (entry.hash !== fs?.base?.file?.hash && !o.force) refused.push(c.shown);
      }
    } else if (await exists(c.dst) && !o.force) refused.push(c.dst);
    files.push({ path: c.shown, to: c.dst, size: c.e.size, unchanged });
    if (!unchanged) todo.push(c);
  }
  if (refused.length) {
    const first = escapeControl(refused[0], { backslash: true });
    const more = refused.length > 1 ? ` and ${refused.length - 1} more` : "";
    throw new CipherpostError(
      "config",
      local
        ? `cannot restore ${first}${more}: changed here since the last sync (nothing written)`
        : `cannot write ${first}${more}: it already exists (nothing written)`,
      {
        step: "replace_target",
        data: local ? { also: "replacing loses the local changes" } : {},
      },
    );
  }

  const stage = `${syncDir(ctx.home)}/restore-stage`;
  await Deno.remove(stage, { recursive: true }).catch(() => {});
  await ensurePrivateDir(stage);
  try {
    // phase 1: every chunk staged and checked (nothing outside the stage changes)
    const staged: string[] = [];
    for (const [i, c] of todo.entries()) {
      ui.status(`Fetching ${i + 1}/${todo.length} from snapshot ${id}...`);
      staged.push(`${stage}/${i}`);
      await stageEntry(client, keys, c.e, staged[i], count);
    }
    // phase 2: one rename per file; in place, the restored version is the stat cache's
    for (const [i, c] of todo.entries()) {
      await materialize({
        kind: "write",
        src: staged[i],
        dst: c.dst,
        e: { ...c.e, mtime: Date.now() },
      }, env);
      if (local) {
        const st = statSig(await Deno.stat(c.dst));
        const fs = state.files[c.key] ?? {};
        state.files[c.key] = {
          base: fs.base,
          local: {
            st,
            entry: { ...c.e, mtime: st.mtime, origin: fs.base?.file?.origin ?? c.e.origin },
          },
        };
      }
    }
    if (local && todo.length) await saveState(ctx.home, state);
  } finally {
    await Deno.remove(stage, { recursive: true }).catch(() => {});
  }
  return {
    snapshot: { id, device: head.device, label: snap.label, seq, time: snap.time },
    files,
    counters: count,
  };
}
