/**
 * Cookie sessions (docs/PROTOCOL.md §4.3): `POST /session` → 404 → `POST /signup` (optional
 * signup token) → 409 → `POST /session`, one fresh AuthToken per POST, capabilities
 * `/pub/cipherpost/:rw`. The cookie is named by the user's z32; we read it from `Set-Cookie`
 * and send it back ourselves (no cookie jar, no patched `globalThis.fetch`).
 *
 * @module
 */

import { keypairFromSeed } from "../crypto/keys.ts";
import { encodeZ32 } from "../pkarr/public_key.ts";
import type { CipherpostError } from "../util/errors.ts";
import { buildAuthToken } from "./auth_token.ts";
import { type Capability, CIPHERPOST_CAPABILITY, formatCapabilities } from "./capabilities.ts";
import type { HomeserverHttp } from "./endpoint_policy.ts";
import { errorOf, type FetchFn, HomeserverError, type HttpReply } from "./http.ts";
import { homeserverRequest } from "./request.ts";

/** A session credential: the cookie `<user z32>=<secret>`. */
export interface SessionCookie {
  /** the user's z32 (the cookie name) */
  user: string;
  /** the session secret (a bearer credential; never printed) */
  secret: string;
  /** the capabilities it was made with, comma-joined */
  capabilities: string;
}

/** Options of {@link signIn}. */
export interface SignInOptions {
  /** `https://domain` of the homeserver (from discovery) */
  baseUrl: string;
  /** z32 of the homeserver (sent as `pubky-host` on signup, as the SDK does) */
  homeserver: string;
  /** the user's Ed25519 seed */
  seed: Uint8Array;
  /** signup token for token-required homeservers (`XXXX-XXXX-XXXX`) */
  signupToken?: string;
  /** sign up when the user is unknown (default true) */
  signup?: boolean;
  /** default `[/pub/cipherpost/:rw]` */
  capabilities?: readonly Capability[];
  fetch?: FetchFn;
  /** endpoint policy and timeouts (default: HTTPS to public names only, 30 s) */
  http?: HomeserverHttp;
}

/** How to reach the homeserver for {@link sessionAlive} and {@link signOut}. */
export interface SessionCallOptions {
  fetch?: FetchFn;
  /** endpoint policy and timeouts (default: HTTPS to public names only, 30 s) */
  http?: HomeserverHttp;
}

/** What {@link signIn} did. */
export interface SignInResult {
  cookie: SessionCookie;
  /** true when this call created the account */
  signedUp: boolean;
}

/** The `Cookie` header value for a session. */
export function cookieHeader(c: SessionCookie): string {
  return `${c.user}=${c.secret}`;
}

/** The secret of the cookie named `user` in a response's `Set-Cookie` headers, or null. */
export function sessionSecretOf(res: Pick<Response, "headers">, user: string): string | null {
  for (const line of res.headers.getSetCookie()) {
    const first = line.split(";", 1)[0];
    const eq = first.indexOf("=");
    if (eq < 0) continue;
    if (first.slice(0, eq).trim() !== user) continue;
    const v = first.slice(eq + 1).trim();
    if (/^[0-9A-Za-z]{1,128}$/.test(v)) return v;
  }
  return null;
}

/** The statuses {@link signIn} decides on itself (the others are {@link errorOf}'s). */
const SIGNIN_STATUSES = [400, 401, 404, 409];

async function post(
  o: SignInOptions,
  path: "/session" | "/signup",
  host: string,
): Promise<HttpReply> {
  const url = new URL(path, o.baseUrl);
  if (path === "/signup" && o.signupToken) url.searchParams.set("signup_token", o.signupToken);
  return await homeserverRequest("POST", url, {
    tenant: host,
    path,
    headers: { "content-type": "application/octet-stream" },
    // a fresh token per POST (a 429 retry included): the server refuses a replayed one
    makeBody: () =>
      Promise.resolve(
        buildAuthToken(o.seed, o.capabilities ?? [CIPHERPOST_CAPABILITY]) as Uint8Array<
          ArrayBuffer
        >,
      ),
    pass: SIGNIN_STATUSES,
    http: o.http,
    fetch: o.fetch,
  });
}

async function accept(res: HttpReply, user: string, caps: string): Promise<SessionCookie> {
  await res.body?.cancel();
  const secret = sessionSecretOf(res, user);
  if (!secret) {
    throw new HomeserverError(
      "homeserver",
      "homeserver error: the server answered without a session cookie",
      { status: res.status, method: "POST", path: "/session" },
    );
  }
  return { user, secret, capabilities: caps };
}

/**
 * Sign in, signing up first when the homeserver does not know the user (and `signup` allows
 * it). Throws `homeserver_auth` (exit 4) when the signup token is missing, invalid or used, or
 * a token is rejected; the other statuses as in {@link errorOf}.
 */
export async function signIn(o: SignInOptions): Promise<SignInResult> {
  const user = encodeZ32(keypairFromSeed(o.seed).publicKey);
  const caps = formatCapabilities(o.capabilities ?? [CIPHERPOST_CAPABILITY]);
  let res = await post(o, "/session", user);
  if (res.ok) return { cookie: await accept(res, user, caps), signedUp: false };
  if (res.status !== 404 || o.signup === false) throw await signinError(res, "/session");
  await res.body?.cancel();
  res = await post(o, "/signup", o.homeserver);
  if (res.ok) return { cookie: await accept(res, user, caps), signedUp: true };
  if (res.status !== 409) throw await signupError(res, o.signupToken !== undefined);
  await res.body?.cancel();
  res = await post(o, "/session", user);
  if (res.ok) return { cookie: await accept(res, user, caps), signedUp: false };
  throw await signinError(res, "/session");
}

async function signinError(res: HttpReply, path: string): Promise<CipherpostError> {
  const e = await errorOf(res, "POST", path);
  if (res.status === 404) {
    return new HomeserverError(
      "homeserver_auth",
      "homeserver: this identity has no account on the homeserver",
      { status: 404, method: "POST", path },
      { step: "homeserver_signup" },
    );
  }
  if (res.status === 400) {
    return new HomeserverError(
      "homeserver_auth",
      `homeserver: sign-in token rejected (${
        e.message.replace(/^.*\(HTTP /, "HTTP ").replace(/\)$/, "")
      })`,
      { status: 400, method: "POST", path },
      "check this machine's clock: the homeserver accepts tokens within 45 seconds of its time",
    );
  }
  return e;
}

async function signupError(res: HttpReply, hadToken: boolean): Promise<CipherpostError> {
  const e = await errorOf(res, "POST", "/signup");
  const text = e.message;
  if (res.status === 400 && /token required/i.test(text)) {
    return new HomeserverError(
      "homeserver_auth",
      "homeserver: signup requires a signup token",
      { status: 400, method: "POST", path: "/signup" },
      { step: "signup_token" },
    );
  }
  if (res.status === 401 || (res.status === 400 && /signup token/i.test(text))) {
    return new HomeserverError(
      "homeserver_auth",
      hadToken
        ? "homeserver: the signup token is invalid or already used"
        : "homeserver: signup refused",
      { status: res.status, method: "POST", path: "/signup" },
      hadToken
        ? "a signup token admits one identity, once: ask the homeserver's operator for a new " +
          "one (a local testnet prints several, or runs with open signup)"
        : "ask the homeserver's operator for a signup token",
    );
  }
  if (res.status === 400) {
    return new HomeserverError(
      "homeserver_auth",
      `homeserver: signup rejected (${text.replace(/^.*\(HTTP /, "HTTP ").replace(/\)$/, "")})`,
      { status: 400, method: "POST", path: "/signup" },
      "check this machine's clock: the homeserver accepts tokens within 45 seconds of its time",
    );
  }
  return e;
}

/** Whether the session is alive (`GET /session` → 200). */
export async function sessionAlive(
  baseUrl: string,
  cookie: SessionCookie,
  o: SessionCallOptions = {},
): Promise<boolean> {
  const res = await homeserverRequest("GET", new URL("/session", baseUrl), {
    tenant: cookie.user,
    headers: { cookie: cookieHeader(cookie) },
    pass: [401, 404],
    ...o,
  });
  await res.body?.cancel();
  return res.ok;
}

/** End the session on the server (`DELETE /session`, idempotent). */
export async function signOut(
  baseUrl: string,
  cookie: SessionCookie,
  o: SessionCallOptions = {},
): Promise<void> {
  const res = await homeserverRequest("DELETE", new URL("/session", baseUrl), {
    tenant: cookie.user,
    headers: { cookie: cookieHeader(cookie) },
    ...o,
  });
  await res.body?.cancel();
}
