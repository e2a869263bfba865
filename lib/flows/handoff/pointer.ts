/**
 * The pickup pointer of a Claude Code session hand-off (PROTOCOL.md §6.2): one packet under a
 * key derived from the X25519 secret shared by sender and recipient, holding the signed
 * pointer JSON sealed to the recipient. Only the two parties can find it; only the recipient
 * can read it; only the sender can sign it.
 *
 * @module
 */

import { ageDecrypt, ageEncrypt } from "../../crypto/age.ts";
import { hkdf32 } from "../../crypto/kdf.ts";
import {
  ageIdentityOfSeed,
  ageRecipientOfEd,
  type Keypair,
  keypairFromSeed,
  sign,
  verifyStrict,
  x25519PublicFromEd,
  x25519SecretFromSeed,
  x25519Shared,
} from "../../crypto/keys.ts";
import { encodeZ32, parsePublicKey } from "../../pkarr/public_key.ts";
import { signPacket } from "../../pkarr/signed_packet.ts";
import type { Transport } from "../../pkarr/transport.ts";
import { canonicalize, field, parseJson } from "../../util/canonical_json.ts";
import { b64decode, b64encode, fromUtf8 } from "../../util/encoding.ts";
import { CipherpostError, signatureError } from "../../util/errors.ts";
import { binaryTxt, recordBytes } from "../../protocol/v2.ts";
import { publishPackets } from "../share/v2_transfer.ts";

const LABEL = "_cpc";
const INFO = "cipherpost/v2/claude-pointer-key/";

/** A hand-off pointer. */
export interface ClaudePointer {
  createdAt: number;
  sender: string;
  recipient: string;
  sessionId: string;
  uri: string;
}

/**
 * The pointer slot of (sender, recipient), computed by either party: `mySeed` is our identity
 * seed, `otherPublic` the other party's Ed25519 key; `senderZ32`/`recipientZ32` fix the order.
 */
export function pointerKey(
  mySeed: Uint8Array,
  otherPublic: Uint8Array,
  senderZ32: string,
  recipientZ32: string,
): Keypair {
  const ss = x25519Shared(x25519SecretFromSeed(mySeed), x25519PublicFromEd(otherPublic));
  if (ss.every((b) => b === 0)) throw signatureError("pointer key");
  return keypairFromSeed(hkdf32(new Uint8Array(0), ss, `${INFO}${senderZ32}/${recipientZ32}`));
}

function signable(p: ClaudePointer): Uint8Array {
  return canonicalize({
    created_at: p.createdAt,
    protocol_version: 2,
    recipient: p.recipient,
    sender: p.sender,
    session_id: p.sessionId,
    uri: p.uri,
  });
}

/** Sign, seal and publish the pointer (a newer one replaces the older). */
export async function publishPointer(
  t: Transport,
  sender: Keypair,
  recipientPublic: Uint8Array,
  p: Omit<ClaudePointer, "sender" | "recipient">,
): Promise<void> {
  const full: ClaudePointer = {
    ...p,
    sender: encodeZ32(sender.publicKey),
    recipient: encodeZ32(recipientPublic),
  };
  const sig = sign(sender.seed, signable(full));
  const json = canonicalize({
    created_at: full.createdAt,
    protocol_version: 2,
    recipient: full.recipient,
    sender: full.sender,
    session_id: full.sessionId,
    signature: b64encode(sig),
    uri: full.uri,
  });
  const sealed = await ageEncrypt(json, ageRecipientOfEd(recipientPublic));
  const slot = pointerKey(sender.seed, recipientPublic, full.sender, full.recipient);
  const packet = signPacket(slot.seed, [binaryTxt(LABEL, sealed)], Date.now() * 1000);
  await publishPackets(t, [packet]);
}

/**
 * Find, unseal and verify the newest pointer `sender` addressed to `me`.
 * @throws CipherpostError "not_found" (none), "signature" (anything wrong)
 */
export async function fetchPointer(
  t: Transport,
  me: Keypair,
  senderPublic: Uint8Array,
): Promise<ClaudePointer> {
  const senderZ32 = encodeZ32(senderPublic);
  const myZ32 = encodeZ32(me.publicKey);
  const slot = pointerKey(me.seed, senderPublic, senderZ32, myZ32);
  const resolved = await t.resolve(slot.publicKey, (p) => recordBytes(p, LABEL) !== null);
  const sealed = resolved && recordBytes(resolved.packet, LABEL);
  if (!sealed) {
    throw new CipherpostError(
      "not_found",
      `no session hand-off from ${senderZ32} to you was found`,
      { step: "pickup_uri" },
    );
  }
  let o;
  try {
    o = parseJson(fromUtf8(await ageDecrypt(sealed, ageIdentityOfSeed(me.seed))));
  } catch {
    throw signatureError("pointer unseal");
  }
  try {
    if (!field.isObject(o)) throw new Error();
    const p: ClaudePointer = {
      createdAt: field.int(o.created_at),
      sender: field.str(o.sender),
      recipient: field.str(o.recipient),
      sessionId: field.str(o.session_id),
      uri: field.str(o.uri),
    };
    if (field.int(o.protocol_version) !== 2) throw new Error();
    if (p.sender !== senderZ32 || p.recipient !== myZ32) throw new Error();
    parsePublicKey(p.sender);
    if (!verifyStrict(senderPublic, signable(p), b64decode(field.str(o.signature)))) {
      throw new Error();
    }
    return p;
  } catch {
    throw signatureError("pointer");
  }
}
