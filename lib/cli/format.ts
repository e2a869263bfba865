/**
 * Human output of the CLI: the acceptance screen of `receive`, and the receipt audit view and
 * table of `receipts` and `receipt verify` (docs/PROTOCOL.md §2.1). Everything that came
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
import { formatBytes, localMinute, truncate, ttlRemaining, utcMinute } from "../util/human.ts";
import { summaryLines } from "../claude/summary.ts";

/**
 * The acceptance screen (stderr lines, without newlines): the one renderer of every kind of
 * share (DHT material, large share, Claude Code session). Every sender-controlled string goes
 * through one escaper.
 */
export function acceptanceBanner(s: AcceptanceSummary): string[] {
  const exp = Number(expiresAt(s.createdAt, s.ttlSeconds));
  const lines = ["=== CIPHERPOST ACCEPTANCE ==============================="];
  if (s.burnAfterRead) {
    lines.push("[BURN — accepting consumes it: this home will not show it again]");
  }
  lines.push(
    `Purpose:     "${displayText(s.purpose)}"`,
    `Sender:      ${sshFingerprint(parsePublicKey(s.sender))}`,
    `             ${s.sender}`,
    `             ${
      s.senderContact === null
        ? "(not in your contacts)"
        : `your contact "${displayText(s.senderContact)}"`
    }`,
    `Share ref:   ${s.shareRef}`,
    ...payloadLines(s),
    `TTL:         ${ttlRemaining(exp, s.now)}`,
    `Protocol:    v${s.protocol}${s.payload.kind === "large" ? " + homeserver" : ""}`,
    "=========================================================",
  );
  return lines;
}

function payloadLines(s: AcceptanceSummary): string[] {
  const p = s.payload;
  switch (p.kind) {
    case "material":
      return [
        `Type:        ${p.type}`,
        `Size:        ${p.bytes.length} bytes`,
        ...previewMaterial(p.type, p.bytes, s.now),
      ];
    case "large": {
      const lines = [
        `Type:        large ${p.content} "${displayText(p.name)}"`,
        p.size === null
          ? "Size:        not known yet (a stream: it is received as the sender sends it)"
          : `Size:        ${p.size} bytes (${formatBytes(p.size)})${
            p.parts === null ? ", streamed as it is sent" : ` in ${p.parts} part(s)`
          }`,
        `From:        homeserver ${p.homeserver}`,
        `             ${displayText(p.endpoint)}`,
        `Write to:    ${displayText(p.target)}`,
      ];
      if (p.content === "directory") {
        lines.push(
          `Files:       ${p.fileCount} (checked while extracting: a folder that differs is refused)`,
        );
        const entries = (p.topEntries ?? []).map((x) => displayText(x)).join(", ");
        lines.push(`Entries:     ${entries}${(p.topEntries ?? []).length >= 20 ? ", …" : ""}`);
      }
      return lines;
    }
    case "claude_session": {
      const action = {
        new: "new session",
        replace: "replaces the shorter local copy",
        keep: "the local copy is longer and is kept",
        same: "identical to the local copy",
        fork: `diverged from the local copy: placed as new session ${p.placedAs}`,
      }[p.action];
      return [
        "Type:        claude_session",
        `Size:        ${p.bundleBytes} bytes`,
        ...(p.viaHomeserver ? [`From:        ${displayText(p.viaHomeserver)} (verified)`] : []),
        ...summaryLines(p, p.bundleBytes),
        `Place in:    ${displayText(p.targetDir)}${p.rewritten ? " (paths rewritten)" : ""}`,
        `Action:      ${action}`,
      ];
    }
  }
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
