/**
 * `republish` of everything this home keeps alive: the DHT side (the identity packet, live
 * shares, pending receipts: lib/flows/share/republish.ts) and the homeserver side (blobs no live
 * share needs are deleted, with the stored session only: republish asks for no passphrase).
 *
 * @module
 */

import type { Transport } from "../../pkarr/transport.ts";
import type { State } from "../../state/state.ts";
import { CipherpostError } from "../../util/errors.ts";
import { republish, type RepublishReport } from "../share/republish.ts";
import type { FlowUi } from "../share/ui.ts";
import { collectGarbage, type GcReport } from "./gc.ts";

/** What {@link republishAll} did. */
export interface RepublishAllReport extends RepublishReport {
  /** the homeserver gc, or null when no session is stored */
  gc: GcReport | null;
  /** why the homeserver gc was skipped (it never fails the republish) */
  gcSkipped?: string;
}

/**
 * Republish the DHT side, then collect the homeserver's unneeded blobs with the stored session.
 * A gc failure is reported in `gcSkipped`, never thrown.
 *
 * @throws CipherpostError from the DHT side (network)
 */
export async function republishAll(
  t: Transport,
  state: State,
  ui: FlowUi,
): Promise<RepublishAllReport> {
  const r = await republish(t, state, ui, (d, n) => ui.progress?.("upload", d, n));
  try {
    return { ...r, gc: await collectGarbage(t, state, null, ui) };
  } catch (e) {
    const why = e instanceof CipherpostError ? e.message : "unexpected error";
    return { ...r, gc: null, gcSkipped: why };
  }
}
