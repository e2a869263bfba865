/**
 * The v1 receipt overflow slot on the network (docs/PROTOCOL.md §2): publishing a receipt to a
 * share's slot and reading it back. The slot key is `lib/protocol/receipt_slot.ts`.
 *
 * @module
 */

import type { Keypair } from "../../crypto/keys.ts";
import { signPacket } from "../../pkarr/signed_packet.ts";
import type { Transport } from "../../pkarr/transport.ts";
import { slotReceiptText, slotRecords } from "../../protocol/receipt_slot.ts";

/** Publish a receipt's JSON to a slot (a newer packet replaces an older one). */
export async function publishToSlot(
  t: Transport,
  slot: Keypair,
  receiptJson: string,
): Promise<void> {
  const cur = await t.resolve(slot.publicKey);
  const ts = Math.max(Date.now() * 1000, (cur?.packet.timestamp ?? 0) + 1);
  await t.publish(signPacket(slot.seed, slotRecords(receiptJson), ts));
}

/** The receipt JSON in a slot, or null. */
export async function readSlot(t: Transport, slot: Keypair): Promise<string | null> {
  const r = await t.resolve(slot.publicKey);
  return r ? slotReceiptText(r.packet) : null;
}
