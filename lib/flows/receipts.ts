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
import type { State } from "../state/state.ts";
import { readSlot } from "./receipt_slot_io.ts";
import { fetchV2Receipt } from "./v2_transfer.ts";

/** Receipts found for a query, with v1.1's per-item failure counts. */
export interface ReceiptHarvest {
  fetched: number;
  valid: Receipt[];
  malformed: number;
  invalid: number;
}

/**
 * Collect receipts: `_cprcpt-*` records in `from`'s packet (v1), and the receipt slots of this
 * home's shares addressed to `from`. Without `from`: the receipts of every share of this home
 * (v1 ones from each recipient's packet).
 */
export async function collectReceipts(
  t: Transport,
  state: State,
  from: string | undefined,
): Promise<ReceiptHarvest> {
  const h: ReceiptHarvest = { fetched: 0, valid: [], malformed: 0, invalid: 0 };
  const take = (text: string) => {
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
      h.valid.push(r);
    } catch {
      h.invalid++;
    }
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
  }
  const mine = (await state.listSent()).filter((s) =>
    fromZ32 === undefined || (s.recipient ?? s.sender) === fromZ32
  );
  // v1 receipts live in the recipient's packet: --from's, or (without --from) that of every
  // recipient of a v1 share of this home
  const packetsToRead = new Set<string>(
    fromZ32 !== undefined
      ? [fromZ32]
      : mine.filter((s) => s.version === 1).map((s) => s.recipient ?? s.sender),
  );
  await Promise.all([...packetsToRead].map(async (z) => {
    const resolved = await t.resolve(parsePublicKey(z)).catch((e) => {
      if (fromZ32 !== undefined) throw e;
      return null;
    });
    for (const r of resolved ? receiptRecords(resolved.packet) : []) {
      const text = txtText(r);
      if (text !== null) take(text);
    }
  }));
  const seen = new Set(h.valid.map((r) => r.signature));
  await Promise.all(mine.map(async (s) => {
    let text: string | null = null;
    if (s.version === 2) {
      text = await fetchV2Receipt(t, fromHex(s.locator)).catch(() => null);
    } else if (s.ciphertextSha256 !== undefined) {
      text = await readSlot(t, overflowSlot(fromHex(s.ciphertextSha256))).catch(() => null);
    }
    if (text === null) return;
    try {
      if (seen.has(String(JSON.parse(text).signature))) return;
    } catch { /* malformed: counted by take() */ }
    take(text);
  }));
  if (fromZ32 === undefined) {
    // without --from, only the receipts of this home's shares
    const refs = new Set(mine.map((s) => s.shareRef));
    h.valid = h.valid.filter((r) => refs.has(r.shareRef));
  }
  return h;
}
