/**
 * `send`: build the Envelope, encrypt it to the recipient (and a PIN), sign the record and
 * publish it — as a v1.1-compatible share when it fits one packet next to the records already
 * there (and the room kept for a `_pubky` record) without displacing a live share, otherwise as a
 * v2 multi-packet share (PROTOCOL.md §3.9).
 *
 * @module
 */

import { type DnsRecord, txtRecord, txtText } from "../../pkarr/dns.ts";
import { b64encode, toHex } from "../../util/encoding.ts";
import { CipherpostError, configError } from "../../util/errors.ts";
import { newPinLayer, type SealedShare, sealShare } from "../../crypto/pin.ts";
import { ageRecipientOfEd } from "../../crypto/keys.ts";
import { ingestMaterial, type MaterialType } from "../../material/material.ts";
import { encodeZ32 } from "../../pkarr/public_key.ts";
import {
  encodeEnvelope,
  expiresAt,
  outerRecordJson,
  sha256Hex,
  shareRef,
  signOuterRecord,
} from "../../protocol/record.ts";
import { recordNamesShare, SHARE_LABEL, shareRecords } from "../../protocol/labels.ts";
import { formatV1Uri, formatV2Uri } from "../../protocol/share_uri.ts";
import { packetToBytes, type SignedPacket, signPacket } from "../../pkarr/signed_packet.ts";
import { buildV2Share } from "../../protocol/v2.ts";
import type { FlowContext, FlowUi } from "./ui.ts";
import { publishPackets } from "./v2_transfer.ts";
import { updateOwnPacket } from "./own_packet.ts";
import { recipientOf } from "./recipient.ts";

/** What to send. */
export interface SendRequest {
  /** null = to self */
  recipient: string | null;
  /** What the share is for, shown to the recipient (not secret; C0 controls are refused). */
  purpose: string;
  /** The material type (keys and certificates are checked and normalised). */
  material: MaterialType;
  /** The material's bytes (at most 64 KiB). */
  input: Uint8Array;
  /** The share's lifetime in seconds. */
  ttlSeconds: bigint;
  /** the PIN, already validated, or null */
  pin: string | null;
  /** Burn after read: the recipient's tool shows it once. */
  burn: boolean;
  /** force a protocol version */
  protocol?: 1 | 2;
  /** multi-packet publish progress: (packets stored, packets) */
  progress?: (done: number, total: number) => void;
}

/** What was sent. */
export interface SendResult {
  /** The `cipherpost://` URI to give the recipient. */
  uri: string;
  /** The share's 32-hex reference. */
  shareRef: string;
  /** Unix seconds when the share expires. */
  expiresAt: number;
  /** bytes of stored material */
  size: number;
  /** The wire protocol the share went out in. */
  protocol: 1 | 2;
  /** packets published */
  packets: number;
  /** why a share went out as v2 without `--protocol 2` (for a note to the user), if it did */
  fallback?: "too_large" | "packet_full" | "live_v1";
}

function ownRecordExpired(r: DnsRecord, nowSec: number): boolean {
  const text = txtText(r);
  if (text === null) return false;
  try {
    const o = JSON.parse(text);
    return nowSec >= Number(o.created_at) + Number(o.ttl_seconds);
  } catch {
    return false;
  }
}

class NeedV2 extends Error {}

/** Send a share, telling `ui` what it does. */
export async function send(
  ctx: FlowContext,
  req: SendRequest,
  ui: FlowUi,
): Promise<SendResult> {
  const { transport: t, state, me: sender } = ctx;
  const stored = ingestMaterial(req.material, req.input);
  const senderZ32 = encodeZ32(sender.publicKey);
  const { publicKey: recipientPk, z32: recipientStr } = recipientOf(sender, req.recipient);
  const recipientAge = ageRecipientOfEd(recipientPk);
  const createdAt = Math.floor(Date.now() / 1000);
  const exp = Number(expiresAt(createdAt, req.ttlSeconds));
  const pin = req.pin === null ? null : await newPinLayer(req.pin);

  const seal = async (protocolVersion: number): Promise<SealedShare> => {
    const env = encodeEnvelope({
      burnAfterRead: req.burn,
      createdAt,
      material: { type: req.material, bytes: stored },
      protocolVersion,
      purpose: req.purpose,
    });
    return await sealShare(env, recipientAge, pin);
  };

  const base = { shareRef: "", expiresAt: exp, size: stored.length };
  let fallback: SendResult["fallback"];

  if (req.protocol !== 2) {
    const v1 = await seal(1);
    const ref = shareRef(v1.outer, createdAt);
    const record = signOuterRecord({
      blob: b64encode(v1.blob),
      createdAt,
      pinRequired: req.pin !== null,
      protocolVersion: 1,
      pubkey: senderZ32,
      recipient: recipientStr,
      shareRef: ref,
      ttlSeconds: req.ttlSeconds,
    }, sender.seed);
    // A record over 1000 bytes can never fit a 1000-byte DNS packet (and TXT rdata caps at 64 KiB).
    const recordJson = outerRecordJson(record);
    let fitsAlone = recordJson.length <= 1000;
    const shareTxt = txtRecord(SHARE_LABEL, 300, fitsAlone ? recordJson : "");
    let alone: SignedPacket | null = null;
    if (fitsAlone) {
      try {
        alone = signPacket(sender.seed, [shareTxt], Date.now() * 1000);
      } catch (e) {
        if (!(e instanceof CipherpostError && e.kind === "too_large")) throw e;
        fitsAlone = false;
      }
    }
    const liveV1 = (await state.listSent()).some((s) =>
      s.version === 1 && s.expiresAt > createdAt && s.sender === senderZ32
    );
    if (req.protocol === 1 && !fitsAlone) {
      throw new CipherpostError(
        "too_large",
        `share too large for a v1 PKARR packet: the record alone needs more than 1000 bytes of DNS (material is ${stored.length} bytes; about 75-100 bytes of secret fit, PIN shares never fit)`,
        { step: "use_protocol_v2" },
      );
    }
    if (req.protocol === 1 && liveV1) {
      throw configError(
        "a live v1 share of yours would be replaced (v1 has one share slot per identity)",
        { step: "revoke_or_v2" },
      );
    }
    if (fitsAlone && !liveV1 && alone) {
      ui.status("Publishing to DHT...");
      try {
        const nowSec = Math.floor(Date.now() / 1000);
        const report = await updateOwnPacket(
          t,
          state,
          sender,
          (records) => {
            const drop = new Set(
              shareRecords({ publicKey: sender.publicKey, records }).filter((r) =>
                ownRecordExpired(r, nowSec) || recordNamesShare(r, ref)
              ),
            );
            const kept = records.filter((r) => !drop.has(r));
            if (shareRecords({ publicKey: sender.publicKey, records: kept }).length > 0) {
              throw new NeedV2("a live v1 share is already published");
            }
            return [...kept, shareTxt];
          },
          ui,
          { keepPubkyRoom: req.protocol !== 1 },
        );
        if (report) {
          await state.saveSent({
            version: 1,
            shareRef: ref,
            uri: formatV1Uri(senderZ32, ref),
            sender: senderZ32,
            recipient: recipientStr,
            purpose: req.purpose,
            createdAt,
            expiresAt: exp,
            ciphertextSha256: sha256Hex(v1.outer),
          });
          return {
            ...base,
            uri: formatV1Uri(senderZ32, ref),
            shareRef: ref,
            protocol: 1,
            packets: 1,
          };
        }
      } catch (e) {
        const full = e instanceof CipherpostError && e.kind === "too_large";
        if (!(e instanceof NeedV2) && !full) throw e;
        if (req.protocol === 1 && e instanceof NeedV2) {
          throw configError(
            "a live v1 share of yours would be replaced (v1 has one share slot per identity)",
            { step: "revoke_or_v2" },
          );
        }
        if (req.protocol === 1) {
          throw new CipherpostError(
            "too_large",
            "share does not fit next to the records already in your packet",
            { step: "use_protocol_v2" },
          );
        }
        fallback = full ? "packet_full" : "live_v1";
      }
    } else if (!fitsAlone) {
      fallback = "too_large";
    } else {
      fallback = "live_v1";
    }
  }

  const v2 = await seal(2);
  const ref = shareRef(v2.outer, createdAt);
  const built = await buildV2Share({
    sender,
    recipient: recipientStr,
    blob: v2.blob,
    shareRef: ref,
    createdAt,
    ttlSeconds: req.ttlSeconds,
    pinRequired: req.pin !== null,
  });
  ui.status(`Publishing ${built.packets.length} packets to DHT...`);
  await publishPackets(t, built.packets, undefined, { progress: req.progress });
  const uri = formatV2Uri(senderZ32, built.locator);
  await state.saveSent({
    version: 2,
    shareRef: ref,
    uri,
    sender: senderZ32,
    recipient: recipientStr,
    purpose: req.purpose,
    createdAt,
    expiresAt: exp,
    locator: toHex(built.locator),
    ciphertextSha256: sha256Hex(v2.outer),
    packets: built.packets.map((p) => b64encode(packetToBytes(p))),
  });
  return { ...base, uri, shareRef: ref, protocol: 2, packets: built.packets.length, fallback };
}
