/**
 * `cipherpost room bind|unbind|hook`: a room in Claude Code's prompt (the UserPromptSubmit
 * hook), bound per Claude session.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { escapeControl } from "../util/encoding.ts";
import { findRoom, saveRoom } from "../rooms/store.ts";
import { floodLimit, order, type Placed } from "../rooms/order.ts";
import { type HookRoom, hookText } from "../rooms/hook_text.ts";
import {
  advance,
  bindRoom,
  boundRooms,
  isSessionId,
  unbindRoom,
  unread,
} from "../rooms/hook_state.ts";
import { RoomReader } from "../flows/rooms/read.ts";
import { catchUp } from "../flows/rooms/epochs.ts";
import { RoomNet } from "../flows/rooms/net.ts";
import { cipherpostHome } from "./home.ts";
import { type Io, readAllStdin } from "./io.ts";
import { unlockIdentity, withNetwork, withPassphrase } from "./options.ts";
import { CipherpostError } from "../util/errors.ts";

import { namer, runRoom } from "./room_common.ts";

/** The Claude Code session a binding is for: the given id, or the one Claude Code runs in. */
function sessionOf(given: string | undefined): string {
  const s = given ?? Deno.env.get("CLAUDE_CODE_SESSION_ID") ?? "";
  if (!isSessionId(s)) {
    throw new CipherpostError(
      "usage",
      "a Claude Code session id is needed: --session ID (inside Claude Code: CLAUDE_CODE_SESSION_ID)",
    );
  }
  return s;
}

/** Register these `room` subcommands on the `room` command group. */
export function registerRoomClaude(room: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
  withPassphrase(
    room.command("bind")
      .description("let a Claude Code session read a room through `room hook` (from now on)")
      .argument("<room>", "the room's id or name")
      .option("--session <id>", "the Claude Code session (default: CLAUDE_CODE_SESSION_ID)"),
  ).action(async (roomArg: string, o) => {
    const home = cipherpostHome();
    const me = await unlockIdentity(o, io);
    const st = await findRoom(home, me, roomArg);
    await bindRoom(home, sessionOf(o.session), st.room);
    log(`Bound "${escapeControl(st.name)}" to the session`);
  });

  withPassphrase(
    room.command("unbind")
      .description("stop showing a room to a Claude Code session")
      .argument("<room>", "the room's id or name")
      .option("--session <id>", "the Claude Code session (default: CLAUDE_CODE_SESSION_ID)"),
  ).action(async (roomArg: string, o) => {
    const home = cipherpostHome();
    const me = await unlockIdentity(o, io);
    const st = await findRoom(home, me, roomArg);
    await unbindRoom(home, sessionOf(o.session), st.room);
  });

  withNetwork(withPassphrase(
    room.command("hook")
      .description(
        "Claude Code UserPromptSubmit hook: print the unread lines of the session's rooms",
      )
      .option("--session <id>", "the session (default: session_id of the hook's JSON input)"),
  )).addHelpText(
    "after",
    `
Reads Claude Code's hook input (JSON) on standard input and prints, fenced and marked as
untrusted, the messages of the rooms bound to that session (room bind) that it has not shown
yet, at most 8 KiB (the oldest dropped, with a marker). Never blocks the prompt: any failure is
one line on stderr and exit 0. The identity is unlocked from CIPHERPOST_PASSPHRASE or
--passphrase-file, as any non-interactive command.
`,
  ).action(async (o) => {
    try {
      let session = o.session;
      if (session === undefined) {
        const input = await readAllStdin(1 << 20);
        const j = JSON.parse(new TextDecoder().decode(input) || "{}");
        session = typeof j.session_id === "string" ? j.session_id : undefined;
      }
      const sid = sessionOf(session);
      const home = cipherpostHome();
      const rooms = await boundRooms(home, sid);
      if (rooms.length === 0) return;
      const parts: { room: string; placed: Placed[]; hook: HookRoom }[] = [];
      await runRoom(o, io, async (ctx) => {
        const net = new RoomNet(ctx);
        const name = await namer(home, net.me);
        for (const id of rooms) {
          const st = await findRoom(home, ctx.me, id).catch(() => null);
          if (!st) continue;
          const c = await catchUp(ctx, net, st);
          if (c.added.length > 0) await saveRoom(home, ctx.me, st);
          const reader = new RoomReader(st, net);
          await reader.scan();
          const { shown } = floodLimit(
            order(reader.messages, Date.now()),
            (m) => reader.arrival(m),
          );
          const fresh = (await unread(home, sid, st.room, shown)).filter((p) =>
            p.message.author !== net.me
          );
          parts.push({
            room: st.room,
            placed: fresh,
            hook: { name: st.name, placed: fresh, nameOf: name },
          });
        }
      });
      const text = hookText(parts.map((p) => p.hook));
      if (text !== "") io.out(text);
      for (const p of parts) await advance(home, sid, p.room, p.placed);
    } catch (e) {
      // the hook never blocks Claude Code's prompt
      log(`cipherpost room hook: ${e instanceof Error ? escapeControl(e.message) : "failed"}`);
    }
  });
}
