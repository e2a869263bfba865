/**
 * The pkarr relay payload, the body of relay `GET` and `PUT`: `sig(64) ‖ seq(8, u64 BE) ‖ v`,
 * i.e. the canonical SignedPacket bytes without the public key (which is in the URL). The one
 * codec of this layout, for the relay client, the testnet relay and the packet vectors.
 *
 * @module
 */

import { signatureError } from "../util/errors.ts";
import { type MutableItem, verifyItem } from "./item.ts";
import { MAX_V_BYTES, type SignedPacket, verifyPacket } from "./signed_packet.ts";

/** Smallest relay payload: signature and timestamp with an empty `v` (72 bytes). */
export const RELAY_PAYLOAD_MIN_BYTES = 72;
/** Largest relay payload: 72 + {@link MAX_V_BYTES} (1072 bytes). */
export const RELAY_PAYLOAD_MAX_BYTES = RELAY_PAYLOAD_MIN_BYTES + MAX_V_BYTES;

/** `sig ‖ seq (u64 BE) ‖ v` of an item. */
export function encodeRelayPayload(
  item: Pick<MutableItem, "sig" | "seq" | "v">,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(RELAY_PAYLOAD_MIN_BYTES + item.v.length);
  out.set(item.sig, 0);
  new DataView(out.buffer).setBigUint64(64, BigInt(item.seq));
  out.set(item.v, RELAY_PAYLOAD_MIN_BYTES);
  return out;
}

/** @throws the signature-lane error when `body` is not 72..1072 bytes. */
function checkSize(body: Uint8Array): void {
  if (body.length < RELAY_PAYLOAD_MIN_BYTES) throw signatureError("relay payload too short");
  if (body.length > RELAY_PAYLOAD_MAX_BYTES) throw signatureError("relay payload too large");
}

/**
 * Splits a relay payload for key `k` into an item (copies), checking sizes and that the
 * timestamp is a safe integer; the signature is NOT checked.
 *
 * @throws the signature-lane error (`signatureError`) on a wrong size or timestamp.
 */
function splitRelayPayload(k: Uint8Array, body: Uint8Array): MutableItem {
  checkSize(body);
  const seq = new DataView(body.buffer, body.byteOffset, body.byteLength).getBigUint64(64);
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) throw signatureError("timestamp out of range");
  return {
    k: k.slice(),
    seq: Number(seq),
    sig: body.slice(0, 64),
    v: body.slice(RELAY_PAYLOAD_MIN_BYTES),
  };
}

/**
 * Parses and verifies a relay payload for key `k`. Returns null when the size is out of
 * 72..1072, the timestamp is not a safe integer, or the signature does not verify.
 */
export function decodeRelayPayload(k: Uint8Array, body: Uint8Array): MutableItem | null {
  let item: MutableItem;
  try {
    item = splitRelayPayload(k, body);
  } catch {
    return null;
  }
  return verifyItem(item) ? item : null;
}

/** The relay payload of a packet (pkarr `to_relay_payload`). */
export function toRelayPayload(p: SignedPacket): Uint8Array {
  return encodeRelayPayload({ sig: p.signature, seq: p.timestamp, v: p.v });
}

/**
 * Parses and verifies a relay body for `publicKey` (pkarr `from_relay_payload`): 72..1072
 * bytes, valid key, signature and DNS packet.
 *
 * @throws the signature-lane error (`signatureError`) on any failure.
 */
export function fromRelayPayload(publicKey: Uint8Array, body: Uint8Array): SignedPacket {
  checkSize(body);
  if (publicKey.length !== 32) throw signatureError("invalid public key");
  const item = splitRelayPayload(publicKey, body);
  return verifyPacket(item.k, item.sig, item.seq, item.v);
}
