/**
 * The BEP44 mutable item without salt: what a PKARR signed packet is on the Mainline DHT and, in
 * its relay payload form, on a pkarr relay. Shared by the DHT client and the relay client.
 *
 * @module
 */

import { ed25519 } from "@noble/curves/ed25519.js";
import { verifyPacketSignature } from "../crypto/keys.ts";
import { MAX_V_BYTES, signable as encodeSignable } from "./signed_packet.ts";

/** A BEP44 mutable item without salt: what a PKARR signed packet is on the DHT. */
export interface MutableItem {
  /** 32-byte Ed25519 public key. */
  k: Uint8Array;
  /** Sequence number: the packet timestamp in microseconds. */
  seq: number;
  /** 64-byte Ed25519 signature over `signable(seq, v)` (lib/pkarr/signed_packet.ts). */
  sig: Uint8Array;
  /** The value, at most {@link MAX_V_BYTES} bytes. */
  v: Uint8Array;
}

/** Ed25519 verification that never throws (false on malformed keys or signatures). */
export function verifySignature(sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): boolean {
  return verifyPacketSignature(pk, msg, sig);
}

/** True when the item has valid sizes, a safe-integer seq and a valid signature. */
export function verifyItem(item: MutableItem): boolean {
  return item.k.length === 32 && item.sig.length === 64 && item.v.length <= MAX_V_BYTES &&
    Number.isSafeInteger(item.seq) && item.seq >= 0 &&
    verifySignature(item.sig, encodeSignable(item.seq, item.v), item.k);
}

/** Builds and signs an item with a 32-byte Ed25519 secret key (seed). */
export function signItem(secretKey: Uint8Array, seq: number, v: Uint8Array): MutableItem {
  return {
    k: ed25519.getPublicKey(secretKey),
    seq,
    sig: ed25519.sign(encodeSignable(seq, v), secretKey),
    v,
  };
}
