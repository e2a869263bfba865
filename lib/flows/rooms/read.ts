/**
 * Reading a room (docs/PROTOCOL.md §9.4): list every member's folder of every epoch we hold a
 * key of, fetch each file not seen yet (bounded in size and number), verify it, and report what
 * was refused and what is missing. Used by backfill and, incrementally, by the live follow.
 *
 * @module
 */

import { CipherpostError } from "../../util/errors.ts";
import { epochDir, MAX_ROOM_FILE, messagePath, seqOfPath } from "../../rooms/names.ts";
import type { Message } from "../../rooms/records.ts";
import { missingRanges, rangeCount } from "../../rooms/order.ts";
import { openMessage, type Refusal } from "../../rooms/seal.ts";
import { findRoom, type HeldEpoch, type RoomState, saveRoom } from "../../rooms/store.ts";
import type { FlowUi } from "../share/ui.ts";
import { catchUp } from "./epochs.ts";
import { fetchBounded, type RoomContext, RoomNet } from "./net.ts";

/** Message files one reader fetches at most in its lifetime (backfill and live together). */
export const MAX_FILES = 200_000;
/** Files listed per author and epoch at most. */
export const MAX_PER_FOLDER = 100_000;
/** Fetches in flight. */
const PARALLEL = 8;

/** Something a reader refused or found missing. */
export interface RoomProblem {
  /** Why a file was refused, or `missing` (a gap in the numbers), or `unreachable` (no listing). */
  kind: Refusal | "missing" | "unreachable";
  /** z32 of the member whose folder it is. */
  author: string;
  /** The epoch of that folder. */
  epoch: number;
  /** the sequence numbers concerned, as ranges */
  seqs: [number, number][];
  /** How many sequence numbers the ranges hold. */
  count: number;
}

/**
 * Reads one room; remembers what it has seen. {@link RoomReader.open} makes one,
 * {@link RoomReader.scan} backfills, then {@link followRoom} keeps it going live.
 */
export class RoomReader {
  /** @ignore the room's stored state (epoch keys included), for the follow */
  readonly st: RoomState;
  /** @ignore the homeserver clients, for the follow */
  readonly net: RoomNet;
  /** verified messages, in arrival order */
  readonly messages: Message[] = [];
  /** @ignore event-stream cursors per user (kept across reconnects and rounds of a follow) */
  readonly cursors: Map<string, string> = new Map();
  /** @ignore the newest roster epoch an event announced */
  rosterHint = 0;
  readonly #seen = new Map<string, Message | Refusal>();
  readonly #arrival = new WeakMap<Message, number>();
  readonly #listed = new Map<string, Set<number>>();
  readonly #reportedMissing = new Map<string, Set<number>>();
  #files = 0;

  /** @ignore a reader of a room state already loaded (the CLI's way in) */
  constructor(st: RoomState, net: RoomNet) {
    this.st = st;
    this.net = net;
  }

  /**
   * A reader of `room` (id or name) of this home, caught up first: epochs opened since the last
   * command are fetched, checked and saved; what the catch-up saw goes to `ui.note`.
   */
  static async open(ctx: RoomContext, room: string, ui?: FlowUi): Promise<RoomReader> {
    const st = await findRoom(ctx.state.home, ctx.me, room);
    const net = new RoomNet(ctx);
    const c = await catchUp(ctx, net, st);
    if (c.added.length > 0) await saveRoom(ctx.state.home, ctx.me, st);
    for (const n of c.notes) ui?.note(n);
    if (c.removed) ui?.note("you were removed from this room: nothing newer can be read");
    return new RoomReader(st, net);
  }

  /** @ignore the held epoch `n`, if any */
  epoch(n: number): HeldEpoch | undefined {
    return this.st.epochs.find((e) => e.epoch === n);
  }

  /** Every member of every held epoch. */
  users(): string[] {
    const all = new Set<string>();
    for (const e of this.st.epochs) for (const m of e.roster.roster.members) all.add(m);
    return [...all].sort();
  }

  /**
   * When a message arrived, for the flood limit (Unix ms): the time its author's homeserver
   * stored it (`Last-Modified`, never later than our clock when we fetched it), or our clock at
   * the fetch when the homeserver gives none. Unlike the message's own stamp, the author does
   * not sign it, so spacing the stamps apart does not get a flood past the limit.
   */
  arrival(m: Message): number {
    return this.#arrival.get(m) ?? m.hlc;
  }

  /** Whether a file was already taken in. */
  seen(author: string, epoch: number, seq: number): boolean {
    return this.#seen.has(`${author}/${epoch}/${seq}`);
  }

  /**
   * List and fetch everything new in the folders of `users` (default all). Returns the new
   * messages and problems (refusals, newly missing numbers, unreachable members).
   */
  async scan(users?: readonly string[]): Promise<{ added: Message[]; problems: RoomProblem[] }> {
    const added: Message[] = [];
    const problems: RoomProblem[] = [];
    const wanted = new Set(users ?? this.users());
    const jobs: { author: string; epoch: number; seq: number }[] = [];
    const touched: { author: string; epoch: number }[] = [];
    for (const e of this.st.epochs) {
      for (const author of e.roster.roster.members) {
        if (!wanted.has(author)) continue;
        let client;
        try {
          client = await this.net.reader(author);
        } catch (err) {
          if (!(err instanceof CipherpostError)) throw err;
          problems.push({ kind: "unreachable", author, epoch: e.epoch, seqs: [], count: 0 });
          continue;
        }
        const dir = epochDir(this.st.room, author, e.epoch);
        const listed = this.#listedSet(author, e.epoch);
        try {
          for await (const entry of client.listAll(dir, { maxEntries: MAX_PER_FOLDER })) {
            const seq = seqOfPath(entry.path);
            if (
              seq === null || seq < 1 || !entry.path.startsWith(dir) ||
              entry.path.slice(dir.length).includes("/")
            ) {
              continue;
            }
            listed.add(seq);
            if (!this.seen(author, e.epoch, seq)) jobs.push({ author, epoch: e.epoch, seq });
          }
        } catch (err) {
          if (!(err instanceof CipherpostError)) throw err;
          problems.push({ kind: "unreachable", author, epoch: e.epoch, seqs: [], count: 0 });
          continue;
        }
        touched.push({ author, epoch: e.epoch });
      }
    }
    const results = await this.#fetchAll(jobs);
    for (const r of results) {
      if (typeof r.got === "string") {
        problems.push({
          kind: r.got,
          author: r.author,
          epoch: r.epoch,
          seqs: [[r.seq, r.seq]],
          count: 1,
        });
      } else if (r.got) added.push(r.got);
    }
    for (const t of touched) problems.push(...this.#missing(t.author, t.epoch));
    return { added, problems };
  }

  /** Fetch and verify one file named by an event (a live hint). */
  async take(
    author: string,
    epoch: number,
    seq: number,
  ): Promise<{ added: Message[]; problems: RoomProblem[] }> {
    if (this.seen(author, epoch, seq) || !this.epoch(epoch)) return { added: [], problems: [] };
    if (!this.epoch(epoch)!.roster.roster.members.includes(author)) {
      return { added: [], problems: [] };
    }
    this.#listedSet(author, epoch).add(seq);
    const [r] = await this.#fetchAll([{ author, epoch, seq }]);
    const problems: RoomProblem[] = [];
    const added: Message[] = [];
    if (typeof r.got === "string") {
      problems.push({ kind: r.got, author, epoch, seqs: [[seq, seq]], count: 1 });
    } else if (r.got) added.push(r.got);
    problems.push(...this.#missing(author, epoch));
    return { added, problems };
  }

  #listedSet(author: string, epoch: number): Set<number> {
    const k = `${author}/${epoch}`;
    let s = this.#listed.get(k);
    if (!s) {
      s = new Set();
      this.#listed.set(k, s);
    }
    return s;
  }

  #missing(author: string, epoch: number): RoomProblem[] {
    const k = `${author}/${epoch}`;
    const ranges = missingRanges(this.#listed.get(k) ?? []);
    const reported = this.#reportedMissing.get(k) ?? new Set<number>();
    this.#reportedMissing.set(k, reported);
    const fresh = ranges.filter(([a]) => !reported.has(a));
    for (const [a] of fresh) reported.add(a);
    if (fresh.length === 0) return [];
    return [{ kind: "missing", author, epoch, seqs: fresh, count: rangeCount(fresh) }];
  }

  async #fetchAll(
    jobs: { author: string; epoch: number; seq: number }[],
  ): Promise<{ author: string; epoch: number; seq: number; got: Message | Refusal | null }[]> {
    if (this.#files + jobs.length > MAX_FILES) {
      throw new CipherpostError(
        "too_large",
        `room too large to read: more than ${MAX_FILES} message files`,
      );
    }
    this.#files += jobs.length;
    const out: { author: string; epoch: number; seq: number; got: Message | Refusal | null }[] = [];
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const j = jobs[next++];
        const got = await this.#fetchOne(j.author, j.epoch, j.seq);
        out.push({ ...j, got });
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, jobs.length) }, worker));
    return out;
  }

  async #fetchOne(author: string, epoch: number, seq: number): Promise<Message | Refusal | null> {
    const key = `${author}/${epoch}/${seq}`;
    const held = this.epoch(epoch);
    if (!held) return null;
    const client = await this.net.reader(author);
    let file: Uint8Array | null;
    const info = { lastModified: null as string | null };
    try {
      file = await fetchBounded(
        client,
        messagePath(this.st.room, author, epoch, seq),
        MAX_ROOM_FILE,
        info,
      );
    } catch (e) {
      if (e instanceof CipherpostError && e.kind === "too_large") {
        this.#seen.set(key, "oversized");
        return "oversized";
      }
      throw e;
    }
    if (file === null) return null; // gone since the listing: counted as missing if so
    const got = await openMessage(file, {
      room: this.st.room,
      epoch,
      owner: author,
      seq,
      epochKey: held.key,
      members: held.roster.roster.members,
    });
    this.#seen.set(key, got);
    if (typeof got !== "string") {
      const fetched = Date.now();
      const stored = info.lastModified === null ? NaN : Date.parse(info.lastModified);
      this.#arrival.set(got, Number.isFinite(stored) ? Math.min(stored, fetched) : fetched);
      this.messages.push(got);
    }
    return got;
  }
}

/** One line for a problem: "2 messages from <author> are missing (epoch 3, 4-5)". */
export function describeProblem(p: RoomProblem, name: (z32: string) => string): string {
  const who = name(p.author);
  const where = `epoch ${p.epoch}${
    p.seqs.length > 0
      ? `, ${p.seqs.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(",")}`
      : ""
  }`;
  const n = p.count === 1 ? "1 message" : `${p.count} messages`;
  switch (p.kind) {
    case "missing":
      return `${n} from ${who} ${p.count === 1 ? "is" : "are"} missing (${where})`;
    case "unreachable":
      return `the homeserver of ${who} could not be read (${where})`;
    case "bad_signature":
      return `refused ${n} in the folder of ${who}: bad signature (${where})`;
    case "not_member":
      return `refused ${n} in the folder of ${who}: the author is not a member (${where})`;
    case "replayed":
      return `refused ${n} in the folder of ${who}: replayed from another room, epoch or slot (${where})`;
    case "undecryptable":
      return `refused ${n} in the folder of ${who}: cannot be decrypted with the epoch key (${where})`;
    case "oversized":
      return `refused ${n} in the folder of ${who}: too large (${where})`;
    case "malformed":
      return `refused ${n} in the folder of ${who}: malformed (${where})`;
  }
}
