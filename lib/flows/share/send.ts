/**
 * `send`: build the Envelope, encrypt it to the recipient (and a PIN), sign the record and
 * publish it — as a v1.1-compatible share when it fits one packet next to the records already
 * there without displacing a live share, otherwise as a v2 multi-packet share (PROTOCOL.md §3.9).
 *
 * @module
 */

import { ageEncrypt } from "../../crypto/age.ts";
import { type DnsRecord, txtRecord, txtText } from "../../pkarr/dns.ts";
import { b64encode, concat, toHex } from "../../util/encoding.ts";
import { CipherpostError } from "../../util/errors.ts";
import { pinKey } from "../../crypto/kdf.ts";
import {
  ageRecipientOf,
  ageRecipientOfEd,
  x25519PublicFromSecret,
} from "../../crypto/keys.ts";
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
  purpose: string;
  material: MaterialType;
  input: Uint8Array;
  ttlSeconds: bigint;
  /** the PIN, already validated, or null */
  pin: string | null;
  burn: boolean;
  /** force a protocol version */
  protocol?: 1 | 2;
  /** multi-packet publish progress: (packets stored, packets) */
  progress?: (done: number, total: number) => void;
}

/** What was sent. */
export interface SendResult {
  uri: string;
  shareRef: string;
  expiresAt: number;
  /** bytes of stored material */
  size: number;
  protocol: 1 | 2;
  /** packets published */
  packets: number;
  /** why a share went out as v2 without `--protocol 2` (for a note to the user), if it did */
  fallback?: "too_large" | "packet_full" | "live_v1";
}

interface Sealed {
  blob: Uint8Array;
  outer: Uint8Array;
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
  let pinSalt: Uint8Array | null = null;
  let pinRecipient: string | null = null;
  if (req.pin !== null) {
    pinSalt = crypto.getRandomValues(new Uint8Array(32));
    pinRecipient = ageRecipientOf(x25519PublicFromSecret(await pinKey(req.pin, pinSalt)));
  }

  const seal = async (protocolVersion: number): Promise<Sealed> => {
    const env = encodeEnvelope({
      burnAfterRead: req.burn,
      createdAt,
      material: { type: req.material, bytes: stored },
      protocolVersion,
      purpose: req.purpose,
    });
    if (pinSalt && pinRecipient) {
      const outer = await ageEncrypt(await ageEncrypt(env, pinRecipient), recipientAge);
      return { blob: concat(pinSalt, outer), outer };
    }
    const outer = await ageEncrypt(env, recipientAge);
    return { blob: outer, outer };
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
        "drop --protocol 1 to send it as a v2 multi-packet share",
      );
    }
    if (req.protocol === 1 && liveV1) {
      throw new CipherpostError(
        "config",
        "configuration error: a live v1 share of yours would be replaced (v1 has one share slot per identity)",
        "revoke it first (cipherpost revoke <share_ref>), or drop --protocol 1",
      );
    }
    if (fitsAlone && !liveV1 && alone) {
      ui.status("Publishing to DHT...");
      try {
        const nowSec = Math.floor(Date.now() / 1000);
        const report = await updateOwnPacket(t, state, sender, (records) => {
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
        }, ui);
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
          throw new CipherpostError(
            "config",
            "configuration error: a live v1 share of yours would be replaced (v1 has one share slot per identity)",
            "revoke it first (cipherpost revoke <share_ref>), or drop --protocol 1",
          );
        }
        if (req.protocol === 1) {
          throw new CipherpostError(
            "too_large",
            "share does not fit next to the records already in your packet",
            "drop --protocol 1 to send it as a v2 multi-packet share",
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
