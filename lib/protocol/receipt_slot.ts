/**
 * The v1 receipt overflow slot (docs/PROTOCOL.md §2): where a v1 receipt goes when it does not
 * fit the recipient's own packet. The slot key follows from the share's ciphertext, which both
 * sender and recipient hold. Publishing and reading the slot is `lib/flows/receipt_slot_io.ts`.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { type DnsRecord, txtRecord, txtText } from "../pkarr/dns.ts";
import { hkdf32 } from "../crypto/kdf.ts";
import { type Keypair, keypairFromSeed } from "../crypto/keys.ts";
import { RECEIPT_SLOT_LABEL, type RecordSet, txtRecordsNamed } from "./labels.ts";

const INFO = "cipherpost/v1/receipt-overflow";

/** The overflow slot key of a share, from SHA-256 of its (outer) ciphertext. */
export function overflowSlot(ciphertextSha256: Uint8Array): Keypair {
  return keypairFromSeed(hkdf32(new Uint8Array(0), ciphertextSha256, INFO));
}

/** The slot of a ciphertext. */
export function overflowSlotOf(ciphertext: Uint8Array): Keypair {
  return overflowSlot(sha256(ciphertext));
}

/** The records of a slot packet holding `receiptJson`. */
export function slotRecords(receiptJson: string): DnsRecord[] {
  return [txtRecord(RECEIPT_SLOT_LABEL, 300, receiptJson)];
}

/** The receipt JSON of a slot packet, or null. */
export function slotReceiptText(p: RecordSet): string | null {
  const rec = txtRecordsNamed(p, RECEIPT_SLOT_LABEL)[0];
  return rec ? txtText(rec) : null;
}
