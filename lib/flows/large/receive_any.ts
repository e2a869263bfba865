/**
 * `receive` of any share a sender can make: a DHT share's material, or a large share on the
 * sender's homeserver. The one receive pipeline with the payload handler that tells the two
 * apart by the decrypted Envelope (docs/PROTOCOL.md §5.2: a pointer Envelope is a large share).
 *
 * @module
 */

import { isPointerEnvelope } from "../../protocol/large_manifest.ts";
import type { ShareUri } from "../../protocol/share_uri.ts";
import { checkOutputTarget } from "../../util/fsutil.ts";
import {
  type MaterialOutput,
  materialPayload,
  type ReceiveResult,
  receiveShare,
} from "../share/receive.ts";
import type { FlowContext, FlowUi } from "../share/ui.ts";
import { type LargeOutput, openLarge } from "./receive.ts";

/** How to receive a share of any kind. */
export interface ReceiveOptions extends MaterialOutput, LargeOutput {
  /** the share to receive (see `parseShareUri`) */
  uri: ShareUri;
  /** obtains the PIN when the share needs one (called again after a wrong PIN) */
  pin: () => Promise<string>;
  /** how many PINs to try before failing with `wrong PIN` (default 1) */
  pinTries?: number;
  /** where material, and a streaming large share sent to "-", go (§5.7) */
  writeStdout: (bytes: Uint8Array) => Promise<void>;
}

/**
 * Receive a share: verify it, show it through `ui.confirm`, and write it to `req.output`
 * (a file, `-`/undefined for `req.writeStdout`; a large share needs a path). The receipt is
 * kept before the share is marked accepted and published afterwards.
 *
 * @returns what was received; `receiptPublished: false` means the receipt is kept for
 *   `republish` or the next receive of the share
 * @throws CipherpostError (see {@link receiveShare}, plus the large share's `config`, `network`
 *   and `homeserver` errors)
 */
export function receive(
  ctx: FlowContext,
  req: ReceiveOptions,
  ui: FlowUi,
): Promise<ReceiveResult> {
  const material = materialPayload(req);
  const toFile = req.output !== undefined && req.output !== "-";
  return receiveShare(ctx, {
    uri: req.uri,
    pin: req.pin,
    pinTries: req.pinTries,
    payload: {
      // an existing folder may be a large share's target (with force): checked once opened
      check: toFile ? () => checkTarget(req.output!, req.force) : undefined,
      open: async (share, ui) => {
        if (isPointerEnvelope(share.plaintext)) {
          return await openLarge(ctx.transport, ctx.state, share, req, ui);
        }
        if (toFile) await checkOutputTarget(req.output!, req.force); // a folder is no file
        return await material.open(share, ui);
      },
    },
  }, ui);
}

async function checkTarget(path: string, force: boolean): Promise<void> {
  try {
    if (force && (await Deno.lstat(path)).isDirectory) return;
  } catch { /* absent or unreadable: the full check says which */ }
  await checkOutputTarget(path, force);
}
