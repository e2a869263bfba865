/**
 * `claude sync status`: what changed here since the last sync (no network), and what the last
 * push and pull left.
 *
 * @module
 */

import type { FlowUi } from "../share/ui.ts";
import {
  counters,
  displayPath,
  inLocalScope,
  localEntry,
  localFiles,
  openSync,
  type SyncContext,
  type SyncCounters,
  type SyncEnv,
} from "./common.ts";

/** Local changes since the last sync. */
export interface StatusResult {
  /** This machine's device ID. */
  device: string;
  /** The seq of this device's last pushed snapshot (0 before the first push). */
  seq: number;
  /** Files new since the last sync (`root//path` or the config-relative path). */
  added: string[];
  /** Files whose content changed since the last sync. */
  modified: string[];
  /** Files gone since the last sync. */
  deleted: string[];
  /** devices whose heads this machine has merged, with their seq */
  seen: Record<string, number>;
  /** What the status read (nothing is sent). */
  counters: SyncCounters;
}

/** What changed here since the last sync. Reads only files whose stat changed. */
export async function syncStatus(
  ctx: Omit<SyncContext, "transport">,
  env: SyncEnv,
  _ui?: FlowUi,
): Promise<StatusResult> {
  const { keys, device, state } = await openSync(ctx as SyncContext);
  const count = counters();
  const local = await localFiles(env, state);
  const added: string[] = [], modified: string[] = [], deleted: string[] = [];
  for (const f of local.values()) {
    const fs = state.files[f.key];
    const { entry } = await localEntry(f, fs, env, keys, count);
    const base = fs?.base?.file;
    if (!base) added.push(displayPath(f.root, f.path));
    else if (base.hash !== entry.hash) modified.push(displayPath(f.root, f.path));
  }
  for (const [key, fs] of Object.entries(state.files)) {
    const f = fs.base?.file;
    if (f && !local.has(key) && await inLocalScope(f.root, f.path, env, state)) {
      deleted.push(displayPath(f.root, f.path));
    }
  }
  const seen: Record<string, number> = {};
  for (const [d, h] of Object.entries(state.heads)) seen[d] = h.seq;
  return { device, seq: state.seq, added, modified, deleted, seen, counters: count };
}
