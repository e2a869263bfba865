/**
 * Receipts as a sender holds them: reading and verifying a saved receipt offline (protocol
 * docs/PROTOCOL.md §2.1). Their human formatting is the CLI's (`lib/cli/format.ts`).
 *
 * @module
 */

import { fromUtf8 } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import { compactJson, type JsonValue, parseJson } from "../util/canonical_json.ts";
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
