/**
 * What the homeserver client and session share: the error type carrying the HTTP status, the
 * status → {@link ErrorKind} mapping of docs/PROTOCOL.md §4.4, `Retry-After` parsing, and the
 * one-line escaping of anything the server says.
 *
 * @module
 */

import { displayText } from "../util/encoding.ts";
import { CipherpostError, type ErrorKind, type Remedy } from "../util/errors.ts";

/** A `fetch` function (tests may substitute one; `globalThis.fetch` is never patched). */
export type FetchFn = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** A homeserver response: status, headers and the body (watched by the idle timeout). */
export interface HttpReply {
  status: number;
  ok: boolean;
  headers: Headers;
  /** cancel it when not read to the end */
  body: ReadableStream<Uint8Array> | null;
}

/** A failed homeserver request: `status` 0 when the server could not be reached. */
export class HomeserverError extends CipherpostError {
  readonly status: number;
  readonly method: string;
  readonly path: string;
  /** from `Retry-After` on 429, in ms */
  readonly retryAfterMs?: number;

  constructor(
    kind: ErrorKind,
    message: string,
    info: { status: number; method: string; path: string; retryAfterMs?: number },
    hint?: string | Remedy,
  ) {
    super(kind, message, hint);
    this.status = info.status;
    this.method = info.method;
    this.path = info.path;
    this.retryAfterMs = info.retryAfterMs;
  }
}

/**
 * Server-provided text, safe for one terminal line: control characters gone, bidirectional
 * controls escaped ({@link displayText}), at most 160 characters.
 */
export function serverText(s: string): string {
  const t = displayText(s.trim());
  return t.length > 160 ? `${t.slice(0, 157)}...` : t;
}

/** `Retry-After` (seconds or an HTTP date) in ms, or undefined. */
export function retryAfterMs(v: string | null, nowMs = Date.now()): number | undefined {
  if (v === null) return undefined;
  if (/^\s*\d{1,9}\s*$/.test(v)) return Number(v) * 1000;
  const d = Date.parse(v);
  return Number.isNaN(d) ? undefined : Math.max(0, d - nowMs);
}

const MEANING: Record<number, [ErrorKind, string, string | Remedy | undefined]> = {
  400: ["homeserver", "request rejected", undefined],
  401: [
    "homeserver_auth",
    "not authenticated",
    { step: "homeserver_signup" },
  ],
  403: [
    "homeserver_forbidden",
    "forbidden (outside /pub/cipherpost/, wrong user, or account disabled)",
    undefined,
  ],
  404: ["not_found", "not found", undefined],
  409: ["homeserver", "conflict", undefined],
  413: ["too_large", "request body too large for the homeserver", "parts must stay under 100 MiB"],
  429: ["rate_limited", "rate limited by the homeserver", "wait a minute and retry"],
  507: [
    "homeserver_quota",
    "storage quota exceeded on the homeserver",
    { step: "homeserver_gc" },
  ],
};

/** The error for a non-success response (the body is read, at most 4 KiB, and escaped). */
export async function errorOf(
  res: Pick<HttpReply, "status" | "headers" | "body">,
  method: string,
  path: string,
): Promise<HomeserverError> {
  let text = "";
  try {
    text = new TextDecoder().decode((await readUpTo(res.body, 4096)).bytes);
  } catch { /* no body */ }
  const [kind, meaning, hint] = MEANING[res.status] ??
    ["homeserver", "unexpected response", undefined];
  const detail = serverText(text);
  const retry = res.status === 429 ? retryAfterMs(res.headers.get("Retry-After")) : undefined;
  return new HomeserverError(
    kind,
    `homeserver: ${method} ${path}: ${meaning} (HTTP ${res.status}${detail ? `: ${detail}` : ""})`,
    { status: res.status, method, path, retryAfterMs: retry },
    retry !== undefined && res.status === 429
      ? `the server asks to wait ${Math.ceil(retry / 1000)} s`
      : hint,
  );
}

/** The error for a request that never got a response. */
export function unreachable(
  method: string,
  path: string,
  baseUrl: string,
  e: unknown,
): HomeserverError {
  const why = e instanceof Error ? serverText(e.message) : "connection failed";
  return new HomeserverError(
    "homeserver",
    `homeserver unreachable: ${method} ${path} at ${baseUrl} (${why})`,
    { status: 0, method, path },
  );
}

/**
 * At most `cap` bytes of `body` (grown as they come, not allocated up front); `more` is true
 * when the body had more, which is then cancelled.
 */
export async function readUpTo(
  body: ReadableStream<Uint8Array> | null,
  cap: number,
): Promise<{ bytes: Uint8Array; more: boolean }> {
  if (!body) return { bytes: new Uint8Array(0), more: false };
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  let more = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (n + value.length > cap) {
        chunks.push(value.subarray(0, cap - n));
        n = cap;
        more = true;
        await reader.cancel().catch(() => {});
        break;
      }
      chunks.push(value);
      n += value.length;
    }
  } finally {
    reader.releaseLock();
  }
  const bytes = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  return { bytes, more };
}
