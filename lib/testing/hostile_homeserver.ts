/**
 * A hostile homeserver for tests of the homeserver client: a real HTTP server on 127.0.0.1 that
 * misbehaves in one chosen way ({@link HostileMode}) and, for every request its mode does not
 * take, forwards to an honest homeserver (`upstream`, e.g. a {@link startHomeserver} stand-in)
 * or answers 404 without one. So a test can upload a real share to the stand-in, then point a
 * receiver at this server and watch it cope with:
 *
 * - `hang`: the request is read, no answer ever comes (the connection stays open);
 * - `drip`: the status line and headers at once, then the body one byte per interval (1 s);
 * - `redirect`: `302 Found` (or another 3xx) to any URL;
 * - `cursor-loop`: a listing (`GET …/`) whose page is the same whatever the cursor;
 * - `lying-status`: a blob's `status` file says `uploading` forever (and, if asked, every part is
 *   missing);
 * - `swapped-bytes`: a part GET answered with another part's bytes;
 * - `huge-body`: a body of any size (1 GiB by default), streamed from one small block.
 *
 * The mode can be changed while the server runs ({@link HostileHomeserver.mode}). With `seed` and
 * `transport` the server publishes a homeserver packet naming itself (as the stand-in does), so a
 * pointer naming that key leads a receiver here; giving it the stand-in's seed takes its place.
 *
 * @module
 */

import { keypairFromSeed } from "../crypto/keys.ts";
import { encodeBlobStatus } from "../protocol/large_manifest.ts";
import { encodeZ32 } from "../pkarr/public_key.ts";
import { signPacket } from "../pkarr/signed_packet.ts";
import type { Transport } from "../pkarr/transport.ts";
import { utf8 } from "../util/encoding.ts";
import { homeserverRecords } from "./homeserver.ts";
import { serveNodeHttp } from "./node_http_serve.ts";

/**
 * How the server misbehaves. `paths`, where a mode has it, says which request paths the mode
 * takes (the others are forwarded); each mode's default is given with it.
 */
export type HostileMode =
  /** Read the request, never answer. `paths`: every path. */
  | { kind: "hang"; paths?: RegExp }
  /**
   * Send the status line and headers at once, then the body one byte every `intervalMs` (default
   * 1000). The body is the upstream's answer (its status and headers too; read whole first, so
   * keep it test-sized) when there is an upstream, else `body` (default 1 KiB of `x`) with 200.
   * `paths`: every path.
   */
  | { kind: "drip"; intervalMs?: number; body?: Uint8Array; paths?: RegExp }
  /** Answer `status` (default 302) with `Location: location` and no body. `paths`: every path. */
  | { kind: "redirect"; location: string; status?: 301 | 302 | 303 | 307 | 308; paths?: RegExp }
  /**
   * Answer every listing (a GET of a path ending in `/`) with the same page of `pageSize` (default
   * 100) `pubky://<tenant><dir>entry-NNNNN` lines, whatever its `cursor` and `limit`.
   */
  | { kind: "cursor-loop"; pageSize?: number }
  /**
   * Answer a GET of a blob's `status` file with `{"parts":N,"state":"uploading"}`: N from the
   * upstream's status file when there is one, else `parts` (default 1). With `hideParts`, a GET or
   * HEAD of any `part-NNNNN` is 404 (the sender "is still uploading" it).
   */
  | { kind: "lying-status"; parts?: number; hideParts?: boolean }
  /**
   * Answer a GET or HEAD of `part-<i>` with the upstream's answer for `part-<swap(i)>` (default
   * `i ^ 1`: 0 ↔ 1, 2 ↔ 3, …), its own headers and bytes. Needs an upstream.
   */
  | { kind: "swapped-bytes"; swap?: (index: number) => number }
  /**
   * Answer 200 with `bytes` bytes (default 1 GiB) of `fill` repeated (default `x`), sent with a
   * `Content-Length` unless `chunked`. `paths`: every path.
   */
  | { kind: "huge-body"; bytes?: number; fill?: Uint8Array; chunked?: boolean; paths?: RegExp };

/** Options of {@link startHostileHomeserver}. */
export interface HostileHomeserverOptions {
  /** how it misbehaves (changeable later through {@link HostileHomeserver.mode}) */
  mode: HostileMode;
  /** an honest homeserver's base URL: requests the mode does not take are forwarded there */
  upstream?: string;
  /** HTTP port on 127.0.0.1 (default random) */
  port?: number;
  /** publish a homeserver packet for this seed's key naming this server (needs `transport`) */
  seed?: Uint8Array;
  /** where to publish that packet */
  transport?: Transport;
}

/** One request the server saw. */
export interface HostileRequest {
  /** the HTTP method */
  method: string;
  /** path and query, as sent */
  path: string;
  /** the mode took it (false: forwarded or 404) */
  hostile: boolean;
}

/** A running hostile homeserver. */
export interface HostileHomeserver {
  /** `http://127.0.0.1:<port>` */
  readonly baseUrl: string;
  /** the TCP port on 127.0.0.1 */
  readonly port: number;
  /** the z32 key its packet was published under (with `seed`), else null */
  readonly key: string | null;
  /** how it misbehaves from the next request on */
  mode: HostileMode;
  /** every request, in order of arrival */
  readonly requests: HostileRequest[];
  /** stop serving: closes every connection, hung or dripping ones too */
  close(): Promise<void>;
}

const KiB = 1024;

/** Start a hostile homeserver on 127.0.0.1. */
export async function startHostileHomeserver(
  o: HostileHomeserverOptions,
): Promise<HostileHomeserver> {
  const stoppers = new Set<() => void>();
  const requests: HostileRequest[] = [];
  const server = await serveNodeHttp("127.0.0.1", o.port ?? 0, async (req) => {
    const url = new URL(req.url);
    const answer = hostileAnswer(h.mode, req, url, o.upstream, stoppers);
    requests.push({ method: req.method, path: url.pathname + url.search, hostile: !!answer });
    return await (answer ?? forward(req, url, o.upstream));
  });
  const h: HostileHomeserver = {
    baseUrl: `http://127.0.0.1:${server.port}`,
    port: server.port,
    key: o.seed ? encodeZ32(keypairFromSeed(o.seed).publicKey) : null,
    mode: o.mode,
    requests,
    async close() {
      for (const stop of stoppers) stop();
      stoppers.clear();
      await server.shutdown();
    },
  };
  if (o.seed && o.transport) {
    try {
      await o.transport.publish(
        signPacket(o.seed, homeserverRecords(server.port), Date.now() * 1000),
      );
    } catch (e) {
      await h.close();
      throw e;
    }
  }
  return h;
}

/** Stops what a hostile answer still has running (timers, endless bodies) when the server closes. */
type Stoppers = Set<() => void>;

const PART_RE = /^(.*\/part-)(\d{5})$/;
const STATUS_RE = /^\/pub\/cipherpost\/blobs\/[^/]+\/status$/;

/**
 * The mode's answer to a request it takes (decided at once, so the request log says which it
 * took), or null for one it leaves to the upstream.
 */
function hostileAnswer(
  mode: HostileMode,
  req: Request,
  url: URL,
  upstream: string | undefined,
  stoppers: Stoppers,
): Promise<Response> | null {
  const path = url.pathname;
  const takes = (paths: RegExp | undefined) => paths === undefined || paths.test(path);
  const read = req.method === "GET" || req.method === "HEAD";
  switch (mode.kind) {
    case "hang":
      return takes(mode.paths) ? new Promise<Response>(() => {}) : null;
    case "drip":
      return takes(mode.paths) ? drip(mode, req, url, upstream, stoppers) : null;
    case "redirect": {
      const headers = { location: mode.location };
      return takes(mode.paths)
        ? Promise.resolve(new Response(null, { status: mode.status ?? 302, headers }))
        : null;
    }
    case "cursor-loop":
      return req.method === "GET" && path.endsWith("/")
        ? Promise.resolve(loopingPage(mode, req, url))
        : null;
    case "lying-status":
      if (mode.hideParts && read && PART_RE.test(path)) {
        return Promise.resolve(new Response(null, { status: 404 }));
      }
      return req.method === "GET" && STATUS_RE.test(path)
        ? lyingStatus(mode, req, url, upstream)
        : null;
    case "swapped-bytes":
      return read && PART_RE.test(path) && upstream !== undefined
        ? swappedPart(mode, req, url, upstream)
        : null;
    case "huge-body":
      return takes(mode.paths) ? Promise.resolve(hugeBody(mode, stoppers)) : null;
  }
}

/** `drip`: headers now, then one byte each interval. */
async function drip(
  mode: Extract<HostileMode, { kind: "drip" }>,
  req: Request,
  url: URL,
  upstream: string | undefined,
  stoppers: Stoppers,
): Promise<Response> {
  let status = 200;
  let headers = new Headers({ "content-type": "application/octet-stream" });
  let body = mode.body ?? new Uint8Array(KiB).fill(0x78);
  if (upstream !== undefined) {
    const res = await forward(req, url, upstream);
    status = res.status;
    headers = new Headers(res.headers);
    body = new Uint8Array(await res.arrayBuffer());
  }
  if (req.method === "HEAD") return new Response(null, { status, headers });
  headers.set("content-length", String(body.length));
  const interval = mode.intervalMs ?? 1000;
  let sent = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stop = () => {};
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      stop = () => {
        clearTimeout(timer);
        c.error(new Error("hostile homeserver closed"));
      };
      stoppers.add(stop);
    },
    pull(c) {
      if (sent >= body.length) {
        stoppers.delete(stop);
        c.close();
        return;
      }
      return new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          c.enqueue(body.subarray(sent, ++sent));
          resolve();
        }, sent === 0 ? 0 : interval);
      });
    },
    cancel() {
      clearTimeout(timer);
      stoppers.delete(stop);
    },
  }, { highWaterMark: 0 });
  return new Response(stream, { status, headers });
}

/** `cursor-loop`: the same page whatever the cursor. */
function loopingPage(
  mode: Extract<HostileMode, { kind: "cursor-loop" }>,
  req: Request,
  url: URL,
): Response {
  const tenant = req.headers.get("pubky-host") ?? url.searchParams.get("pubky-host") ?? "";
  const lines: string[] = [];
  for (let i = 0; i < (mode.pageSize ?? 100); i++) {
    lines.push(`pubky://${tenant}${url.pathname}entry-${String(i).padStart(5, "0")}`);
  }
  return new Response(lines.join("\n"), { headers: { "content-type": "text/plain" } });
}

/** `lying-status`: the status file says `uploading`, for as many parts as the real one. */
async function lyingStatus(
  mode: Extract<HostileMode, { kind: "lying-status" }>,
  req: Request,
  url: URL,
  upstream: string | undefined,
): Promise<Response> {
  let parts = mode.parts ?? 1;
  if (upstream !== undefined) {
    const res = await forward(req, url, upstream);
    try {
      const told = JSON.parse(await res.text());
      if (Number.isSafeInteger(told?.parts)) parts = told.parts;
    } catch { /* no status file upstream: `parts` it is */ }
  }
  return new Response(encodeBlobStatus(parts, "uploading") as Uint8Array<ArrayBuffer>, {
    headers: { "content-type": "application/octet-stream" },
  });
}

/** `swapped-bytes`: part i answered with the upstream's part swap(i). */
async function swappedPart(
  mode: Extract<HostileMode, { kind: "swapped-bytes" }>,
  req: Request,
  url: URL,
  upstream: string,
): Promise<Response> {
  const m = PART_RE.exec(url.pathname)!;
  const other = (mode.swap ?? ((i) => i ^ 1))(Number(m[2]));
  const swapped = new URL(url);
  swapped.pathname = `${m[1]}${String(other).padStart(5, "0")}`;
  return await forward(req, swapped, upstream);
}

/** `huge-body`: `bytes` bytes made from one block as they are read. */
function hugeBody(mode: Extract<HostileMode, { kind: "huge-body" }>, stoppers: Stoppers): Response {
  const total = mode.bytes ?? 1024 * 1024 * KiB;
  const fill = mode.fill?.length ? mode.fill : utf8("x");
  const block = new Uint8Array(64 * KiB - (64 * KiB) % fill.length);
  for (let i = 0; i < block.length; i += fill.length) block.set(fill, i);
  let left = total;
  let stop = () => {};
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      stop = () => c.error(new Error("hostile homeserver closed"));
      stoppers.add(stop);
    },
    pull(c) {
      if (left <= 0) {
        stoppers.delete(stop);
        c.close();
        return;
      }
      const n = Math.min(block.length, left);
      left -= n;
      c.enqueue(n === block.length ? block : block.subarray(0, n));
    },
    cancel() {
      stoppers.delete(stop);
    },
  }, { highWaterMark: 0 });
  const headers: Record<string, string> = { "content-type": "application/octet-stream" };
  if (!mode.chunked) headers["content-length"] = String(total);
  return new Response(stream, { status: 200, headers });
}

/** The request sent on to the upstream as it came (no redirect followed), or 404 without one. */
async function forward(req: Request, url: URL, upstream: string | undefined): Promise<Response> {
  if (upstream === undefined) return new Response("Not Found", { status: 404 });
  const headers = new Headers(req.headers);
  headers.delete("host");
  const hasBody = req.method !== "GET" && req.method !== "HEAD" && req.body !== null;
  try {
    return await fetch(`${upstream}${url.pathname}${url.search}`, {
      method: req.method,
      headers,
      body: hasBody ? req.body : undefined,
      redirect: "manual",
      duplex: "half",
    } as RequestInit);
  } catch {
    return new Response("Bad Gateway", { status: 502 });
  }
}
