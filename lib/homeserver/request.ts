/**
 * The one way a homeserver request is made (docs/PROTOCOL.md §4.5): every request of the data
 * client, the session calls, the part GETs of a large receive and the status GET go through
 * {@link homeserverRequest}, which
 *
 * - checks the URL with {@link checkEndpoint} before anything is sent (HTTPS to a public name,
 *   or loopback when the caller allows it);
 * - sends with `redirect: "manual"` and turns a 3xx (other than 304) into an error: a redirect
 *   is never followed;
 * - bounds the wait: the response headers must come within the first-byte timeout (which also
 *   covers connecting, TLS, and a streamed request body being taken), and the response body
 *   must bring at least {@link IDLE_MIN_BYTES} per idle timeout of waiting (a server that hangs
 *   or drips fails, a slow reader of ours does not count);
 * - waits out 429 answers as `Retry-After` says (else 1, 2, 4 s), up to 3 times, at most 60 s
 *   each, when the body can be sent again;
 * - sends the tenant as `pubky-host`.
 *
 * {@link homeserverGet} is the anonymous GET built on it (reads of `/pub/` need no session).
 *
 * @module
 */

import {
  checkEndpoint,
  DEFAULT_HTTP_TIMEOUT_MS,
  type HomeserverHttp,
  IDLE_MIN_BYTES,
} from "./endpoint_policy.ts";
import {
  errorOf,
  type FetchFn,
  HomeserverError,
  type HttpReply,
  retryAfterMs,
  unreachable,
} from "./http.ts";

/** Options of {@link homeserverRequest}. */
export interface RequestOptions {
  /** the tenant (z32 of the user whose files these are), sent as `pubky-host` */
  tenant: string;
  /** the path for messages (default: the URL's path) */
  path?: string;
  headers?: Record<string, string>;
  /** makes the request body; called once per attempt (429 retries send it again) */
  makeBody?: () => Promise<BodyInit | null>;
  /** 429 answers waited out before the error (default 3; 0 when the body is one-shot) */
  retries429?: number;
  /** longest honoured `Retry-After` in ms (default 60000); a longer one fails at once */
  maxRetryAfterMs?: number;
  /** statuses handed back instead of thrown, besides 2xx and 304 (e.g. 404, 401) */
  pass?: readonly number[];
  /** endpoint policy and timeouts (default: HTTPS to public names, 30 s) */
  http?: HomeserverHttp;
  signal?: AbortSignal;
  fetch?: FetchFn;
}

/** Options of {@link homeserverGet}. */
export type GetRequestOptions = Omit<RequestOptions, "makeBody">;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", stop, { once: true });
  });

/** The decoded path of `u`, for messages (as given when it does not decode). */
function pathOf(u: URL): string {
  try {
    return decodeURIComponent(u.pathname);
  } catch {
    return u.pathname;
  }
}

const secs = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/**
 * One homeserver request (see the module doc): the checked URL, no redirect, the timeouts,
 * 429 waited out. Returns 2xx, 304 and the `pass` statuses; throws a {@link HomeserverError}
 * for every other status (as {@link errorOf} maps it), `homeserver` when the server cannot be
 * reached or stalls, and the policy's `homeserver` error when the URL is refused (nothing
 * sent). An abort of `signal` ends it with the abort's error.
 */
export async function homeserverRequest(
  method: string,
  url: string | URL,
  o: RequestOptions,
): Promise<HttpReply> {
  const u = checkEndpoint(url, o.http);
  const path = o.path ?? pathOf(u);
  const retries = o.retries429 ?? 3;
  const maxWait = o.maxRetryAfterMs ?? 60_000;
  for (let tries = 0;; tries++) {
    const headers: Record<string, string> = { "pubky-host": o.tenant, ...o.headers };
    const body = o.makeBody ? await o.makeBody() : null;
    const res = await sendOnce(u, method, path, headers, body, o);
    if (res.ok || res.status === 304 || o.pass?.includes(res.status)) return res;
    if (res.status === 429 && tries < retries) {
      const wait = retryAfterMs(res.headers.get("Retry-After")) ?? 1000 * 2 ** tries;
      if (wait <= maxWait) {
        await res.body?.cancel().catch(() => {});
        await sleep(wait, o.signal);
        continue;
      }
    }
    throw await errorOf(res, method, path);
  }
}

/**
 * The anonymous homeserver GET: {@link homeserverRequest} with method GET and no cookie, for
 * reading anyone's `/pub/` (files, listings, part and status files of large shares). `url` is
 * the full URL (`<baseUrl><path>[?query]`); `tenant` names whose files.
 */
export async function homeserverGet(
  url: string | URL,
  o: GetRequestOptions,
): Promise<HttpReply> {
  return await homeserverRequest("GET", url, o);
}

/** Arms one abort after a delay; re-arming replaces the previous delay. */
class Deadline {
  readonly controller = new AbortController();
  why: string | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;

  arm(ms: number, why: string): void {
    this.disarm();
    this.#timer = setTimeout(() => {
      this.why = why;
      this.controller.abort(new DOMException(why, "TimeoutError"));
    }, ms);
  }

  disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

async function sendOnce(
  u: URL,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: BodyInit | null,
  o: RequestOptions,
): Promise<HttpReply> {
  const firstByteMs = o.http?.firstByteTimeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
  const idleMs = o.http?.idleTimeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
  const d = new Deadline();
  const noAnswer = `no response within ${secs(firstByteMs)}`;
  let answered = false;
  let sent = body;
  if (body instanceof ReadableStream) {
    sent = watchUpload(body as ReadableStream<Uint8Array>, {
      progressed: () => {
        if (!answered) d.arm(idleMs, `the request body was not taken for ${secs(idleMs)}`);
      },
      ended: () => {
        if (!answered) d.arm(firstByteMs, noAnswer);
      },
    });
  }
  d.arm(firstByteMs, noAnswer);
  const signal = o.signal ? AbortSignal.any([o.signal, d.controller.signal]) : d.controller.signal;
  let res: Response;
  try {
    res = await (o.fetch ?? fetch)(u, {
      method,
      headers,
      body: sent,
      signal,
      redirect: "manual",
    });
  } catch (e) {
    d.disarm();
    if (o.signal?.aborted) throw e;
    throw unreachable(method, path, u.origin, d.why !== null ? new Error(d.why) : e);
  } finally {
    answered = true;
  }
  d.disarm();
  if (res.status >= 300 && res.status < 400 && res.status !== 304) {
    await res.body?.cancel().catch(() => {});
    throw new HomeserverError(
      "homeserver",
      `homeserver: ${method} ${path}: the server answered a redirect (HTTP ${res.status}), ` +
        "which is never followed",
      { status: res.status, method, path },
    );
  }
  const watched = res.body
    ? watchBody(res.body, idleMs, () => {
      d.controller.abort(new DOMException("stalled", "TimeoutError"));
      return unreachable(
        method,
        path,
        u.origin,
        new Error(`the response stalled: under ${IDLE_MIN_BYTES / 1024} KiB in ${secs(idleMs)}`),
      );
    })
    : null;
  return { status: res.status, ok: res.ok, headers: res.headers, body: watched };
}

/** `src`, telling when at least {@link IDLE_MIN_BYTES} more were taken, and when it ended. */
function watchUpload(
  src: ReadableStream<Uint8Array>,
  on: { progressed: () => void; ended: () => void },
): ReadableStream<Uint8Array> {
  const reader = src.getReader();
  let since = 0;
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      const r = await reader.read();
      if (r.done) {
        ctrl.close();
        on.ended();
        return;
      }
      since += r.value.length;
      if (since >= IDLE_MIN_BYTES) {
        since = 0;
        on.progressed();
      }
      ctrl.enqueue(r.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/**
 * `body`, failing with `stalled()` when, counting only the time spent waiting for it, fewer
 * than {@link IDLE_MIN_BYTES} arrive within `idleMs`.
 */
function watchBody(
  body: ReadableStream<Uint8Array>,
  idleMs: number,
  stalled: () => Error,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let waited = 0, got = 0;
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      const start = performance.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stall = new Promise<null>((r) => {
        timer = setTimeout(() => r(null), Math.max(0, idleMs - waited));
      });
      let r: ReadableStreamReadResult<Uint8Array> | null;
      try {
        r = await Promise.race([reader.read(), stall]);
      } finally {
        clearTimeout(timer);
      }
      if (r === null) {
        const e = stalled();
        await reader.cancel(e).catch(() => {});
        throw e;
      }
      if (r.done) {
        ctrl.close();
        return;
      }
      waited += performance.now() - start;
      got += r.value.length;
      if (got >= IDLE_MIN_BYTES) got = waited = 0;
      ctrl.enqueue(r.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
