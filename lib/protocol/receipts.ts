/**
 * Receipts as a sender sees them: verifying a saved receipt offline and formatting the audit
 * view and the table (protocol digest §7.3).
 *
 * @module
 */

import { fromUtf8, stripControl } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import { compactJson, type JsonValue, parseJson } from "../util/canonical_json.ts";
import { sshFingerprint } from "../crypto/keys.ts";
import { parsePublicKey } from "../pkarr/public_key.ts";
import { parseReceipt, type Receipt, verifyReceipt } from "./record.ts";

/** `not a receipt: <why>` (exit 1): the input is not a receipt at all, so nothing was forged. */
function notAReceipt(why: string): CipherpostError {
  return new CipherpostError(
    "config",
    `not a receipt: ${why}`,
    "give the JSON that `cipherpost receipts --json` prints (one receipt, or an array of them)",
  );
}

/** One receipt object: its structure (exit 1 when it is not a receipt), then its signature (exit 3). */
function receiptOf(value: JsonValue, text: string): Receipt {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw notAReceipt("expected a JSON object");
  }
  let r: Receipt;
  try {
    r = parseReceipt(text);
  } catch {
    throw notAReceipt("receipt fields missing or of the wrong type");
  }
  verifyReceipt(r);
  return r;
}

function parseText(bytes: Uint8Array): { text: string; value: JsonValue } {
  let text: string;
  try {
    text = fromUtf8(bytes).trim();
  } catch {
    throw notAReceipt("the file is not UTF-8 text");
  }
  try {
    return { text, value: parseJson(text) };
  } catch {
    throw notAReceipt("the file is not JSON");
  }
}

/**
 * Parse and verify one receipt (JSON object). Not a receipt at all → `not a receipt: …`
 * (exit 1); a receipt whose signature or content fails → `signature verification failed` (exit 3).
 */
export function readReceiptInput(bytes: Uint8Array): Receipt {
  const { text, value } = parseText(bytes);
  return receiptOf(value, text);
}

/**
 * What `receipt verify` reads: one receipt object, or an array of them (the `receipts --json`
 * output); every one must verify.
 */
export function readReceiptsInput(bytes: Uint8Array): Receipt[] {
  const { text, value } = parseText(bytes);
  if (!Array.isArray(value)) return [receiptOf(value, text)];
  if (value.length === 0) throw notAReceipt("an empty array");
  // each element is re-serialised compactly: the signature covers the fields, not the layout
  return value.map((v) => receiptOf(v, compactJson(v)));
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
    ["purpose:", `"${stripControl(r.purpose)}"`],
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
    let purpose = stripControl(r.purpose);
    if ([...purpose].length > 40) purpose = [...purpose].slice(0, 39).join("") + "…";
    return `${r.shareRef.slice(0, 16).padEnd(16)}  ${utcMinute(r.acceptedAt).padEnd(20)}  ${
      purpose.padEnd(40)
    }  ${fingerprintOf(r.recipientPubkey)}\n`;
  });
  return header + rows.join("");
}
