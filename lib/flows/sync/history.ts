/**
 * Past snapshots (docs/PROTOCOL.md §8.7): the `DEVICE:SEQ` names `sync log` prints, and the
 * checked read of a device's snapshot at a seq, with the same checks as a head.
 *
 * @module
 */

import type { HomeserverClient } from "../../homeserver/client.ts";
import { snapPath, type SyncKeys } from "../../sync/keys.ts";
import type { Manifest } from "../../sync/snapshot.ts";
import { CipherpostError, signatureError } from "../../util/errors.ts";
import { escapeControl } from "../../util/encoding.ts";
import { type Head, readSnapshot } from "./common.ts";

/** Hex digits of the device ID in a snapshot name. */
const SHORT = 8;

/** The name of a device's snapshot for humans: `<first 8 hex of the device>:<seq>`. */
export function snapshotId(device: string, seq: number): string {
  return `${device.slice(0, SHORT)}:${seq}`;
}

/**
 * Which head and seq a snapshot name means: `DEVICE:SEQ` (`DEVICE` a unique device ID prefix of
 * at least 4 hex digits, or a label exactly one head carries) or a bare `SEQ` (this device).
 * @throws CipherpostError("usage") for a malformed name, an unknown or ambiguous device
 */
export function resolveSnapshotId(
  id: string,
  heads: Head[],
  mine: string,
): { head: Head; seq: number } {
  const shown = escapeControl(id.slice(0, 100), { backslash: true });
  const m = /^(?:(.{1,64}):)?([1-9][0-9]{0,14})$/s.exec(id);
  if (!m) {
    throw new CipherpostError(
      "usage",
      `not a snapshot name: ${shown} (DEVICE:SEQ as the log shows it, or SEQ for this machine)`,
    );
  }
  const seq = Number(m[2]);
  let found: Head[];
  if (m[1] === undefined) found = heads.filter((h) => h.device === mine);
  else {
    const d = m[1];
    found = /^[0-9a-f]{4,32}$/.test(d) ? heads.filter((h) => h.device.startsWith(d)) : [];
    if (found.length === 0) found = heads.filter((h) => h.manifest.label === d);
  }
  if (found.length === 0) {
    throw new CipherpostError("usage", `no device has pushed snapshot ${shown}`);
  }
  if (found.length > 1) {
    throw new CipherpostError(
      "usage",
      `${shown} names more than one device: give more of the device ID`,
    );
  }
  const head = found[0];
  if (seq > head.manifest.seq) {
    throw new CipherpostError(
      "usage",
      `no snapshot ${shown}: that device's newest is ${snapshotId(head.device, head.manifest.seq)}`,
    );
  }
  return { head, seq };
}

/**
 * A device's snapshot at `seq` (≤ its head's, which was read and checked): the head itself, or
 * the object at `snap_name(device, seq)`, which must check and carry that seq; a missing one is
 * a dropped object.
 * @throws CipherpostError("signature") on any failure
 */
export async function readSnapshotAt(
  client: HomeserverClient,
  keys: SyncKeys,
  head: Head,
  seq: number,
): Promise<Manifest> {
  if (seq === head.manifest.seq) return head.manifest;
  const r = await readSnapshot(
    client,
    snapPath(head.device, keys.snapName(head.device, seq)),
    keys,
    head.device,
  );
  if (r === null) throw signatureError("an old snapshot is missing");
  if (r.manifest.seq !== seq) throw signatureError("snapshot under another seq's name");
  return r.manifest;
}
