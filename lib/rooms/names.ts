/**
 * The names of a room (docs/PROTOCOL.md §9.1): the room id, the per-member folder tag, the key
 * tag of a key record, the homeserver paths, and the limits every reader enforces.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { concat, fromHex, toHex, utf8 } from "../util/encoding.ts";
import { decodeZ32 } from "../pkarr/public_key.ts";
import { CipherpostError } from "../util/errors.ts";

/** Where every room file lives on a homeserver. */
export const ROOMS_DIR = "/pub/cipherpost/rooms/";
/** Largest message body, in bytes of UTF-8. */
export const MAX_BODY = 8192;
/** Largest message or roster file accepted from a homeserver. */
export const MAX_ROOM_FILE = 16384;
/** Largest key-record file. */
export const MAX_KEY_FILE = 4096;
/** Members a room may have. */
export const MAX_MEMBERS = 256;
/** Admins a room may have. */
export const MAX_ADMINS = 16;
/** A timestamp further ahead of the reader's clock than this is flagged (§9.4). */
export const MAX_FUTURE_MS = 5 * 60 * 1000;
/** Users one event stream may follow (pubky-homeserver's `MAX_EVENT_STREAM_USERS`). */
export const MAX_STREAM_USERS = 50;

const ROOM_RE = /^[0-9a-f]{32}$/;

/** True for a well-formed room id (32 lowercase hex). */
export function isRoomId(s: string): boolean {
  return ROOM_RE.test(s);
}

function hash16(...parts: Uint8Array[]): string {
  return toHex(sha256(concat(...parts)).subarray(0, 16));
}

function u64be(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

/** The room id of `creator` (32-byte key) and a 16-byte nonce. */
export function roomIdOf(creator: Uint8Array, nonce: Uint8Array): string {
  return hash16(utf8("cipherpost/room/v1/id"), creator, nonce);
}

/** The folder tag of member `member` (z32) in `room`. */
export function folderTag(room: string, member: string): string {
  return hash16(utf8("cipherpost/room/v1/tag"), roomBytes(room), decodeZ32(member));
}

/** The key tag of member `member` (z32) at `epoch`. */
export function keyTag(room: string, epoch: number, member: string): string {
  return hash16(utf8("cipherpost/room/v1/key"), roomBytes(room), u64be(epoch), decodeZ32(member));
}

function roomBytes(room: string): Uint8Array {
  if (!isRoomId(room)) throw new CipherpostError("usage", "malformed room id");
  return fromHex(room);
}

/** A number as 10 decimal digits (epochs and sequence numbers in paths). */
export function pad10(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0 || n > 9_999_999_999) {
    throw new CipherpostError("usage", `room number out of range: ${n}`);
  }
  return String(n).padStart(10, "0");
}

/** `/pub/cipherpost/rooms/<tag>/`. */
export function memberDir(room: string, member: string): string {
  return `${ROOMS_DIR}${folderTag(room, member)}/`;
}

/** The roster update of `epoch` written by `signer`. */
export function rosterPath(room: string, signer: string, epoch: number): string {
  return `${memberDir(room, signer)}roster/${pad10(epoch)}`;
}

/** The key record of `member` at `epoch`, written by `signer`. */
export function keyPath(room: string, signer: string, epoch: number, member: string): string {
  return `${memberDir(room, signer)}keys/${pad10(epoch)}/${keyTag(room, epoch, member)}`;
}

/** The folder of `author`'s messages of `epoch`. */
export function epochDir(room: string, author: string, epoch: number): string {
  return `${memberDir(room, author)}${pad10(epoch)}/`;
}

/** `author`'s message `seq` of `epoch`. */
export function messagePath(room: string, author: string, epoch: number, seq: number): string {
  return `${epochDir(room, author, epoch)}${pad10(seq)}`;
}

/** The sequence number of a message path's last segment, or null. */
export function seqOfPath(path: string): number | null {
  const m = /\/([0-9]{10})$/.exec(path);
  return m ? Number(m[1]) : null;
}
