/**
 * The homeserver data client (docs/PROTOCOL.md §4.4): PUT with a streamed body, GET returning a
 * stream, HEAD, DELETE and listing, for one user (the tenant, sent as `pubky-host`). Every
 * request goes through {@link homeserverRequest} (endpoint policy, no redirects, timeouts, 429).
 *
 * - Writes carry the session cookie from an {@link Authenticator}; on 401 the client asks it to
 *   re-authenticate once and retries (a PUT only when its body can be made again: give a
 *   `Uint8Array` or a function returning a fresh stream).
 * - 429 is retried after `Retry-After` (up to 3 times, at most 60 s each, replayable bodies
 *   only); 403, 404, 413, 507 and the rest become {@link HomeserverError}s at once.
 * - Reads of `/pub/` need no session: a client without an authenticator reads anyone's files.
 *
 * @module
 */

import type { HomeserverHttp } from "./endpoint_policy.ts";
import { type FetchFn, HomeserverError, type HttpReply, readUpTo } from "./http.ts";
import { homeserverRequest } from "./request.ts";
import { cookieHeader, type SessionCookie } from "./session.ts";

/** Supplies the session cookie and renews it. */
export interface Authenticator {
  /** The current cookie, or null when there is none yet (the first write then authenticates). */
  cookie(): SessionCookie | null;
  /** Make a new session (after a 401). Returns false when it cannot (no identity at hand). */
  reauthenticate(): Promise<boolean>;
}

/** A PUT body: bytes, a stream (sent once, not retried), or a function making a fresh stream. */
export type PutBody =
  | Uint8Array
  | ReadableStream<Uint8Array>
  | (() => ReadableStream<Uint8Array> | Promise<ReadableStream<Uint8Array>>);

/** Options of {@link HomeserverClient.put}. */
export interface PutOptions {
  /**
   * exact body length, sent as `Content-Length` so the server can check its quota before the
   * upload. Deno's `fetch` sends stream bodies chunked and drops the header; the homeserver then
   * checks the quota while the body streams (507 either way).
   */
  contentLength?: number;
  signal?: AbortSignal;
}

/** What HEAD (and GET) tell about a file. */
export interface EntryInfo {
  path: string;
  size: number;
  /** as sent, quoted: `"<base64 BLAKE3>"` */
  etag: string | null;
  lastModified: string | null;
  contentType: string | null;
}

/** A GET that returned content. */
export interface GetResult extends EntryInfo {
  /** the content, streamed; cancel it if not read to the end */
  body: ReadableStream<Uint8Array>;
}

/** Options of {@link HomeserverClient.get}. */
export interface GetOptions {
  /** a previously seen ETag: a 304 makes `get` return null */
  ifNoneMatch?: string;
  signal?: AbortSignal;
}

/** Options of {@link HomeserverClient.list}. */
export interface ListOptions {
  /**
   * 1..65535; the server's default is 100 and it caps at 1000. A page with more entries than
   * asked (or than {@link MAX_LIST_PAGE}), or more than {@link MAX_LIST_LINE_BYTES} bytes per
   * entry, is an error.
   */
  limit?: number;
  /** a previous entry (`pubky://<user>/<path>` or `<user>/<path>`): start after it */
  cursor?: string;
  reverse?: boolean;
  /** direct children only; sub-folders end in `/` */
  shallow?: boolean;
  signal?: AbortSignal;
}

/** One listing line. */
export interface ListEntry {
  /** `pubky://<user>/<path>`, usable as a cursor */
  url: string;
  /** the absolute path, e.g. `/pub/cipherpost/blobs/<ref>/part-00000` */
  path: string;
}

/** Options of {@link HomeserverClient.listAll}. */
export interface ListAllOptions extends Omit<ListOptions, "cursor" | "limit"> {
  /** entries per page (default {@link LIST_PAGE_SIZE}) */
  pageSize?: number;
  /** more entries than this in all is an error (default {@link MAX_LIST_ENTRIES}) */
  maxEntries?: number;
}

/** The most entries a listing page may hold (the reference server's own cap). */
export const MAX_LIST_PAGE = 1000;
/** Entries per page of {@link HomeserverClient.listAll}. */
export const LIST_PAGE_SIZE = 500;
/** Entries {@link HomeserverClient.listAll} yields at most before it fails. */
export const MAX_LIST_ENTRIES = 100_000;
/** Bytes a listing line may take: `pubky://<z32>` and a path of at most 4096 bytes. */
export const MAX_LIST_LINE_BYTES = 4096 + 64;

/** Options of the client. */
export interface HomeserverClientOptions {
  /** from discovery: `https://domain[:port]` or `http://127.0.0.1:port` */
  baseUrl: string;
  /** the tenant: whose files (z32) */
  user: string;
  /** needed for writes; null for anonymous reads */
  auth?: Authenticator | null;
  fetch?: FetchFn;
  /** 429 retries (default 3) */
  retries429?: number;
  /** longest honoured `Retry-After` in ms (default 60000); longer waits fail at once */
  maxRetryAfterMs?: number;
  /** endpoint policy and timeouts (default: HTTPS to public names only, 30 s) */
  http?: HomeserverHttp;
}

const PATH_RE = /^\/(pub|priv)\/[^\0]*$/;

/** Validate an absolute homeserver path (segments ≤ 255 bytes, ≤ 4096, no `..`, no NUL). */
export function checkPath(path: string): void {
  const bytes = new TextEncoder().encode(path).length;
  const segs = path.split("/").slice(1);
  if (
    !PATH_RE.test(path) || bytes > 4096 || segs.some((s) => s === ".." || s === ".") ||
    segs.some((s) => new TextEncoder().encode(s).length > 255) || path.includes("//")
  ) {
    throw new HomeserverError(
      "usage",
      `homeserver: invalid path ${JSON.stringify(path.slice(0, 80))}`,
      { status: 0, method: "-", path },
    );
  }
}

function encodePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

/** A client for one user's files on one homeserver. */
export class HomeserverClient {
  readonly baseUrl: string;
  readonly user: string;
  readonly #auth: Authenticator | null;
  readonly #fetch: FetchFn;
  readonly #retries429: number;
  readonly #maxRetryAfterMs: number;
  readonly #http: HomeserverHttp;

  constructor(o: HomeserverClientOptions) {
    this.baseUrl = o.baseUrl.replace(/\/+$/, "");
    this.user = o.user;
    this.#auth = o.auth ?? null;
    this.#fetch = o.fetch ?? fetch;
    this.#retries429 = o.retries429 ?? 3;
    this.#maxRetryAfterMs = o.maxRetryAfterMs ?? 60_000;
    this.#http = { ...o.http };
  }

  /**
   * One request with the tenant header, the cookie for writes, one re-authentication on 401 and
   * `Retry-After` on 429. `makeBody` is called once per attempt; `replayable` says whether a
   * second attempt is possible. Returns the response (2xx, 304, or 404 when `allow404`).
   */
  async #request(
    method: string,
    path: string,
    o: {
      query?: Record<string, string>;
      headers?: Record<string, string>;
      makeBody?: () => Promise<BodyInit | null>;
      replayable?: boolean;
      write?: boolean;
      allow404?: boolean;
      signal?: AbortSignal;
    } = {},
  ): Promise<HttpReply> {
    const url = new URL(this.baseUrl + encodePath(path));
    for (const [k, v] of Object.entries(o.query ?? {})) url.searchParams.set(k, v);
    let reauthed = false;
    if (o.write && this.#auth && this.#auth.cookie() === null) {
      reauthed = true;
      if (!await this.#auth.reauthenticate()) throw this.#noSession(method, path);
    }
    const again = o.replayable !== false;
    for (;;) {
      const headers: Record<string, string> = { ...o.headers };
      const c = o.write ? this.#auth?.cookie() : null;
      if (c) headers.cookie = cookieHeader(c);
      const renew = o.write === true && this.#auth !== null && !reauthed;
      const res = await homeserverRequest(method, url, {
        tenant: this.user,
        path,
        headers,
        makeBody: o.makeBody,
        retries429: again ? this.#retries429 : 0,
        maxRetryAfterMs: this.#maxRetryAfterMs,
        pass: [...(o.allow404 ? [404] : []), ...(renew ? [401] : [])],
        http: this.#http,
        signal: o.signal,
        fetch: this.#fetch,
      });
      if (res.status !== 401 || !renew) return res;
      await res.body?.cancel();
      reauthed = true;
      if (!await this.#auth!.reauthenticate()) throw this.#noSession(method, path);
      if (again) continue;
      // A one-shot stream cannot be sent twice: the session is fresh, the caller retries.
      throw new HomeserverError(
        "homeserver_auth",
        `homeserver: ${method} ${path}: the session had expired; signed in again, retry`,
        { status: 401, method, path },
        "pass the body as a function returning a fresh stream to have it retried",
      );
    }
  }

  #noSession(method: string, path: string): HomeserverError {
    return new HomeserverError(
      "homeserver_auth",
      `homeserver: ${method} ${path}: not authenticated and no way to sign in here`,
      { status: 401, method, path },
      { step: "homeserver_signup", data: { also: "it needs your passphrase" } },
    );
  }

  /** Create or replace `path` with `body`, streamed. Throws on any non-201/2xx answer. */
  async put(path: string, body: PutBody, opts: PutOptions = {}): Promise<void> {
    checkPath(path);
    const headers: Record<string, string> = {};
    const len = body instanceof Uint8Array ? body.length : opts.contentLength;
    if (len !== undefined) headers["content-length"] = String(len);
    const replayable = !(body instanceof ReadableStream);
    let used = false;
    const makeBody = async (): Promise<BodyInit> => {
      if (body instanceof Uint8Array) return body as Uint8Array<ArrayBuffer>;
      if (body instanceof ReadableStream) {
        if (used) throw new Error("stream body already sent");
        used = true;
        return body;
      }
      return await body();
    };
    let res: HttpReply;
    try {
      res = await this.#request("PUT", path, {
        headers,
        makeBody,
        replayable,
        write: true,
        signal: opts.signal,
      });
    } catch (e) {
      throw body instanceof Uint8Array || opts.signal?.aborted ? e : await this.#refused(e, path);
    }
    await res.body?.cancel();
  }

  /**
   * A streamed PUT that got no answer, from a server that answers the next request: a server
   * refusing a body (507 quota, 413 too large) may answer before reading it and close, and the
   * connection reset then discards its answer before fetch reads it. That is a refusal (exit 1),
   * not an unreachable homeserver; a server that does not answer a HEAD either stays unreachable.
   */
  async #refused(e: unknown, path: string): Promise<unknown> {
    if (!(e instanceof HomeserverError) || e.status !== 0 || e.kind !== "homeserver") return e;
    try {
      // through the one request path (policy, timeouts); any answer at all will do
      const probe = await homeserverRequest("HEAD", `${this.baseUrl}/`, {
        tenant: this.user,
        path: "/",
        retries429: 0,
        http: this.#http,
        fetch: this.#fetch,
      });
      await probe.body?.cancel();
    } catch (e2) {
      if (!(e2 instanceof HomeserverError) || e2.status === 0) return e;
    }
    return new HomeserverError(
      "homeserver_quota",
      `homeserver: PUT ${path}: refused while the body was being sent (the homeserver closed ` +
        "the connection and answers other requests): most likely its storage quota is full " +
        "(507) or the body is too large (413)",
      { status: 0, method: "PUT", path },
      { step: "homeserver_gc" },
    );
  }

  /** The content of `path`, streamed; null on 304 (`ifNoneMatch` matched). Throws `not_found`. */
  async get(path: string, opts: GetOptions = {}): Promise<GetResult | null> {
    checkPath(path);
    const headers: Record<string, string> = {};
    if (opts.ifNoneMatch !== undefined) headers["if-none-match"] = opts.ifNoneMatch;
    const res = await this.#request("GET", path, { headers, signal: opts.signal });
    if (res.status === 304) {
      await res.body?.cancel();
      return null;
    }
    return { ...infoOf(path, res), body: res.body ?? new Blob([]).stream() };
  }

  /** Size, ETag and dates of `path`, or null when it does not exist. */
  async head(path: string, opts: { signal?: AbortSignal } = {}): Promise<EntryInfo | null> {
    checkPath(path);
    const res = await this.#request("HEAD", path, { allow404: true, signal: opts.signal });
    await res.body?.cancel();
    return res.status === 404 ? null : infoOf(path, res);
  }

  /** Delete `path`; false when it did not exist. */
  async delete(path: string, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    checkPath(path);
    const res = await this.#request("DELETE", path, {
      write: true,
      allow404: true,
      signal: opts.signal,
    });
    await res.body?.cancel();
    return res.status !== 404;
  }

  /**
   * One page of the listing of folder `dir` (must end in `/`). An empty or absent folder gives
   * `[]` (the server answers 404).
   */
  async list(dir: string, opts: ListOptions = {}): Promise<ListEntry[]> {
    if (!dir.endsWith("/")) dir += "/";
    checkPath(dir);
    const query: Record<string, string> = {};
    if (opts.limit !== undefined) {
      if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > 65535) {
        throw new HomeserverError("usage", "homeserver: list limit must be 1..65535", {
          status: 0,
          method: "GET",
          path: dir,
        });
      }
      query.limit = String(opts.limit);
    }
    if (opts.cursor !== undefined) query.cursor = opts.cursor;
    if (opts.reverse) query.reverse = "true";
    if (opts.shallow) query.shallow = "true";
    const res = await this.#request("GET", dir, { query, allow404: true, signal: opts.signal });
    if (res.status === 404) {
      await res.body?.cancel();
      return [];
    }
    const most = Math.min(opts.limit ?? MAX_LIST_PAGE, MAX_LIST_PAGE);
    const { bytes, more } = await readUpTo(res.body, most * MAX_LIST_LINE_BYTES);
    const lines = more ? [] : new TextDecoder().decode(bytes).split("\n").filter((l) => l !== "");
    if (more || lines.length > most) {
      throw new HomeserverError(
        "homeserver",
        `homeserver: GET ${dir}: the listing page is larger than asked (${most} entries)`,
        { status: res.status, method: "GET", path: dir },
      );
    }
    const prefix = `pubky://${this.user}`;
    return lines.map((url) => ({
      url,
      path: url.startsWith(prefix) ? url.slice(prefix.length) : url.replace(/^pubky:\/\/[^/]*/, ""),
    }));
  }

  /**
   * Every entry below `dir`, page by page (cursor = last entry of the previous page). Fails
   * (`homeserver`) when a page does not start after the cursor (a server ignoring it would make
   * this loop forever) and when there are more than `maxEntries` entries in all.
   */
  async *listAll(dir: string, opts: ListAllOptions = {}): AsyncGenerator<ListEntry> {
    const { pageSize, maxEntries, ...rest } = opts;
    const limit = pageSize ?? LIST_PAGE_SIZE;
    const max = maxEntries ?? MAX_LIST_ENTRIES;
    let cursor: string | undefined;
    let n = 0;
    for (;;) {
      const page = await this.list(dir, { ...rest, limit, cursor });
      if (cursor !== undefined && page.some((e) => e.url === cursor)) {
        throw new HomeserverError(
          "homeserver",
          `homeserver: GET ${dir}: the listing does not advance past its cursor`,
          { status: 200, method: "GET", path: dir },
        );
      }
      n += page.length;
      if (n > max) {
        throw new HomeserverError(
          "homeserver",
          `homeserver: GET ${dir}: more than ${max} entries listed`,
          { status: 200, method: "GET", path: dir },
        );
      }
      yield* page;
      if (page.length < limit) return;
      cursor = page[page.length - 1].url;
    }
  }
}

function infoOf(path: string, res: HttpReply): EntryInfo {
  const len = res.headers.get("content-length");
  return {
    path,
    size: len !== null && /^\d+$/.test(len) ? Number(len) : -1,
    etag: res.headers.get("etag"),
    lastModified: res.headers.get("last-modified"),
    contentType: res.headers.get("content-type"),
  };
}
