/**
 * The rooms a home belongs to: one file per room, `<home>/rooms/<room>.age`, 0600, age-encrypted
 * to the identity's own recipient (it holds epoch keys). Not on the wire.
 *
 * @module
 */

import { ageDecrypt, ageEncrypt } from "../crypto/age.ts";
import { ageIdentityOfSeed, ageRecipientOfEd, type Keypair } from "../crypto/keys.ts";
import { fromUtf8, utf8 } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import { ensurePrivateDir, writeFileAtomic } from "../util/fsutil.ts";
import type { JsonValue } from "../util/canonical_json.ts";
import { isRoomId } from "./names.ts";
import type { Hlc } from "./order.ts";
import { openRoster, type SignedRoster } from "./roster.ts";
import { recordBytes } from "./records.ts";

/** One epoch we hold the key of. */
export interface HeldEpoch {
  epoch: number;
  /** `AGE-SECRET-KEY-1…` */
  key: string;
  /** the verified roster update that opened it */
  roster: SignedRoster;
}

/**
 * A room as this home knows it. Only its identity is public; the rest (epoch keys included) is
 * the flows' to read and write.
 */
export interface RoomState {
  /** The room's id (what `room` arguments take, besides the name). */
  room: string;
  /** The room's name, from the signed roster. */
  name: string;
  /** z32 of the room's creator (the id derives from it and the nonce). */
  creator: string;
  /** The creator's random 16 bytes, hex, that make the id unique. */
  nonce: string;
  /** @ignore epochs held, ascending */
  epochs: HeldEpoch[];
  /** @ignore our last sequence number per epoch */
  seq: Record<string, number>;
  /** @ignore our last clock stamp */
  hlc: Hlc | null;
}

/** The newest epoch held. */
export function current(st: RoomState): HeldEpoch {
  return st.epochs[st.epochs.length - 1];
}

function dirOf(home: string): string {
  return `${home}/rooms`;
}

interface Stored {
  v: 1;
  room: string;
  name: string;
  creator: string;
  nonce: string;
  epochs: { epoch: number; key: string; roster: string }[];
  seq: Record<string, number>;
  hlc: Hlc | null;
}

/** Write a room's state (atomically, 0600). */
export async function saveRoom(home: string, me: Keypair, st: RoomState): Promise<void> {
  await ensurePrivateDir(dirOf(home));
  const stored: Stored = {
    v: 1,
    room: st.room,
    name: st.name,
    creator: st.creator,
    nonce: st.nonce,
    epochs: st.epochs.map((e) => ({
      epoch: e.epoch,
      key: e.key,
      roster: fromUtf8(recordBytes(e.roster.record as Record<string, JsonValue>)),
    })),
    seq: st.seq,
    hlc: st.hlc,
  };
  const sealed = await ageEncrypt(utf8(JSON.stringify(stored)), ageRecipientOfEd(me.publicKey));
  await writeFileAtomic(`${dirOf(home)}/${st.room}.age`, sealed);
}

/** Read a room's state, or null when this home has no such room. */
export async function loadRoom(home: string, me: Keypair, room: string): Promise<RoomState | null> {
  if (!isRoomId(room)) return null;
  let file: Uint8Array;
  try {
    file = await Deno.readFile(`${dirOf(home)}/${room}.age`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const s = JSON.parse(fromUtf8(await ageDecrypt(file, ageIdentityOfSeed(me.seed)))) as Stored;
  return {
    room: s.room,
    name: s.name,
    creator: s.creator,
    nonce: s.nonce,
    epochs: s.epochs.map((e) => ({
      epoch: e.epoch,
      key: e.key,
      roster: openRoster(utf8(e.roster)),
    })),
    seq: s.seq,
    hlc: s.hlc,
  };
}

/** Every room of this home. */
export async function listRooms(home: string, me: Keypair): Promise<RoomState[]> {
  const out: RoomState[] = [];
  try {
    for await (const e of Deno.readDir(dirOf(home))) {
      const m = /^([0-9a-f]{32})\.age$/.exec(e.name);
      if (!m || !e.isFile) continue;
      const st = await loadRoom(home, me, m[1]);
      if (st) out.push(st);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Forget a room. */
export async function forgetRoom(home: string, room: string): Promise<void> {
  if (!isRoomId(room)) return;
  await Deno.remove(`${dirOf(home)}/${room}.age`).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

/** The room named by its id or its name (`config` error when none, or several by that name). */
export async function findRoom(home: string, me: Keypair, idOrName: string): Promise<RoomState> {
  if (isRoomId(idOrName)) {
    const st = await loadRoom(home, me, idOrName);
    if (st) return st;
  }
  const all = (await listRooms(home, me)).filter((r) => r.name === idOrName);
  if (all.length === 1) return all[0];
  if (all.length > 1) {
    throw new CipherpostError(
      "config",
      `configuration error: ${all.length} rooms are named that; use the room id`,
      "list them with: cipherpost room list",
    );
  }
  throw new CipherpostError(
    "not_found",
    "no such room in this home",
    "list your rooms with: cipherpost room list",
  );
}
