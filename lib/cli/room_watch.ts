/**
 * `cipherpost room watch [ROOM]`: a live view of a room with an input line at the bottom. The
 * messages are those of `room tail --follow` (the same display path, {@link viewRoom}: verified,
 * ordered, escaped, flood-limited); a line typed at the bottom is posted with `room send`'s path.
 * No TUI library: standard input in raw mode, and the input line cleared and drawn again after
 * every line printed above it. Ctrl-C, or Ctrl-D on an empty line, ends the view and gives the
 * terminal back as it was.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { CipherpostError } from "../util/errors.ts";
import { escapeControl, utf8 } from "../util/encoding.ts";
import { MAX_BODY } from "../rooms/names.ts";
import { findRoom, listRooms } from "../rooms/store.ts";
import { sendToRoom } from "../flows/rooms/send.ts";
import type { RoomReader } from "../flows/rooms/read.ts";
import { describeError } from "./exit_codes.ts";
import type { Io } from "./io.ts";
import { NETWORK_HELP, parseIntArg, withNetwork, withPassphrase } from "./options.ts";
import { type Ctx, runRoom } from "./room_common.ts";
import { viewRoom } from "./room_messages.ts";

const CLEAR_LINE = "\r\x1b[2K";
const PROMPT = "> ";

function isTerminal(f: { isTerminal(): boolean }): boolean {
  try {
    return f.isTerminal();
  } catch {
    return false;
  }
}

function columns(): number {
  try {
    return Math.max(10, Deno.consoleSize().columns);
  } catch {
    return 80;
  }
}

/**
 * The input line: what was typed so far, and the keys that edit it. Bytes come in as the
 * terminal sends them (raw mode); escape sequences (arrows, function keys) are skipped.
 */
export class InputLine {
  /** the text typed so far */
  text = "";
  #escape: "" | "esc" | "csi" = "";
  readonly #decoder = new TextDecoder();

  /**
   * Take bytes from the terminal; returns what they asked for, in order: lines to send
   * (`{send}`), or the end (`{quit}`: Ctrl-C, or Ctrl-D on an empty line).
   */
  feed(bytes: Uint8Array): ({ send: string } | { quit: true })[] {
    const out: ({ send: string } | { quit: true })[] = [];
    for (const ch of this.#decoder.decode(bytes, { stream: true })) {
      if (this.#escape === "esc") {
        this.#escape = ch === "[" || ch === "O" ? "csi" : "";
        continue;
      }
      if (this.#escape === "csi") {
        if (ch >= "@" && ch <= "~") this.#escape = "";
        continue;
      }
      switch (ch) {
        case "\x03":
          out.push({ quit: true });
          return out;
        case "\x04":
          if (this.text === "") {
            out.push({ quit: true });
            return out;
          }
          continue;
        case "\r":
        case "\n":
          if (this.text.trim() !== "") out.push({ send: this.text });
          this.text = "";
          continue;
        case "\x7f":
        case "\b":
          this.text = [...this.text].slice(0, -1).join("");
          continue;
        case "\x15": // Ctrl-U
          this.text = "";
          continue;
        case "\x1b":
          this.#escape = "esc";
          continue;
      }
      if (ch < " ") continue;
      if (utf8(this.text + ch).length <= MAX_BODY) this.text += ch;
    }
    return out;
  }

  /** The input line as drawn: the prompt and the end of the text that fits, escaped. */
  render(cols: number): string {
    const shown = [...escapeControl(this.text)];
    const room = Math.max(1, cols - PROMPT.length - 1);
    return PROMPT + shown.slice(-room).join("");
  }
}

/** Register `room watch` on the `room` command group. */
export function registerRoomWatch(room: Command, io: Io): void {
  withNetwork(withPassphrase(
    room.command("watch")
      .description("a live view of a room with an input line: type a line and Enter to send it")
      .argument("[room]", "the room's id or name (default: your only room)")
      .option("-n, --lines <n>", "how many messages of the history to show first", parseIntArg, 20)
      .option("--poll", "follow by polling only (no event stream)"),
  )).addHelpText(
    "after",
    `
Messages are shown as room tail --follow shows them (verified, control and bidi characters
escaped, flood-limited); refused and missing messages and notes appear above the input line.
Enter sends the line (as room send does); Backspace and Ctrl-U edit it; Ctrl-C, or Ctrl-D on an
empty line, quits and restores the terminal. Needs a terminal on standard input and output:
elsewhere use room tail --follow and room send (exit 2 otherwise).
${NETWORK_HELP}`,
  ).action(async (roomArg: string | undefined, o) => {
    if (!isTerminal(Deno.stdin) || !isTerminal(Deno.stdout)) {
      throw new CipherpostError(
        "usage",
        "room watch needs a terminal on standard input and output",
        "read with: cipherpost room tail ROOM --follow; post with: cipherpost room send ROOM TEXT",
      );
    }
    await runRoom(o, io, async (ctx, home) => {
      const id = await whichRoom(ctx, home, roomArg);
      await watch(ctx, home, id, io, { lines: o.lines, poll: o.poll === true });
    });
  });
}

/** The room to watch: the one named, or the only one this home has. */
async function whichRoom(ctx: Ctx, home: string, arg: string | undefined): Promise<string> {
  if (arg !== undefined) return (await findRoom(home, ctx.me, arg)).room;
  const all = await listRooms(home, ctx.me);
  if (all.length === 1) return all[0].room;
  if (all.length === 0) {
    throw new CipherpostError(
      "not_found",
      "this home is in no room",
      "create one with: cipherpost room create NAME, or join one with: cipherpost room join URI",
    );
  }
  throw new CipherpostError(
    "usage",
    `this home is in ${all.length} rooms: name the one to watch`,
    "list them with: cipherpost room list",
  );
}

async function watch(
  ctx: Ctx,
  home: string,
  room: string,
  io: Io,
  o: { lines: number; poll: boolean },
): Promise<void> {
  const input = new InputLine();
  const stop = new AbortController();
  let ended!: () => void;
  const quit = new Promise<void>((r) => (ended = r));
  const end = () => {
    stop.abort();
    ended();
  };
  const draw = () => io.out(`${CLEAR_LINE}${input.render(columns())}`);
  // raw mode: no echo, no line discipline, no CR/LF translation on output
  const above = (write: (t: string) => void, l: string) => {
    io.out(CLEAR_LINE);
    write(`${l}\r\n`);
    draw();
  };
  const view = { out: (l: string) => above(io.out, l), err: (l: string) => above(io.err, l) };
  let reader: RoomReader | null = null;
  let sending = Promise.resolve();
  const send = (body: string) => {
    sending = sending.then(async () => {
      try {
        const r = await sendToRoom(ctx, room, body);
        // the follow may save the room's state (a new epoch): keep our count in it current
        if (reader && (reader.st.seq[String(r.epoch)] ?? 0) < r.seq) {
          reader.st.seq[String(r.epoch)] = r.seq;
          reader.st.hlc = { ms: r.time, c: 0 };
        }
      } catch (e) {
        for (const l of describeError(e)) view.err(l);
      }
    });
  };
  const onTerm = () => end();
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.stdin.setRaw(true);
  try {
    draw();
    const keys = (async () => {
      const buf = new Uint8Array(4096);
      while (!stop.signal.aborted) {
        const n = await Deno.stdin.read(buf);
        if (n === null) return end();
        for (const a of input.feed(buf.subarray(0, n))) {
          if ("quit" in a) return end();
          send(a.send);
        }
        draw();
      }
    })();
    keys.catch(end);
    const shown = viewRoom(ctx, home, room, view, {
      lines: o.lines,
      follow: true,
      poll: o.poll,
      signal: stop.signal,
      opened: (r) => (reader = r),
    });
    shown.catch(() => {}); // after a quit, a late failure of the view is of no interest
    // the view's own failure ends the watch with its error; Ctrl-C ends it at once
    await Promise.race([shown, quit]);
    end();
    await sending; // a line already entered is still sent (every request has its timeout)
  } finally {
    Deno.removeSignalListener("SIGTERM", onTerm);
    io.out(`${CLEAR_LINE}`);
    Deno.stdin.setRaw(false);
  }
}
