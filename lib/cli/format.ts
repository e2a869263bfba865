/**
 * Human output of the CLI: the acceptance screen of `receive`, and the receipt audit view and
 * table of `receipts` and `receipt verify` (docs/PROTOCOL.md §2.1). Everything that came
 * from the network is stripped of control characters here.
 *
 * @module
 */

import { escapeControl, stripControl } from "../util/encoding.ts";
import { sshFingerprint } from "../crypto/keys.ts";
import { parsePublicKey } from "../pkarr/public_key.ts";
import { previewMaterial } from "../material/material.ts";
import { expiresAt, type Receipt } from "../protocol/record.ts";
import type { AcceptanceSummary } from "../flows/share/ui.ts";
import { summaryLines } from "../claude/summary.ts";

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

/** Sender-controlled text for one terminal line: C0/C1 gone (as v1.1), bidi and the rest escaped. */
function shown(s: string): string {
  return escapeControl(stripControl(s));
}

/**
 * The acceptance screen (stderr lines, without newlines): the one renderer of every kind of
 * share (DHT material, large share, Claude Code session). Every sender-controlled string goes
 * through one escaper.
 */
export function acceptanceBanner(s: AcceptanceSummary): string[] {
  const exp = Number(expiresAt(s.createdAt, s.ttlSeconds));
  const left = Math.max(0, exp - Math.floor(s.now.getTime() / 1000));
  const lines = ["=== CIPHERPOST ACCEPTANCE ==============================="];
  if (s.burnAfterRead) {
    lines.push("[BURN — accepting consumes it: this home will not show it again]");
  }
  lines.push(
    `Purpose:     "${shown(s.purpose)}"`,
    `Sender:      ${sshFingerprint(parsePublicKey(s.sender))}`,
    `             ${s.sender}`,
    `             ${
      s.senderContact === null
        ? "(not in your contacts)"
        : `your contact "${shown(s.senderContact)}"`
    }`,
    `Share ref:   ${s.shareRef}`,
    ...payloadLines(s),
    `TTL:         ${Math.floor(left / 3600)}h ${
      String(Math.floor((left % 3600) / 60)).padStart(2, "0")
    }m remaining (expires ${utcMinute(exp)} / ${localMinute(exp)})`,
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
        `Type:        large ${p.content} "${shown(p.name)}"`,
        `Size:        ${p.size} bytes (${human(p.size)}) in ${p.parts} part(s)`,
        `From:        homeserver ${p.homeserver}`,
        `             ${shown(p.endpoint)}`,
        `Write to:    ${shown(p.target)}`,
      ];
      if (p.content === "directory") {
        lines.push(`Files:       ${p.fileCount} (the sender's count, checked while extracting)`);
        const entries = (p.topEntries ?? []).map(shown).join(", ");
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
        ...(p.viaHomeserver ? [`From:        ${shown(p.viaHomeserver)} (verified)`] : []),
        ...summaryLines(p, p.bundleBytes),
        `Place in:    ${shown(p.targetDir)}${p.rewritten ? " (paths rewritten)" : ""}`,
        `Action:      ${action}`,
      ];
    }
  }
}

function human(n: number): string {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < u.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${x.toFixed(1)} ${u[i]}`;
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
