/**
 * When a receipt counts for a share (docs/PROTOCOL.md §receipts, issue 9 S1): a verified
 * signature is not enough, since the v2 receipt slot can be written by anyone holding the URI
 * and the v1 overflow slot by anyone who read the public record. A receipt counts for a share
 * only when it is signed by that share's recipient (the sender itself for a self share) and
 * names that share: its `share_ref`, its sender and the SHA-256 of its ciphertext.
 *
 * @module
 */

import type { Receipt } from "./record.ts";

/** What the sender knows of a share it sent. */
export interface SentShareFacts {
  shareRef: string;
  /** z-base-32 of the sender */
  sender: string;
  /** z-base-32 of the recipient; null for a self share */
  recipient: string | null;
  /** hex SHA-256 of the age ciphertext (a PIN share: without the 32-byte salt); null if unknown */
  ciphertextSha256: string | null;
}

/** Why a verified receipt does not count for `share`, or null when it does. */
export function receiptMismatch(r: Receipt, share: SentShareFacts): string | null {
  if (r.shareRef !== share.shareRef) return "share_ref";
  if (r.senderPubkey !== share.sender) return "sender_pubkey";
  if (r.recipientPubkey !== (share.recipient ?? share.sender)) return "not signed by the recipient";
  if (share.ciphertextSha256 !== null && r.ciphertextHash !== share.ciphertextSha256) {
    return "ciphertext_hash";
  }
  return null;
}
