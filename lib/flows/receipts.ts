/**
 * `receipts`: collect the receipts of recipients (v1 receipts from the recipient's packet, v1
 * overflow slots and v2 receipt slots of the shares this home sent) and verify each one.
 *
 * @module
 */

import { txtText } from "../pkarr/dns.ts";
import { fromHex } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import { encodeZ32, parsePublicKey } from "../pkarr/public_key.ts";
import type { Transport } from "../pkarr/transport.ts";
import { receiptRecords } from "../protocol/labels.ts";
import { parseReceipt, type Receipt, verifyReceipt } from "../protocol/record.ts";
import { overflowSlot } from "../protocol/receipt_slot.ts";
import type { SentShare, State } from "../state/state.ts";
import { receiptMismatch, type SentShareFacts } from "../protocol/receipt_binding.ts";
import { readSlot } from "./receipt_slot_io.ts";
import { fetchV2Receipt } from "./v2_transfer.ts";

/** Receipts found for a query, with v1.1's per-item failure counts. */
export interface ReceiptHarvest {
  fetched: number;
  valid: Receipt[];
  malformed: number;
  /** bad signature, or signed by someone else than the share's recipient / not for that share */
  invalid: number;
  /** slots that could not be read (the network); never reported as "no receipts" */
  unreachable: number;
}

/** The facts of a sent-share record that bind a receipt to it. */
function factsOf(s: SentShare): SentShareFacts {
  return {
    shareRef: s.shareRef,
    sender: s.sender,
    recipient: s.recipient,
    ciphertextSha256: s.ciphertextSha256 ?? null,
  };
}

/**
 * Collect receipts: `_cprcpt-*` records in `from`'s packet (v1; they count when signed by
 * `from`, and, for a share sent from this home, when bound to it), and the receipt slots of this
 * home's shares addressed to `from` (all of them when `from` is absent), which count only when
 * signed by that share's recipient and bound to it (docs/PROTOCOL.md §2.1).
 *
 * @throws CipherpostError("network") when nothing valid was found and some slot was unreachable
 */
export async function collectReceipts(
  t: Transport,
  state: State,
  from: string | undefined,
): Promise<ReceiptHarvest> {
  const h: ReceiptHarvest = { fetched: 0, valid: [], malformed: 0, invalid: 0, unreachable: 0 };
  const sent = await state.listSent();
  const take = (text: string, check: (r: Receipt) => boolean) => {
    h.fetched++;
    let r: Receipt;
    try {
      r = parseReceipt(text);
    } catch {
      h.malformed++;
      return;
    }
    try {
      verifyReceipt(r);
    } catch {
      h.invalid++;
      return;
    }
    if (!check(r)) {
      h.invalid++;
      return;
    }
    if (!h.valid.some((x) => x.signature === r.signature)) h.valid.push(r);
  };
  let fromZ32: string | undefined;
  if (from !== undefined) {
    let pk: Uint8Array;
    try {
      pk = parsePublicKey(from);
    } catch {
      throw new CipherpostError(
        "config",
        "configuration error: --from needs a z-base-32 public key",
      );
    }
    fromZ32 = encodeZ32(pk);
    const resolved = await t.resolve(pk);
    for (const r of resolved ? receiptRecords(resolved.packet) : []) {
      const text = txtText(r);
      if (text === null) continue;
      take(text, (x) => {
        if (x.recipientPubkey !== fromZ32) return false;
        const mine = sent.find((s) => s.shareRef === x.shareRef);
        return !mine || receiptMismatch(x, factsOf(mine)) === null;
      });
    }
  }
  const mine = sent.filter((s) => fromZ32 === undefined || (s.recipient ?? s.sender) === fromZ32);
  await Promise.all(mine.map(async (s) => {
    let text: string | null = null;
    try {
      if (s.version === 2) {
        text = await fetchV2Receipt(t, fromHex(s.locator));
      } else if (s.ciphertextSha256 !== undefined) {
        text = await readSlot(t, overflowSlot(fromHex(s.ciphertextSha256)));
      }
    } catch (e) {
      if (e instanceof CipherpostError && e.kind === "network") h.unreachable++;
      else h.invalid++; // a slot that does not unseal: someone else wrote it
      return;
    }
    if (text === null) return;
    const facts = factsOf(s);
    take(text, (x) => receiptMismatch(x, facts) === null);
  }));
  if (h.valid.length === 0 && h.unreachable > 0) {
    throw new CipherpostError(
      "network",
      `network error: ${h.unreachable} receipt slot(s) could not be read`,
      "check connectivity and try again",
    );
  }
  return h;
}
