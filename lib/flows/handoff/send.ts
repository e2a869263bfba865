/**
 * `claude send`: bundle a Claude Code session, send it as a v2 `claude_session` share
 * (receipts, PIN, burn and TTL as for any share), and publish the pickup pointer for the
 * recipient (PROTOCOL.md §6).
 *
 * @module
 */

import { MATERIAL_CAP } from "../../material/material.ts";
import { encodeZ32 } from "../../pkarr/public_key.ts";
import { publishPointer } from "./pointer.ts";
import { CipherpostError } from "../../util/errors.ts";
import { buildBundle, parseBundle, type SessionFiles } from "../../claude/bundle.ts";
import { type SessionSummary, summarizeBundle } from "../../claude/summary.ts";
import { send, type SendResult } from "../share/send.ts";
import { recipientOf } from "../share/recipient.ts";
import type { FlowContext, FlowUi } from "../share/ui.ts";
import { sendLarge } from "../large/send.ts";

/** What to send. */
export interface ClaudeSendRequest {
  /** The session's files (see `discoverSession`). */
  session: SessionFiles;
  /** null = to self */
  recipient: string | null;
  /** What the share is for, shown to the recipient (not secret; C0 controls are refused). */
  purpose: string;
  /** The share's lifetime in seconds. */
  ttlSeconds: bigint;
  /** A PIN the recipient must also type (Argon2id), or null. */
  pin: string | null;
  /** Burn after read: the recipient's tool shows it once. */
  burn: boolean;
  /** Web Workers for a bundle that travels as a large share (default 0: this thread) */
  workers?: number;
  /** plaintext part size of a large share (tests); default by size (§5.1) */
  partSize?: number;
}

/** What was sent. */
export interface ClaudeSendResult extends SendResult {
  /** What was sent of the session. */
  summary: SessionSummary;
  /** compressed bundle bytes */
  bundleBytes: number;
  /** whether the pickup pointer was published (a failure is only a warning) */
  pointer: boolean;
  /** how the bundle travelled */
  via: "dht" | "homeserver";
}

/** The error for a bundle too large for a v2 DHT share. */
export function tooLargeForDht(bytes: number): CipherpostError {
  return new CipherpostError(
    "too_large",
    `session too large for the DHT: the compressed bundle is ${bytes} bytes; a v2 share carries at most ${MATERIAL_CAP}`,
    { step: "homeserver_signup", data: { also: "large sessions travel through a homeserver" } },
  );
}

/**
 * Bundle and send a session: a v2 `claude_session` share when the compressed bundle fits
 * (64 KiB), else a large share through the sender's homeserver; then the pickup pointer.
 *
 * @throws CipherpostError: the send's errors; `too_large` when the bundle needs a homeserver and
 *   the sender has none
 */
export async function claudeSend(
  ctx: FlowContext,
  req: ClaudeSendRequest,
  ui: FlowUi,
): Promise<ClaudeSendResult> {
  const { transport: t, me: sender } = ctx;
  const log = (line: string) => ui.status(line);
  const { publicKey: recipientPk } = recipientOf(sender, req.recipient);
  const bundle = await buildBundle(req.session);
  const summary = summarizeBundle(await parseBundle(bundle));
  log(
    `Bundled session ${summary.sessionId}: ${summary.messages} messages, ${bundle.length} bytes compressed`,
  );
  let result: SendResult;
  let via: "dht" | "homeserver" = "dht";
  if (bundle.length > MATERIAL_CAP) {
    log(
      `The bundle is larger than a v2 share (${MATERIAL_CAP} bytes): sending it through your homeserver, if you have one`,
    );
    try {
      const r = await sendLarge(ctx, {
        recipient: req.recipient,
        purpose: req.purpose,
        source: {
          kind: "stream",
          stream: new Blob([bundle as BlobPart]).stream(),
          name: `claude-session-${summary.sessionId}.tar.gz`,
          size: bundle.length,
        },
        ttlSeconds: req.ttlSeconds,
        pin: req.pin,
        burn: req.burn,
        workers: req.workers,
        partSize: req.partSize,
      }, ui);
      result = r;
      via = "homeserver";
    } catch (e) {
      if (e instanceof CipherpostError && e.kind === "no_homeserver") {
        throw tooLargeForDht(bundle.length);
      }
      throw e;
    }
  } else {
    result = await sendSmall();
  }
  async function sendSmall(): Promise<SendResult> {
    return await send(ctx, {
      recipient: req.recipient === null ? null : encodeZ32(recipientPk),
      purpose: req.purpose,
      material: "claude_session",
      input: bundle,
      ttlSeconds: req.ttlSeconds,
      pin: req.pin,
      burn: req.burn,
      protocol: 2,
    }, ui);
  }
  let pointer = true;
  try {
    await publishPointer(t, sender, recipientPk, {
      createdAt: Math.floor(Date.now() / 1000),
      sessionId: summary.sessionId,
      uri: result.uri,
    });
  } catch (e) {
    pointer = false;
    log(
      `warning: the pickup pointer was not published (${
        e instanceof CipherpostError ? e.message : "unexpected error"
      }); pickup needs the URI`,
    );
  }
  return { ...result, summary, bundleBytes: bundle.length, pointer, via };
}
