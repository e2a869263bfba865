/**
 * `claude sync push` (docs/PROTOCOL.md §8.5): snapshot this device's tree, upload what the
 * homeserver lacks (chunks, then the pages that changed), then the head; the state is saved
 * last. When the stat cache shows nothing changed since the last completed push,
 * {@link syncPushUnchanged} says so without the identity and without the network.
 *
 * @module
 */

import { encodeZ32 } from "../../pkarr/public_key.ts";
import { readPublicKey } from "../../state/identity.ts";
import { chunkPath, headPath, snapPath } from "../../sync/keys.ts";
import { withSyncLock } from "../../sync/lock.ts";
import {
  type FileEntry,
  type Manifest,
  sealChunk,
  sealSnapshot,
  type Tombstone,
} from "../../sync/snapshot.ts";
import { loadState, sameStat, saveState, sha256Hex, type SyncState } from "../../sync/state.ts";
import { CipherpostError } from "../../util/errors.ts";
import type { FlowUi } from "../share/ui.ts";
import {
  checkHead,
  counters,
  inLocalScope,
  localEntry,
  type LocalFile,
  localFiles,
  openSync,
  quietUi,
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

/** Options of {@link syncPush}. */
export interface PushOptions {
  /**
   * Read every file and re-upload every chunk, page and the head under a new seq, whatever the
   * stat cache and the homeserver say (after a homeserver lost objects or rolled the head back).
   */
  force?: boolean;
}

/** Every chunk of the last synced versions: on the homeserver already. */
function storedChunks(state: SyncState): Set<string> {
  const stored = new Set<string>();
  for (const fs of Object.values(state.files)) {
    for (const [id] of fs.base?.file?.chunks ?? []) stored.add(id);
  }
  return stored;
}

/**
 * The push that has nothing to do, decided from `$CIPHERPOST_HOME/sync/state.json` and a stat
 * walk alone: no identity unlock, no request (PROTOCOL §8.5 step 3). Returns the result of a
 * push that sent nothing when every file of the scope matches the stat cache, is the last
 * synced version with its chunks uploaded, no synced file is gone and the last push of this
 * home's identity completed; else null (a full {@link syncPush} is needed). It does not look at
 * the homeserver: a head the homeserver lost is found by the next pull or changed push, and
 * repaired by `syncPush(…, { force: true })`.
 */
export async function syncPushUnchanged(home: string, env: SyncEnv): Promise<PushResult | null> {
  let state: SyncState;
  try {
    state = await loadState(home);
  } catch (e) {
    if (e instanceof CipherpostError) return null; // the full push reports it
    throw e;
  }
  const device = state.device;
  if (
    !device || state.seq < 1 || state.heads[device]?.seq !== state.seq || !state.pages ||
    !state.owner || state.owner !== await readPublicKey(home)
  ) return null;
  const count = counters();
  const stored = storedChunks(state);
  const local = await localFiles(env, state);
  for (const f of local.values()) {
    count.files++;
    const fs = state.files[f.key];
    const cached = fs?.local;
    if (
      !cached || !sameStat(cached.st, f.st) || fs.base?.file?.hash !== cached.entry.hash ||
      cached.entry.chunks.some(([id]) => !stored.has(id))
    ) return null;
    count.statHits++;
  }
  for (const [key, fs] of Object.entries(state.files)) {
    if (fs.base?.file && !local.has(key)) return null;
  }
  return { device, seq: state.seq, pushed: false, changed: 0, deleted: 0, counters: count };
}

/**
 * Push this device's tree: the files of its scope (`env.config`, `env.mcp`). Holds the home's
 * sync lock (lib/sync/lock.ts) throughout.
 */
export async function syncPush(
  ctx: SyncContext,
  env: SyncEnv,
  uiIn?: FlowUi,
  o: PushOptions = {},
): Promise<PushResult> {
  if (!o.force) {
    const same = await syncPushUnchanged(ctx.home, env);
    if (same) return same;
  }
  return await withSyncLock(ctx.home, () => pushLocked(ctx, env, uiIn, o));
}

async function pushLocked(
  ctx: SyncContext,
  env: SyncEnv,
  uiIn: FlowUi | undefined,
  o: PushOptions,
): Promise<PushResult> {
  const ui = quietUi(uiIn);
  const { keys, device, state } = await openSync(ctx);
  const count = counters();
  const client = await syncClient(ctx);
  // our own head: the rollback check, and the seq to continue from after a kill; a forced push
  // replaces whatever is there
  let ownSeq = 0;
  if (o.force) {
    const { [device]: _, ...others } = state.heads;
    // a head that fails its checks is replaced; a network failure stops the push (continuing
    // could publish a seq below the one the homeserver holds)
    ownSeq = await checkHead(client, keys, device, { ...state, heads: others }).then(
      (r) => r?.head.seq ?? 0,
      (e) => {
        if (e instanceof CipherpostError && e.kind === "signature") return 0;
        throw e;
      },
    );
  } else {
    const own = await checkHead(client, keys, device, state);
    ownSeq = own?.head.seq ?? 0;
  }
  const seq = Math.max(state.seq, ownSeq) + 1;

  // what the homeserver holds already: the chunks of the last synced versions, our last pages
  const stored = o.force ? new Set<string>() : storedChunks(state);
  if (!o.force) { for (const id of state.pages ?? []) stored.add(id); }
  // up to UPLOADS chunks sealed and sent at once (each ≤ 1 MiB in memory)
  const inflight = new Set<Promise<void>>();
  let failure: unknown = null;
  const upload = async (id: string, data: Uint8Array, page = false) => {
    if (stored.has(id)) return;
    stored.add(id);
    const job: Promise<void> = (async () => {
      const sealed = await sealChunk(data, keys);
      await client.put(chunkPath(id), sealed);
      if (page) count.pagesUploaded++;
      else count.chunksUploaded++;
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
  // progress: the bytes of the files the stat cache cannot vouch for (those read and cut)
  const unread = (f: LocalFile) => o.force || !sameStat(state.files[f.key]?.local?.st, f.st);
  const total = [...local.values()].reduce((n, f) => n + (unread(f) ? f.st.size : 0), 0);
  let done = 0;
  for (const f of local.values()) {
    let fs = state.files[f.key];
    if (o.force && fs) {
      // read again and cut afresh, so that every chunk is new to this push and uploaded
      fs = { base: fs.base?.file ? { file: { ...fs.base.file, chunks: [] } } : fs.base };
    } else if (fs?.local && fs.local.entry.chunks.some(([id]) => !stored.has(id))) {
      // a cached version whose chunks were never uploaded (computed by a pull) is read again
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
    if (total > 0 && unread(f)) ui.progress?.("upload", done += f.st.size, total);
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
  const owner = encodeZ32(ctx.me.publicKey);
  // a first push of an empty tree still publishes a head, so other machines see the device
  if (!o.force && changed === 0 && deleted === 0 && (ownSeq > 0 || state.seq > 0)) {
    state.files = next;
    // the shortcut of the next push needs a completed push of this identity on record
    if (state.heads[device]?.seq === state.seq && state.pages) {
      state.owner = owner;
      state.device = device;
    }
    await saveState(ctx.home, state);
    return { device, seq: seq - 1, pushed: false, changed, deleted, counters: count };
  }
  const seen: Record<string, number> = { ...state.known, [device]: seq };
  const m: Manifest = {
    v: 2,
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
  for (const p of sealed.pages) await upload(p.id, p.plain, true);
  await Promise.all(inflight);
  if (failure) throw failure;
  await client.put(snapPath(device, keys.snapName(device, seq)), sealed.head);
  await client.put(headPath(device), sealed.head);
  count.bytesUploaded += 2 * sealed.head.length;
  state.seq = seq;
  state.heads[device] = { seq, sha256: sha256Hex(sealed.head) };
  state.known[device] = seq;
  state.files = next;
  state.pages = sealed.pages.map((p) => p.id);
  state.owner = owner;
  state.device = device;
  await saveState(ctx.home, state);
  return { device, seq, pushed: true, changed, deleted, counters: count };
}
