/**
 * The v1 receipt overflow slot (docs/PROTOCOL.md §2): where a v1 receipt goes when it does not
 * fit the recipient's own packet. The slot key follows from the share's ciphertext, which both
 * sender and recipient hold.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { txtRecord, txtText } from "../pkarr/dns.ts";
import { hkdf32 } from "../crypto/kdf.ts";
import { type Keypair, keypairFromSeed } from "../crypto/keys.ts";
import { signPacket } from "../pkarr/signed_packet.ts";
import type { Transport } from "../pkarr/transport.ts";

const INFO = "cipherpost/v1/receipt-overflow";
const LABEL = "_cpr";

/** The overflow slot key of a share, from SHA-256 of its (outer) ciphertext. */
export function overflowSlot(ciphertextSha256: Uint8Array): Keypair {
  return keypairFromSeed(hkdf32(new Uint8Array(0), ciphertextSha256, INFO));
}

/** The slot of a ciphertext. */
export function overflowSlotOf(ciphertext: Uint8Array): Keypair {
  return overflowSlot(sha256(ciphertext));
}

/** Publish a receipt's JSON to a slot (a newer packet replaces an older one). */
export async function publishToSlot(
  t: Transport,
  slot: Keypair,
  receiptJson: string,
): Promise<void> {
  const cur = await t.resolve(slot.publicKey);
  const ts = Math.max(Date.now() * 1000, (cur?.packet.timestamp ?? 0) + 1);
  await t.publish(signPacket(slot.seed, [txtRecord(LABEL, 300, receiptJson)], ts));
}

/** The receipt JSON in a slot, or null. */
export async function readSlot(t: Transport, slot: Keypair): Promise<string | null> {
  const r = await t.resolve(slot.publicKey);
  const rec = r?.packet.records.find((x) => x.name.split(".")[0] === LABEL);
  return rec ? txtText(rec) : null;
}
