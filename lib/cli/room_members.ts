/**
 * `cipherpost room create|list|members|invite|join|accept|pending|remove|leave`: who is in a
 * room, and how they get in and out (tickets, admits and admins: room_ticket.ts).
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { escapeControl, fromUtf8 } from "../util/encoding.ts";
import { Contacts } from "../state/contacts.ts";
import { current, findRoom, listRooms, saveRoom } from "../rooms/store.ts";
import { dropPending, listPending, pendingUri } from "../rooms/pending.ts";
import { createRoom, inviteToRoom, leaveRoom, removeFromRoom } from "../flows/rooms/manage.ts";
import { joinRoom } from "../flows/rooms/join.ts";
import { catchUp } from "../flows/rooms/epochs.ts";
import { RoomNet } from "../flows/rooms/net.ts";
import { cipherpostHome } from "./home.ts";
import type { Io } from "./io.ts";
import {
  NETWORK_HELP,
  pinOf,
  pinSources,
  unlockIdentity,
  withNetwork,
  withPassphrase,
  withPin,
} from "./options.ts";
import { pinIsPrompted, validatePin } from "./passphrase.ts";
import { acceptanceConfirm } from "./receive.ts";
import { cliUi } from "./large.ts";
import { resolveRecipient } from "./recipient.ts";
import { DURATION_FORMS, parseDuration } from "./duration.ts";
import { interactive } from "./claude_common.ts";

import { namer, runRoom } from "./room_common.ts";
import { joinWithTicket } from "./room_ticket.ts";
import { readAllStdin } from "./io.ts";
import { CipherpostError } from "../util/errors.ts";
import { isTicketString } from "../rooms/ticket.ts";

/** Register these `room` subcommands on the `room` command group. */
export function registerRoomMembership(room: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
  withNetwork(withPassphrase(
    room.command("create")
      .description("create a room; prints its id")
      .argument("<name>", "the room's name (1 to 64 characters)")
      .option("--json", "print {room, name}"),
  )).addHelpText("after", NETWORK_HELP).action(async (name: string, o) => {
    const st = await runRoom(o, io, (ctx) => createRoom(ctx, name));
    io.out(o.json ? `${JSON.stringify({ room: st.room, name: st.name })}\n` : `${st.room}\n`);
  });

  withPassphrase(
    room.command("list").description("the rooms of this home").option(
      "--json",
      "one object per room",
    ),
  ).action(async (o) => {
    const home = cipherpostHome();
    const me = await unlockIdentity(o, io);
    for (const st of await listRooms(home, me)) {
      const cur = current(st);
      if (o.json) {
        io.out(
          `${
            JSON.stringify({
              room: st.room,
              name: st.name,
              epoch: cur.epoch,
              members: cur.roster.roster.members.length,
            })
          }\n`,
        );
      } else {
        io.out(
          `${st.room}  ${
            escapeControl(st.name)
          }  (epoch ${cur.epoch}, ${cur.roster.roster.members.length} members)\n`,
        );
      }
    }
  });

  withNetwork(withPassphrase(
    room.command("members")
      .description("the members of a room (after catching up with its roster)")
      .argument("<room>", "the room's id or name")
      .option("--json", "one object per member"),
  )).action(async (roomArg: string, o) => {
    await runRoom(o, io, async (ctx, home) => {
      const st = await findRoom(home, ctx.me, roomArg);
      const net = new RoomNet(ctx);
      const c = await catchUp(ctx, net, st);
      if (c.added.length > 0) await saveRoom(home, ctx.me, st);
      for (const n of c.notes) log(`warning: ${n}`);
      if (c.removed) log("note: you were removed from this room; this is the last roster you hold");
      const r = current(st).roster.roster;
      const name = await namer(home, net.me);
      for (const m of r.members) {
        const role = m === r.creator ? "creator" : r.admins.includes(m) ? "admin" : "member";
        if (o.json) io.out(`${JSON.stringify({ key: m, role, epoch: r.epoch })}\n`);
        else io.out(`${m}  ${role}  ${name(m) === `${m.slice(0, 8)}…` ? "" : name(m)}\n`);
      }
    });
  });

  withNetwork(withPin(withPassphrase(
    room.command("invite")
      .description("admit a key to a room and send it an invite share; prints the share URI")
      .argument("<room>", "the room's id or name")
      .argument("<key>", "the invitee: a public key or a contact name")
      .option("--ttl <duration>", `lifetime of the invite: ${DURATION_FORMS}`, "24h")
      .option("--pin", "also require a PIN to open the invite")
      .option("-p, --purpose <text>", "shown to the invitee (default: the room's name)")
      .option("--json", "print {uri, room, epoch, share_ref}"),
  ))).addHelpText("after", NETWORK_HELP).action(async (roomArg: string, key: string, o) => {
    const home = cipherpostHome();
    const invitee = (await resolveRecipient(key, new Contacts(home), "KEY")).z32;
    const ttl = BigInt(parseDuration(o.ttl));
    const pin = o.pin ? await pinOf(o, true) : null;
    if (pin !== null) validatePin(pin);
    const ui = cliUi(log);
    const r = await runRoom(o, io, (ctx) =>
      inviteToRoom(ctx, {
        room: roomArg,
        invitee,
        ttlSeconds: ttl,
        pin,
        purpose: o.purpose,
      }, ui)).finally(() => ui.end());
    io.out(
      o.json
        ? `${JSON.stringify({ uri: r.uri, room: r.room, epoch: r.epoch, share_ref: r.shareRef })}\n`
        : `${r.uri}\n`,
    );
    log(`They join with: cipherpost room join ${r.uri}`);
  });

  async function join(arg: string, o: JoinFlags): Promise<void> {
    let uri = arg;
    if (arg === "-") uri = fromUtf8(await readAllStdin(4096)).trim();
    else if (isTicketString(arg)) {
      throw new CipherpostError(
        "usage",
        "a room ticket is a secret, never taken from the command line: give - and the ticket " +
          "on standard input",
      );
    }
    if (isTicketString(uri)) return await joinWithTicket(uri, o, io);
    const home = cipherpostHome();
    const accept = o.accept === undefined
      ? undefined
      : (await resolveRecipient(o.accept, new Contacts(home), "--accept")).z32;
    const ui = cliUi(log, { confirm: acceptanceConfirm(accept, interactive(), log) });
    const r = await runRoom(o, io, (ctx) =>
      joinRoom(ctx, {
        uri,
        pin: () => pinOf(o, false),
        pinTries: pinIsPrompted(pinSources(o)) ? 3 : 1,
      }, ui)).finally(() => ui.end());
    if (r.status === "already_accepted") {
      log("this invite was already accepted here");
      return;
    }
    if (o.json) io.out(`${JSON.stringify({ room: r.room, name: r.name, epoch: r.epoch })}\n`);
    else io.out(`${r.room}\n`);
    log(`Joined "${escapeControl(r.name ?? "")}" (epoch ${r.epoch})`);
  }

  const joinCommand = withNetwork(withPin(withPassphrase(
    room.command("join")
      .description(
        "receive a room invite (with the acceptance screen of receive) and join, or ask to join " +
          "with a ticket",
      )
      .argument("<uri>", "the invite's cipherpost:// URI, or - to read a URI or ticket from stdin")
      .option(
        "--accept <key>",
        "accept non-interactively: the inviter's key (z-base-32 or pk: form) or contact name",
      )
      .option("--json", "print {room, name, epoch}"),
  ))).addHelpText("after", NETWORK_HELP);
  type JoinFlags = Parameters<Parameters<typeof joinCommand.action>[0]>[1];
  joinCommand.action(async (uri: string, o) => await join(uri, o));

  withNetwork(withPin(withPassphrase(
    room.command("accept")
      .description("join a room that Claude asked to join (cipherpost mcp's room_join)")
      .argument("<token>", "the pending join's token")
      .option(
        "--accept <key>",
        "accept non-interactively: the inviter's key (z-base-32 or pk: form) or contact name",
      )
      .option("--json", "print {room, name, epoch}"),
  ))).addHelpText("after", NETWORK_HELP).action(async (token: string, o) => {
    const uri = await pendingUri(cipherpostHome(), token);
    await join(uri, o);
    await dropPending(cipherpostHome(), token);
  });

  room.command("pending").description("the joins Claude asked for, waiting for room accept")
    .action(async () => {
      for (const p of await listPending(cipherpostHome())) {
        io.out(`${p.token}  ${new Date(p.at).toISOString()}  ${escapeControl(p.uri)}\n`);
      }
    });

  withNetwork(withPassphrase(
    room.command("remove")
      .description("remove a member: the room's key rotates to the others")
      .argument("<room>", "the room's id or name")
      .argument("<key>", "the member: a public key or a contact name"),
  )).addHelpText("after", NETWORK_HELP).action(async (roomArg: string, key: string, o) => {
    const home = cipherpostHome();
    const member = (await resolveRecipient(key, new Contacts(home), "KEY")).z32;
    const ui = cliUi(log);
    const r = await runRoom(o, io, (ctx) => removeFromRoom(ctx, roomArg, member, ui)).finally(() =>
      ui.end()
    );
    log(`Removed; the room is at epoch ${r.epoch}`);
  });

  withNetwork(withPassphrase(
    room.command("leave")
      .description("delete your messages of a room from your homeserver and forget it here")
      .argument("<room>", "the room's id or name"),
  )).addHelpText("after", NETWORK_HELP).action(async (roomArg: string, o) => {
    const r = await runRoom(o, io, (ctx) => leaveRoom(ctx, roomArg));
    log(
      `Left ${r.room} (${r.deleted} messages deleted); an admin must remove you to rotate the key`,
    );
  });
}
