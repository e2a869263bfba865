/**
 * Making and changing rooms (docs/PROTOCOL.md §9.3, §9.5): `create`, `invite` (an admit update,
 * then a `room_invite` share to the invitee), `remove` (a remove update: the key rotates to the
 * remaining members), naming admins (an admin or unadmin update) and `leave`.
 *
 * @module
 */

import { toHex } from "../../util/encoding.ts";
import { CipherpostError } from "../../util/errors.ts";
import { memberDir } from "../../rooms/names.ts";
import { checkRoomName, encodeInvite } from "../../rooms/records.ts";
import { createRoster, nextRoster } from "../../rooms/roster.ts";
import { current, findRoom, forgetRoom, type RoomState, saveRoom } from "../../rooms/store.ts";
import { send } from "../share/send.ts";
import type { FlowUi } from "../share/ui.ts";
import { catchUp, publishEpoch } from "./epochs.ts";
import { type RoomContext, RoomNet } from "./net.ts";

/** Create a room named `name`; we are its creator, only member and admin. */
export async function createRoom(ctx: RoomContext, name: string): Promise<RoomState> {
  checkRoomName(name);
  const net = new RoomNet(ctx);
  const nonce = toHex(crypto.getRandomValues(new Uint8Array(16)));
  const r = createRoster({ creator: net.me, nonce, name, at: Date.now() });
  const epoch = await publishEpoch(ctx, net, r);
  const st: RoomState = {
    room: r.room,
    name,
    creator: net.me,
    nonce,
    epochs: [epoch],
    seq: {},
    hlc: null,
  };
  await saveRoom(ctx.state.home, ctx.me, st);
  return st;
}

/** How to invite. */
export interface InviteRequest {
  /** id or name */
  room: string;
  /** z32 of the invitee */
  invitee: string;
  /** The invite share's lifetime in seconds. */
  ttlSeconds: bigint;
  /** A PIN the invitee must also type (Argon2id), or null. */
  pin: string | null;
  /** shown to the invitee (default: `room invite: "<name>"`) */
  purpose?: string;
}

/** What an invite made. */
export interface InviteResult {
  /** The invite's `cipherpost://` URI to give the invitee (it joins with {@link joinRoom}). */
  uri: string;
  /** The room's id. */
  room: string;
  /** The epoch the invite admits to (new unless the invitee was a member already). */
  epoch: number;
  /** The invite share's 32-hex reference. */
  shareRef: string;
}

/**
 * Admit `invitee` (a new epoch, keys to every member) and send it a `room_invite` share. An
 * invitee already a member of our newest epoch gets a new invite to that epoch.
 */
export async function inviteToRoom(
  ctx: RoomContext,
  req: InviteRequest,
  ui: FlowUi,
): Promise<InviteResult> {
  const net = new RoomNet(ctx);
  const st = await findRoom(ctx.state.home, ctx.me, req.room);
  await catchUp(ctx, net, st);
  let cur = current(st);
  if (!cur.roster.roster.admins.includes(net.me)) {
    throw new CipherpostError("config", "configuration error: only an admin can invite");
  }
  if (!cur.roster.roster.members.includes(req.invitee)) {
    ui.status("Admitting the new member (new epoch key)...");
    cur = await publishEpoch(
      ctx,
      net,
      nextRoster(cur.roster, "admit", [req.invitee], net.me, Date.now()),
    );
    st.epochs.push(cur);
    await saveRoom(ctx.state.home, ctx.me, st);
  }
  const invite = encodeInvite({
    room: st.room,
    name: st.name,
    creator: st.creator,
    nonce: st.nonce,
    epoch: cur.epoch,
    inviter: net.me,
  });
  const r = await send(ctx, {
    recipient: req.invitee,
    purpose: req.purpose ?? `room invite: "${st.name}"`,
    material: "room_invite",
    input: invite,
    ttlSeconds: req.ttlSeconds,
    pin: req.pin,
    burn: false,
    protocol: 2,
  }, ui);
  return { uri: r.uri, room: st.room, epoch: cur.epoch, shareRef: r.shareRef };
}

/** Remove `member` (z32): a new epoch whose key only the remaining members get. */
export async function removeFromRoom(
  ctx: RoomContext,
  room: string,
  member: string,
  ui: FlowUi,
): Promise<{ room: string; epoch: number }> {
  ui.status("Removing the member (new epoch key for the others)...");
  return await rosterChange(ctx, room, "remove", member);
}

/**
 * Name `member` (z32) an admin of the room (`admin` true) or unname it (false): a signed roster
 * update of the creator's (§9.3) that opens a new epoch for the same members. Only the creator
 * can do it; a named admin's admits and removes are then accepted by every reader.
 */
export async function setRoomAdmin(
  ctx: RoomContext,
  room: string,
  member: string,
  admin: boolean,
  ui: FlowUi,
): Promise<{ room: string; epoch: number }> {
  ui.status(
    admin ? "Naming the admin (new epoch key)..." : "Unnaming the admin (new epoch key)...",
  );
  return await rosterChange(ctx, room, admin ? "admin" : "unadmin", member);
}

/** One signed roster update about `member` after catching up: its new epoch, saved here. */
async function rosterChange(
  ctx: RoomContext,
  room: string,
  op: "remove" | "admin" | "unadmin",
  member: string,
): Promise<{ room: string; epoch: number }> {
  const net = new RoomNet(ctx);
  const st = await findRoom(ctx.state.home, ctx.me, room);
  await catchUp(ctx, net, st);
  const cur = current(st);
  const next = await publishEpoch(
    ctx,
    net,
    nextRoster(cur.roster, op, [member], net.me, Date.now()),
  );
  st.epochs.push(next);
  await saveRoom(ctx.state.home, ctx.me, st);
  return { room: st.room, epoch: next.epoch };
}

/**
 * Leave: delete our own messages of the room from our homeserver (bounded) and forget the
 * room here. Roster updates and key records we signed stay. Others keep the key until an
 * admin removes us.
 */
export async function leaveRoom(
  ctx: RoomContext,
  room: string,
): Promise<{ room: string; deleted: number }> {
  const net = new RoomNet(ctx);
  const st = await findRoom(ctx.state.home, ctx.me, room);
  const client = await net.own();
  const paths: string[] = [];
  for await (const e of client.listAll(memberDir(st.room, net.me), { maxEntries: 100_000 })) {
    // our messages only: roster updates and key records we signed stay (others rely on them)
    if (/\/[0-9]{10}\/[0-9]{10}$/.test(e.path)) paths.push(e.path);
  }
  let deleted = 0;
  for (const p of paths) if (await client.delete(p)) deleted++;
  await forgetRoom(ctx.state.home, st.room);
  return { room: st.room, deleted };
}
