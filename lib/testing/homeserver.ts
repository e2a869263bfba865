/**
 * A stand-in Pubky homeserver for tests and the local testnet. The Rust homeserver cannot be
 * built here (its crates cannot be fetched), so this follows its published cookie API (v0.6,
 * `pubky-homeserver/src/client_server/`) as closely as tests can tell, on `node:http` bound to
 * 127.0.0.1 (`node_http_serve.ts` says why not `Deno.serve`):
 *
 * - `POST /signup[?signup_token=]`, `POST /session`: AuthToken verification (layout, signature
 *   over bytes 65.., ±window, replay guard); signup modes `open` and `token_required` (tokens
 *   minted by {@link HomeserverStandIn.mintSignupToken}, single use); a cookie named by the
 *   user's z32; the postcard `SessionInfo` body.
 * - Tenancy: a bare-z32 `Host`, then `pubky-host` (overrides), then `?pubky-host=`; values with
 *   the `pubky` display prefix are ignored; no tenant → 404 "Pubky Host is missing".
 * - Authorization: `/pub/` reads are public; writes need a session of the tenant whose
 *   capabilities grant `w` on the path (else 401 / 403); paths outside `/pub/` are 403.
 * - `PUT` streams to disk (constant memory, BLAKE3 on the fly, temp file + rename), 100 MiB body
 *   limit (413), per-user quota (507: up front from `Content-Length`, and while streaming; each
 *   file costs 256 bytes of metadata).
 * - `GET`/`HEAD` with `ETag` = quoted base64 BLAKE3, `If-None-Match` / `If-Modified-Since` →
 *   304; `DELETE` 204/404; listings (`limit`, `cursor`, `reverse`, `shallow`) as the reference.
 * - Its own PKARR packet (HTTPS priority 1 `.` with port/ipv4hint, HTTPS priority 10 `localhost`
 *   with SvcParam 65280 = HTTP port, A 127.0.0.1), published through a Transport.
 *
 * - `GET /events-stream` (Server-Sent Events) as `events_stream.ts` describes.
 *
 * Not modelled: Pubky TLS, `/events/`, `/priv/`, admin API, rate limits, grant auth.
 *
 * @module
 */

import { createBLAKE3 } from "hash-wasm";
import { generateKeypair, keypairFromSeed } from "../crypto/keys.ts";
import { ReplayGuard, verifyAuthToken, WINDOW_V06_US } from "../homeserver/auth_token.ts";
import { allows, type Capability, formatCapability } from "../homeserver/capabilities.ts";
import { HTTP_PORT_PARAM, isZ32Key, PORT_PARAM } from "../homeserver/discovery.ts";
import type { DnsRecord } from "../pkarr/dns.ts";
import { encodeZ32 } from "../pkarr/public_key.ts";
import { signPacket } from "../pkarr/signed_packet.ts";
import { Transport } from "../pkarr/transport.ts";
import { b64encode, concat, toHex, utf8 } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { serveNodeHttp } from "./node_http_serve.ts";
import { fileChunks } from "../util/file_stream.ts";
import { EventLog } from "./events_stream.ts";

/** Options of {@link startHomeserver}. */
export interface HomeserverStandInOptions {
  /** `open` or `token_required` (the reference's default) */
  signupMode?: "open" | "token_required";
  /** per-user quota in bytes (content + 256 per file); undefined = unlimited */
  quotaBytes?: number;
  /** request body limit (default 100 MiB, as the reference) */
  bodyLimitBytes?: number;
  /** AuthToken window in µs (default ±45 s, as v0.6) */
  windowUs?: number;
  /** HTTP port on 127.0.0.1 (default random) */
  port?: number;
  /** the homeserver's seed (default random) */
  seed?: Uint8Array;
  /** where files go (default a temporary folder removed by close) */
  dir?: string;
  /** publish the homeserver's packet here (testnet); without it nothing is published */
  transport?: Transport;
}

/** Requests seen, by method. */
export type RequestCounts = Record<"GET" | "HEAD" | "PUT" | "DELETE" | "POST" | "OTHER", number>;

/** One request of the log. */
export interface RequestLogEntry {
  /** The HTTP method. */
  method: string;
  /** The URL path, still percent-encoded, without the query. */
  path: string;
  /** The status answered. */
  status: number;
  /**
   * The z32 key of the user addressed (the Pubky host); null when the request named none, for
   * sign-up and sign-in, and for a GET answered 429 by {@link HomeserverStandIn.rateLimitGets}.
   */
  tenant: string | null;
}

/** A running stand-in. */
export interface HomeserverStandIn {
  /** the homeserver's z32 key */
  key: string;
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  /** the HTTP port on 127.0.0.1 */
  port: number;
  /** how sign-ups are admitted (see {@link HomeserverStandInOptions.signupMode}) */
  signupMode: "open" | "token_required";
  /** requests by method since start (or the last {@link resetCounts}) */
  readonly counts: RequestCounts;
  /** the last 10000 requests */
  readonly log: RequestLogEntry[];
  /** set every count of {@link counts} back to 0 */
  resetCounts(): void;
  /** answer the next `n` GETs under `/pub/` with 429 and `Retry-After: retryAfter` (tests) */
  rateLimitGets(n: number, retryAfter: string): void;
  /** hold every PUT of a `part-NNNNN` file until called again with false (tests of uploads) */
  holdPartPuts(hold: boolean): void;
  /** a new single-use signup token `XXXX-XXXX-XXXX` */
  mintSignupToken(): string;
  /** bytes charged to a user (content + 256 per file) */
  usedBytes(user: string): number;
  /** disable a user: sign-in still works, writes get 403 */
  disableUser(user: string): void;
  /** the capabilities of every live session of `user` (tests check what clients asked for) */
  sessionCapabilities(user: string): string[];
  /** the signed packet was published (when a transport was given) */
  published: boolean;
  /** stop serving; removes the temporary folder */
  close(): Promise<void>;
}

const METADATA_BYTES = 256;
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

function crockford(bytes: Uint8Array): string {
  let bits = 0, value = 0, out = "";
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += CROCKFORD[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += CROCKFORD[(value << (5 - bits)) & 31];
  return out;
}

function varint(n: number | bigint): Uint8Array {
  let v = BigInt(n);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return new Uint8Array(out);
}

function pstr(s: string): Uint8Array {
  const b = utf8(s);
  return concat(varint(b.length), b);
}

/** postcard `SessionInfo { version, public_key, created_at, name, user_agent, capabilities }`. */
function sessionInfo(publicKey: Uint8Array, caps: Capability[], createdUs: number): Uint8Array {
  return concat(
    varint(0),
    publicKey,
    varint(createdUs),
    pstr(""),
    pstr(""),
    varint(caps.length),
    ...caps.map((c) => pstr(formatCapability(c))),
  );
}

interface User {
  publicKey: Uint8Array;
  disabled: boolean;
  used: number;
  /** bytes (with metadata) of PUTs still being written: counted against the quota too */
  inFlight: number;
}
interface Session {
  user: string;
  caps: Capability[];
}
interface Entry {
  file: string;
  size: number;
  etag: string;
  modified: Date;
  contentType: string;
}

function isPubkyPrefixed(s: string): boolean {
  return s.startsWith("pubky") && s.length === 57;
}

/** The tenant as the reference extracts it (Host, then pubky-host, then ?pubky-host=). */
function tenantOf(req: Request, url: URL): string | null {
  let found: string | null = null;
  for (const h of ["host", "pubky-host"]) {
    const v = req.headers.get(h);
    if (v === null || isPubkyPrefixed(v)) continue;
    if (isZ32Key(v)) found = v;
  }
  if (found === null) {
    for (const pair of url.search.slice(1).split("&")) {
      const i = pair.indexOf("=");
      if (i < 0 || pair.slice(0, i) !== "pubky-host") continue;
      const v = decodeURIComponent(pair.slice(i + 1));
      if (isPubkyPrefixed(v)) break;
      if (isZ32Key(v)) found = v;
      break;
    }
  }
  return found;
}

function cookieValue(req: Request, name: string): string | null {
  for (const part of (req.headers.get("cookie") ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return null;
}

/** WebDavPath rules: absolute, no `..`/`.`, no `//`, no NUL, segment ≤ 255, total ≤ 4096. */
function validPath(p: string): boolean {
  if (!p.startsWith("/") || p.includes("\0") || p.includes("//")) return false;
  if (utf8(p).length > 4096) return false;
  return p.split("/").slice(1).every((s) => s !== "." && s !== ".." && utf8(s).length <= 255);
}

function parseBool(v: string | null): boolean | "bad" {
  if (v === null) return false;
  const l = v.toLowerCase();
  if (["true", "yes", "1", ""].includes(l)) return true;
  if (["false", "no", "0"].includes(l)) return false;
  return "bad";
}

function contentTypeOf(path: string, head: Uint8Array): string {
  if (head.length >= 4 && head[0] === 0x89 && head[1] === 0x50) return "image/png";
  if (head.length >= 5 && new TextDecoder().decode(head.subarray(0, 5)) === "%PDF-") {
    return "application/pdf";
  }
  if (path.endsWith(".json")) return "application/json";
  if (path.endsWith(".txt")) return "text/plain";
  return "application/octet-stream";
}

/**
 * Start a stand-in homeserver on 127.0.0.1; with `o.transport`, publish its packet there first.
 * Call {@link HomeserverStandIn.close} on every path.
 *
 * @param o Signup mode, quota, limits, port, seed, folder and transport; all optional.
 * @returns The running stand-in.
 * @throws {CipherpostError} `network` when a transport was given and no DHT node or relay
 *   stored the packet (the stand-in is closed first). A port in use rejects with the socket's
 *   error.
 */
export async function startHomeserver(
  o: HomeserverStandInOptions = {},
): Promise<HomeserverStandIn> {
  const seed = o.seed ?? generateKeypair().seed;
  const key = encodeZ32(keypairFromSeed(seed).publicKey);
  const signupMode = o.signupMode ?? "token_required";
  const bodyLimit = o.bodyLimitBytes ?? 100 * 1024 * 1024;
  const windowUs = o.windowUs ?? WINDOW_V06_US;
  const ownDir = o.dir === undefined;
  const dir = o.dir ?? await Deno.makeTempDir({ prefix: "cp-homeserver-" });
  await Deno.mkdir(`${dir}/files`, { recursive: true });
  await Deno.mkdir(`${dir}/tmp`, { recursive: true });
  const guard = new ReplayGuard(windowUs);
  const users = new Map<string, User>();
  const sessions = new Map<string, Session>();
  const tokens = new Map<string, string | null>(); // token → user who used it
  const entries = new Map<string, Map<string, Entry>>(); // user → path → entry
  const counts: RequestCounts = { GET: 0, HEAD: 0, PUT: 0, DELETE: 0, POST: 0, OTHER: 0 };
  const log: RequestLogEntry[] = [];
  const events = new EventLog(); // GET /events-stream (lib/testing/events_stream.ts)
  const blake3 = await createBLAKE3();
  void blake3; // one instance proves the wasm loads; each PUT makes its own hasher

  const text = (status: number, body: string, headers: Record<string, string> = {}) =>
    new Response(body, { status, headers: { "content-type": "text/plain", ...headers } });

  function entryHeaders(e: Entry): Record<string, string> {
    return {
      "content-length": String(e.size),
      "last-modified": e.modified.toUTCString(),
      "content-type": e.contentType,
      etag: e.etag,
      vary: "pubky-host",
      "cache-control": "private, must-revalidate",
    };
  }

  function sessionCookie(user: string, secret: string): string {
    return `${user}=${secret}; HttpOnly; Path=/; Max-Age=31536000; Expires=${
      new Date(Date.now() + 31536000_000).toUTCString()
    }`;
  }

  async function createSession(user: string, caps: Capability[]): Promise<Response> {
    const secret = crockford(crypto.getRandomValues(new Uint8Array(16)));
    sessions.set(secret, { user, caps });
    const u = users.get(user)!;
    const body = sessionInfo(u.publicKey, caps, Date.now() * 1000);
    return await Promise.resolve(
      new Response(body as Uint8Array<ArrayBuffer>, {
        status: 200,
        headers: {
          "content-type": "application/octet-stream",
          "set-cookie": sessionCookie(user, secret),
        },
      }),
    );
  }

  async function readToken(req: Request): Promise<Uint8Array | Response> {
    const body = new Uint8Array(await req.arrayBuffer());
    if (body.length > 64 * 1024) return text(413, "Payload Too Large");
    try {
      const t = verifyAuthToken(body, { windowUs });
      guard.check(t);
      return body;
    } catch (e) {
      return text(400, e instanceof CipherpostError ? e.message : "Invalid token");
    }
  }

  async function signup(req: Request, url: URL): Promise<Response> {
    const body = await readToken(req);
    if (body instanceof Response) return body;
    const t = verifyTokenUnchecked(body);
    const user = encodeZ32(t.publicKey);
    if (users.has(user)) return text(409, "User already exists");
    if (signupMode === "token_required") {
      const st = url.searchParams.get("signup_token");
      if (st === null) return text(400, "Token required");
      if (st.length !== 14 || !/^[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}$/.test(st)) {
        return text(400, "Invalid signup token format: Invalid signup code id");
      }
      if (!tokens.has(st)) return text(401, "Invalid token");
      if (tokens.get(st) !== null) return text(401, "Token already used");
      tokens.set(st, user);
    }
    users.set(user, { publicKey: t.publicKey, disabled: false, used: 0, inFlight: 0 });
    return await createSession(user, t.capabilities);
  }

  async function signin(req: Request): Promise<Response> {
    const body = await readToken(req);
    if (body instanceof Response) return body;
    const t = verifyTokenUnchecked(body);
    const user = encodeZ32(t.publicKey);
    if (!users.has(user)) return text(404, "Not Found");
    return await createSession(user, t.capabilities);
  }

  /** The authz layer: null when allowed, else the error response. */
  function authorize(req: Request, tenant: string, path: string): Response | null {
    if (path === "/session") return null;
    if (path.startsWith("/pub/")) {
      if (req.method === "GET" || req.method === "HEAD") return null;
    } else {
      return text(403, "Writing to directories other than '/pub/' is forbidden");
    }
    const secret = cookieValue(req, tenant);
    if (secret === null) return text(401, "No session secret found in cookies");
    const s = sessions.get(secret);
    if (!s) return text(401, "No session found for session secret");
    if (s.user !== tenant) return text(401, "SessionInfo public key does not match pubky-host");
    if (!allows(s.caps, path, "write")) {
      return text(403, "Session does not have write access to path");
    }
    return null;
  }

  async function drain(body: ReadableStream<Uint8Array> | null, max = 512 * 1024 * 1024) {
    if (!body) return;
    const r = body.getReader();
    let n = 0;
    try {
      while (n < max) {
        const { value, done } = await r.read();
        if (done) return;
        n += value.length;
      }
      await r.cancel();
    } catch { /* client went away */ }
  }

  /**
   * PUT, with the bytes being written counted in the user's `inFlight` until it ends, so
   * concurrent PUTs cannot each take the same free space of the quota.
   */
  async function put(req: Request, tenant: string, path: string): Promise<Response> {
    const reserved = { bytes: 0 };
    try {
      return await putCounted(req, tenant, path, reserved);
    } finally {
      const u = users.get(tenant);
      if (u) u.inFlight -= reserved.bytes;
    }
  }

  async function putCounted(
    req: Request,
    tenant: string,
    path: string,
    reserved: { bytes: number },
  ): Promise<Response> {
    const u = users.get(tenant);
    if (!u) {
      await drain(req.body);
      return text(404, "Not Found");
    }
    if (u.disabled) {
      await drain(req.body);
      return text(403, "User is disabled");
    }
    if (path.endsWith("/")) {
      await drain(req.body);
      return text(400, "Invalid path");
    }
    const mine = entries.get(tenant) ?? new Map<string, Entry>();
    const existing = mine.get(path);
    const existingCost = existing ? existing.size + METADATA_BYTES : 0;
    const quotaExceeded = () =>
      text(
        507,
        `Disk space quota of ${
          ((o.quotaBytes ?? 0) / 1024 / 1024).toFixed(1)
        } MB exceeded. Write operation failed.`,
      );
    const declared = req.headers.get("content-length");
    if (declared !== null && /^\d+$/.test(declared)) {
      const n = Number(declared);
      if (n > bodyLimit) {
        await drain(req.body);
        return text(413, "length limit exceeded");
      }
      if (
        o.quotaBytes !== undefined &&
        u.used + u.inFlight + n + METADATA_BYTES - existingCost > o.quotaBytes
      ) {
        await drain(req.body);
        return quotaExceeded();
      }
    }
    const reserve = (bytes: number) => {
      if (bytes <= reserved.bytes) return;
      u.inFlight += bytes - reserved.bytes;
      reserved.bytes = bytes;
    };
    if (declared !== null && /^\d+$/.test(declared)) reserve(Number(declared) + METADATA_BYTES);
    const tmp = `${dir}/tmp/${toHex(crypto.getRandomValues(new Uint8Array(12)))}`;
    const f = await Deno.open(tmp, { write: true, createNew: true });
    const hasher = await createBLAKE3();
    hasher.init();
    let size = 0;
    let head: Uint8Array = new Uint8Array();
    let failure: Response | null = null;
    // Writes go out in 1 MiB batches: constant memory, few file operations.
    const buf = new Uint8Array(1 << 20);
    let fill = 0;
    // writeSync: a 1 MiB page-cache write is sub-millisecond, and Deno's async write of the
    // same costs about 3× the CPU (measured: taking 256 MiB of PUTs, 3.1 → 1.8 CPU s, of which
    // 1.1 s is reading the bodies)
    // deno-lint-ignore require-await
    const writeAll = async (b: Uint8Array) => {
      let off = 0;
      while (off < b.length) off += f.writeSync(b.subarray(off));
    };
    // the BLAKE3 ETag is computed over the same 1 MiB batches (one WebAssembly call each)
    const flush = async () => {
      hasher.update(buf.subarray(0, fill));
      await writeAll(buf.subarray(0, fill));
      fill = 0;
    };
    try {
      const reader = req.body?.getReader();
      while (reader) {
        const { value, done } = await reader.read();
        if (done) break;
        size += value.length;
        reserve(size + METADATA_BYTES);
        if (size > bodyLimit) {
          failure = text(413, "length limit exceeded");
        } else if (
          o.quotaBytes !== undefined &&
          u.used + u.inFlight - existingCost > o.quotaBytes
        ) {
          failure = quotaExceeded();
        }
        if (failure) {
          // what this PUT reserved is free again at once, not after its body is drained
          u.inFlight -= reserved.bytes;
          reserved.bytes = 0;
          reader.releaseLock();
          await drain(req.body);
          break;
        }
        if (head.length < 16) head = concat(head, value.subarray(0, 16 - head.length));
        if (fill + value.length > buf.length) await flush();
        if (value.length >= buf.length) {
          hasher.update(value);
          await writeAll(value);
        } else {
          buf.set(value, fill);
          fill += value.length;
        }
      }
      if (!failure) await flush();
    } catch {
      failure = text(400, "body stream error");
    } finally {
      f.close();
    }
    if (failure) {
      await Deno.remove(tmp).catch(() => {});
      return failure;
    }
    const file = `${dir}/files/${toHex(sha256(utf8(`${tenant}${path}`)))}`;
    await Deno.rename(tmp, file);
    // the map as it is now: concurrent first PUTs of a tenant must not drop each other's entries
    const current = entries.get(tenant) ?? mine;
    current.set(path, {
      file,
      size,
      etag: `"${b64encode(hasher.digest("binary"))}"`,
      modified: new Date(),
      contentType: contentTypeOf(path, head),
    });
    entries.set(tenant, current);
    events.put(tenant, path, current.get(path)!.etag);
    u.used += size + METADATA_BYTES - existingCost;
    return new Response(null, { status: 201 });
  }

  function notModified(e: Entry): Response {
    const h = entryHeaders(e);
    return new Response(null, {
      status: 304,
      headers: {
        etag: h.etag,
        "last-modified": h["last-modified"],
        vary: h.vary,
        "cache-control": h["cache-control"],
      },
    });
  }

  async function get(req: Request, url: URL, tenant: string, path: string): Promise<Response> {
    if (path.endsWith("/")) return list(url, tenant, path);
    const e = entries.get(tenant)?.get(path);
    if (!e) return text(404, "Not Found");
    const inm = req.headers.get("if-none-match");
    if (inm !== null) {
      if (inm.trim().split(",").map((s) => s.trim()).some((t) => t === e.etag)) {
        return notModified(e);
      }
    } else {
      const ims = Date.parse(req.headers.get("if-modified-since") ?? "");
      if (!Number.isNaN(ims) && ims >= Math.floor(e.modified.getTime() / 1000) * 1000) {
        return notModified(e);
      }
    }
    if (req.method === "HEAD") return new Response(null, { status: 200, headers: entryHeaders(e) });
    const file = await Deno.open(e.file, { read: true });
    // 1 MiB reads: 16× fewer calls than `FsFile.readable` for the same bytes
    return new Response(fileChunks(file, 1 << 20), { status: 200, headers: entryHeaders(e) });
  }

  function list(url: URL, tenant: string, dirPath: string): Response {
    const mine = [...(entries.get(tenant)?.keys() ?? [])].filter((p) => p.startsWith(dirPath));
    if (mine.length === 0) return text(404, "Directory Not Found");
    const reverse = parseBool(url.searchParams.get("reverse"));
    const shallow = parseBool(url.searchParams.get("shallow"));
    if (reverse === "bad" || shallow === "bad") return text(400, "Invalid boolean parameter");
    let cursor: string | null = url.searchParams.get("cursor");
    if (cursor === "") cursor = null;
    let cursorPath: string | null = null;
    if (cursor !== null) {
      const c = cursor.startsWith("pubky://") ? cursor.slice(8) : cursor;
      const i = c.indexOf("/");
      if (i < 0 || !isZ32Key(c.slice(0, i)) || !validPath(c.slice(i))) {
        return text(400, "Invalid cursor");
      }
      cursorPath = c.slice(i);
    }
    const rawLimit = url.searchParams.get("limit");
    let limit = 100;
    if (
      rawLimit !== null && rawLimit !== "" && /^\d+$/.test(rawLimit) && Number(rawLimit) < 65536
    ) {
      limit = Number(rawLimit);
    }
    limit = Math.min(limit, 1000);
    let paths = shallow
      ? [
        ...new Set(mine.map((p) => {
          const rest = p.slice(dirPath.length);
          const i = rest.indexOf("/");
          return i < 0 ? p : dirPath + rest.slice(0, i + 1);
        })),
      ]
      : mine;
    const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    paths.sort(reverse ? (a, b) => cmp(b, a) : cmp);
    if (cursorPath !== null) {
      const cp = cursorPath;
      paths = paths.filter((p) => (reverse ? p < cp : p > cp));
    }
    const body = paths.slice(0, limit).map((p) => `pubky://${tenant}${p}`).join("\n");
    return text(200, body);
  }

  async function remove(tenant: string, path: string): Promise<Response> {
    const u = users.get(tenant);
    if (!u) return text(404, "Not Found");
    const mine = entries.get(tenant);
    const e = mine?.get(path);
    if (!e || !mine) return text(404, "Not Found");
    mine.delete(path);
    events.del(tenant, path);
    u.used -= e.size + METADATA_BYTES;
    await Deno.remove(e.file).catch(() => {});
    return new Response(null, { status: 204 });
  }

  function sessionRoute(req: Request, tenant: string): Response {
    if (!users.has(tenant)) return text(404, "Not Found");
    const secret = cookieValue(req, tenant);
    const s = secret === null ? undefined : sessions.get(secret);
    if (req.method === "DELETE") {
      if (secret !== null && s) sessions.delete(secret);
      return new Response(null, {
        status: 200,
        headers: {
          "set-cookie": `${tenant}=; HttpOnly; Path=/; Max-Age=0; Expires=${
            new Date(0).toUTCString()
          }`,
        },
      });
    }
    if (req.method !== "GET") return text(405, "Method Not Allowed");
    if (!s || s.user !== tenant) return text(404, "Not Found");
    const u = users.get(tenant)!;
    return new Response(
      sessionInfo(u.publicKey, s.caps, Date.now() * 1000) as Uint8Array<ArrayBuffer>,
      {
        status: 200,
        headers: {
          "content-type": "application/octet-stream",
          vary: "cookie, pubky-host",
          "cache-control": "private, must-revalidate",
        },
      },
    );
  }

  async function route(req: Request): Promise<{ res: Response; tenant: string | null }> {
    const url = new URL(req.url);
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      return { res: text(400, "Invalid path"), tenant: null };
    }
    if (path === "/" && req.method === "GET") {
      return { res: text(200, `cipherpost stand-in homeserver ${key}\n`), tenant: null };
    }
    if (path === "/signup" && req.method === "POST") {
      return { res: await signup(req, url), tenant: null };
    }
    if (path === "/session" && req.method === "POST") {
      return { res: await signin(req), tenant: null };
    }
    if (path === "/events-stream" && req.method === "GET") {
      return { res: events.stream(url, (u) => users.has(u)), tenant: null };
    }
    if (path.startsWith("/signup_tokens/") && req.method === "GET") {
      if (signupMode !== "token_required") return { res: text(400, "Not required"), tenant: null };
      const t = path.slice("/signup_tokens/".length);
      if (!tokens.has(t)) return { res: text(404, "Not Found"), tenant: null };
      return {
        res: new Response(
          JSON.stringify({ status: tokens.get(t) === null ? "valid" : "used", created_at: 0 }),
          { headers: { "content-type": "application/json" } },
        ),
        tenant: null,
      };
    }
    const tenant = tenantOf(req, url);
    const declared = Number(req.headers.get("content-length") ?? "0");
    if (declared > bodyLimit) {
      await drain(req.body);
      return { res: text(413, "length limit exceeded"), tenant };
    }
    if (tenant === null) {
      await drain(req.body);
      return { res: text(404, "Pubky Host is missing"), tenant };
    }
    const denied = authorize(req, tenant, path);
    if (denied) {
      await drain(req.body);
      return { res: denied, tenant };
    }
    if (path === "/session") return { res: sessionRoute(req, tenant), tenant };
    if (!validPath(path) || !path.startsWith("/pub/")) {
      await drain(req.body);
      return { res: text(400, "Invalid path"), tenant };
    }
    switch (req.method) {
      case "GET":
      case "HEAD": {
        if (!users.has(tenant)) return { res: text(404, "Not Found"), tenant };
        return { res: await get(req, url, tenant, path), tenant };
      }
      case "PUT":
        return { res: await put(req, tenant, path), tenant };
      case "DELETE":
        return { res: await remove(tenant, path), tenant };
      default:
        return { res: text(405, "Method Not Allowed"), tenant };
    }
  }

  let limited = { n: 0, retryAfter: "0" };
  let held: { released: Promise<void>; release: () => void } | null = null;
  const server = await serveNodeHttp("127.0.0.1", o.port ?? 0, async (req) => {
    const m = req.method as keyof RequestCounts;
    counts[m in counts ? m : "OTHER"]++;
    if (held && req.method === "PUT" && /\/part-\d{5}$/.test(new URL(req.url).pathname)) {
      await held.released;
    }
    const throttled = limited.n > 0 && req.method === "GET" &&
      new URL(req.url).pathname.startsWith("/pub/");
    if (throttled) limited.n--;
    const { res, tenant } = throttled
      ? {
        res: text(429, "Too Many Requests", { "retry-after": limited.retryAfter }),
        tenant: null,
      }
      : await route(req);
    log.push({ method: req.method, path: new URL(req.url).pathname, status: res.status, tenant });
    if (log.length > 10000) log.shift();
    return res;
  });
  const port = server.port;
  const standIn: HomeserverStandIn = {
    key,
    baseUrl: `http://127.0.0.1:${port}`,
    port,
    signupMode,
    counts,
    log,
    published: false,
    rateLimitGets(n, retryAfter) {
      limited = { n, retryAfter };
    },
    holdPartPuts(hold) {
      if (hold && !held) {
        let release = () => {};
        const released = new Promise<void>((r) => (release = r));
        held = { released, release };
      } else if (!hold && held) {
        held.release();
        held = null;
      }
    },
    resetCounts() {
      for (const k of Object.keys(counts) as (keyof RequestCounts)[]) counts[k] = 0;
    },
    mintSignupToken() {
      const raw = crockford(crypto.getRandomValues(new Uint8Array(7))).slice(0, 12);
      const t = `${raw.slice(0, 4)}-${raw.slice(4, 8)}-${raw.slice(8, 12)}`;
      tokens.set(t, null);
      return t;
    },
    usedBytes: (user) => users.get(user)?.used ?? 0,
    disableUser(user) {
      const u = users.get(user);
      if (u) u.disabled = true;
    },
    sessionCapabilities: (user) =>
      [...sessions.values()].filter((s) => s.user === user).map((s) =>
        s.caps.map(formatCapability).join(",")
      ),
    async close() {
      events.close();
      await server.shutdown();
      if (ownDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  if (o.transport) {
    try {
      await o.transport.publish(signPacket(seed, homeserverRecords(port), Date.now() * 1000));
      standIn.published = true;
    } catch (e) {
      await standIn.close();
      throw e;
    }
  }
  return standIn;
}

/** Decode a token already verified by {@link verifyAuthToken} (no second replay check). */
function verifyTokenUnchecked(body: Uint8Array) {
  return verifyAuthToken(body, { windowUs: Number.MAX_SAFE_INTEGER });
}

/** The records a homeserver on 127.0.0.1:`port` publishes (as the reference's key republisher). */
export function homeserverRecords(port: number): DnsRecord[] {
  const u16 = (n: number) => new Uint8Array([n >> 8, n & 0xff]);
  return [
    {
      name: ".",
      ttl: 3600,
      data: {
        type: "HTTPS",
        priority: 1,
        target: ".",
        params: [[PORT_PARAM, u16(port)], [4, new Uint8Array([127, 0, 0, 1])]],
      },
    },
    {
      name: ".",
      ttl: 3600,
      data: {
        type: "HTTPS",
        priority: 10,
        target: "localhost",
        params: [[HTTP_PORT_PARAM, u16(port)]],
      },
    },
    { name: ".", ttl: 3600, data: { type: "A", address: "127.0.0.1" } },
  ];
}

/**
 * A stand-in whose packet is on a testnet, so clients find it by its key; its `close` also
 * closes the transport it published with.
 *
 * @param net Where the testnet is (a `startTestnet` result will do).
 * @param o As {@link startHomeserver}'s, without the transport.
 * @returns The running stand-in, `published` true.
 * @throws {CipherpostError} `network` when no testnet node or relay stored its packet.
 */
export async function startHomeserverOnTestnet(
  net: { bootstrap: string[]; relayUrl: string },
  o: Omit<HomeserverStandInOptions, "transport"> = {},
): Promise<HomeserverStandIn> {
  const transport = new Transport({
    bootstrap: net.bootstrap,
    relays: [net.relayUrl],
    useDht: true,
    useRelays: true,
    timeoutMs: 1000,
  });
  let hs: HomeserverStandIn;
  try {
    hs = await startHomeserver({ ...o, transport });
  } catch (e) {
    await transport.close();
    throw e;
  }
  const close = hs.close;
  hs.close = async () => {
    await close();
    await transport.close();
  };
  return hs;
}
