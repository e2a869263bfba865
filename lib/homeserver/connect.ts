/**
 * Getting a {@link HomeserverClient}: for our own files (stored session, or discovery plus
 * sign-in, re-made on 401 when the identity is at hand) and for reading anyone's `/pub/`.
 *
 * @module
 */

import { keypairFromSeed } from "../crypto/keys.ts";
import { encodeZ32 } from "../pkarr/public_key.ts";
import type { Transport } from "../pkarr/transport.ts";
import { type Authenticator, HomeserverClient } from "./client.ts";
import { discover, endpointOf, type HomeserverEndpoint } from "./discovery.ts";
import { checkEndpoint, type HomeserverHttp, homeserverHttpOf } from "./endpoint_policy.ts";
import type { FetchFn } from "./http.ts";
import { configError } from "../util/errors.ts";
import { type SessionCookie, signIn } from "./session.ts";
import { loadSession, saveSession } from "./session_store.ts";
import { isoSeconds } from "../state/state.ts";

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** cipherpost home (where the session is stored) */
  home: string;
  /** our public key */
  user: Uint8Array;
  /** our seed: lets the client sign in (and up). Without it only a stored session can write. */
  seed?: Uint8Array;
  /** use this homeserver instead of the one in our `_pubky` record (signup) */
  homeserver?: string;
  /** for token-required homeservers */
  signupToken?: string;
  /** sign up when the homeserver does not know us (default false: only `homeserver signup`) */
  signup?: boolean;
  fetch?: FetchFn;
  /** endpoint policy and timeouts (default: the settings bound to the transport) */
  http?: HomeserverHttp;
}

/** A connected client and what it connected to. */
export interface Connection {
  client: HomeserverClient;
  endpoint: HomeserverEndpoint;
  /** where the session came from at connect time */
  session: "stored" | "new" | "none";
  /** true when a sign-in during this connection created the account */
  signedUp(): boolean;
}

/**
 * A client for our own files. Uses the stored session when it matches (and `homeserver` if
 * given); otherwise discovers our homeserver and signs in at the first write (or at once when
 * `signup` is set), storing the new session (0600).
 */
export async function connect(transport: Transport, o: ConnectOptions): Promise<Connection> {
  const user = encodeZ32(o.user);
  if (o.seed && encodeZ32(keypairFromSeed(o.seed).publicKey) !== user) {
    throw configError(
      "the seed does not match the user key",
    );
  }
  const http = o.http ?? homeserverHttpOf(transport);
  const stored = await loadSession(o.home, user);
  let endpoint: HomeserverEndpoint;
  let cookie: SessionCookie | null = null;
  if (stored && (o.homeserver === undefined || o.homeserver === stored.homeserver)) {
    checkEndpoint(stored.baseUrl, http);
    endpoint = { homeserver: stored.homeserver, baseUrl: stored.baseUrl };
    cookie = stored.cookie;
  } else if (o.homeserver !== undefined) {
    endpoint = {
      homeserver: o.homeserver,
      baseUrl: await endpointOf(transport, o.homeserver, http),
    };
  } else {
    endpoint = await discover(transport, o.user, http);
  }
  let signedUp = false;
  const session: Connection["session"] = cookie ? "stored" : "none";
  const auth: Authenticator = {
    cookie: () => cookie,
    reauthenticate: async () => {
      if (!o.seed) return false;
      const r = await signIn({
        baseUrl: endpoint.baseUrl,
        homeserver: endpoint.homeserver,
        seed: o.seed,
        signupToken: o.signupToken,
        signup: o.signup === true,
        fetch: o.fetch,
        http,
      });
      signedUp ||= r.signedUp;
      cookie = r.cookie;
      await saveSession(o.home, {
        homeserver: endpoint.homeserver,
        baseUrl: endpoint.baseUrl,
        cookie,
        createdAt: isoSeconds(),
      });
      return true;
    },
  };
  const conn: Connection = {
    client: new HomeserverClient({ baseUrl: endpoint.baseUrl, user, auth, fetch: o.fetch, http }),
    endpoint,
    session,
    signedUp: () => signedUp,
  };
  if (o.signup && !cookie) {
    await auth.reauthenticate();
    conn.session = "new";
  }
  return conn;
}

/**
 * A client reading `user`'s `/pub/` anonymously (no session), found by discovery; `http`
 * defaults to the settings bound to the transport.
 */
export async function reader(
  transport: Transport,
  user: Uint8Array,
  o: { fetch?: FetchFn; http?: HomeserverHttp } = {},
): Promise<HomeserverClient> {
  const http = o.http ?? homeserverHttpOf(transport);
  const endpoint = await discover(transport, user, http);
  return new HomeserverClient({
    baseUrl: endpoint.baseUrl,
    user: encodeZ32(user),
    fetch: o.fetch,
    http,
  });
}
