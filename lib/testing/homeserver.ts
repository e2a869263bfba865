/**
 * A stand-in Pubky homeserver for tests and the local testnet. The Rust homeserver cannot be
 * built here (its crates cannot be fetched), so this follows its published cookie API (v0.6,
 * `pubky-homeserver/src/client_server/`) as closely as tests can tell, on `node:http` bound to
 * 127.0.0.1 (`node_http_serve.ts` says why not `Deno.serve`):
 *
 * - `POST /signup[?signup_token=]`, `POST /session`: AuthToken verification (layout, signature
 *   over bytes 65.., ±window, replay guard); signup modes `open` and `token_required` (tokens
 *   minted by {@link HomeserverStandIn.mintSignupToken}, single use); a cookie named by the
 *   user's z32; the postcard `SessionInfo` body. A token body over 64 KiB is refused (413) after
 *   reading at most 64 KiB + 1 bytes of it.
 * - Tenancy: a bare-z32 `Host`, then `pubky-host` (overrides), then `?pubky-host=`; values with
 *   the `pubky` display prefix are ignored; no tenant → 404 "Pubky Host is missing".
 * - Authorization: `/pub/` reads are public; writes need a session of the tenant whose
 *   capabilities grant `w` on the path (else 401 / 403); paths outside `/pub/` are 403.
 * - `PUT` streams to disk (constant memory, BLAKE3 on the fly, temp file + rename), 100 MiB body
 *   limit (413), per-user quota (507: up front from `Content-Length`, and while streaming; each
 *   file costs 256 bytes of metadata). PUTs and DELETEs of one file take turns.
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
import { HTTP_PORT_PARAM, IPV4HINT_PARAM, isZ32Key, PORT_PARAM } from "../homeserver/discovery.ts";
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
  /**
   * The IPv4 address to listen on and publish (default 127.0.0.1): a private test address
   * inside a network namespace, published as the `localhost` record's ipv4hint.
   */
  host?: string;
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
  /** `http://<host>:<port>` (host default 127.0.0.1) */
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
  /** hold every PUT of a streaming blob's `close` record until called again with false */
  holdClosePuts(hold: boolean): void;
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

/** Everything the handlers share: the configuration, the tenants and their files, test hooks. */
interface StandIn {
  key: string;
  signupMode: "open" | "token_required";
  bodyLimit: number;
  quotaBytes: number | undefined;
  windowUs: number;
  /** files under `files/`, PUTs being written under `tmp/` */
  dir: string;
  guard: ReplayGuard;
  /** writes and deletes, for `GET /events-stream` (lib/testing/events_stream.ts) */
  events: EventLog;
  users: Map<string, User>;
  /** session secret → session */
  sessions: Map<string, Session>;
  /** signup token → the user who used it (null: unused) */
  tokens: Map<string, string | null>;
  /** user → path → entry */
  entries: Map<string, Map<string, Entry>>;
  /** `tenant` + path → the end of the last PUT or DELETE of that file (they take turns) */
  turns: Map<string, Promise<void>>;
  counts: RequestCounts;
  log: RequestLogEntry[];
  /** {@link HomeserverStandIn.rateLimitGets} */
  limited: { n: number; retryAfter: string };
  /** {@link HomeserverStandIn.holdPartPuts} */
  held: Gate | null;
  heldClose: Gate | null;
}

/** One request as a handler sees it: the decoded path and, on tenant routes, the tenant. */
interface Call {
  req: Request;
  url: URL;
  path: string;
  tenant: string;
}

type Handler<C = Call> = (s: StandIn, c: C) => Response | Promise<Response>;

/** A request on a route outside any tenant. */
type OpenCall = Omit<Call, "tenant">;

/** The routes outside any tenant (`prefix`: every path under it). */
const OPEN_ROUTES: { method: string; path: string; prefix?: true; handler: Handler<OpenCall> }[] = [
  { method: "GET", path: "/", handler: rootStatus },
  { method: "POST", path: "/signup", handler: signup },
  { method: "POST", path: "/session", handler: signin },
  { method: "GET", path: "/signup_tokens/", prefix: true, handler: signupTokenStatus },
  { method: "GET", path: "/events-stream", handler: eventsStream },
];

/** `GET /events-stream`: Server-Sent Events of writes and deletes (lib/testing/events_stream.ts). */
function eventsStream(s: StandIn, c: OpenCall): Response {
  return s.events.stream(c.url, (u) => s.users.has(u));
}

/** The tenant's `/session`, by method (after the tenant is known to exist). */
const SESSION_ROUTES: Record<string, Handler> = { GET: sessionGet, DELETE: sessionDelete };

/** The tenant's files under `/pub/`, by method (after the authorization and path checks). */
const FILE_ROUTES: Record<string, Handler> = {
  GET: getOrList,
  HEAD: getOrList,
  PUT: put,
  DELETE: remove,
};

/** The largest AuthToken body `POST /signup` and `POST /session` read. */
const TOKEN_LIMIT = 64 * 1024;

/**
 * Start a stand-in homeserver on 127.0.0.1 (or `o.host`); with `o.transport`, publish its packet there first.
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
  const ownDir = o.dir === undefined;
  const dir = o.dir ?? await Deno.makeTempDir({ prefix: "cp-homeserver-" });
  await Deno.mkdir(`${dir}/files`, { recursive: true });
  await Deno.mkdir(`${dir}/tmp`, { recursive: true });
  const windowUs = o.windowUs ?? WINDOW_V06_US;
  const s: StandIn = {
    key: encodeZ32(keypairFromSeed(seed).publicKey),
    signupMode: o.signupMode ?? "token_required",
    bodyLimit: o.bodyLimitBytes ?? 100 * 1024 * 1024,
    quotaBytes: o.quotaBytes,
    windowUs,
    dir,
    guard: new ReplayGuard(windowUs),
    events: new EventLog(),
    users: new Map(),
    sessions: new Map(),
    tokens: new Map(),
    entries: new Map(),
    turns: new Map(),
    counts: { GET: 0, HEAD: 0, PUT: 0, DELETE: 0, POST: 0, OTHER: 0 },
    log: [],
    limited: { n: 0, retryAfter: "0" },
    held: null,
    heldClose: null,
  };
  await createBLAKE3(); // proves the wasm loads; each PUT makes its own hasher
  const host = o.host ?? "127.0.0.1";
  const server = await serveNodeHttp(host, o.port ?? 0, (req) => handle(s, req));
  const standIn = controls(s, host, server.port, async () => {
    s.events.close();
    await server.shutdown();
    if (ownDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  });
  if (o.transport) {
    try {
      await o.transport.publish(
        signPacket(seed, homeserverRecords(server.port, host), Date.now() * 1000),
      );
      standIn.published = true;
    } catch (e) {
      await standIn.close();
      throw e;
    }
  }
  return standIn;
}

/** The handle tests and the testnet hold. */
function controls(
  s: StandIn,
  host: string,
  port: number,
  close: () => Promise<void>,
): HomeserverStandIn {
  return {
    key: s.key,
    baseUrl: `http://${host}:${port}`,
    port,
    signupMode: s.signupMode,
    counts: s.counts,
    log: s.log,
    published: false,
    rateLimitGets(n, retryAfter) {
      s.limited = { n, retryAfter };
    },
    holdPartPuts(hold) {
      s.held = gate(hold, s.held);
    },
    holdClosePuts(hold) {
      s.heldClose = gate(hold, s.heldClose);
    },
    resetCounts() {
      for (const k of Object.keys(s.counts) as (keyof RequestCounts)[]) s.counts[k] = 0;
    },
    mintSignupToken() {
      const raw = crockford(crypto.getRandomValues(new Uint8Array(7))).slice(0, 12);
      const t = `${raw.slice(0, 4)}-${raw.slice(4, 8)}-${raw.slice(8, 12)}`;
      s.tokens.set(t, null);
      return t;
    },
    usedBytes: (user) => s.users.get(user)?.used ?? 0,
    disableUser(user) {
      const u = s.users.get(user);
      if (u) u.disabled = true;
    },
    sessionCapabilities: (user) =>
      [...s.sessions.values()].filter((x) => x.user === user).map((x) =>
        x.caps.map(formatCapability).join(",")
      ),
    close,
  };
}

/** Requests held until a test releases them. */
interface Gate {
  released: Promise<void>;
  release: () => void;
}

/** A closed gate when `hold` (the current one if any), else none (the current one released). */
function gate(hold: boolean, current: Gate | null): Gate | null {
  if (!hold) {
    current?.release();
    return null;
  }
  if (current) return current;
  let release = () => {};
  const released = new Promise<void>((r) => (release = r));
  return { released, release };
}

/** Every request: counted, held or throttled when a test asked for it, routed, logged. */
async function handle(s: StandIn, req: Request): Promise<Response> {
  const m = req.method as keyof RequestCounts;
  s.counts[m in s.counts ? m : "OTHER"]++;
  const pathname = new URL(req.url).pathname;
  if (s.held && req.method === "PUT" && /\/part-\d{5}$/.test(pathname)) await s.held.released;
  if (s.heldClose && req.method === "PUT" && /\/close$/.test(pathname)) {
    await s.heldClose.released;
  }
  const throttled = s.limited.n > 0 && req.method === "GET" && pathname.startsWith("/pub/");
  if (throttled) s.limited.n--;
  const { res, tenant } = throttled
    ? {
      res: text(429, "Too Many Requests", { "retry-after": s.limited.retryAfter }),
      tenant: null,
    }
    : await route(s, req);
  s.log.push({ method: req.method, path: pathname, status: res.status, tenant });
  if (s.log.length > 10000) s.log.shift();
  return res;
}

/** The open routes, then the tenant's: body limit, tenant, authorization, path, method. */
async function route(s: StandIn, req: Request): Promise<{ res: Response; tenant: string | null }> {
  const url = new URL(req.url);
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    return { res: text(400, "Invalid path"), tenant: null };
  }
  const open = OPEN_ROUTES.find((r) =>
    r.method === req.method && (r.prefix ? path.startsWith(r.path) : path === r.path)
  );
  if (open) return { res: await open.handler(s, { req, url, path }), tenant: null };
  const tenant = tenantOf(req, url);
  const refused = await refusal(s, req, tenant, path);
  if (refused || tenant === null) return { res: refused!, tenant }; // a missing tenant is refused
  const call = { req, url, path, tenant };
  if (path === "/session") {
    if (!s.users.has(tenant)) return { res: text(404, "Not Found"), tenant };
    return { res: await (SESSION_ROUTES[req.method] ?? methodNotAllowed)(s, call), tenant };
  }
  if (!validPath(path) || !path.startsWith("/pub/")) {
    await drain(req.body);
    return { res: text(400, "Invalid path"), tenant };
  }
  return { res: await (FILE_ROUTES[req.method] ?? methodNotAllowed)(s, call), tenant };
}

/** A tenant route's refusal (the body drained), or null to go on. */
async function refusal(
  s: StandIn,
  req: Request,
  tenant: string | null,
  path: string,
): Promise<Response | null> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  const res = declared > s.bodyLimit
    ? text(413, "length limit exceeded")
    : tenant === null
    ? text(404, "Pubky Host is missing")
    : authorize(s, req, tenant, path);
  if (res) await drain(req.body);
  return res;
}

/** The authz layer: null when allowed, else the error response. */
function authorize(s: StandIn, req: Request, tenant: string, path: string): Response | null {
  if (path === "/session") return null;
  if (path.startsWith("/pub/")) {
    if (req.method === "GET" || req.method === "HEAD") return null;
  } else {
    return text(403, "Writing to directories other than '/pub/' is forbidden");
  }
  const secret = cookieValue(req, tenant);
  if (secret === null) return text(401, "No session secret found in cookies");
  const session = s.sessions.get(secret);
  if (!session) return text(401, "No session found for session secret");
  if (session.user !== tenant) return text(401, "SessionInfo public key does not match pubky-host");
  if (!allows(session.caps, path, "write")) {
    return text(403, "Session does not have write access to path");
  }
  return null;
}

function methodNotAllowed(): Response {
  return text(405, "Method Not Allowed");
}

// --- open routes -------------------------------------------------------------------------------

/** `GET /` */
function rootStatus(s: StandIn): Response {
  return text(200, `cipherpost stand-in homeserver ${s.key}\n`);
}

/** `POST /signup[?signup_token=]` */
async function signup(s: StandIn, { req, url }: OpenCall): Promise<Response> {
  const body = await readToken(s, req);
  if (body instanceof Response) return body;
  const t = verifyTokenUnchecked(body);
  const user = encodeZ32(t.publicKey);
  if (s.users.has(user)) return text(409, "User already exists");
  if (s.signupMode === "token_required") {
    const st = url.searchParams.get("signup_token");
    if (st === null) return text(400, "Token required");
    if (st.length !== 14 || !/^[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}$/.test(st)) {
      return text(400, "Invalid signup token format: Invalid signup code id");
    }
    if (!s.tokens.has(st)) return text(401, "Invalid token");
    if (s.tokens.get(st) !== null) return text(401, "Token already used");
    s.tokens.set(st, user);
  }
  s.users.set(user, { publicKey: t.publicKey, disabled: false, used: 0, inFlight: 0 });
  return createSession(s, user, t.capabilities);
}

/** `POST /session` */
async function signin(s: StandIn, { req }: OpenCall): Promise<Response> {
  const body = await readToken(s, req);
  if (body instanceof Response) return body;
  const t = verifyTokenUnchecked(body);
  const user = encodeZ32(t.publicKey);
  if (!s.users.has(user)) return text(404, "Not Found");
  return createSession(s, user, t.capabilities);
}

/** `GET /signup_tokens/<token>` */
function signupTokenStatus(s: StandIn, { path }: OpenCall): Response {
  if (s.signupMode !== "token_required") return text(400, "Not required");
  const t = path.slice("/signup_tokens/".length);
  if (!s.tokens.has(t)) return text(404, "Not Found");
  return new Response(
    JSON.stringify({ status: s.tokens.get(t) === null ? "valid" : "used", created_at: 0 }),
    { headers: { "content-type": "application/json" } },
  );
}

/**
 * The AuthToken of a signup or sign-in, verified and not seen before. At most 64 KiB + 1 bytes
 * of the body are read: a longer one is refused (413) at once and the rest discarded unread.
 */
async function readToken(s: StandIn, req: Request): Promise<Uint8Array | Response> {
  const declared = req.headers.get("content-length");
  const body = declared !== null && /^\d+$/.test(declared) && Number(declared) > TOKEN_LIMIT
    ? null
    : await readAtMost(req.body, TOKEN_LIMIT + 1);
  if (body === null || body.length > TOKEN_LIMIT) {
    void drain(req.body); // in the background: the answer goes out now, nothing is kept
    return text(413, "Payload Too Large");
  }
  try {
    const t = verifyAuthToken(body, { windowUs: s.windowUs });
    s.guard.check(t);
    return body;
  } catch (e) {
    return text(400, e instanceof CipherpostError ? e.message : "Invalid token");
  }
}

function createSession(s: StandIn, user: string, caps: Capability[]): Response {
  const secret = crockford(crypto.getRandomValues(new Uint8Array(16)));
  s.sessions.set(secret, { user, caps });
  const u = s.users.get(user)!;
  return new Response(
    sessionInfo(u.publicKey, caps, Date.now() * 1000) as Uint8Array<ArrayBuffer>,
    {
      status: 200,
      headers: {
        "content-type": "application/octet-stream",
        "set-cookie": `${user}=${secret}; HttpOnly; Path=/; Max-Age=31536000; Expires=${
          new Date(Date.now() + 31536000_000).toUTCString()
        }`,
      },
    },
  );
}

// --- the tenant's session ----------------------------------------------------------------------

/** `GET /session` */
function sessionGet(s: StandIn, { req, tenant }: Call): Response {
  const secret = cookieValue(req, tenant);
  const session = secret === null ? undefined : s.sessions.get(secret);
  if (!session || session.user !== tenant) return text(404, "Not Found");
  const u = s.users.get(tenant)!;
  return new Response(
    sessionInfo(u.publicKey, session.caps, Date.now() * 1000) as Uint8Array<ArrayBuffer>,
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

/** `DELETE /session`: sign out (the cookie is cleared whether or not a session matched). */
function sessionDelete(s: StandIn, { req, tenant }: Call): Response {
  const secret = cookieValue(req, tenant);
  if (secret !== null) s.sessions.delete(secret);
  return new Response(null, {
    status: 200,
    headers: {
      "set-cookie": `${tenant}=; HttpOnly; Path=/; Max-Age=0; Expires=${new Date(0).toUTCString()}`,
    },
  });
}

// --- the tenant's files ------------------------------------------------------------------------

/** `GET`/`HEAD` of a file; `GET` of a path ending in `/` is a listing. */
async function getOrList(s: StandIn, c: Call): Promise<Response> {
  if (!s.users.has(c.tenant)) return text(404, "Not Found");
  if (c.path.endsWith("/")) return list(s, c);
  const e = s.entries.get(c.tenant)?.get(c.path);
  if (!e) return text(404, "Not Found");
  if (unchanged(c.req, e)) return notModified(e);
  if (c.req.method === "HEAD") return new Response(null, { status: 200, headers: entryHeaders(e) });
  const file = await Deno.open(e.file, { read: true });
  // 1 MiB reads: 16× fewer calls than `FsFile.readable` for the same bytes
  return new Response(fileChunks(file, 1 << 20), { status: 200, headers: entryHeaders(e) });
}

/** `If-None-Match` (when sent, alone) or `If-Modified-Since` says the client has `e`. */
function unchanged(req: Request, e: Entry): boolean {
  const inm = req.headers.get("if-none-match");
  if (inm !== null) return inm.trim().split(",").map((t) => t.trim()).some((t) => t === e.etag);
  const ims = Date.parse(req.headers.get("if-modified-since") ?? "");
  return !Number.isNaN(ims) && ims >= Math.floor(e.modified.getTime() / 1000) * 1000;
}

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

/** `GET <dir>/?limit=&cursor=&reverse=&shallow=`: one page of `pubky://` URLs, a line each. */
function list(s: StandIn, { url, tenant, path: dirPath }: Call): Response {
  const mine = [...(s.entries.get(tenant)?.keys() ?? [])].filter((p) => p.startsWith(dirPath));
  if (mine.length === 0) return text(404, "Directory Not Found");
  const reverse = parseBool(url.searchParams.get("reverse"));
  const shallow = parseBool(url.searchParams.get("shallow"));
  if (reverse === "bad" || shallow === "bad") return text(400, "Invalid boolean parameter");
  const cursorPath = listingCursor(url.searchParams.get("cursor"));
  if (cursorPath === "bad") return text(400, "Invalid cursor");
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
  if (cursorPath !== null) paths = paths.filter((p) => (reverse ? p < cursorPath : p > cursorPath));
  const limit = listingLimit(url.searchParams.get("limit"));
  return text(200, paths.slice(0, limit).map((p) => `pubky://${tenant}${p}`).join("\n"));
}

/** A listing cursor (`pubky://<z32>/path` or `<z32>/path`) as its path; null when none. */
function listingCursor(cursor: string | null): string | null | "bad" {
  if (cursor === null || cursor === "") return null;
  const c = cursor.startsWith("pubky://") ? cursor.slice(8) : cursor;
  const i = c.indexOf("/");
  if (i < 0 || !isZ32Key(c.slice(0, i)) || !validPath(c.slice(i))) return "bad";
  return c.slice(i);
}

/** A listing's `limit`: 100 when absent or unreadable, at most 1000. */
function listingLimit(raw: string | null): number {
  const ok = raw !== null && raw !== "" && /^\d+$/.test(raw) && Number(raw) < 65536;
  return Math.min(ok ? Number(raw) : 100, 1000);
}

/**
 * `PUT`. PUTs and DELETEs of one file take turns, so each sees what the one before it left (the
 * size it replaces, the file it renames over); the bytes being written are counted in the user's
 * `inFlight` until the PUT ends, so PUTs of different files cannot each take the same free space.
 */
async function put(s: StandIn, c: Call): Promise<Response> {
  const u = s.users.get(c.tenant);
  const refused = !u
    ? text(404, "Not Found")
    : u.disabled
    ? text(403, "User is disabled")
    : c.path.endsWith("/")
    ? text(400, "Invalid path")
    : null;
  if (refused || !u) {
    await drain(c.req.body);
    return refused!;
  }
  return await inTurn(s, c, async () => {
    const reserved = { bytes: 0 };
    try {
      return await putInTurn(s, c, u, reserved);
    } finally {
      u.inFlight -= reserved.bytes;
    }
  });
}

/** Run `f` once every earlier PUT or DELETE of the same file has ended. */
async function inTurn<T>(s: StandIn, c: Call, f: () => Promise<T>): Promise<T> {
  const k = `${c.tenant}${c.path}`;
  const before = s.turns.get(k);
  let done = () => {};
  const mine = new Promise<void>((r) => (done = r));
  s.turns.set(k, mine);
  try {
    await before;
    return await f();
  } finally {
    done();
    if (s.turns.get(k) === mine) s.turns.delete(k);
  }
}

/** One PUT, its turn come: quota up front, the body streamed to a file, the entry replaced. */
async function putInTurn(
  s: StandIn,
  { req, tenant, path }: Call,
  u: User,
  reserved: { bytes: number },
): Promise<Response> {
  const existing = s.entries.get(tenant)?.get(path);
  const existingCost = existing ? existing.size + METADATA_BYTES : 0;
  const declared = req.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared)) {
    const n = Number(declared);
    const refused = n > s.bodyLimit
      ? text(413, "length limit exceeded")
      : overQuota(s, u, n + METADATA_BYTES - existingCost)
      ? quotaExceeded(s)
      : null;
    if (refused) {
      await drain(req.body);
      return refused;
    }
    reserve(u, reserved, n + METADATA_BYTES);
  }
  const tmp = `${s.dir}/tmp/${toHex(crypto.getRandomValues(new Uint8Array(12)))}`;
  const got = await receiveBody(req, tmp, (size) => {
    reserve(u, reserved, size + METADATA_BYTES);
    if (size > s.bodyLimit) return text(413, "length limit exceeded");
    if (overQuota(s, u, -existingCost)) return quotaExceeded(s);
    return null;
  }, () => {
    // what this PUT reserved is free again at once, not after its body is drained
    u.inFlight -= reserved.bytes;
    reserved.bytes = 0;
  });
  if (got instanceof Response) {
    await Deno.remove(tmp).catch(() => {});
    return got;
  }
  const file = `${s.dir}/files/${toHex(sha256(utf8(`${tenant}${path}`)))}`;
  await Deno.rename(tmp, file);
  // the map as it is now: concurrent first PUTs of a tenant must not drop each other's entries
  const mine = s.entries.get(tenant) ?? new Map<string, Entry>();
  mine.set(path, {
    file,
    size: got.size,
    etag: got.etag,
    modified: new Date(),
    contentType: contentTypeOf(path, got.head),
  });
  s.entries.set(tenant, mine);
  s.events.put(tenant, path, got.etag);
  u.used += got.size + METADATA_BYTES - existingCost;
  return new Response(null, { status: 201 });
}

/** The user's stored bytes, those being written, and `more` would exceed the quota. */
function overQuota(s: StandIn, u: User, more: number): boolean {
  return s.quotaBytes !== undefined && u.used + u.inFlight + more > s.quotaBytes;
}

function quotaExceeded(s: StandIn): Response {
  return text(
    507,
    `Disk space quota of ${
      ((s.quotaBytes ?? 0) / 1024 / 1024).toFixed(1)
    } MB exceeded. Write operation failed.`,
  );
}

/** Count `bytes` (a PUT's size so far, with metadata) in the user's in-flight bytes. */
function reserve(u: User, reserved: { bytes: number }, bytes: number): void {
  if (bytes <= reserved.bytes) return;
  u.inFlight += bytes - reserved.bytes;
  reserved.bytes = bytes;
}

/**
 * A PUT body written to `tmp` in 1 MiB batches (constant memory, few file operations) and hashed
 * with BLAKE3 on the way. After each chunk `check(sizeSoFar)` may refuse: then `refused` runs, the
 * rest of the body is drained and the refusal returned.
 */
async function receiveBody(
  req: Request,
  tmp: string,
  check: (size: number) => Response | null,
  refused: () => void,
): Promise<{ size: number; etag: string; head: Uint8Array } | Response> {
  const f = await Deno.open(tmp, { write: true, createNew: true });
  const hasher = await createBLAKE3();
  hasher.init();
  let size = 0;
  let head: Uint8Array = new Uint8Array();
  const buf = new Uint8Array(1 << 20);
  let fill = 0;
  // writeSync: a 1 MiB page-cache write is sub-millisecond, and Deno's async write of the
  // same costs about 3× the CPU (measured: taking 256 MiB of PUTs, 3.1 → 1.8 CPU s, of which
  // 1.1 s is reading the bodies)
  const writeAll = (b: Uint8Array) => {
    let off = 0;
    while (off < b.length) off += f.writeSync(b.subarray(off));
  };
  // the BLAKE3 ETag is computed over the same 1 MiB batches (one WebAssembly call each)
  const flush = () => {
    hasher.update(buf.subarray(0, fill));
    writeAll(buf.subarray(0, fill));
    fill = 0;
  };
  try {
    const reader = req.body?.getReader();
    while (reader) {
      const { value, done } = await reader.read();
      if (done) break;
      size += value.length;
      const failure = check(size);
      if (failure) {
        refused();
        reader.releaseLock();
        await drain(req.body);
        return failure;
      }
      if (head.length < 16) head = concat(head, value.subarray(0, 16 - head.length));
      if (fill + value.length > buf.length) flush();
      if (value.length >= buf.length) {
        hasher.update(value);
        writeAll(value);
      } else {
        buf.set(value, fill);
        fill += value.length;
      }
    }
    flush();
  } catch {
    return text(400, "body stream error");
  } finally {
    f.close();
  }
  return { size, etag: `"${b64encode(hasher.digest("binary"))}"`, head };
}

/** `DELETE` of a file (in turn with the PUTs of the same file). */
async function remove(s: StandIn, c: Call): Promise<Response> {
  const u = s.users.get(c.tenant);
  if (!u) return text(404, "Not Found");
  return await inTurn(s, c, async () => {
    const mine = s.entries.get(c.tenant);
    const e = mine?.get(c.path);
    if (!e || !mine) return text(404, "Not Found");
    mine.delete(c.path);
    s.events.del(c.tenant, c.path);
    u.used -= e.size + METADATA_BYTES;
    await Deno.remove(e.file).catch(() => {});
    return new Response(null, { status: 204 });
  });
}

// --- bodies ------------------------------------------------------------------------------------

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain", ...headers } });
}

/**
 * Up to `max` bytes of a body (fewer when it ends first). The reader is released, not cancelled:
 * cancelling a `node:http` request body destroys the socket before the answer goes out (which is
 * why this is not `readLimited` of `lib/pkarr/relay.ts`).
 */
async function readAtMost(
  body: ReadableStream<Uint8Array> | null,
  max: number,
): Promise<Uint8Array> {
  if (!body) return new Uint8Array();
  const r = body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    while (n < max) {
      const { value, done } = await r.read();
      if (done) break;
      const take = value.subarray(0, max - n);
      chunks.push(take);
      n += take.length;
    }
  } catch { /* client went away: what came is what there is */ }
  r.releaseLock();
  return concat(...chunks);
}

/** Read and discard a body (at most `max` bytes, then cancel it). */
async function drain(body: ReadableStream<Uint8Array> | null, max = 512 * 1024 * 1024) {
  if (!body || body.locked) return;
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

/** Decode a token already verified by {@link verifyAuthToken} (no second replay check). */
function verifyTokenUnchecked(body: Uint8Array) {
  return verifyAuthToken(body, { windowUs: Number.MAX_SAFE_INTEGER });
}

/**
 * The records a homeserver on 127.0.0.1:`port` publishes (as the reference's key republisher);
 * on another `host` (a testnet on a private test address) its `localhost` record also carries
 * that address as ipv4hint (docs/PROTOCOL.md §4.2) and the A record names it.
 */
export function homeserverRecords(port: number, host = "127.0.0.1"): DnsRecord[] {
  const u16 = (n: number) => new Uint8Array([n >> 8, n & 0xff]);
  const ip = new Uint8Array(host.split(".").map(Number));
  const hint: [number, Uint8Array][] = host === "127.0.0.1" ? [] : [[IPV4HINT_PARAM, ip]];
  return [
    {
      name: ".",
      ttl: 3600,
      data: {
        type: "HTTPS",
        priority: 1,
        target: ".",
        params: [[PORT_PARAM, u16(port)], [IPV4HINT_PARAM, ip]],
      },
    },
    {
      name: ".",
      ttl: 3600,
      data: {
        type: "HTTPS",
        priority: 10,
        target: "localhost",
        params: [[HTTP_PORT_PARAM, u16(port)], ...hint],
      },
    },
    { name: ".", ttl: 3600, data: { type: "A", address: host } },
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
