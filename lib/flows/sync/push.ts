/**
 * `claude sync push` (docs/PROTOCOL.md §8.5): snapshot this device's tree, upload what the
 * homeserver lacks, then the snapshot and the head; the state is saved last.
 *
 * @module
 */

import { chunkPath, headPath, snapPath } from "../../sync/keys.ts";
import { withSyncLock } from "../../sync/lock.ts";
import {
  type FileEntry,
  type Manifest,
  sealChunk,
  sealSnapshot,
  type Tombstone,
} from "../../sync/snapshot.ts";
import { saveState, sha256Hex } from "../../sync/state.ts";
import type { FlowUi } from "../share/ui.ts";
import {
  counters,
  inLocalScope,
  localEntry,
  localFiles,
  openSync,
  quietUi,
  readHead,
  syncClient,
  type SyncContext,
  type SyncCounters,
  type SyncEnv,
} from "./common.ts";

/** Chunks sealed and uploaded at once. */
const UPLOADS = 4;

/** What a push did. */
export interface PushResult {
  /** This machine's device ID (derived from the identity and the home's device secret). */
  device: string;
  /** the new seq, or the current one when nothing changed */
  seq: number;
  /** false: nothing changed, nothing written */
  pushed: boolean;
  /** Files new or changed since the last sync, in the new snapshot. */
  changed: number;
  /** Files gone since the last sync, recorded as tombstones. */
  deleted: number;
  /** What the push read and sent. */
  counters: SyncCounters;
}

/**
 * Push this device's tree: the files of its scope (`env.config`, `env.mcp`). Holds the home's
 * sync lock (lib/sync/lock.ts) throughout.
 */
export async function syncPush(
  ctx: SyncContext,
  env: SyncEnv,
  uiIn?: FlowUi,
): Promise<PushResult> {
  return await withSyncLock(ctx.home, () => pushLocked(ctx, env, uiIn));
}

async function pushLocked(ctx: SyncContext, env: SyncEnv, uiIn?: FlowUi): Promise<PushResult> {
  const ui = quietUi(uiIn);
  const { keys, device, state } = await openSync(ctx);
  const count = counters();
  const client = await syncClient(ctx);
  // our own head: the rollback check, and the seq to continue from after a kill
  const own = await readHead(client, keys, device, state);
  const seq = Math.max(state.seq, own?.manifest.seq ?? 0) + 1;

  // chunks the homeserver holds already: every chunk of the last synced versions
  const stored = new Set<string>();
  for (const fs of Object.values(state.files)) {
    for (const [id] of fs.base?.file?.chunks ?? []) stored.add(id);
  }
  // up to UPLOADS chunks sealed and sent at once (each ≤ 1 MiB in memory)
  const inflight = new Set<Promise<void>>();
  let failure: unknown = null;
  const upload = async (id: string, data: Uint8Array) => {
    if (stored.has(id)) return;
    stored.add(id);
    const job: Promise<void> = (async () => {
      const sealed = await sealChunk(data, keys);
      await client.put(chunkPath(id), sealed);
      count.chunksUploaded++;
      count.bytesUploaded += sealed.length;
    })().catch((e) => {
      failure ??= e;
    }).finally(() => inflight.delete(job));
    inflight.add(job);
    if (inflight.size >= UPLOADS) await Promise.race(inflight);
    if (failure) throw failure;
  };

  const local = await localFiles(env, state);
  const files: FileEntry[] = [];
  const gone: Tombstone[] = [];
  let changed = 0, deleted = 0;
  const next = structuredClone(state.files);
  for (const f of local.values()) {
    let fs = state.files[f.key];
    // a cached version whose chunks were never uploaded (computed by a pull) is read again
    if (fs?.local && fs.local.entry.chunks.some(([id]) => !stored.has(id))) {
      fs = { base: fs.base };
    }
    const { entry } = await localEntry(f, fs, env, keys, count, upload);
    const base = fs?.base?.file;
    const e: FileEntry = { ...entry };
    if (!base || base.hash !== e.hash) {
      e.origin = [device, seq];
      changed++;
    } else e.origin = base.origin;
    files.push(e);
    next[f.key] = { base: { file: e }, local: { st: f.st, entry: e } };
  }
  await Promise.all(inflight);
  if (failure) throw failure;
  for (const [key, fs] of Object.entries(state.files)) {
    if (local.has(key)) continue;
    // out of this machine's scope now (narrowed, excluded): not sent, not deleted elsewhere
    const ref = fs.base?.file ?? fs.base?.gone;
    if (ref && !await inLocalScope(ref.root, ref.path, env, state)) continue;
    if (fs.base?.file) {
      const t: Tombstone = { path: fs.base.file.path, time: Date.now(), origin: [device, seq] };
      if (fs.base.file.root !== undefined) t.root = fs.base.file.root;
      gone.push(t);
      next[key] = { base: { gone: t } };
      deleted++;
    } else if (fs.base?.gone) {
      gone.push(fs.base.gone);
      next[key] = { base: { gone: fs.base.gone } };
    } else delete next[key];
  }
  // a first push of an empty tree still publishes a head, so other machines see the device
  if (changed === 0 && deleted === 0 && (own !== null || state.seq > 0)) {
    state.files = next;
    await saveState(ctx.home, state);
    return { device, seq: seq - 1, pushed: false, changed, deleted, counters: count };
  }
  const seen: Record<string, number> = { ...state.known, [device]: seq };
  const m: Manifest = {
    v: 1,
    device,
    label: env.label,
    seq,
    prev: seq > 1 ? keys.snapName(device, seq - 1) : null,
    time: Date.now(),
    seen,
    files,
    gone,
  };
  ui.status(`Pushing snapshot ${seq} (${changed} changed, ${deleted} deleted)...`);
  const sealed = await sealSnapshot(m, keys);
  await client.put(snapPath(device, keys.snapName(device, seq)), sealed);
  await client.put(headPath(device), sealed);
  count.bytesUploaded += 2 * sealed.length;
  state.seq = seq;
  state.heads[device] = { seq, sha256: sha256Hex(sealed) };
  state.known[device] = seq;
  state.files = next;
  await saveState(ctx.home, state);
  return { device, seq, pushed: true, changed, deleted, counters: count };
}
