/**
 * Following a room live (docs/PROTOCOL.md §9.6): one event stream per homeserver and per 50
 * members (`GET /events-stream?user=…&path=/pub/cipherpost/rooms/&live=true`), through the one
 * homeserver request path; events are hints, every file is fetched and verified by the
 * {@link RoomReader}. A homeserver without the endpoint, a malformed stream or repeated failures
 * switch that group to polling (a listing every `pollMs`). A new roster update seen on a stream
 * makes the follow catch up and start over with the new member set.
 *
 * @module
 */

import { homeserverGet } from "../../homeserver/request.ts";
import { homeserverHttpOf } from "../../homeserver/endpoint_policy.ts";
import { CipherpostError } from "../../util/errors.ts";
import { folderTag, MAX_STREAM_USERS, ROOMS_DIR } from "../../rooms/names.ts";
import type { Message } from "../../rooms/records.ts";
import { type HomeserverEvent, SseParser } from "../../rooms/sse.ts";
import { saveRoom } from "../../rooms/store.ts";
import { catchUp } from "./epochs.ts";
import type { RoomContext } from "./net.ts";
import type { RoomProblem, RoomReader } from "./read.ts";

/** Options of {@link followRoom}. */
export interface FollowOptions {
  /** stop following */
  signal: AbortSignal;
  /** polling period of the fallback (default 2000 ms) */
  pollMs?: number;
  /** never use the event stream (tests of the fallback) */
  noEvents?: boolean;
  /** how each group is followed, as it changes ("events" or "polling") */
  mode?: (mode: "events" | "polling", homeserver: string) => void;
}

/** What a follow reports, as it happens. */
export interface FollowSink {
  /** A new message, verified (arrival order, not HLC order). */
  message(m: Message): void;
  /** A message refused, missing or unreachable. */
  problem(p: RoomProblem): void;
  /** An advisory: a fallback to polling, a new epoch, a refused update, a failed round. */
  note(text: string): void;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });

/**
 * Follow the room until `o.signal` aborts. The reader should have done its backfill first (the
 * streams replay each user's history; what was seen is not fetched again).
 */
export async function followRoom(
  ctx: RoomContext,
  reader: RoomReader,
  sink: FollowSink,
  o: FollowOptions,
): Promise<void> {
  while (!o.signal.aborted) {
    const round = new AbortController();
    const stop = () => round.abort();
    o.signal.addEventListener("abort", stop, { once: true });
    try {
      await followRound(ctx, reader, sink, o, round);
    } finally {
      o.signal.removeEventListener("abort", stop);
    }
    if (o.signal.aborted) return;
    // a roster update: catch up, then follow the new member set
    try {
      const c = await catchUp(ctx, reader.net, reader.st);
      for (const n of c.notes) sink.note(n);
      if (c.added.length > 0) {
        await saveRoom(ctx.state.home, ctx.me, reader.st);
        sink.note(`the room moved to epoch ${reader.st.epochs.at(-1)!.epoch}`);
      }
      if (c.removed) {
        sink.note("you were removed from this room: nothing newer can be read");
      }
      deliver(await reader.scan(), sink);
    } catch (e) {
      if (!(e instanceof CipherpostError)) throw e;
      sink.note(e.message);
      await sleep(o.pollMs ?? 2000, o.signal);
    }
  }
}

function deliver(r: { added: Message[]; problems: RoomProblem[] }, sink: FollowSink): void {
  for (const m of r.added) sink.message(m);
  for (const p of r.problems) sink.problem(p);
}

/** One round: every group followed until the round is aborted (roster change or stop). */
async function followRound(
  ctx: RoomContext,
  reader: RoomReader,
  sink: FollowSink,
  o: FollowOptions,
  round: AbortController,
): Promise<void> {
  const users = reader.users();
  const groups = new Map<string, string[]>();
  for (const u of users) {
    let base: string;
    try {
      base = (await reader.net.reader(u)).baseUrl;
    } catch {
      base = "";
    }
    const g = groups.get(base) ?? [];
    g.push(u);
    groups.set(base, g);
  }
  const tags = new Map<string, string>(); // `${user}/${tag}` → user
  for (const u of users) tags.set(`${u}/${folderTag(reader.st.room, u)}`, u);
  const tasks: Promise<void>[] = [];
  for (const [base, list] of groups) {
    for (let i = 0; i < list.length; i += MAX_STREAM_USERS) {
      const chunk = list.slice(i, i + MAX_STREAM_USERS);
      tasks.push(
        base === "" || o.noEvents
          ? poll(reader, chunk, sink, o, round.signal, base)
          : stream(ctx, reader, base, chunk, tags, sink, o, round),
      );
    }
  }
  await Promise.all(tasks);
}

async function poll(
  reader: RoomReader,
  users: string[],
  sink: FollowSink,
  o: FollowOptions,
  signal: AbortSignal,
  base: string,
): Promise<void> {
  o.mode?.("polling", base);
  while (!signal.aborted) {
    await sleep(o.pollMs ?? 2000, signal);
    if (signal.aborted) return;
    try {
      deliver(await reader.scan(users), sink);
    } catch (e) {
      if (!(e instanceof CipherpostError)) throw e;
      sink.note(e.message);
    }
  }
}

async function stream(
  ctx: RoomContext,
  reader: RoomReader,
  base: string,
  users: string[],
  tags: Map<string, string>,
  sink: FollowSink,
  o: FollowOptions,
  round: AbortController,
): Promise<void> {
  const cursors = reader.cursors;
  const http = homeserverHttpOf(ctx.transport);
  let failures = 0;
  o.mode?.("events", base);
  while (!round.signal.aborted) {
    const url = new URL(`${base}/events-stream`);
    for (const u of users) {
      const c = cursors.get(u);
      url.searchParams.append("user", c ? `${u}:${c}` : u);
    }
    url.searchParams.set("path", ROOMS_DIR);
    url.searchParams.set("live", "true");
    let gotEvent = false;
    try {
      const res = await homeserverGet(url, { tenant: users[0], http, signal: round.signal });
      const parser = new SseParser();
      const body = res.body?.getReader();
      while (body) {
        const { value, done } = await body.read();
        if (done) break;
        for (const ev of parser.push(value)) {
          gotEvent = true;
          cursors.set(ev.user, ev.cursor);
          if (await onEvent(reader, ev, tags, sink)) {
            round.abort(); // a roster update: the caller catches up and starts over
            await body.cancel().catch(() => {});
            return;
          }
        }
      }
      failures = 0;
    } catch (e) {
      if (round.signal.aborted) return;
      if (!(e instanceof CipherpostError)) throw e;
      const status = (e as { status?: number }).status ?? 0;
      // no such endpoint, a refused query, a malformed stream: poll instead
      if (status === 404 || status === 400 || status === 405 || /malformed event/.test(e.message)) {
        sink.note(`event stream unusable at ${base} (${e.message}); polling instead`);
        return await poll(reader, users, sink, o, round.signal, base);
      }
      // a quiet stream ends at the idle timeout: that is a reconnect, not a failure
      if (!gotEvent && !/stalled/.test(e.message)) failures++;
      if (failures >= 3) {
        sink.note(`event stream keeps failing at ${base}; polling instead`);
        return await poll(reader, users, sink, o, round.signal, base);
      }
    }
    // the stream ended or stalled (the idle timeout): reconnect from the cursors
    await sleep(200, round.signal);
  }
}

/** Handle one event; true when it is a roster update (the follow starts over). */
async function onEvent(
  reader: RoomReader,
  ev: HomeserverEvent,
  tags: Map<string, string>,
  sink: FollowSink,
): Promise<boolean> {
  if (ev.type !== "PUT" || !ev.path.startsWith(ROOMS_DIR)) return false;
  const rest = ev.path.slice(ROOMS_DIR.length).split("/");
  const user = tags.get(`${ev.user}/${rest[0]}`);
  if (!user) return false;
  if (rest[1] === "roster" && rest.length === 3 && /^[0-9]{10}$/.test(rest[2])) {
    const e = Number(rest[2]);
    if (e <= reader.st.epochs.at(-1)!.epoch || e <= reader.rosterHint) return false;
    reader.rosterHint = e;
    return true;
  }
  if (rest.length !== 3 || !/^[0-9]{10}$/.test(rest[1]) || !/^[0-9]{10}$/.test(rest[2])) {
    return false;
  }
  const epoch = Number(rest[1]), seq = Number(rest[2]);
  if (reader.seen(user, epoch, seq)) return false;
  try {
    deliver(await reader.take(user, epoch, seq), sink);
  } catch (e) {
    if (!(e instanceof CipherpostError)) throw e;
    sink.note(e.message);
  }
  return false;
}
