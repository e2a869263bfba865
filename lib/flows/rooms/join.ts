/**
 * `room join`: an invite is a `room_invite` share received through the one receive pipeline
 * (docs/PROTOCOL.md §9.5) with this payload handler, as `claude pickup` does for sessions.
 * Before the acceptance screen, the invite is parsed and the inviter's key record for us and
 * the roster update are fetched and checked; the room is stored only once the share is accepted.
 *
 * @module
 */

import { fromHex } from "../../util/encoding.ts";
import { CipherpostError, signatureError } from "../../util/errors.ts";
import { decodeZ32 } from "../../pkarr/public_key.ts";
import { roomIdOf } from "../../rooms/names.ts";
import { parseInvite } from "../../rooms/records.ts";
import { loadRoom, type RoomState, saveRoom } from "../../rooms/store.ts";
import { parseShareUri } from "../../protocol/share_uri.ts";
import {
  checkConsumed,
  parseShareEnvelope,
  publishPendingReceipt,
  receiveShare,
  shareHashes,
} from "../share/receive.ts";
import type { FlowUi } from "../share/ui.ts";
import { catchUp, fetchEpoch } from "./epochs.ts";
import { type RoomContext, RoomNet } from "./net.ts";

/** How to join. */
export interface JoinRequest {
  /** The invite's `cipherpost://` URI. */
  uri: string;
  /** Asked for the PIN when the invite has one (not called otherwise). */
  pin: () => Promise<string>;
  /** PIN attempts before a wrong PIN fails the join (default 1). */
  pinTries?: number;
}

/** What joining did. */
export interface JoinResult {
  /** `already_accepted`: this home accepted the invite before (nothing else is set). */
  status: "joined" | "already_accepted";
  /** The room's id. */
  room?: string;
  /** The room's name (from the signed roster). */
  name?: string;
  /** The newest epoch held after joining (later ones are caught up at once). */
  epoch?: number;
}

/** Receive an invite and join its room. */
export async function joinRoom(
  ctx: RoomContext,
  req: JoinRequest,
  ui: FlowUi,
): Promise<JoinResult> {
  const uri = parseShareUri(req.uri);
  const consumed = await checkConsumed(ctx.state, uri, ui);
  if (consumed) {
    if (consumed.kind === "pending") {
      await publishPendingReceipt(ctx.transport, ctx.state, ctx.me, consumed.ref, ui);
    }
    return { status: "already_accepted" };
  }
  const net = new RoomNet(ctx);
  let joined: RoomState | null = null;
  await receiveShare(ctx, {
    uri,
    pin: req.pin,
    pinTries: req.pinTries,
    payload: {
      open: async (share, ui) => {
        const envelope = parseShareEnvelope(share);
        if (envelope.material.type !== "room_invite") {
          throw new CipherpostError(
            "invalid_material",
            `invalid material: this share holds ${envelope.material.type}, not a room invite`,
            "receive it with: cipherpost receive URI",
          );
        }
        const invite = parseInvite(envelope.material.bytes);
        if (invite.inviter !== share.sender) throw signatureError("invite names another inviter");
        if (roomIdOf(decodeZ32(invite.creator), fromHex(invite.nonce)) !== invite.room) {
          throw signatureError("room id does not derive from creator and nonce");
        }
        ui.status("Fetching the room's key and roster from the inviter's homeserver...");
        const epoch = await fetchEpoch(ctx, net, invite.room, invite.epoch, invite.inviter);
        if (epoch === null) {
          throw new CipherpostError(
            "not_found",
            "the inviter's homeserver has no room key for you",
            "ask the inviter to invite you again",
          );
        }
        const r = epoch.roster.roster;
        if (
          r.creator !== invite.creator || r.nonce !== invite.nonce || r.name !== invite.name ||
          !r.admins.includes(invite.inviter) || !r.members.includes(net.me)
        ) {
          throw signatureError("roster does not match the invite");
        }
        return {
          purpose: envelope.purpose,
          burnAfterRead: envelope.burnAfterRead,
          payload: { kind: "material", type: "room_invite", bytes: envelope.material.bytes },
          deliver: async () => {
            const old = await loadRoom(ctx.state.home, ctx.me, invite.room);
            const st: RoomState = old ?? {
              room: invite.room,
              name: invite.name,
              creator: invite.creator,
              nonce: invite.nonce,
              epochs: [],
              seq: {},
              hlc: null,
            };
            if (!st.epochs.some((e) => e.epoch === epoch.epoch)) {
              st.epochs.push(epoch);
              st.epochs.sort((a, b) => a.epoch - b.epoch);
            }
            await saveRoom(ctx.state.home, ctx.me, st);
            joined = st;
            return shareHashes(share);
          },
        };
      },
    },
  }, ui);
  const st = joined as RoomState | null;
  if (!st) return { status: "already_accepted" };
  // later epochs opened since the invite
  try {
    const c = await catchUp(ctx, net, st);
    if (c.added.length > 0) await saveRoom(ctx.state.home, ctx.me, st);
  } catch { /* the next command catches up */ }
  return {
    status: "joined",
    room: st.room,
    name: st.name,
    epoch: st.epochs[st.epochs.length - 1].epoch,
  };
}
