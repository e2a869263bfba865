/**
 * Epoch keys and the encrypted room files (docs/PROTOCOL.md §9.2–§9.4): a fresh age X25519
 * identity per epoch; roster updates and messages age-encrypted to the epoch's recipient; key
 * records age-encrypted to one member's own recipient. Opening checks everything a reader must
 * check before anything is shown.
 *
 * @module
 */

import { bech32 } from "@scure/base";
import { ageDecrypt, ageEncrypt } from "../crypto/age.ts";
import {
  ageIdentityOf,
  ageIdentityOfSeed,
  ageRecipientOf,
  ageRecipientOfEd,
  type Keypair,
  x25519PublicFromSecret,
} from "../crypto/keys.ts";
import { decodeZ32, encodeZ32 } from "../pkarr/public_key.ts";
import { CipherpostError, signatureError } from "../util/errors.ts";
import { MAX_KEY_FILE, MAX_ROOM_FILE } from "./names.ts";
import {
  keyObject,
  type KeyRecord,
  type Message,
  messageObject,
  parseKeyRecord,
  parseMessage,
  parseRecord,
  recordBytes,
  signRecord,
  verifyRecord,
} from "./records.ts";
import { openRoster, type SignedRoster } from "./roster.ts";

/** A new epoch key: `AGE-SECRET-KEY-1…` (a secret). */
export function newEpochKey(): string {
  return ageIdentityOf(crypto.getRandomValues(new Uint8Array(32)));
}

/** The `age1…` recipient of an epoch key. */
export function epochRecipient(identity: string): string {
  const { prefix, words } = bech32.decode(identity.toLowerCase() as `${string}1${string}`, 1023);
  if (prefix !== "age-secret-key-") throw new Error("not an age identity");
  return ageRecipientOf(x25519PublicFromSecret(bech32.fromWords(words)));
}

/** Seal a signed roster update to its epoch key. */
export async function sealRoster(r: SignedRoster, epochKey: string): Promise<Uint8Array> {
  return await ageEncrypt(recordBytes(r.record), epochRecipient(epochKey));
}

/** Open a sealed roster update with the epoch key (format, signature, epoch-1 rules). */
export async function openSealedRoster(file: Uint8Array, epochKey: string): Promise<SignedRoster> {
  if (file.length > MAX_ROOM_FILE) throw oversized();
  return openRoster(await ageDecrypt(file, epochKey));
}

/** A signed key record sealed to its member. */
export async function sealKeyRecord(k: KeyRecord, signerSeed: Uint8Array): Promise<Uint8Array> {
  const rec = signRecord("key", keyObject(k), signerSeed);
  return await ageEncrypt(recordBytes(rec), ageRecipientOfEd(decodeZ32(k.member)));
}

/**
 * Open a key record meant for `me`: decrypt with our identity, check the signature of its
 * signer and that it names us, `room` and `epoch`. Throws `decrypt`, `invalid_material` or
 * `signature`.
 */
export async function openKeyRecord(
  file: Uint8Array,
  me: Keypair,
  expect: { room: string; epoch: number; signer: string },
): Promise<KeyRecord> {
  if (file.length > MAX_KEY_FILE) throw oversized();
  const rec = parseRecord(await ageDecrypt(file, ageIdentityOfSeed(me.seed)));
  const k = parseKeyRecord(rec);
  if (!verifyRecord("key", rec, k.signer)) throw signatureError("key record signature");
  if (
    k.member !== encodeZ32(me.publicKey) || k.room !== expect.room || k.epoch !== expect.epoch ||
    k.signer !== expect.signer
  ) {
    throw signatureError("key record for another member, room, epoch or signer");
  }
  return k;
}

/** A signed message sealed to the epoch key. */
export async function sealMessage(
  m: Message,
  authorSeed: Uint8Array,
  epochKey: string,
): Promise<Uint8Array> {
  const rec = signRecord("msg", messageObject(m), authorSeed);
  const bytes = recordBytes(rec);
  const file = await ageEncrypt(bytes, epochRecipient(epochKey));
  if (file.length > MAX_ROOM_FILE) throw oversized();
  return file;
}

/** Why a message file was refused (§9.4). */
export type Refusal =
  | "oversized"
  | "undecryptable"
  | "malformed"
  | "not_member"
  | "replayed"
  | "bad_signature";

/** Where a message file was found, and what the reader knows of that epoch. */
export interface MessageSlot {
  room: string;
  epoch: number;
  /** the folder's owner (z32) */
  owner: string;
  /** from the path */
  seq: number;
  epochKey: string;
  members: readonly string[];
}

/** Open a message file found at `slot`: the message, or why it is refused. Never throws. */
export async function openMessage(
  file: Uint8Array,
  slot: MessageSlot,
): Promise<Message | Refusal> {
  if (file.length > MAX_ROOM_FILE) return "oversized";
  let plain: Uint8Array;
  try {
    plain = await ageDecrypt(file, slot.epochKey);
  } catch {
    return "undecryptable";
  }
  try {
    const rec = parseRecord(plain);
    const m = parseMessage(rec);
    if (m === "oversized") return "oversized";
    if (!slot.members.includes(m.author)) return "not_member";
    if (
      m.room !== slot.room || m.epoch !== slot.epoch || m.seq !== slot.seq ||
      m.author !== slot.owner
    ) {
      return "replayed";
    }
    if (!verifyRecord("msg", rec, m.author)) return "bad_signature";
    return m;
  } catch {
    return "malformed";
  }
}

function oversized(): CipherpostError {
  return new CipherpostError("too_large", "room file larger than allowed");
}
