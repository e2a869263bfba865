/**
 * The keys and keyed names of Claude sync (docs/PROTOCOL.md §8.1): one HMAC key derived from
 * the identity seed names every chunk, device and snapshot, so no homeserver path tells what it
 * holds; content is age-encrypted to the identity's own recipient.
 *
 * @module
 */

import { createHmac, type Hmac } from "node:crypto";
import { hkdf32 } from "../crypto/kdf.ts";
import { ageIdentityOfSeed, ageRecipientOfEd, type Keypair } from "../crypto/keys.ts";
import { utf8 } from "../util/encoding.ts";

const SALT = "cipherpost-sync";
const INFO = "cipherpost/v1/sync-names";

/** What a sync needs of the identity: the names key, the age recipient and identity. */
export class SyncKeys {
  readonly #nameKey: Uint8Array;
  /** the identity's own age recipient (`age1…`) */
  readonly recipient: string;
  /** the identity's age identity (`AGE-SECRET-KEY-1…`) */
  readonly ageIdentity: string;
  readonly me: Keypair;

  constructor(me: Keypair) {
    this.me = me;
    this.#nameKey = hkdf32(utf8(SALT), me.seed, INFO);
    this.recipient = ageRecipientOfEd(me.publicKey);
    this.ageIdentity = ageIdentityOfSeed(me.seed);
  }

  /** A streaming keyed hash with the domain `label` (`chunk`, `file`, …). */
  hasher(label: string): Hmac {
    const h = createHmac("sha256", this.#nameKey);
    h.update(utf8(`${label}\0`));
    return h;
  }

  /** `chunk_id` of a chunk's plaintext (64 hex). */
  chunkId(plain: Uint8Array): string {
    return this.hasher("chunk").update(plain).digest("hex");
  }

  /** `device_id` of a device secret (32 hex). */
  deviceId(secret: Uint8Array): string {
    return this.hasher("device").update(secret).digest("hex").slice(0, 32);
  }

  /** The first 4 bytes (big-endian) of `path_hash`: what puts a path in a snapshot page. */
  pathHash(root: string | undefined, path: string): number {
    const d = this.hasher("page").update(utf8(`${root ?? ""}\0${path}`)).digest();
    return d.readUInt32BE(0);
  }

  /** `snap_name` of a device's snapshot `seq` (32 hex). */
  snapName(device: string, seq: number): string {
    return this.hasher("snapshot").update(utf8(`${device}\0${seq}`)).digest("hex").slice(0, 32);
  }
}

/** Where sync keeps things on the homeserver. */
export const SYNC_DIR = "/pub/cipherpost/sync/";
/** `/pub/cipherpost/sync/o/<chunk_id>` */
export function chunkPath(id: string): string {
  return `${SYNC_DIR}o/${id}`;
}
/** `/pub/cipherpost/sync/<device>/head` */
export function headPath(device: string): string {
  return `${SYNC_DIR}${device}/head`;
}
/** `/pub/cipherpost/sync/<device>/<snap_name>` */
export function snapPath(device: string, name: string): string {
  return `${SYNC_DIR}${device}/${name}`;
}
/** A device id: 32 lowercase hex. */
export const DEVICE_RE = /^[0-9a-f]{32}$/;
/** A chunk id: 64 lowercase hex. */
export const CHUNK_RE = /^[0-9a-f]{64}$/;
