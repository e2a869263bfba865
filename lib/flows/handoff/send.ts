/**
 * `claude send`: bundle a Claude Code session, send it as a v2 `claude_session` share
 * (receipts, PIN, burn and TTL as for any share), and publish the pickup pointer for the
 * recipient (PROTOCOL.md §6).
 *
 * @module
 */

import type { Keypair } from "../../crypto/keys.ts";
import { MATERIAL_CAP } from "../../material/material.ts";
import { encodeZ32 } from "../../pkarr/public_key.ts";
import type { Transport } from "../../pkarr/transport.ts";
import { publishPointer } from "./pointer.ts";
import type { State } from "../../state/state.ts";
import { CipherpostError } from "../../util/errors.ts";
import { buildBundle, parseBundle, type SessionFiles } from "../../claude/bundle.ts";
import { type SessionSummary, summarizeBundle } from "../../claude/summary.ts";
import { send, type SendResult } from "../share/send.ts";
import { recipientOf } from "../share/recipient.ts";

/** What to send. */
export interface ClaudeSendRequest {
  session: SessionFiles;
  /** null = to self */
  recipient: string | null;
  purpose: string;
  ttlSeconds: bigint;
  pin: string | null;
  burn: boolean;
  /**
   * Sends a bundle too large for a v2 share through the homeserver tier (a large share named
   * `name`, PROTOCOL.md §5); absent = no homeserver path. It throws `no_homeserver` when the
   * sender has none.
   */
  large?: (bundle: Uint8Array, name: string) => Promise<SendResult>;
}

/** What was sent. */
export interface ClaudeSendResult extends SendResult {
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
    "large sessions travel through a homeserver: run `cipherpost homeserver signup` first",
  );
}

/** Bundle and send a session. Progress lines go to `log`. */
export async function claudeSend(
  t: Transport,
  state: State,
  sender: Keypair,
  req: ClaudeSendRequest,
  log: (line: string) => void,
): Promise<ClaudeSendResult> {
  const { publicKey: recipientPk } = recipientOf(sender, req.recipient);
  const bundle = await buildBundle(req.session);
  const summary = summarizeBundle(await parseBundle(bundle));
  log(
    `Bundled session ${summary.sessionId}: ${summary.messages} messages, ${bundle.length} bytes compressed`,
  );
  let result: SendResult;
  let via: "dht" | "homeserver" = "dht";
  if (bundle.length > MATERIAL_CAP) {
    if (!req.large) throw tooLargeForDht(bundle.length);
    log(
      `The bundle is larger than a v2 share (${MATERIAL_CAP} bytes): sending it through your homeserver, if you have one`,
    );
    try {
      result = await req.large(bundle, `claude-session-${summary.sessionId}.tar.gz`);
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
    return await send(t, state, sender, {
      recipient: req.recipient === null ? null : encodeZ32(recipientPk),
      purpose: req.purpose,
      material: "claude_session",
      input: bundle,
      ttlSeconds: req.ttlSeconds,
      pin: req.pin,
      burn: req.burn,
      protocol: 2,
    }, { status: log, note: (text) => log(`note: ${text}`) });
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
