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
import type { Transport } from "../pkarr/transport.ts";
import { fetchV2Receipt, publishPackets, revokeV2 } from "../protocol/v2.ts";

/**
 * Resolve a `revoke` argument to a sent-share record: the share URI, the share_ref, or a unique
 * prefix of it (at least 4 hex digits), as `cipherpost shares` lists them.
 */
export async function findSent(state: State, target: string) {
  const sent = await state.listSent();
  let ref = target.trim();
  if (ref.startsWith("cipherpost://")) {
    const uri = parseShareUri(ref);
    const hit = sent.find((s) => s.uri === ref);
    if (hit) return hit;
    if (uri.version === 1) ref = uri.shareRef;
  }
  ref = ref.toLowerCase();
  const exact = sent.find((s) => s.share_ref === ref);
  if (exact) return exact;
  const matches = /^[0-9a-f]{4,32}$/.test(ref)
    ? sent.filter((s) => String(s.share_ref).startsWith(ref))
    : [];
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) {
    throw new CipherpostError(
      "usage",
      `share ref prefix ${ref} is ambiguous: ${matches.length} of your shares start with it (${
        matches.map((m) => String(m.share_ref).slice(0, ref.length + 4)).join(", ")
      })`,
      "give more of the share ref (see cipherpost shares)",
    );
  }
  throw new CipherpostError(
    "not_found",
    `no live share ${ref.replace(/[^0-9a-zA-Z]/g, "?")} in this identity's records`,
    /^[0-9a-f]{1,3}$/.test(ref)
      ? "give at least 4 characters of the share ref (see cipherpost shares)"
      : "list them with: cipherpost shares",
  );
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
    const report = await t.update(me.seed, me.publicKey, (records) => {
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
  /** live v2 shares not re-put because their recipient already accepted them */
  skippedReceived: number;
}

/**
 * Re-put the identity packet (the most recent of the network's and our saved copy; same bytes,
 * so no passphrase is needed) and every stored packet of every unexpired v2 share that has no
 * receipt yet (a received share, burned or not, needs no keeping alive; its record stays for
 * `receipts` and `revoke`). Expired shares are forgotten.
 */
export async function republish(
  t: Transport,
  state: State,
  log: (l: string) => void,
  progress?: (done: number, total: number) => void,
): Promise<RepublishReport> {
  const report: RepublishReport = {
    identityPacket: "none",
    shares: 0,
    packets: 0,
    expiredForgotten: 0,
    skippedReceived: 0,
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
    const receipt = await fetchV2Receipt(t, fromHex(String(s.locator))).catch(() => null);
    if (receipt !== null && receiptFor(receipt, String(s.share_ref))) {
      report.skippedReceived++;
      log(`skipped share ${s.share_ref}: already received`);
      continue;
    }
    const packets = s.packets.map((p) => packetFromBytes(b64decode(String(p))));
    await publishPackets(t, packets, undefined, { progress, command: "republish" });
    report.shares++;
    report.packets += packets.length;
    log(`republished share ${s.share_ref} (${packets.length} packets)`);
  }
  return report;
}

/** True when `text` is a valid receipt of the share `ref`. */
function receiptFor(text: string, ref: string): boolean {
  try {
    const r = parseReceipt(text);
    verifyReceipt(r);
    return r.shareRef === ref;
  } catch {
    return false;
  }
}

/** Receipts found for a query, with v1.1's per-item failure counts. */
export interface ReceiptHarvest {
  fetched: number;
  valid: Receipt[];
  malformed: number;
  invalid: number;
}

/**
 * Collect receipts: `_cprcpt-*` records in `from`'s packet (v1), and the receipt slots of this
 * home's v2 shares addressed to `from` (all of them when `from` is absent).
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
      : mine.filter((s) => s.version === 1).map((s) => String(s.recipient ?? s.sender)),
  );
  await Promise.all([...packetsToRead].map(async (z) => {
    const resolved = await t.resolve(parsePublicKey(z)).catch((e) => {
      if (fromZ32 !== undefined) throw e;
      return null;
    });
    for (const r of resolved?.packet.records ?? []) {
      if (!r.name.replace(/\.+$/, "").startsWith("_cprcpt-")) continue;
      const text = txtText(r);
      if (text !== null) take(text);
    }
  }));
  const seen = new Set(h.valid.map((r) => r.signature));
  await Promise.all(mine.map(async (s) => {
    let text: string | null = null;
    if (s.version === 2) {
      text = await fetchV2Receipt(t, fromHex(String(s.locator))).catch(() => null);
    } else if (typeof s.ciphertext_sha256 === "string") {
      text = await readSlot(t, overflowSlot(fromHex(s.ciphertext_sha256))).catch(() => null);
    }
    if (text === null) return;
    try {
      if (seen.has(String(JSON.parse(text).signature))) return;
    } catch { /* malformed: counted by take() */ }
    take(text);
  }));
  if (fromZ32 === undefined) {
    // without --from, only the receipts of this home's shares
    const refs = new Set(mine.map((s) => String(s.share_ref)));
    h.valid = h.valid.filter((r) => refs.has(r.shareRef));
  }
  return h;
}
