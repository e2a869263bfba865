/**
 * `cipherpost room …`: end-to-end encrypted, signed rooms over the members' own homeservers
 * (docs/rooms.md, docs/PROTOCOL.md §9). ROOM is a room's id or its name.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { CipherpostError } from "../util/errors.ts";
import { escapeControl } from "../util/encoding.ts";
import { State } from "../state/state.ts";
import { Contacts } from "../state/contacts.ts";
import type { Keypair } from "../crypto/keys.ts";
import type { Transport } from "../pkarr/transport.ts";
import { current, findRoom, listRooms, saveRoom } from "../rooms/store.ts";
import { floodLimit, order, type Placed } from "../rooms/order.ts";
import type { Message } from "../rooms/records.ts";
import { MAX_BODY } from "../rooms/names.ts";
import { dropPending, listPending, pendingUri } from "../rooms/pending.ts";
import { type HookRoom, hookText } from "../rooms/hook_text.ts";
import {
  advance,
  bindRoom,
  boundRooms,
  isSessionId,
  unbindRoom,
  unread,
} from "../rooms/hook_state.ts";
import { createRoom, inviteToRoom, leaveRoom, removeFromRoom } from "../flows/rooms/manage.ts";
import { joinRoom } from "../flows/rooms/join.ts";
import { sendToRoom } from "../flows/rooms/send.ts";
import { describeProblem, type RoomProblem, RoomReader } from "../flows/rooms/read.ts";
import { catchUp } from "../flows/rooms/epochs.ts";
import { RoomNet } from "../flows/rooms/net.ts";
import { followRoom } from "../flows/rooms/live.ts";
import { cipherpostHome } from "./home.ts";
import { type Io, readAllStdin } from "./io.ts";
import {
  NETWORK_HELP,
  parseIntArg,
  pinOf,
  pinSources,
  unlockIdentity,
  withNetwork,
  withPassphrase,
  withPin,
  withTransport,
} from "./options.ts";
import { pinIsPrompted, validatePin } from "./passphrase.ts";
import { acceptanceConfirm } from "./receive.ts";
import { cliUi } from "./large.ts";
import { resolveRecipient } from "./recipient.ts";
import { DURATION_FORMS, parseDuration } from "./duration.ts";
import { interactive } from "./claude_common.ts";

type Ctx = { transport: Transport; state: State; me: Keypair };

/** Names for keys: the contact name, "you", or the first 8 characters of the key. */
async function namer(home: string, me: string): Promise<(z32: string) => string> {
  const names = new Map<string, string>();
  try {
    for (const c of await new Contacts(home).list()) names.set(c.key, c.name);
  } catch { /* no contacts */ }
  return (z) => (z === me ? "you" : names.get(z) ?? `${z.slice(0, 8)}…`);
}

function hhmmss(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19) + "Z";
}

function line(p: Placed, name: (z: string) => string): string {
  const m = p.message;
  const flag = p.future ? " [clock ahead]" : "";
  const kind = m.kind === "file_drop" ? " [file]" : "";
  return `[${hhmmss(m.hlc)}] ${name(m.author)}${kind}: ${escapeControl(m.body)}${flag}`;
}

function json(room: string, p: Placed): string {
  const m = p.message;
  return JSON.stringify({
    room,
    author: m.author,
    body: m.body,
    time: new Date(m.hlc).toISOString(),
    epoch: m.epoch,
    seq: m.seq,
    kind: m.kind,
    future: p.future,
  });
}

/** Register `room` and its subcommands. */
export function registerRoomCommands(program: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
  const room = program.command("room")
    .description("end-to-end encrypted, signed rooms over the members' homeservers")
    .exitOverride();

  async function run<T>(
    o: Parameters<typeof unlockIdentity>[0] & Parameters<typeof withTransport>[0],
    f: (ctx: Ctx, home: string) => Promise<T>,
  ): Promise<T> {
    const home = cipherpostHome();
    const me = await unlockIdentity(o, io);
    const state = new State(home);
    return await withTransport(o, (transport) => f({ transport, state, me }, home));
  }

  withNetwork(withPassphrase(
    room.command("create")
      .description("create a room; prints its id")
      .argument("<name>", "the room's name (1 to 64 characters)")
      .option("--json", "print {room, name}"),
  )).addHelpText("after", NETWORK_HELP).action(async (name: string, o) => {
    const st = await run(o, (ctx) => createRoom(ctx, name));
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
    await run(o, async (ctx, home) => {
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
    const r = await run(o, (ctx) =>
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

  async function join(uri: string, o: JoinFlags): Promise<void> {
    const home = cipherpostHome();
    const accept = o.accept === undefined
      ? undefined
      : (await resolveRecipient(o.accept, new Contacts(home), "--accept")).z32;
    const ui = cliUi(log, { confirm: acceptanceConfirm(accept, interactive(), log) });
    const r = await run(o, (ctx) =>
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
      .description("receive a room invite (with the acceptance screen of receive) and join")
      .argument("<uri>", "the invite's cipherpost:// URI")
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
    const r = await run(o, (ctx) => removeFromRoom(ctx, roomArg, member, ui)).finally(() =>
      ui.end()
    );
    log(`Removed; the room is at epoch ${r.epoch}`);
  });

  withNetwork(withPassphrase(
    room.command("leave")
      .description("delete your messages of a room from your homeserver and forget it here")
      .argument("<room>", "the room's id or name"),
  )).addHelpText("after", NETWORK_HELP).action(async (roomArg: string, o) => {
    const r = await run(o, (ctx) => leaveRoom(ctx, roomArg));
    log(
      `Left ${r.room} (${r.deleted} messages deleted); an admin must remove you to rotate the key`,
    );
  });

  withNetwork(withPassphrase(
    room.command("send")
      .description("sign, encrypt and post a message (TEXT, or - for standard input)")
      .argument("<room>", "the room's id or name")
      .argument("<text>", "the message, or - to read it from standard input")
      .option("--json", "print {room, epoch, seq, time}"),
  )).addHelpText("after", NETWORK_HELP).action(async (roomArg: string, text: string, o) => {
    let body = text;
    if (text === "-") {
      const bytes = await readAllStdin(MAX_BODY + 1);
      if (bytes.length > MAX_BODY) {
        throw new CipherpostError("too_large", `message too large (at most ${MAX_BODY} bytes)`);
      }
      try {
        body = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch {
        throw new CipherpostError("usage", "the message is not UTF-8 text");
      }
    }
    const r = await run(o, (ctx) => sendToRoom(ctx, roomArg, body));
    if (o.json) {
      io.out(
        `${
          JSON.stringify({
            room: r.room,
            epoch: r.epoch,
            seq: r.seq,
            time: new Date(r.time).toISOString(),
          })
        }\n`,
      );
    }
  });

  const sessionOf = (given: string | undefined): string => {
    const s = given ?? Deno.env.get("CLAUDE_CODE_SESSION_ID") ?? "";
    if (!isSessionId(s)) {
      throw new CipherpostError(
        "usage",
        "a Claude Code session id is needed: --session ID (inside Claude Code: CLAUDE_CODE_SESSION_ID)",
      );
    }
    return s;
  };

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
      await run(o, async (ctx) => {
        const net = new RoomNet(ctx);
        const name = await namer(home, net.me);
        for (const id of rooms) {
          const st = await findRoom(home, ctx.me, id).catch(() => null);
          if (!st) continue;
          const c = await catchUp(ctx, net, st);
          if (c.added.length > 0) await saveRoom(home, ctx.me, st);
          const reader = new RoomReader(st, net);
          await reader.scan();
          const { shown } = floodLimit(order(reader.messages, Date.now()));
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

  withNetwork(withPassphrase(
    room.command("tail")
      .description("show a room's messages, verified; --follow keeps showing new ones live")
      .argument("<room>", "the room's id or name")
      .option("-f, --follow", "keep following (event stream, polling as the fallback)")
      .option("-n, --lines <n>", "show at most the last N messages of the history", parseIntArg)
      .option("--json", "one object per message: {author, body, time, epoch, seq, …}")
      .option("--poll", "follow by polling only (no event stream)"),
  )).addHelpText(
    "after",
    `
Every message is verified (signature, membership at its epoch, room and epoch inside the
signed bytes); refused and missing messages are reported on stderr. Bodies are shown with
control and bidi characters escaped; at most 30 messages of one author per 10 s are shown.
${NETWORK_HELP}`,
  ).action(async (roomArg: string, o) => {
    await run(o, async (ctx, home) => {
      const reader = await RoomReader.open(ctx, roomArg, {
        status: log,
        note: (n) => log(`note: ${escapeControl(n)}`),
      });
      const { st, net } = reader;
      const name = await namer(home, net.me);
      const { problems } = await reader.scan();
      const placed = order(reader.messages, Date.now());
      const { shown, hidden } = floodLimit(placed);
      const last = o.lines !== undefined ? shown.slice(-Math.max(0, o.lines)) : shown;
      for (const p of last) io.out(`${o.json ? json(st.room, p) : line(p, name)}\n`);
      for (const [a, n] of hidden) log(`note: ${n} more from ${name(a)} hidden (flood limit)`);
      const warn = (p: RoomProblem) => log(`warning: ${describeProblem(p, name)}`);
      problems.forEach(warn);
      if (!o.follow) return;
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      Deno.addSignalListener("SIGINT", onSignal);
      Deno.addSignalListener("SIGTERM", onSignal);
      const recent = new Map<string, number[]>();
      try {
        await followRoom(ctx, reader, {
          message(m: Message) {
            const now = Date.now();
            const times = (recent.get(m.author) ?? []).filter((t) => t > now - 10_000);
            if (times.length >= 30) {
              if (times.length === 30) log(`note: ${name(m.author)} is flooding; hiding for now`);
              times.push(now);
              recent.set(m.author, times);
              return;
            }
            times.push(now);
            recent.set(m.author, times);
            const [p] = order([m], now);
            io.out(`${o.json ? json(st.room, p) : line(p, name)}\n`);
          },
          problem: warn,
          note: (t) => log(`note: ${escapeControl(t)}`),
        }, { signal: stop.signal, noEvents: o.poll === true });
      } finally {
        Deno.removeSignalListener("SIGINT", onSignal);
        Deno.removeSignalListener("SIGTERM", onSignal);
      }
    });
  });
}
