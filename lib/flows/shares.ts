/**
 * The sender's live shares: revoking one, republishing all, and collecting the receipts of
 * recipients (v1 receipts from the recipient's packet, v2 receipts from each share's slot).
 *
 * @module
 */

import { txtText } from "../pkarr/dns.ts";
import { b64decode, fromHex } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import type { Keypair } from "../crypto/keys.ts";
import { encodeZ32, parsePublicKey } from "../pkarr/public_key.ts";
import { parseReceipt, type Receipt, verifyReceipt } from "../protocol/record.ts";
import { overflowSlot, readSlot } from "../protocol/receipt_slot.ts";
import { isShareRecord } from "./send.ts";
import { parseShareUri } from "../protocol/share_uri.ts";
import { packetFromBytes } from "../pkarr/signed_packet.ts";
import type { State } from "../state/state.ts";
import type { JsonValue } from "../util/canonical_json.ts";
import type { SentShareFacts } from "../protocol/receipt_binding.ts";
import type { Transport } from "../pkarr/transport.ts";
import { fetchV2Receipt, publishPackets, revokeV2 } from "../protocol/v2.ts";
import { updateOwnPacket } from "./own_packet.ts";
import { pendingOf, publishPending } from "./pending_receipts.ts";
import { receiptMismatch } from "../protocol/receipt_binding.ts";

/** Resolve a `revoke` argument (share_ref or URI) to a sent-share record. */
async function findSent(state: State, target: string) {
  const sent = await state.listSent();
  let ref = target.trim();
  if (ref.startsWith("cipherpost://")) {
    const uri = parseShareUri(ref);
    const hit = sent.find((s) => s.uri === ref);
    if (hit) return hit;
    if (uri.version === 1) ref = uri.shareRef;
  }
  const hit = sent.find((s) => s.share_ref === ref);
  if (!hit) {
    throw new CipherpostError(
      "not_found",
      `no live share ${ref} in this identity's records`,
      "list them with: ls $CIPHERPOST_HOME/state/sent",
    );
  }
  return hit;
}

/** Remove one live share (merge-write for v1, a revocation manifest for v2). */
export async function revoke(
  t: Transport,
  state: State,
  me: Keypair,
  target: string,
): Promise<string> {
  const s = await findSent(state, target);
  const ref = String(s.share_ref);
  if (s.sender !== encodeZ32(me.publicKey)) {
    throw new CipherpostError(
      "config",
      "configuration error: that share was sent by another identity",
    );
  }
  if (s.version === 2) {
    await revokeV2(t, fromHex(String(s.locator)));
  } else {
    const report = await updateOwnPacket(t, state, me, (records) => {
      const kept = records.filter((r) =>
        !(isShareRecord(r) && txtText(r)?.includes(`"share_ref":"${ref}"`))
      );
      return kept.length === records.length ? null : kept;
    });
    if (report === null) {
      await state.removeSent(ref);
      throw new CipherpostError(
        "not_found",
        `share ${ref} is no longer in your packet (already replaced or expired)`,
      );
    }
  }
  await state.removeSent(ref);
  return ref;
}

/** What `republish` did. */
export interface RepublishReport {
  identityPacket: "republished" | "none";
  shares: number;
  packets: number;
  expiredForgotten: number;
  /** receipts that a crash or a network failure had kept from the network */
  receiptsPublished: number;
}

/**
 * Re-put the identity packet (the most recent of the network's and our saved copy; same bytes,
 * so no passphrase is needed) and every stored packet of every unexpired v2 share.
 */
export async function republish(
  t: Transport,
  state: State,
  log: (l: string) => void,
): Promise<RepublishReport> {
  const report: RepublishReport = {
    identityPacket: "none",
    shares: 0,
    packets: 0,
    expiredForgotten: 0,
    receiptsPublished: 0,
  };
  const saved = await state.loadOwnPacket();
  if (saved) {
    const mine = packetFromBytes(saved);
    const current = await t.resolve(mine.publicKey);
    const best = current && current.packet.timestamp > mine.timestamp ? current.packet : mine;
    await t.publish(best);
    report.identityPacket = "republished";
    log(`republished identity packet ${encodeZ32(best.publicKey)} (seq ${best.timestamp})`);
  }
  const now = Math.floor(Date.now() / 1000);
  for (const s of await state.listSent()) {
    if (Number(s.expires_at) <= now) {
      await state.removeSent(String(s.share_ref));
      report.expiredForgotten++;
      continue;
    }
    if (s.version !== 2 || !Array.isArray(s.packets)) continue;
    const packets = s.packets.map((p) => packetFromBytes(b64decode(String(p))));
    await publishPackets(t, packets);
    report.shares++;
    report.packets += packets.length;
    log(`republished share ${s.share_ref} (${packets.length} packets)`);
  }
  // Receipts never published (R2): v2 to their slot, v1 to the overflow slot (no passphrase
  // here, so not into our own packet); the sender's `receipts` reads both.
  for (const ref of await state.pendingRefs()) {
    const p = await pendingOf(state, ref);
    if (!p) continue;
    try {
      await publishPending(t, state, null, p, log);
      report.receiptsPublished++;
      log(`published the pending receipt of share ${ref}`);
    } catch (e) {
      log(
        `receipt of share ${ref} still pending: ${
          e instanceof CipherpostError ? e.message : "error"
        }`,
      );
    }
  }
  return report;
}

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
function factsOf(s: Record<string, JsonValue>): SentShareFacts {
  return {
    shareRef: String(s.share_ref),
    sender: String(s.sender),
    recipient: typeof s.recipient === "string" ? s.recipient : null,
    ciphertextSha256: typeof s.ciphertext_sha256 === "string" ? s.ciphertext_sha256 : null,
  };
}

/**
 * Collect receipts: `_cprcpt-*` records in `from`'s packet (v1; they count when signed by
 * `from`, and, for a share sent from this home, when bound to it), and the receipt slots of this
 * home's shares addressed to `from` (all of them when `from` is absent), which count only when
 * signed by that share's recipient and bound to it (docs/PROTOCOL.md, "Receipts").
 *
 * @throws CipherpostError("network") when nothing could be read and some slot was unreachable
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
    for (const r of resolved?.packet.records ?? []) {
      if (!r.name.replace(/\.+$/, "").startsWith("_cprcpt-")) continue;
      const text = txtText(r);
      if (text === null) continue;
      take(text, (x) => {
        if (x.recipientPubkey !== fromZ32) return false;
        const mine = sent.find((s) => s.share_ref === x.shareRef);
        return !mine || receiptMismatch(x, factsOf(mine)) === null;
      });
    }
  }
  const mine = sent.filter((s) => fromZ32 === undefined || (s.recipient ?? s.sender) === fromZ32);
  await Promise.all(mine.map(async (s) => {
    let text: string | null = null;
    try {
      if (s.version === 2) {
        text = await fetchV2Receipt(t, fromHex(String(s.locator)));
      } else if (typeof s.ciphertext_sha256 === "string") {
        text = await readSlot(t, overflowSlot(fromHex(s.ciphertext_sha256)));
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
