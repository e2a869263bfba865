/**
 * `cipherpost room …`: end-to-end encrypted, signed rooms over the members' own homeservers
 * (docs/rooms.md, docs/PROTOCOL.md §9). ROOM is a room's id or its name. The commands are in
 * room_members.ts (who is in, and how), room_ticket.ts (tickets, admits, admins),
 * room_messages.ts (send, tail), room_watch.ts (the live view), room_drops.ts (file drops)
 * and room_claude.ts (the Claude Code prompt hook); room_common.ts holds what they share.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import type { Io } from "./io.ts";
import { registerRoomClaude } from "./room_claude.ts";
import { registerRoomMembership } from "./room_members.ts";
import { registerRoomMessages } from "./room_messages.ts";
import { registerRoomWatch } from "./room_watch.ts";
import { registerRoomDrops } from "./room_drops.ts";
import { registerRoomTickets } from "./room_ticket.ts";

/** Register `room` and its subcommands. */
export function registerRoomCommands(program: Command, io: Io): void {
  const room = program.command("room")
    .description("end-to-end encrypted, signed rooms over the members' homeservers")
    .exitOverride();
  registerRoomMembership(room, io);
  registerRoomTickets(room, io);
  registerRoomMessages(room, io);
  registerRoomWatch(room, io);
  registerRoomDrops(room, io);
  registerRoomClaude(room, io);
}
