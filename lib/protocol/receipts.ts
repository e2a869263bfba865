/**
 * Receipts as a sender holds them: reading and verifying a saved receipt offline (protocol
 * digest §7.3). Their human formatting is the CLI's (`lib/cli/format.ts`).
 *
 * @module
 */

import { fromUtf8 } from "../util/encoding.ts";
import { signatureError } from "../util/errors.ts";
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
