/**
 * The stand-in homeserver's event log and its `GET /events-stream` (Server-Sent Events), as
 * pubky-homeserver serves it (`pubky-homeserver/src/client_server/routes/events.rs`,
 * `persistence/files/events/`):
 *
 * - query: `user=<z32>` or `user=<z32>:<cursor>` (repeatable, 1–50 users, else 400 "Too many
 *   users"; an invalid key 400; a user the server does not know 404), `limit` (u16, the stream
 *   closes after that many events), `reverse=true` (not with `live`: 400), `live=true` (after
 *   the history keep streaming new events), `path=<prefix>` (a `/` is prepended when missing);
 * - each event: `event: PUT|DEL`, `data: pubky://<user><path>`, `data: cursor: <n>`, and for a
 *   PUT `data: content_hash: <base64 BLAKE3>`; a keep-alive comment every 15 s (axum's default);
 * - a live client that falls more than 1000 events behind is disconnected (the reference's
 *   broadcast channel lags and closes it).
 *
 * The log keeps the last 100000 events. Close it with {@link EventLog.close} (ends every stream).
 *
 * @module
 */

import { isZ32Key } from "../homeserver/discovery.ts";
import { b64decode, b64encode } from "../util/encoding.ts";

/** At most this many users per stream (`MAX_EVENT_STREAM_USERS`). */
export const MAX_EVENT_STREAM_USERS = 50;
const KEEP = 100_000;
const LAG = 1000;
const KEEPALIVE_MS = 15_000;

interface Ev {
  id: number;
  type: "PUT" | "DEL";
  user: string;
  path: string;
  /** base64 BLAKE3 (PUT) */
  hash?: string;
}

interface Sub {
  push(e: Ev): void;
}

/** A homeserver's event log with its SSE endpoint. */
export class EventLog {
  #events: Ev[] = [];
  #next = 1;
  readonly #subs = new Set<Sub>();
  readonly #closers = new Set<() => void>();

  /** Record a PUT (`etag` is the quoted base64 BLAKE3 the stand-in sends). */
  put(user: string, path: string, etag: string): void {
    const hash = etag.replace(/^"|"$/g, "");
    this.#add({ id: this.#next++, type: "PUT", user, path, hash: b64encode(b64decode(hash)) });
  }

  /** Record a DELETE. */
  del(user: string, path: string): void {
    this.#add({ id: this.#next++, type: "DEL", user, path });
  }

  #add(e: Ev): void {
    this.#events.push(e);
    if (this.#events.length > KEEP) this.#events.splice(0, this.#events.length - KEEP);
    for (const s of this.#subs) s.push(e);
  }

  /** End every open stream. */
  close(): void {
    for (const c of [...this.#closers]) c();
  }

  /** Answer `GET /events-stream`; `known(user)` says whether the server has that user. */
  stream(url: URL, known: (user: string) => boolean): Response {
    const bad = (msg: string) =>
      new Response(msg, { status: 400, headers: { "content-type": "text/plain" } });
    const users: [string, number | null][] = [];
    let limit: number | null = null, reverse = false, live = false, path: string | null = null;
    for (const [k, v] of url.searchParams) {
      if (k === "user") {
        if (v === "") continue;
        const i = v.indexOf(":");
        const key = i < 0 ? v : v.slice(0, i);
        if (!isZ32Key(key)) return bad(`Invalid public key: ${key}`);
        let cursor: number | null = null;
        if (i >= 0) {
          const c = v.slice(i + 1);
          if (!/^[0-9]{1,15}$/.test(c)) return bad(`Invalid cursor: ${c}`);
          cursor = Number(c);
        }
        users.push([key, cursor]);
      } else if (k === "limit") {
        if (!/^[0-9]{1,5}$/.test(v) || Number(v) > 65535) return bad(`Invalid limit: ${v}`);
        limit = Number(v);
      } else if (k === "reverse") reverse = v === "true" || v === "1";
      else if (k === "live") live = v === "true" || v === "1";
      else if (k === "path") path = v === "" ? null : v.startsWith("/") ? v : `/${v}`;
    }
    if (live && reverse) return bad("Cannot use live mode with reverse ordering");
    if (users.length === 0) return bad("user parameter is required");
    if (users.length > MAX_EVENT_STREAM_USERS) {
      return bad(`Too many users. Maximum allowed: ${MAX_EVENT_STREAM_USERS}`);
    }
    if (path !== null && (path.includes("//") || path.split("/").includes(".."))) {
      return bad(`Invalid path: ${path}`);
    }
    if (users.some(([u]) => !known(u))) {
      return new Response("Not Found", { status: 404, headers: { "content-type": "text/plain" } });
    }
    const cursors = new Map<string, number>(users.map(([u, c]) => [u, c ?? 0]));
    const wanted = (e: Ev) =>
      cursors.has(e.user) && e.id > cursors.get(e.user)! &&
      (path === null || e.path.startsWith(path));
    const enc = new TextEncoder();
    const frame = (e: Ev) =>
      enc.encode(
        `event: ${e.type}\ndata: pubky://${e.user}${e.path}\ndata: cursor: ${e.id}${
          e.hash ? `\ndata: content_hash: ${e.hash}` : ""
        }\n\n`,
      );
    let sent = 0;
    let queue: Ev[] = [];
    let wake: (() => void) | null = null;
    let closed = false;
    const sub: Sub = {
      push: (e) => {
        if (!wanted(e)) return;
        queue.push(e);
        if (queue.length > LAG) closed = true; // a slow client is disconnected
        wake?.();
      },
    };
    let timer: ReturnType<typeof setInterval> | undefined;
    const close = () => {
      closed = true;
      wake?.();
    };
    const cleanup = () => {
      this.#subs.delete(sub);
      this.#closers.delete(close);
      if (timer !== undefined) clearInterval(timer);
    };
    // subscribe before the history is read, as the reference does (nothing falls between)
    if (live) {
      this.#subs.add(sub);
      this.#closers.add(close);
    }
    let history = this.#events.filter(wanted);
    if (reverse) history = history.reverse();
    let keepalive = false;
    const body = new ReadableStream<Uint8Array>({
      start(ctrl) {
        // a comment first: the response head goes out at once, as hyper sends it
        ctrl.enqueue(enc.encode(":\n\n"));
        if (live) {
          timer = setInterval(() => {
            keepalive = true;
            wake?.();
          }, KEEPALIVE_MS);
        }
      },
      async pull(ctrl) {
        if (history.length > 0) {
          const e = history.shift()!;
          cursors.set(e.user, e.id);
          ctrl.enqueue(frame(e));
          if (limit !== null && ++sent >= limit) {
            cleanup();
            ctrl.close();
          }
          return;
        }
        if (!live) {
          cleanup();
          ctrl.close();
          return;
        }
        // events of the live phase already in the history were sent; skip them
        queue = queue.filter((e) => e.id > (cursors.get(e.user) ?? 0));
        while (queue.length === 0 && !closed && !keepalive) {
          await new Promise<void>((r) => (wake = r));
          wake = null;
          queue = queue.filter((e) => e.id > (cursors.get(e.user) ?? 0));
        }
        if (closed) {
          cleanup();
          ctrl.close();
          return;
        }
        if (queue.length === 0 && keepalive) {
          keepalive = false;
          ctrl.enqueue(enc.encode(":\n\n"));
          return;
        }
        const e = queue.shift()!;
        cursors.set(e.user, e.id);
        ctrl.enqueue(frame(e));
        if (limit !== null && ++sent >= limit) {
          cleanup();
          ctrl.close();
        }
      },
      cancel() {
        cleanup();
      },
    });
    return new Response(body, {
      status: 200,
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
      },
    });
  }
}
