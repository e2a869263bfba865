/**
 * `cipherpost room send|tail`: posting to a room, and reading it (backfill and live).
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { CipherpostError } from "../util/errors.ts";
import { escapeControl } from "../util/encoding.ts";
import { FloodGate, floodLimit, order, type Placed } from "../rooms/order.ts";
import type { Message } from "../rooms/records.ts";
import { MAX_BODY } from "../rooms/names.ts";
import { sendToRoom } from "../flows/rooms/send.ts";
import { describeProblem, type RoomProblem, RoomReader } from "../flows/rooms/read.ts";
import { followRoom } from "../flows/rooms/live.ts";
import { type Io, readAllStdin } from "./io.ts";
import { NETWORK_HELP, parseIntArg, withNetwork, withPassphrase } from "./options.ts";

import { type Ctx, json, line, namer, runRoom } from "./room_common.ts";

/** Register these `room` subcommands on the `room` command group. */
export function registerRoomMessages(room: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
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
    const r = await runRoom(o, io, (ctx) => sendToRoom(ctx, roomArg, body));
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
    await runRoom(o, io, async (ctx, home) => {
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      Deno.addSignalListener("SIGINT", onSignal);
      Deno.addSignalListener("SIGTERM", onSignal);
      try {
        await viewRoom(ctx, home, roomArg, { out: (l) => io.out(`${l}\n`), err: log }, {
          ...o,
          signal: stop.signal,
        });
      } finally {
        Deno.removeSignalListener("SIGINT", onSignal);
        Deno.removeSignalListener("SIGTERM", onSignal);
      }
    });
  });
}

/** Where a room view writes: one line at a time, without its end. */
export interface RoomView {
  /** a message */
  out(line: string): void;
  /** a notice, warning or problem */
  err(line: string): void;
}

/**
 * The one display path of `room tail` and `room watch`: open the room (caught up), show its
 * history in order (the last `lines`, flood-limited by arrival time), report refused and missing
 * messages, then, with `follow`, show new messages live until `signal` aborts.
 */
export async function viewRoom(
  ctx: Ctx,
  home: string,
  roomArg: string,
  view: RoomView,
  o: {
    json?: boolean;
    lines?: number;
    follow?: boolean;
    poll?: boolean;
    signal: AbortSignal;
    /** told the reader once the room is open */
    opened?: (reader: RoomReader) => void;
  },
): Promise<void> {
  const reader = await RoomReader.open(ctx, roomArg, {
    status: view.err,
    note: (n) => view.err(`note: ${escapeControl(n)}`),
  });
  o.opened?.(reader);
  const { st, net } = reader;
  const name = await namer(home, net.me);
  const show = (p: Placed) => view.out(o.json ? json(st.room, p) : line(p, name));
  const { problems } = await reader.scan();
  const placed = order(reader.messages, Date.now());
  const { shown, hidden } = floodLimit(placed, (m) => reader.arrival(m));
  const last = o.lines !== undefined ? shown.slice(-Math.max(0, o.lines)) : shown;
  last.forEach(show);
  for (const [a, n] of hidden) view.err(`note: ${n} more from ${name(a)} hidden (flood limit)`);
  const warn = (p: RoomProblem) => view.err(`warning: ${describeProblem(p, name)}`);
  problems.forEach(warn);
  if (!o.follow || o.signal.aborted) return;
  // live: the limit counts by our own clock as each message arrives
  const gate = new FloodGate();
  await followRoom(ctx, reader, {
    message(m: Message) {
      const now = Date.now();
      const verdict = gate.admit(m.author, now);
      if (verdict === "flooding") view.err(`note: ${name(m.author)} is flooding; hiding for now`);
      if (verdict === "shown") show(order([m], now)[0]);
    },
    problem: warn,
    note: (t) => view.err(`note: ${escapeControl(t)}`),
  }, { signal: o.signal, noEvents: o.poll === true });
}
