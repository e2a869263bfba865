/**
 * `receipts`: collect the receipts of recipients (v1 receipts from the recipient's packet, v1
 * overflow slots and v2 receipt slots of the shares this home sent) and verify each one.
 *
 * @module
 */

import { txtText } from "../../pkarr/dns.ts";
import { fromHex } from "../../util/encoding.ts";
import { CipherpostError, configError } from "../../util/errors.ts";
import { encodeZ32, parsePublicKey } from "../../pkarr/public_key.ts";
import type { Transport } from "../../pkarr/transport.ts";
import { receiptRecords } from "../../protocol/labels.ts";
import { parseReceipt, type Receipt, verifyReceipt } from "../../protocol/record.ts";
import { overflowSlot } from "../../protocol/receipt_slot.ts";
import { sentShareFacts, type State } from "../../state/state.ts";
import { receiptMismatch } from "../../protocol/receipt_binding.ts";
import { readSlot } from "./receipt_slot_io.ts";
import { fetchV2Receipt } from "./v2_transfer.ts";

/** Receipts found for a query, with v1.1's per-item failure counts. */
export interface ReceiptHarvest {
  /** Receipt records fetched from the network. */
  fetched: number;
  /** The receipts whose signatures and fields verify. */
  valid: Receipt[];
  /** Records that did not verify (ignored). */
  malformed: number;
  /** bad signature, or signed by someone else than the share's recipient / not for that share */
  invalid: number;
  /** slots that could not be read (the network); never reported as "no receipts" */
  unreachable: number;
}

/**
 * Collect receipts: `_cprcpt-*` records in recipients' packets (v1; they count when signed by
 * that recipient, and, for a share sent from this home, when bound to it), and the receipt slots
 * of this home's shares addressed to `from`, which count only when signed by that share's
 * recipient and bound to it (docs/PROTOCOL.md §2.1). Without `from`: the receipts of every
 * share of this home (v1 ones from each recipient's packet).
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
      throw configError(
        "the recipient to look up must be a z-base-32 public key",
      );
    }
    fromZ32 = encodeZ32(pk);
  }
  const mine = sent.filter((s) => fromZ32 === undefined || (s.recipient ?? s.sender) === fromZ32);
  // v1 receipts live in the recipient's packet: --from's, or (without --from) that of every
  // recipient of a v1 share of this home
  const packetsToRead = new Set<string>(
    fromZ32 !== undefined
      ? [fromZ32]
      : mine.filter((s) => s.version === 1).map((s) => s.recipient ?? s.sender),
  );
  await Promise.all([...packetsToRead].map(async (z) => {
    let resolved;
    try {
      resolved = await t.resolve(parsePublicKey(z));
    } catch (e) {
      if (fromZ32 !== undefined) throw e;
      h.unreachable++;
      return;
    }
    for (const r of resolved ? receiptRecords(resolved.packet) : []) {
      const text = txtText(r);
      if (text === null) continue;
      take(text, (x) => {
        if (x.recipientPubkey !== z) return false;
        const own = sent.find((s) => s.shareRef === x.shareRef);
        return !own || receiptMismatch(x, sentShareFacts(own)) === null;
      });
    }
  }));
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
    const facts = sentShareFacts(s);
    take(text, (x) => receiptMismatch(x, facts) === null);
  }));
  if (fromZ32 === undefined) {
    // without --from, only the receipts of this home's shares
    const refs = new Set(mine.map((s) => s.shareRef));
    h.valid = h.valid.filter((r) => refs.has(r.shareRef));
  }
  if (h.valid.length === 0 && h.unreachable > 0) {
    throw new CipherpostError(
      "network",
      `network error: ${h.unreachable} receipt slot(s) could not be read`,
      "check connectivity and try again",
    );
  }
  return h;
}
