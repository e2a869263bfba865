/**
 * Human output of the CLI: the acceptance screen of `receive`, and the receipt audit view and
 * table of `receipts` and `receipt verify` (protocol digest §7.1, §7.3). Everything that came
 * from the network is stripped of control characters here.
 *
 * @module
 */

import { displayText } from "../util/encoding.ts";
import { sshFingerprint } from "../crypto/keys.ts";
import { parsePublicKey } from "../pkarr/public_key.ts";
import { previewMaterial } from "../material/material.ts";
import { expiresAt, type Receipt } from "../protocol/record.ts";
import type { AcceptanceSummary } from "../flows/share/ui.ts";
import { localMinute, truncate, ttlRemaining, utcMinute } from "../util/human.ts";

/** The acceptance screen (stderr lines, without newlines). */
export function acceptanceBanner(s: AcceptanceSummary): string[] {
  const env = s.envelope;
  const exp = Number(expiresAt(s.createdAt, s.ttlSeconds));
  const lines = ["=== CIPHERPOST ACCEPTANCE ==============================="];
  if (env.burnAfterRead) lines.push("[BURN — you will only see this once]");
  const pk = parsePublicKey(s.sender);
  lines.push(
    `Purpose:     "${displayText(env.purpose)}"`,
    `Sender:      ${sshFingerprint(pk)}`,
    `             ${s.sender}`,
    `Share ref:   ${s.shareRef}`,
    `Type:        ${env.material.type}`,
    `Size:        ${env.material.bytes.length} bytes`,
    ...(s.preview ?? previewMaterial(env.material.type, env.material.bytes, s.now)),
    `TTL:         ${ttlRemaining(exp, s.now)}`,
    `Protocol:    v${s.protocol}`,
    "=========================================================",
  );
  return lines;
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
    ["purpose:", `"${displayText(r.purpose)}"`],
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
    const purpose = truncate(displayText(r.purpose), 40);
    return `${r.shareRef.slice(0, 16).padEnd(16)}  ${utcMinute(r.acceptedAt).padEnd(20)}  ${
      purpose.padEnd(40)
    }  ${fingerprintOf(r.recipientPubkey)}\n`;
  });
  return header + rows.join("");
}
