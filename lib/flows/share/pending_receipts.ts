/**
 * Receipts on their way out (issue 9, R2). `receive` signs the receipt and keeps it in the state
 * folder before it marks the share accepted; publishing it removes it. A crash or a network
 * failure in between leaves it there, and the next `receive` of that share or the next
 * `republish` publishes it: the ledger never says "accepted" for a receipt that is lost.
 *
 * A v1 receipt goes into the recipient's own packet when the identity is unlocked (receive),
 * else (republish, which has no passphrase) into the share's overflow slot, which the sender's
 * `receipts` reads as well. A v2 receipt goes to the share's receipt slot.
 *
 * @module
 */

import { txtRecord } from "../../pkarr/dns.ts";
import { recordsNamed } from "../../pkarr/signed_packet.ts";
import { receiptLabel } from "../../protocol/labels.ts";
import { fromHex } from "../../util/encoding.ts";
import { CipherpostError } from "../../util/errors.ts";
import type { Keypair } from "../../crypto/keys.ts";
import { parseReceipt } from "../../protocol/record.ts";
import { overflowSlot } from "../../protocol/receipt_slot.ts";
import { publishToSlot } from "./receipt_slot_io.ts";
import { isoSeconds, type State } from "../../state/state.ts";
import type { Transport } from "../../pkarr/transport.ts";
import { publishV2Receipt } from "./v2_transfer.ts";
import { updateOwnPacket } from "./own_packet.ts";
import type { FlowUi } from "./ui.ts";

/** A signed receipt waiting to be published. */
export interface PendingReceipt {
  shareRef: string;
  /** the signed receipt JSON */
  receipt: string;
  protocol: 1 | 2;
  /** v2: hex of the locator (the receipt slot derives from it) */
  locator?: string;
  /** v1: hex SHA-256 of the outer ciphertext (the overflow slot derives from it) */
  ciphertextSha256?: string;
}

/** Keep a signed receipt until it is published. */
export async function keepPending(state: State, p: PendingReceipt): Promise<void> {
  const o: Record<string, string | number> = {
    protocol: p.protocol,
    receipt: p.receipt,
    share_ref: p.shareRef,
  };
  if (p.locator) o.locator = p.locator;
  if (p.ciphertextSha256) o.ciphertext_sha256 = p.ciphertextSha256;
  await state.savePendingReceipt(p.shareRef, o);
}

/** The pending receipt of a share, or null. */
export async function pendingOf(state: State, ref: string): Promise<PendingReceipt | null> {
  const o = await state.pendingReceipt(ref);
  if (!o || typeof o.receipt !== "string" || (o.protocol !== 1 && o.protocol !== 2)) return null;
  return {
    shareRef: ref,
    receipt: o.receipt,
    protocol: o.protocol,
    locator: typeof o.locator === "string" ? o.locator : undefined,
    ciphertextSha256: typeof o.ciphertext_sha256 === "string" ? o.ciphertext_sha256 : undefined,
  };
}

/**
 * Publish a pending receipt and record it in the ledger. `me` (the unlocked identity) lets a v1
 * receipt go into our own packet; without it, or when the packet is full, it goes to the
 * share's overflow slot.
 *
 * @throws CipherpostError (network and others): the receipt stays pending
 */
export async function publishPending(
  t: Transport,
  state: State,
  me: Keypair | null,
  p: PendingReceipt,
  ui: FlowUi,
): Promise<void> {
  const r = parseReceipt(p.receipt);
  if (p.protocol === 2) {
    if (!p.locator) {
      throw new CipherpostError("io", "io error: pending v2 receipt without its slot");
    }
    await publishV2Receipt(t, fromHex(p.locator), p.receipt);
  } else {
    const toSlot = async () => {
      if (!p.ciphertextSha256) {
        throw new CipherpostError("io", "io error: pending v1 receipt without its slot");
      }
      await publishToSlot(t, overflowSlot(fromHex(p.ciphertextSha256)), p.receipt);
    };
    if (me) {
      const label = receiptLabel(p.shareRef);
      try {
        await updateOwnPacket(t, state, me, (records) => {
          const old = new Set(recordsNamed({ publicKey: me.publicKey, records }, label));
          return [...records.filter((x) => !old.has(x)), txtRecord(label, 300, p.receipt)];
        }, ui);
      } catch (e) {
        if (!(e instanceof CipherpostError && e.kind === "too_large")) throw e;
        ui.note("your packet is full; receipt published to the share's overflow slot");
        await toSlot();
      }
    } else {
      await toSlot();
    }
  }
  await state.append({
    acceptedAt: isoSeconds(),
    ciphertextHash: r.ciphertextHash,
    cleartextHash: r.cleartextHash,
    purpose: r.purpose,
    receiptPublishedAt: isoSeconds(),
    sender: r.senderPubkey,
    shareRef: r.shareRef,
  });
  await state.removePendingReceipt(p.shareRef);
}
