/**
 * Receipts as a sender sees them: verifying a saved receipt offline and formatting the audit
 * view and the table (protocol digest §7.3).
 *
 * @module
 */

import { escapeControl, fromUtf8, stripControl } from "../util/encoding.ts";
import { signatureError } from "../util/errors.ts";
import { sshFingerprint } from "../crypto/keys.ts";
import { parsePublicKey } from "../pkarr/public_key.ts";
import { parseAndVerifyReceipt, type Receipt } from "./record.ts";

/** Parse and verify receipt JSON bytes; any failure is exit 3. */
export function readReceiptInput(bytes: Uint8Array): Receipt {
  let text: string;
  try {
    text = fromUtf8(bytes).trim();
  } catch {
    throw signatureError("receipt is not UTF-8");
  }
  return parseAndVerifyReceipt(text);
}

const pad2 = (n: number) => String(n).padStart(2, "0");

/** `YYYY-MM-DD HH:MM UTC` of Unix seconds. */
export function utcMinute(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${
    pad2(d.getUTCHours())
  }:${pad2(d.getUTCMinutes())} UTC`;
}

/** `YYYY-MM-DD HH:MM local` of Unix seconds. */
export function localMinute(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${
    pad2(d.getMinutes())
  } local`;
}

function fingerprintOf(z32: string): string {
  try {
    return sshFingerprint(parsePublicKey(z32));
  } catch {
    return "(invalid key)";
  }
}

/** The 10-line audit view of one verified receipt (labels padded to 20 columns). */
export function formatReceiptSummary(r: Receipt): string {
  const rows: Array<[string, string]> = [
    ["share_ref:", r.shareRef],
    ["sender_pubkey:", r.senderPubkey],
    ["recipient_pubkey:", `${r.recipientPubkey}`],
    ["recipient_fp:", fingerprintOf(r.recipientPubkey)],
    ["accepted_at:", `${utcMinute(r.acceptedAt)} (${localMinute(r.acceptedAt)})`],
    ["purpose:", `"${escapeControl(stripControl(r.purpose))}"`],
    ["ciphertext_hash:", r.ciphertextHash],
    ["cleartext_hash:", r.cleartextHash],
    ["nonce:", r.nonce],
    ["protocol_version:", String(r.protocolVersion)],
    ["signature:", r.signature],
  ];
  return rows.map(([k, v]) => `${k.padEnd(20)}${v}\n`).join("");
}

/** The receipts table of v1.1 (`receipts` without a single share-ref match). */
export function formatReceiptTable(receipts: Receipt[]): string {
  const header = `${"share_ref".padEnd(16)}  ${"accepted_at (UTC)".padEnd(20)}  ${
    "purpose".padEnd(40)
  }  recipient_fp\n`;
  const rows = receipts.map((r) => {
    let purpose = escapeControl(stripControl(r.purpose));
    if ([...purpose].length > 40) purpose = [...purpose].slice(0, 39).join("") + "…";
    return `${r.shareRef.slice(0, 16).padEnd(16)}  ${utcMinute(r.acceptedAt).padEnd(20)}  ${
      purpose.padEnd(40)
    }  ${fingerprintOf(r.recipientPubkey)}\n`;
  });
  return header + rows.join("");
}
