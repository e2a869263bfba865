/**
 * `claude sync devices`: the devices that have pushed, from their checked heads (§8.7).
 *
 * @module
 */

import type { FlowUi } from "../share/ui.ts";
import { openSync, readHeads, syncClient, type SyncContext } from "./common.ts";

/** A device that has pushed. */
export interface DeviceInfo {
  /** Its device ID (32 hex). */
  device: string;
  /**
   * Its name for humans, from its head (≤ 64 characters, no C0 control; it came from the
   * homeserver: escape it before it reaches a terminal).
   */
  label: string;
  /** The seq of its newest snapshot. */
  seq: number;
  /** When it pushed that snapshot (Unix ms, the head's time). */
  time: number;
  /** Files in its newest snapshot. */
  files: number;
  /** this machine's own device */
  mine: boolean;
}

/** Every device whose head reads and checks, newest push first. */
export async function syncDevices(ctx: SyncContext, _ui?: FlowUi): Promise<DeviceInfo[]> {
  const { keys, device, state } = await openSync(ctx);
  const heads = await readHeads(await syncClient(ctx), keys, state);
  return heads.map((h) => ({
    device: h.device,
    label: h.manifest.label,
    seq: h.manifest.seq,
    time: h.manifest.time,
    files: h.manifest.files.length,
    mine: h.device === device,
  })).sort((a, b) => b.time - a.time || (a.device < b.device ? -1 : 1));
}
