/**
 * `claude sync log`: the snapshots of every device, newest first, each head checked (§8.3; the
 * counts come from the signed heads, so no page is read).
 *
 * @module
 */

import { snapPath } from "../../sync/keys.ts";
import { signatureError } from "../../util/errors.ts";
import type { FlowUi } from "../share/ui.ts";
import {
  checkHead,
  listDevices,
  openSync,
  readHeadObject,
  syncClient,
  type SyncContext,
} from "./common.ts";
import { snapshotId } from "./history.ts";

/** One snapshot of the log. */
export interface LogEntry {
  /** The snapshot's name for `restore --at` (`DEVICE:SEQ`, docs/PROTOCOL.md §8.7). */
  id: string;
  /** The device ID that pushed it. */
  device: string;
  /**
   * That device's name for humans, from the snapshot (≤ 64 characters, no C0 control; it came
   * from another machine: escape it before it reaches a terminal).
   */
  label: string;
  /** The snapshot's number in that device's chain. */
  seq: number;
  /** Unix ms */
  time: number;
  /** Files the snapshot holds. */
  files: number;
  /** Tombstones the snapshot holds. */
  deleted: number;
  /** this machine's own device */
  mine: boolean;
}

/** The newest `limit` snapshots of each device, newest first overall. */
export async function syncLog(
  ctx: SyncContext,
  o: { limit?: number } = {},
  _ui?: FlowUi,
): Promise<LogEntry[]> {
  const limit = Math.min(Math.max(o.limit ?? 20, 1), 1000);
  const { keys, device, state } = await openSync(ctx);
  const client = await syncClient(ctx);
  const out: LogEntry[] = [];
  const names = [...new Set([...await listDevices(client), ...Object.keys(state.heads)])].sort();
  for (const d of names) {
    // the heads alone (signed, with their entry counts): no page is read
    const h = await checkHead(client, keys, d, state);
    if (!h) continue;
    let m = h.head;
    for (let n = 0; n < limit; n++) {
      out.push({
        id: snapshotId(d, m.seq),
        device: d,
        label: m.label,
        seq: m.seq,
        time: m.time,
        files: m.nfiles,
        deleted: m.ngone,
        mine: d === device,
      });
      if (m.prev === null) break;
      const r = await readHeadObject(client, snapPath(d, m.prev), keys, d);
      // an older snapshot must be the one before it (seq − 1): anything else is tampering
      if (r === null) break;
      if (r.head.seq !== m.seq - 1 || keys.snapName(d, r.head.seq) !== m.prev) {
        throw signatureError("snapshot chain broken");
      }
      m = r.head;
    }
  }
  out.sort((a, b) => b.time - a.time || (a.device < b.device ? -1 : 1));
  return out;
}
