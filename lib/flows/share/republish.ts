/**
 * `republish`: re-put the identity packet and every stored packet of every live v2 share (DHT
 * nodes forget records within hours); expired share records are forgotten.
 *
 * @module
 */

import { b64decode, fromHex } from "../../util/encoding.ts";
import { parseReceipt, verifyReceipt } from "../../protocol/record.ts";
import { encodeZ32 } from "../../pkarr/public_key.ts";
import { packetFromBytes } from "../../pkarr/signed_packet.ts";
import type { Transport } from "../../pkarr/transport.ts";
import { type SentShare, sentShareFacts, type State } from "../../state/state.ts";
import { receiptMismatch } from "../../protocol/receipt_binding.ts";
import type { FlowUi } from "./ui.ts";
import { fetchV2Receipt, publishPackets } from "./v2_transfer.ts";
import { pendingOf, publishPending } from "./pending_receipts.ts";
import { CipherpostError } from "../../util/errors.ts";

/** What `republish` did. */
export interface RepublishReport {
  /** Whether the identity packet was re-put. */
  identityPacket: "republished" | "none";
  /** Live shares republished. */
  shares: number;
  /** DHT packets the share took. */
  packets: number;
  /** Expired shares whose records were forgotten. */
  expiredForgotten: number;
  /** receipts that a crash or a network failure had kept from the network */
  receiptsPublished: number;
  /** live v2 shares not re-put because their recipient already accepted them */
  skippedReceived: number;
}

/** True when `text` is a valid receipt of the share `s`: signed by its recipient, bound to it. */
function receiptFor(text: string, s: SentShare): boolean {
  try {
    const r = parseReceipt(text);
    verifyReceipt(r);
    return receiptMismatch(r, sentShareFacts(s)) === null;
  } catch {
    return false;
  }
}

/**
 * Re-put the identity packet (the most recent of the network's and our saved copy, which every
 * write of the packet updates; same bytes, so no passphrase is needed), every stored packet of
 * every unexpired v2 share that has no receipt yet (a received share, burned or not, needs no
 * keeping alive; its record stays for `receipts` and `revoke`), and the receipts that were never
 * published. Expired shares are forgotten.
 */
export async function republish(
  t: Transport,
  state: State,
  ui: FlowUi,
  progress?: (done: number, total: number) => void,
): Promise<RepublishReport> {
  const report: RepublishReport = {
    identityPacket: "none",
    shares: 0,
    packets: 0,
    expiredForgotten: 0,
    receiptsPublished: 0,
    skippedReceived: 0,
  };
  const saved = await state.loadOwnPacket();
  if (saved) {
    const mine = packetFromBytes(saved);
    const current = await t.resolve(mine.publicKey);
    const best = current && current.packet.timestamp > mine.timestamp ? current.packet : mine;
    await t.publish(best);
    report.identityPacket = "republished";
    ui.status(`republished identity packet ${encodeZ32(best.publicKey)} (seq ${best.timestamp})`);
  }
  const now = Math.floor(Date.now() / 1000);
  for (const s of await state.listSent()) {
    if (s.expiresAt <= now) {
      await state.removeSent(s.shareRef, "expired");
      report.expiredForgotten++;
      continue;
    }
    if (s.version !== 2) continue;
    const receipt = await fetchV2Receipt(t, fromHex(s.locator)).catch(() => null);
    if (receipt !== null && receiptFor(receipt, s)) {
      report.skippedReceived++;
      ui.status(`skipped share ${s.shareRef}: already received`);
      continue;
    }
    const packets = s.packets.map((p) => packetFromBytes(b64decode(p)));
    await publishPackets(t, packets, undefined, { progress, command: "republish" });
    report.shares++;
    report.packets += packets.length;
    ui.status(`republished share ${s.shareRef} (${packets.length} packets)`);
  }
  // Receipts never published (R2): v2 to their slot, v1 to the overflow slot (no passphrase
  // here, so not into our own packet); the sender's `receipts` reads both.
  for (const ref of await state.pendingRefs()) {
    const p = await pendingOf(state, ref);
    if (!p) continue;
    try {
      await publishPending(t, state, null, p, ui);
      report.receiptsPublished++;
      ui.status(`published the pending receipt of share ${ref}`);
    } catch (e) {
      ui.note(
        `receipt of share ${ref} still pending: ${
          e instanceof CipherpostError ? e.message : "error"
        }`,
      );
    }
  }
  return report;
}
