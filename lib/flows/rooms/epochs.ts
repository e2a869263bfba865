/**
 * Opening an epoch (publishing a roster update and its key records) and catching up with the
 * epochs others opened (docs/PROTOCOL.md §9.2, §9.3).
 *
 * @module
 */

import { CipherpostError } from "../../util/errors.ts";
import { keyPath, MAX_KEY_FILE, MAX_ROOM_FILE, rosterPath } from "../../rooms/names.ts";
import { checkFollows, type SignedRoster, signRoster } from "../../rooms/roster.ts";
import type { Roster } from "../../rooms/records.ts";
import {
  newEpochKey,
  openKeyRecord,
  openSealedRoster,
  sealKeyRecord,
  sealRoster,
} from "../../rooms/seal.ts";
import { current, type HeldEpoch, type RoomState } from "../../rooms/store.ts";
import { fetchBounded, type RoomContext, type RoomNet } from "./net.ts";

/** Epochs walked forward by one catch-up at most. */
export const MAX_EPOCH_STEPS = 1000;

/**
 * Sign `r` (we are its signer), make its epoch key, and publish the update and one key record
 * per member on our homeserver. Returns the held epoch.
 */
export async function publishEpoch(
  ctx: RoomContext,
  net: RoomNet,
  r: Roster,
): Promise<HeldEpoch> {
  const signed = signRoster(r, ctx.me.seed);
  const key = newEpochKey();
  const client = await net.own();
  for (const member of r.members) {
    const file = await sealKeyRecord({
      room: r.room,
      epoch: r.epoch,
      member,
      key,
      roster: signed.hash,
      signer: r.signer,
    }, ctx.me.seed);
    await client.put(keyPath(r.room, r.signer, r.epoch, member), file);
  }
  await client.put(rosterPath(r.room, r.signer, r.epoch), await sealRoster(signed, key));
  return { epoch: r.epoch, key, roster: signed };
}

/**
 * Fetch and check epoch `epoch`'s key record for us and its update, as published by `signer`.
 * Null when `signer` published none for us (not found); throws when what is there is wrong.
 */
export async function fetchEpoch(
  ctx: RoomContext,
  net: RoomNet,
  room: string,
  epoch: number,
  signer: string,
): Promise<HeldEpoch | null> {
  const client = await net.reader(signer);
  const kfile = await fetchBounded(client, keyPath(room, signer, epoch, net.me), MAX_KEY_FILE);
  if (kfile === null) return null;
  const k = await openKeyRecord(kfile, ctx.me, { room, epoch, signer });
  const rfile = await fetchBounded(client, rosterPath(room, signer, epoch), MAX_ROOM_FILE);
  if (rfile === null) return null;
  const roster = await openSealedRoster(rfile, k.key);
  if (roster.hash !== k.roster || roster.roster.signer !== signer) {
    throw new CipherpostError("signature", "signature verification failed");
  }
  if (roster.roster.room !== room || roster.roster.epoch !== epoch) {
    throw new CipherpostError("signature", "signature verification failed");
  }
  return { epoch, key: k.key, roster };
}

/** What a catch-up found. */
export interface CatchUp {
  /** epochs added */
  added: HeldEpoch[];
  /** the newest epoch has no key for us: we were removed */
  removed: boolean;
  /** problems seen (a fork, a bad update), for the user */
  notes: string[];
}

/**
 * Walk forward from our newest epoch: for epoch E+1, ask each admin of E (creator first) for a
 * key record for us; a valid update following ours is added. Stops when no admin has one. An
 * update that removes us is seen only as an absence of keys; `removed` is set when an admin's
 * roster folder has an update for E+1 that we cannot open.
 */
export async function catchUp(
  ctx: RoomContext,
  net: RoomNet,
  st: RoomState,
): Promise<CatchUp> {
  const out: CatchUp = { added: [], removed: false, notes: [] };
  for (let step = 0; step < MAX_EPOCH_STEPS; step++) {
    const cur = current(st);
    const next = cur.epoch + 1;
    const admins = [...cur.roster.roster.admins].sort((a, b) =>
      a === st.creator ? -1 : b === st.creator ? 1 : a < b ? -1 : 1
    );
    const found: HeldEpoch[] = [];
    let rosterSeen = false;
    for (const admin of admins) {
      try {
        const e = await fetchEpoch(ctx, net, st.room, next, admin);
        if (e) {
          checkFollows(cur.roster, e.roster);
          found.push(e);
        } else {
          const client = await net.reader(admin);
          if (await client.head(rosterPath(st.room, admin, next))) rosterSeen = true;
        }
      } catch (err) {
        if (err instanceof CipherpostError && err.kind !== "network" && err.kind !== "homeserver") {
          out.notes.push(`epoch ${next} from admin ${admin} refused: ${err.message}`);
        } else throw err;
      }
    }
    if (found.length === 0) {
      out.removed = rosterSeen;
      return out;
    }
    if (found.length > 1) out.notes.push(`epoch ${next} is forked (${found.length} updates)`);
    found.sort((a, b) =>
      (a.roster.roster.signer === st.creator ? 0 : 1) -
        (b.roster.roster.signer === st.creator ? 0 : 1) ||
      (a.roster.hash < b.roster.hash ? -1 : 1)
    );
    st.epochs.push(found[0]);
    out.added.push(found[0]);
  }
  return out;
}

/** The roster update that opened our newest epoch (for checks before acting). */
export function currentRoster(st: RoomState): SignedRoster {
  return current(st).roster;
}
