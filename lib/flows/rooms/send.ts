/**
 * `room send`: sign a message with our key, encrypt it to the newest epoch's key and write it
 * to our own homeserver as our next sequence number (docs/PROTOCOL.md §9.4).
 *
 * @module
 */

import { CipherpostError } from "../../util/errors.ts";
import { epochDir, messagePath, seqOfPath } from "../../rooms/names.ts";
import { bodyBytes, type MessageKind } from "../../rooms/records.ts";
import { tick } from "../../rooms/order.ts";
import { sealMessage } from "../../rooms/seal.ts";
import { current, findRoom, type RoomState, saveRoom } from "../../rooms/store.ts";
import { catchUp } from "./epochs.ts";
import { type RoomContext, RoomNet } from "./net.ts";

/** What was sent. */
export interface SentMessage {
  /** The room's id. */
  room: string;
  /** The epoch whose key encrypted it (the newest held). */
  epoch: number;
  /** Our sequence number in that epoch. */
  seq: number;
  /** HLC wall time, Unix ms */
  time: number;
}

/**
 * The state of `room` (id or name), caught up with the epochs opened since (saved later by the
 * caller), when we may post to it.
 *
 * @throws config when we were removed or are not a member; not_found (no such room)
 */
export async function openForPosting(
  ctx: RoomContext,
  net: RoomNet,
  room: string,
): Promise<RoomState> {
  const st = await findRoom(ctx.state.home, ctx.me, room);
  const c = await catchUp(ctx, net, st);
  if (c.removed) {
    throw new CipherpostError(
      "config",
      "configuration error: you were removed from this room",
      "forget it with: cipherpost room leave ROOM",
    );
  }
  if (!current(st).roster.roster.members.includes(net.me)) {
    throw new CipherpostError("config", "configuration error: you are not a member of this room");
  }
  return st;
}

/** Post `body` to `room` (id or name). */
export async function sendToRoom(
  ctx: RoomContext,
  room: string,
  body: string,
  kind: MessageKind = "chat",
): Promise<SentMessage> {
  bodyBytes(body); // too large → refused before anything else
  const net = new RoomNet(ctx);
  const st = await openForPosting(ctx, net, room);
  const cur = current(st);
  const client = await net.own();
  let last = st.seq[String(cur.epoch)];
  if (last === undefined) {
    // a home that lost its count (or another device of ours): continue after what is there
    last = 0;
    for await (const e of client.listAll(epochDir(st.room, net.me, cur.epoch))) {
      last = Math.max(last, seqOfPath(e.path) ?? 0);
    }
  }
  const seq = last + 1;
  const hlc = tick(st.hlc, Date.now());
  const file = await sealMessage(
    {
      room: st.room,
      epoch: cur.epoch,
      author: net.me,
      seq,
      hlc: hlc.ms,
      hlcC: hlc.c,
      kind,
      body,
    },
    ctx.me.seed,
    cur.key,
  );
  await client.put(messagePath(st.room, net.me, cur.epoch, seq), file);
  st.seq[String(cur.epoch)] = seq;
  st.hlc = hlc;
  await saveRoom(ctx.state.home, ctx.me, st);
  return { room: st.room, epoch: cur.epoch, seq, time: hlc.ms };
}
