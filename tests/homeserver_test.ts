// The homeserver tier: AuthToken layout, sessions, capabilities, signup modes, 401 re-auth,
// 413, 507, listing, ETag/If-None-Match, discovery, and the CLI's `homeserver` commands, all
// against the stand-in over real HTTP on loopback and a real local testnet.
import nodeAssert from "node:assert/strict";

function assert(cond: unknown, msg?: string): asserts cond {
  nodeAssert.ok(cond, msg);
}
function assertEquals<T>(a: T, b: T, msg?: string): void {
  nodeAssert.deepStrictEqual(a, b, msg);
}
async function assertRejects<E extends Error>(
  f: () => Promise<unknown>,
  type: abstract new (...args: never[]) => E,
): Promise<E> {
  try {
    await f();
  } catch (e) {
    if (e instanceof type) return e;
    throw e;
  }
  throw new Error("expected a rejection");
}
import { generateKeypair, keypairFromSeed, verifyStrict } from "../lib/crypto/keys.ts";
import {
  AuthTokenError,
  buildAuthToken,
  parseAuthToken,
  ReplayGuard,
  verifyAuthToken,
} from "../lib/homeserver/auth_token.ts";
import {
  allows,
  CIPHERPOST_CAPABILITY,
  parseCapabilities,
} from "../lib/homeserver/capabilities.ts";
import { HomeserverClient } from "../lib/homeserver/client.ts";
import { connect, reader } from "../lib/homeserver/connect.ts";
import {
  discover,
  endpointInPacket,
  endpointOf,
  homeserverInPacket,
  homeserverOf,
  isZ32Key,
  pubkyRecord,
  withPubkyRecord,
} from "../lib/homeserver/discovery.ts";
import { HomeserverError } from "../lib/homeserver/http.ts";
import { bindHomeserverHttp, type HomeserverHttp } from "../lib/homeserver/endpoint_policy.ts";
import { homeserverHttpFrom } from "../lib/cli/network_options.ts";
import { partPath } from "../lib/protocol/large_manifest.ts";
import { type SessionCookie, signIn, signOut } from "../lib/homeserver/session.ts";
import { loadSession, sessionFile } from "../lib/homeserver/session_store.ts";
import { decodeZ32, encodeZ32 } from "../lib/pkarr/public_key.ts";
import { txtRecord } from "../lib/pkarr/dns.ts";
import { packetFromBytes, recordsNamed, signPacket } from "../lib/pkarr/signed_packet.ts";
import { startHomeserver, startHomeserverOnTestnet } from "../lib/testing/homeserver.ts";
import { CipherpostError } from "../lib/util/errors.ts";
import { describeError, EXIT_OF } from "../lib/cli/exit_codes.ts";
import { b64encode } from "../lib/util/encoding.ts";
import { createBLAKE3 } from "hash-wasm";
import {
  cli,
  makeUser,
  makeUserWithSeed,
  receiveAs,
  sendAs,
  testTransport,
  tmpDir,
  withTestnet,
} from "./_helpers.ts";
import { State } from "../lib/state/state.ts";
import { Transport } from "../lib/pkarr/transport.ts";
import { exists } from "../lib/util/fsutil.ts";

const enc = new TextEncoder();

function stream(bytes: Uint8Array, chunk = 65536): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= bytes.length) return c.close();
      c.enqueue(bytes.slice(off, off + chunk));
      off += chunk;
    },
  });
}

/** A stream of `n` zero bytes made on the fly (never whole in memory). */
function zeros(n: number, chunk = 1 << 20): ReadableStream<Uint8Array> {
  let left = n;
  const block = new Uint8Array(chunk);
  return new ReadableStream({
    pull(c) {
      if (left <= 0) return c.close();
      const k = Math.min(chunk, left);
      c.enqueue(k === chunk ? block : block.subarray(0, k));
      left -= k;
    },
  });
}

async function etagOf(bytes: Uint8Array): Promise<string> {
  const h = await createBLAKE3();
  h.init();
  h.update(bytes);
  return `"${b64encode(h.digest("binary"))}"`;
}

/** The stand-in is plain http on 127.0.0.1: allowed only explicitly (a testnet). */
const LOOPBACK: HomeserverHttp = { allowLoopback: true };

/** A signed-in client for a fresh user on an open stand-in. */
function userClient(baseUrl: string, homeserver: string, seed = generateKeypair().seed) {
  let cookie: SessionCookie | null = null;
  let signins = 0;
  const user = encodeZ32(keypairFromSeed(seed).publicKey);
  const client = new HomeserverClient({
    http: LOOPBACK,
    baseUrl,
    user,
    auth: {
      cookie: () => cookie,
      reauthenticate: async () => {
        signins++;
        cookie = (await signIn({ http: LOOPBACK, baseUrl, homeserver, seed })).cookie;
        return true;
      },
    },
  });
  return { client, user, seed, signins: () => signins, dropCookie: () => (cookie = null) };
}

// --- AuthToken -------------------------------------------------------------------------------

Deno.test("auth token: published layout, signature over bytes 65.., /pub/cipherpost/:rw only", () => {
  const kp = generateKeypair();
  const ts = 1_767_000_000_123_456;
  const t = buildAuthToken(kp.seed, [CIPHERPOST_CAPABILITY], ts);
  const caps = "/pub/cipherpost/:rw";
  assertEquals(t.length, 64 + 10 + 1 + 8 + 32 + 1 + caps.length);
  assertEquals(new TextDecoder().decode(t.subarray(64, 74)), "PUBKY:AUTH");
  assertEquals(t[74], 0);
  assertEquals(new DataView(t.buffer, 75, 8).getBigUint64(0, false), BigInt(ts));
  assertEquals([...t.subarray(83, 115)], [...kp.publicKey]);
  assertEquals(t[115], caps.length);
  assertEquals(new TextDecoder().decode(t.subarray(116)), caps);
  assert(verifyStrict(kp.publicKey, t.subarray(65), t.subarray(0, 64)), "signed from 65");
  assert(!verifyStrict(kp.publicKey, t.subarray(64), t.subarray(0, 64)), "not from 64");
  const p = verifyAuthToken(t, { nowUs: ts + 1_000_000 });
  assertEquals(p.capabilities, [{ scope: "/pub/cipherpost/", read: true, write: true }]);
  // A root token is the reference's 120 bytes.
  assertEquals(buildAuthToken(kp.seed, parseCapabilities("/:rw"), ts).length, 120);
});

Deno.test("auth token: window, tampering, version and replay are rejected", () => {
  const kp = generateKeypair();
  const now = Date.now() * 1000;
  const fault = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      if (e instanceof AuthTokenError) return e.fault;
      throw e;
    }
    return "accepted";
  };
  const t = buildAuthToken(kp.seed, [CIPHERPOST_CAPABILITY], now);
  assertEquals(fault(() => verifyAuthToken(t, { nowUs: now + 46_000_000 })), "expired");
  assertEquals(fault(() => verifyAuthToken(t, { nowUs: now - 46_000_000 })), "too_far_in_future");
  assertEquals(
    fault(() => verifyAuthToken(t, { nowUs: now + 170e6, windowUs: 180e6 })),
    "accepted",
  );
  const bad = t.slice();
  bad[82] ^= 1; // the last timestamp byte: still parses, no longer verifies
  assertEquals(fault(() => verifyAuthToken(bad, { nowUs: now })), "invalid_signature");
  const v1 = t.slice();
  v1[74] = 1;
  assertEquals(fault(() => parseAuthToken(v1)), "unknown_version");
  assertEquals(fault(() => parseAuthToken(t.subarray(0, 100))), "malformed");
  const guard = new ReplayGuard();
  guard.check(parseAuthToken(t), now);
  assertEquals(fault(() => guard.check(parseAuthToken(t), now)), "already_used");
  // Two tokens made back to back never share an id (timestamp ‖ key).
  const a = parseAuthToken(buildAuthToken(kp.seed, [CIPHERPOST_CAPABILITY]));
  const b = parseAuthToken(buildAuthToken(kp.seed, [CIPHERPOST_CAPABILITY]));
  assert(a.timestampUs < b.timestampUs);
});

Deno.test("capabilities: folder scope covers below it, file scope only itself", () => {
  const caps = parseCapabilities("/pub/cipherpost/:rw,/pub/x.txt:r");
  assert(allows(caps, "/pub/cipherpost/blobs/a", "write"));
  assert(!allows(caps, "/pub/other/x", "write"));
  assert(!allows(caps, "/pub/cipherpostx", "write"));
  assert(allows(caps, "/pub/x.txt", "read"));
  assert(!allows(caps, "/pub/x.txt", "write"));
  assert(!allows(caps, "/pub/x.txt2", "read"));
  for (const bad of ["pub/x:rw", "/pub/x:", "/pub/x:rx", "/pub/x"]) {
    let threw = false;
    try {
      parseCapabilities(bad);
    } catch {
      threw = true;
    }
    assert(threw, bad);
  }
});

// --- Sessions and signup modes ----------------------------------------------------------------

Deno.test("session: signin → 404 → signup → cookie named by the user; the token asks /pub/cipherpost/:rw only", async () => {
  const hs = await startHomeserver({ signupMode: "open" });
  try {
    const seed = generateKeypair().seed;
    const user = encodeZ32(keypairFromSeed(seed).publicKey);
    const r = await signIn({ http: LOOPBACK, baseUrl: hs.baseUrl, homeserver: hs.key, seed });
    assert(r.signedUp);
    assertEquals(r.cookie.user, user);
    assertEquals(r.cookie.capabilities, "/pub/cipherpost/:rw");
    assertEquals(hs.sessionCapabilities(user), ["/pub/cipherpost/:rw"]);
    // The sequence on the wire: POST /session (404), POST /signup (200).
    assertEquals(
      hs.log.map((l) => `${l.method} ${l.path} ${l.status}`),
      ["POST /session 404", "POST /signup 200"],
    );
    // A second sign-in is a plain POST /session.
    const again = await signIn({ http: LOOPBACK, baseUrl: hs.baseUrl, homeserver: hs.key, seed });
    assert(!again.signedUp);
    assert(again.cookie.secret !== r.cookie.secret);
    // The stored capabilities of both sessions: nothing ever asked for more.
    assertEquals(hs.sessionCapabilities(user), ["/pub/cipherpost/:rw", "/pub/cipherpost/:rw"]);
  } finally {
    await hs.close();
  }
});

Deno.test("session: a replayed token and one signed from byte 64 are refused (400)", async () => {
  const hs = await startHomeserver({ signupMode: "open" });
  try {
    const seed = generateKeypair().seed;
    await signIn({ http: LOOPBACK, baseUrl: hs.baseUrl, homeserver: hs.key, seed });
    const token = buildAuthToken(seed, [CIPHERPOST_CAPABILITY]);
    const post = () =>
      fetch(`${hs.baseUrl}/session`, { method: "POST", body: token as Uint8Array<ArrayBuffer> });
    const first = await post();
    await first.body?.cancel();
    assertEquals(first.status, 200);
    const second = await post();
    assertEquals(second.status, 400);
    assert((await second.text()).includes("already used"));
    // A token signed from byte 64 (the wrong offset) does not verify.
    const { sign } = await import("../lib/crypto/keys.ts");
    const wrong = buildAuthToken(seed, [CIPHERPOST_CAPABILITY]);
    wrong.set(sign(seed, wrong.subarray(64)), 0);
    const w = await fetch(`${hs.baseUrl}/session`, {
      method: "POST",
      body: wrong as Uint8Array<ArrayBuffer>,
    });
    assertEquals(w.status, 400);
    await w.body?.cancel();
  } finally {
    await hs.close();
  }
});

Deno.test("signup modes: token_required needs a minted, unused token (each refusal its own message)", async () => {
  const hs = await startHomeserver({ signupMode: "token_required" });
  try {
    const base = { baseUrl: hs.baseUrl, homeserver: hs.key };
    const kind = async (p: Promise<unknown>) => {
      try {
        await p;
        return "ok";
      } catch (e) {
        return e instanceof CipherpostError ? `${e.kind}: ${e.message}` : String(e);
      }
    };
    const seed = generateKeypair().seed;
    assertEquals(
      await kind(signIn({ http: LOOPBACK, ...base, seed })),
      "homeserver_auth: homeserver: signup requires a signup token",
    );
    assertEquals(
      await kind(signIn({ http: LOOPBACK, ...base, seed, signupToken: "AAAA-BBBB-CCCC" })),
      "homeserver_auth: homeserver: the signup token is invalid or already used",
    );
    const token = hs.mintSignupToken();
    assert(/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/.test(token));
    assertEquals(await kind(signIn({ http: LOOPBACK, ...base, seed, signupToken: token })), "ok");
    // Used once: a second user cannot reuse it.
    assertEquals(
      await kind(
        signIn({ http: LOOPBACK, ...base, seed: generateKeypair().seed, signupToken: token }),
      ),
      "homeserver_auth: homeserver: the signup token is invalid or already used",
    );
    // The signed-up user signs in without a token.
    assertEquals(await kind(signIn({ http: LOOPBACK, ...base, seed })), "ok");
    // signup: false never creates an account.
    assertEquals(
      (await kind(signIn({ http: LOOPBACK, ...base, seed: generateKeypair().seed, signup: false })))
        .split(":")[0],
      "homeserver_auth",
    );
  } finally {
    await hs.close();
  }
});

Deno.test("signup: 409 (signed up meanwhile) falls back to signin", async () => {
  const hs = await startHomeserver({ signupMode: "open" });
  try {
    const seed = generateKeypair().seed;
    // A fetch that lets another client sign the user up between our /session and /signup.
    let raced = false;
    const racing = async (input: string | URL, init?: RequestInit) => {
      if (!raced && String(input).endsWith("/signup")) {
        raced = true;
        await signIn({ http: LOOPBACK, baseUrl: hs.baseUrl, homeserver: hs.key, seed });
      }
      return await fetch(input, init);
    };
    const r = await signIn({
      http: LOOPBACK,
      baseUrl: hs.baseUrl,
      homeserver: hs.key,
      seed,
      fetch: racing,
    });
    assert(!r.signedUp);
    assertEquals(
      hs.log.map((l) => `${l.method} ${l.path} ${l.status}`),
      [
        "POST /session 404",
        "POST /session 404",
        "POST /signup 200",
        "POST /signup 409",
        "POST /session 200",
      ],
    );
  } finally {
    await hs.close();
  }
});

// --- Data API ---------------------------------------------------------------------------------

Deno.test("capability enforcement: a /pub/cipherpost/:rw session cannot write /pub/other/x", async () => {
  const hs = await startHomeserver({ signupMode: "open" });
  try {
    const { client, user } = await userClient(hs.baseUrl, hs.key);
    await client.put("/pub/cipherpost/ok", enc.encode("fine"));
    const e = await assertRejects(
      () => client.put("/pub/other/x", enc.encode("no")),
      HomeserverError,
    );
    assertEquals([e.kind, e.status, EXIT_OF[e.kind]], ["homeserver_forbidden", 403, 4]);
    assert(e.message.includes("/pub/other/x"), e.message);
    const d = await assertRejects(() => client.delete("/pub/other/x"), HomeserverError);
    assertEquals(d.status, 403);
    // Outside /pub/ entirely: 403 for everyone.
    const raw = await fetch(`${hs.baseUrl}/priv/x`, {
      method: "PUT",
      headers: { "pubky-host": user },
    });
    assertEquals(raw.status, 403);
    await raw.body?.cancel();
    // Another user's folder: the session is not theirs (401 with our cookie under their name is
    // impossible; without one it is 401).
    const other = await userClient(hs.baseUrl, hs.key);
    await other.client.put("/pub/cipherpost/theirs", enc.encode("x"));
    const foreign = new HomeserverClient({
      http: LOOPBACK,
      baseUrl: hs.baseUrl,
      user: other.user,
      auth: { cookie: () => null, reauthenticate: () => Promise.resolve(false) },
    });
    const f = await assertRejects(
      () => foreign.put("/pub/cipherpost/theirs", enc.encode("y")),
      HomeserverError,
    );
    assertEquals(f.kind, "homeserver_auth");
    assertEquals(
      await new Response((await other.client.get("/pub/cipherpost/theirs"))!.body).text(),
      "x",
    );
  } finally {
    await hs.close();
  }
});

Deno.test("tenancy: pubky-host header, ?pubky-host= query, bare-z32 Host; missing tenant is 404", async () => {
  const hs = await startHomeserver({ signupMode: "open" });
  try {
    const { client, user } = await userClient(hs.baseUrl, hs.key);
    await client.put("/pub/cipherpost/t", enc.encode("tenant"));
    const status = async (url: string, headers: Record<string, string> = {}) => {
      const r = await fetch(url, { headers });
      const body = await r.text();
      return `${r.status} ${r.status === 200 ? body : ""}`.trim();
    };
    assertEquals(
      await status(`${hs.baseUrl}/pub/cipherpost/t`, { "pubky-host": user }),
      "200 tenant",
    );
    assertEquals(await status(`${hs.baseUrl}/pub/cipherpost/t?pubky-host=${user}`), "200 tenant");
    assertEquals(await status(`${hs.baseUrl}/pub/cipherpost/t`), "404");
    // The display prefix is ignored (no tenant).
    assertEquals(
      await status(`${hs.baseUrl}/pub/cipherpost/t`, { "pubky-host": `pubky${user}` }),
      "404",
    );
    // Host as a bare z32 (as with Pubky TLS SNI) names the tenant too.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: hs.port });
    await conn.write(
      enc.encode(`GET /pub/cipherpost/t HTTP/1.1\r\nHost: ${user}\r\nConnection: close\r\n\r\n`),
    );
    const raw = await new Response(conn.readable).text();
    assert(raw.startsWith("HTTP/1.1 200"), raw.slice(0, 40));
    assert(raw.endsWith("tenant"));
  } finally {
    await hs.close();
  }
});

Deno.test("PUT stream / GET stream / HEAD / ETag + If-None-Match / DELETE", async () => {
  const hs = await startHomeserver({ signupMode: "open" });
  try {
    const { client } = await userClient(hs.baseUrl, hs.key);
    const data = new Uint8Array(300_000);
    for (let i = 0; i < data.length; i += 65536) {
      crypto.getRandomValues(data.subarray(i, i + 65536));
    }
    const path = partPath("0123456789abcdef0123456789abcdef", 0);
    assertEquals(path, "/pub/cipherpost/blobs/0123456789abcdef0123456789abcdef/part-00000");
    assertEquals(await client.head(path), null);
    await client.put(path, stream(data), { contentLength: data.length });
    const info = await client.head(path);
    assertEquals(info?.size, data.length);
    assertEquals(info?.etag, await etagOf(data));
    const got = await client.get(path);
    assert(got);
    assertEquals(got.etag, info?.etag);
    const back = new Uint8Array(await new Response(got.body).arrayBuffer());
    assertEquals(back.length, data.length);
    assert(back.every((b, i) => b === data[i]));
    // If-None-Match with the current ETag: 304 (null); with a list that contains it too.
    assertEquals(await client.get(path, { ifNoneMatch: info!.etag! }), null);
    assertEquals(await client.get(path, { ifNoneMatch: `"nope", ${info!.etag}` }), null);
    const other = await client.get(path, { ifNoneMatch: '"other"' });
    assert(other);
    await other.body.cancel();
    // Overwrite changes the ETag and the charged bytes stay one file's worth.
    await client.put(path, enc.encode("small"));
    assertEquals((await client.head(path))?.etag, await etagOf(enc.encode("small")));
    assertEquals(hs.usedBytes(client.user), 5 + 256);
    assertEquals(await client.delete(path), true);
    assertEquals(await client.delete(path), false);
    assertEquals(hs.usedBytes(client.user), 0);
    const nf = await assertRejects(() => client.get(path), HomeserverError);
    assertEquals([nf.kind, nf.status, EXIT_OF[nf.kind]], ["not_found", 404, 5]);
    // Anyone reads /pub/ without a session.
    await client.put("/pub/cipherpost/public", enc.encode("hello"));
    const anon = new HomeserverClient({ http: LOOPBACK, baseUrl: hs.baseUrl, user: client.user });
    assertEquals(
      await new Response((await anon.get("/pub/cipherpost/public"))!.body).text(),
      "hello",
    );
  } finally {
    await hs.close();
  }
});

Deno.test("401: the client re-authenticates once and retries (bytes and stream factories)", async () => {
  const hs = await startHomeserver({ signupMode: "open" });
  try {
    const u = await userClient(hs.baseUrl, hs.key);
    await u.client.put("/pub/cipherpost/a", enc.encode("1")); // first write signs in
    assertEquals(u.signins(), 1);
    // A cookie the server does not know, and no way to sign in: one clear error, exit 4.
    const stale = new HomeserverClient({
      http: LOOPBACK,
      baseUrl: hs.baseUrl,
      user: u.user,
      auth: {
        cookie: () => ({
          user: u.user,
          secret: "0000000000000000000000000A",
          capabilities: "/pub/cipherpost/:rw",
        }),
        reauthenticate: () => Promise.resolve(false),
      },
    });
    const e = await assertRejects(
      () => stale.put("/pub/cipherpost/b", enc.encode("2")),
      HomeserverError,
    );
    assertEquals([e.kind, EXIT_OF[e.kind]], ["homeserver_auth", 4]);
    // A client whose cookie is stale re-authenticates once.
    let cookie: SessionCookie | null = {
      user: u.user,
      secret: "0000000000000000000000000B",
      capabilities: "/pub/cipherpost/:rw",
    };
    let reauths = 0;
    const c = new HomeserverClient({
      http: LOOPBACK,
      baseUrl: hs.baseUrl,
      user: u.user,
      auth: {
        cookie: () => cookie,
        reauthenticate: async () => {
          reauths++;
          cookie = (await signIn({
            http: LOOPBACK,
            baseUrl: hs.baseUrl,
            homeserver: hs.key,
            seed: u.seed,
          })).cookie;
          return true;
        },
      },
    });
    hs.resetCounts();
    await c.put("/pub/cipherpost/c", () => stream(enc.encode("three")), { contentLength: 5 });
    assertEquals(reauths, 1);
    assertEquals(hs.counts.PUT, 2);
    assertEquals(await new Response((await c.get("/pub/cipherpost/c"))!.body).text(), "three");
    // A one-shot stream is not sent twice: the client signs in again and asks for a retry.
    cookie = { user: u.user, secret: "0000000000000000000000000D", capabilities: "" };
    const once = await assertRejects(
      () => c.put("/pub/cipherpost/e", stream(enc.encode("five"))),
      HomeserverError,
    );
    assertEquals([once.kind, once.status, reauths], ["homeserver_auth", 401, 2]);
    assert(once.message.includes("retry"), once.message);
    await c.put("/pub/cipherpost/e", stream(enc.encode("five")));
    assertEquals(await new Response((await c.get("/pub/cipherpost/e"))!.body).text(), "five");
    // Re-authentication that does not help: exactly one retry, then homeserver_auth.
    const never = new HomeserverClient({
      http: LOOPBACK,
      baseUrl: hs.baseUrl,
      user: u.user,
      auth: {
        cookie: () => ({ user: u.user, secret: "0000000000000000000000000C", capabilities: "" }),
        reauthenticate: () => Promise.resolve(true),
      },
    });
    hs.resetCounts();
    const n = await assertRejects(
      () => never.put("/pub/cipherpost/d", enc.encode("4")),
      HomeserverError,
    );
    assertEquals([n.kind, n.status, hs.counts.PUT], ["homeserver_auth", 401, 2]);
  } finally {
    await hs.close();
  }
});

Deno.test("413: a body over the limit is refused (with Content-Length, and streamed chunked)", async () => {
  const hs = await startHomeserver({ signupMode: "open", bodyLimitBytes: 4 * 1024 * 1024 });
  try {
    const { client } = await userClient(hs.baseUrl, hs.key);
    await client.put("/pub/cipherpost/warm", enc.encode("x"));
    const n = 4 * 1024 * 1024 + 1;
    // Bytes carry Content-Length (refused before the upload); streams go chunked (refused
    // while streaming).
    const a = await assertRejects(
      () => client.put("/pub/cipherpost/big", new Uint8Array(n)),
      HomeserverError,
    );
    assertEquals([a.kind, a.status, EXIT_OF[a.kind]], ["too_large", 413, 1]);
    const b = await assertRejects(
      () => client.put("/pub/cipherpost/big2", zeros(n)),
      HomeserverError,
    );
    assertEquals([b.kind, b.status], ["too_large", 413]);
    // Nothing half-written remains.
    assertEquals(await client.head("/pub/cipherpost/big"), null);
    assertEquals(await client.head("/pub/cipherpost/big2"), null);
    assertEquals(hs.usedBytes(client.user), 1 + 256);
  } finally {
    await hs.close();
  }
});

Deno.test("the default body limit is 100 MiB", async () => {
  const hs = await startHomeserver({ signupMode: "open" });
  try {
    const { client } = await userClient(hs.baseUrl, hs.key);
    // File-backed bodies: an in-process JS-stream upload to an in-process server is slow.
    const n = 100 * 1024 * 1024;
    const dir = await tmpDir();
    try {
      const file = `${dir}/blob`;
      const f = await Deno.open(file, { write: true, create: true });
      await f.truncate(n);
      f.close();
      const body = async () => (await Deno.open(file)).readable;
      await client.put("/pub/cipherpost/exact", body, { contentLength: n });
      assertEquals((await client.head("/pub/cipherpost/exact"))?.size, n);
      const g = await Deno.open(file, { write: true });
      await g.truncate(n + 1);
      g.close();
      const e = await assertRejects(
        () => client.put("/pub/cipherpost/over", body, { contentLength: n + 1 }),
        HomeserverError,
      );
      assertEquals(e.status, 413);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  } finally {
    await hs.close();
  }
});

Deno.test("507: the per-user quota gives a clear error, up front and mid-stream; nothing left behind", async () => {
  const hs = await startHomeserver({ signupMode: "open", quotaBytes: 1024 * 1024 });
  try {
    const { client } = await userClient(hs.baseUrl, hs.key);
    await client.put("/pub/cipherpost/a", new Uint8Array(600_000));
    const e = await assertRejects(
      () => client.put("/pub/cipherpost/b", new Uint8Array(600_000)),
      HomeserverError,
    );
    assertEquals([e.kind, e.status, EXIT_OF[e.kind]], ["homeserver_quota", 507, 1]);
    assert(e.message.includes("storage quota exceeded"), e.message);
    assertEquals(
      e.remedy?.step,
      "homeserver_gc",
      "the next step is data; the CLI names the command",
    );
    assert(
      describeError(e).includes(
        "hint: free space with: cipherpost homeserver gc, or ask the operator for more quota",
      ),
    );
    const s = await assertRejects(
      () => client.put("/pub/cipherpost/c", zeros(600_000)),
      HomeserverError,
    );
    assertEquals(s.status, 507);
    assertEquals(await client.head("/pub/cipherpost/c"), null);
    assertEquals(hs.usedBytes(client.user), 600_000 + 256);
    // Overwriting a file only charges the difference.
    await client.put("/pub/cipherpost/a", new Uint8Array(900_000));
    // Two PUTs at once cannot both take the same free space: one is refused, the quota holds.
    await client.delete("/pub/cipherpost/a");
    const both = await Promise.allSettled([
      client.put("/pub/cipherpost/d", new Uint8Array(600_000)),
      client.put("/pub/cipherpost/e", new Uint8Array(600_000)),
    ]);
    assertEquals(both.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
    const refused = both.find((r) => r.status === "rejected") as PromiseRejectedResult;
    assertEquals((refused.reason as HomeserverError).status, 507);
    assertEquals(hs.usedBytes(client.user), 600_000 + 256);
  } finally {
    await hs.close();
  }
});

/** Wait until `cond` holds (polling); throws after `ms` so a broken server fails the test. */
async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A request body that stays open until the test writes to it and closes it. */
function openBody() {
  let c!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (x) => void (c = x) });
  return {
    body,
    end(bytes: Uint8Array) {
      c.enqueue(bytes);
      c.close();
    },
  };
}

Deno.test("quota: PUTs and a DELETE of one existing path at once charge what is stored, once", async () => {
  const hs = await startHomeserver({ signupMode: "open", quotaBytes: 4 * 1024 * 1024 });
  try {
    const { client } = await userClient(hs.baseUrl, hs.key);
    const p = "/pub/cipherpost/same";
    await client.put(p, new Uint8Array(1024 * 1024));
    assertEquals(hs.usedBytes(client.user), 1024 * 1024 + 256);
    // Two PUTs that both find the 1 MiB file, still streaming when the first one ends: the old
    // file must be paid back once, not by each of them.
    const before = hs.counts.PUT;
    const a = openBody(), b = openBody();
    const pa = client.put(p, a.body);
    const pb = client.put(p, b.body);
    await until(() => hs.counts.PUT === before + 2, "both PUTs reach the stand-in");
    a.end(new Uint8Array(1000));
    await pa;
    b.end(new Uint8Array(2000).fill(7));
    await pb;
    assertEquals((await client.head(p))?.size, 2000);
    assertEquals(hs.usedBytes(client.user), 2000 + 256);
    // A DELETE that arrives while a PUT of the same file streams is not paid back twice either.
    const c = openBody();
    const pc = client.put(p, c.body);
    await until(() => hs.counts.PUT === before + 3, "the third PUT reaches the stand-in");
    const deleted = client.delete(p);
    await until(() => hs.counts.DELETE === 1, "the DELETE reaches the stand-in");
    c.end(new Uint8Array(3000));
    await pc;
    await deleted;
    assertEquals(await client.head(p), null);
    assertEquals(hs.usedBytes(client.user), 0);
    // The quota still holds: what is left is the whole 4 MiB, and not a byte more.
    await client.put("/pub/cipherpost/fill", new Uint8Array(4 * 1024 * 1024 - 256));
    const over = await assertRejects(
      () => client.put("/pub/cipherpost/more", new Uint8Array(1)),
      HomeserverError,
    );
    assertEquals(over.status, 507);
  } finally {
    await hs.close();
  }
});

Deno.test("413: /session and /signup refuse a body over 64 KiB after reading 64 KiB + 1, not the rest", async () => {
  const hs = await startHomeserver({ signupMode: "open" });
  try {
    for (const route of ["/session", "/signup"]) {
      // 64 KiB + 1 bytes, then the body stays open: the answer must come without the rest.
      let close = () => {};
      let ended = false;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < 16; i++) c.enqueue(new Uint8Array(4096));
          c.enqueue(new Uint8Array(1));
          close = () => {
            if (ended) return;
            ended = true;
            try {
              c.close();
            } catch { /* the request is over: fetch has cancelled the body */ }
          };
        },
      });
      // should the stand-in wait for the end of the body, the body ends after 30 s and the
      // assert below names the failure (instead of a hung test)
      const fallback = setTimeout(() => close(), 30_000);
      try {
        const res = await fetch(`${hs.baseUrl}${route}`, {
          method: "POST",
          body,
          duplex: "half",
        } as RequestInit);
        assert(!ended, `${route}: answered only once the whole body was sent`);
        assertEquals(res.status, 413, route);
        await res.body?.cancel();
      } finally {
        clearTimeout(fallback);
        close();
      }
    }
    // A declared Content-Length over the limit is refused without reading the body at all.
    const big = await fetch(`${hs.baseUrl}/session`, {
      method: "POST",
      body: new Uint8Array(64 * 1024 + 1),
    });
    assertEquals(big.status, 413);
    await big.body?.cancel();
    // An ordinary sign-up still works after these.
    const r = await signIn({
      http: LOOPBACK,
      baseUrl: hs.baseUrl,
      homeserver: hs.key,
      seed: generateKeypair().seed,
    });
    assert(r.signedUp);
  } finally {
    await hs.close();
  }
});

Deno.test("429: Retry-After is honoured, then the request succeeds; too long a wait fails clearly", async () => {
  const hs = await startHomeserver({ signupMode: "open" });
  try {
    const u = await userClient(hs.baseUrl, hs.key);
    let limited = 1;
    const f = async (input: string | URL, init?: RequestInit) => {
      if (init?.method === "PUT" && limited-- > 0) {
        return new Response("slow down", { status: 429, headers: { "Retry-After": "0" } });
      }
      return await fetch(input, init);
    };
    let cookie: SessionCookie | null = null;
    const c = new HomeserverClient({
      http: LOOPBACK,
      baseUrl: hs.baseUrl,
      user: u.user,
      fetch: f,
      auth: {
        cookie: () => cookie,
        reauthenticate: async () => {
          cookie = (await signIn({
            http: LOOPBACK,
            baseUrl: hs.baseUrl,
            homeserver: hs.key,
            seed: u.seed,
          })).cookie;
          return true;
        },
      },
    });
    await c.put("/pub/cipherpost/r", enc.encode("ok"));
    assertEquals(limited, -1);
    const slow = new HomeserverClient({
      http: LOOPBACK,
      baseUrl: hs.baseUrl,
      user: u.user,
      fetch: () =>
        Promise.resolve(new Response("", { status: 429, headers: { "Retry-After": "3600" } })),
    });
    const e = await assertRejects(() => slow.head("/pub/cipherpost/r"), HomeserverError);
    assertEquals([e.kind, EXIT_OF[e.kind], e.retryAfterMs], ["rate_limited", 6, 3_600_000]);
  } finally {
    await hs.close();
  }
});

Deno.test("listing: deep/shallow, limit, cursor (pubky:// or bare), reverse; 404 → []; bad cursor 400", async () => {
  const hs = await startHomeserver({ signupMode: "open" });
  try {
    const { client, user } = await userClient(hs.baseUrl, hs.key);
    const files = [
      "/pub/cipherpost/blobs/r1/part-00000",
      "/pub/cipherpost/blobs/r1/part-00001",
      "/pub/cipherpost/blobs/r1/manifest",
      "/pub/cipherpost/blobs/r2/part-00000",
      "/pub/cipherpost/note",
    ];
    for (const p of files) await client.put(p, enc.encode(p));
    const paths = (es: { path: string }[]) => es.map((e) => e.path);
    assertEquals(paths(await client.list("/pub/cipherpost/")), [...files].sort());
    assertEquals(
      (await client.list("/pub/cipherpost/"))[0].url,
      `pubky://${user}/pub/cipherpost/blobs/r1/manifest`,
    );
    assertEquals(paths(await client.list("/pub/cipherpost/", { shallow: true })), [
      "/pub/cipherpost/blobs/",
      "/pub/cipherpost/note",
    ]);
    assertEquals(paths(await client.list("/pub/cipherpost/blobs/", { shallow: true })), [
      "/pub/cipherpost/blobs/r1/",
      "/pub/cipherpost/blobs/r2/",
    ]);
    const page1 = await client.list("/pub/cipherpost/", { limit: 2 });
    assertEquals(paths(page1), [...files].sort().slice(0, 2));
    const page2 = await client.list("/pub/cipherpost/", { limit: 2, cursor: page1[1].url });
    assertEquals(paths(page2), [...files].sort().slice(2, 4));
    const bare = await client.list("/pub/cipherpost/", {
      limit: 2,
      cursor: page1[1].url.replace("pubky://", ""),
    });
    assertEquals(paths(bare), paths(page2));
    assertEquals(paths(await client.list("/pub/cipherpost/", { reverse: true, limit: 2 })), [
      "/pub/cipherpost/note",
      "/pub/cipherpost/blobs/r2/part-00000",
    ]);
    assertEquals(
      paths(await client.list("/pub/cipherpost/", { reverse: true, cursor: page1[1].url })),
      ["/pub/cipherpost/blobs/r1/manifest"],
    );
    const all: string[] = [];
    for await (const e of client.listAll("/pub/cipherpost/", { pageSize: 2 })) all.push(e.path);
    assertEquals(all, [...files].sort());
    assertEquals(await client.list("/pub/cipherpost/nothing/"), []);
    const bad = await assertRejects(
      () => client.list("/pub/cipherpost/", { cursor: "/pub/cipherpost/note" }),
      HomeserverError,
    );
    assertEquals(bad.status, 400);
    // Server-side default limit 100, cap 1000 (raw requests).
    for (let i = 0; i < 120; i++) {
      await client.put(`/pub/cipherpost/many/${String(i).padStart(3, "0")}`, enc.encode("."));
    }
    assertEquals((await client.list("/pub/cipherpost/many/")).length, 100);
    assertEquals((await client.list("/pub/cipherpost/many/", { limit: 5000 })).length, 120);
  } finally {
    await hs.close();
  }
});

// --- Discovery --------------------------------------------------------------------------------

Deno.test("discovery: _pubky → homeserver packet → endpoint; no homeserver vs failed lookup", async () => {
  await withTestnet(async (net) => {
    const t = testTransport(net);
    const hs = await startHomeserver({ signupMode: "open", transport: t });
    try {
      assert(hs.published);
      const me = generateKeypair();
      // No packet at all, and a packet without _pubky: both "no homeserver" (exit 5).
      const none = await assertRejects(() => homeserverOf(t, me.publicKey), CipherpostError);
      assertEquals([none.kind, EXIT_OF[none.kind]], ["no_homeserver", 5]);
      await t.update(
        me.seed,
        me.publicKey,
        (rs) => rs.length ? null : [txtRecord("_other", 300, "keep me")],
      );
      const none2 = await assertRejects(() => homeserverOf(t, me.publicKey), CipherpostError);
      assertEquals(none2.kind, "no_homeserver");
      // Read-merge-write of _pubky keeps the other record.
      await t.update(
        me.seed,
        me.publicKey,
        (rs) => withPubkyRecord(encodeZ32(me.publicKey), rs, hs.key),
      );
      const got = await t.resolve(me.publicKey);
      assertEquals(recordsNamed(got!.packet, "_other").length, 1);
      const ep = await discover(t, me.publicKey);
      assertEquals(ep, { homeserver: hs.key, baseUrl: hs.baseUrl });
      // The homeserver's packet: the localhost record's SvcParam 65280 names the HTTP port.
      const hp = signPacket(generateKeypair().seed, [pubkyRecord(hs.key)], Date.now() * 1000);
      assertEquals(endpointInPacket(hp), null);
      // A lookup that reaches nobody is a network error (exit 6), not "no homeserver".
      const dead = new Transport({
        bootstrap: [],
        relays: ["http://127.0.0.1:9"],
        useDht: false,
        useRelays: true,
        timeoutMs: 300,
      });
      try {
        const n = await assertRejects(() => discover(dead, me.publicKey), CipherpostError);
        assertEquals([n.kind, EXIT_OF[n.kind]], ["network", 6]);
      } finally {
        await dead.close();
      }
      // The reader finds the files of anyone by discovery.
      const conn = await connect(t, {
        home: await tmpDir(),
        user: me.publicKey,
        seed: me.seed,
        signup: true,
      });
      await conn.client.put("/pub/cipherpost/hello", enc.encode("found"));
      const r = await reader(t, me.publicKey);
      assertEquals(
        await new Response((await r.get("/pub/cipherpost/hello"))!.body).text(),
        "found",
      );
    } finally {
      await hs.close();
      await t.close();
    }
  });
});

Deno.test("stored session: 0600, /pub/cipherpost/:rw only, reused without the seed", async () => {
  const hs = await startHomeserver({ signupMode: "open" });
  const home = await tmpDir();
  try {
    const me = generateKeypair();
    const fakeTransport = {} as never; // homeserver given and session stored: no lookups
    const baseHs = { home, user: me.publicKey, http: LOOPBACK };
    // With an explicit homeserver and no stored session, connect resolves the endpoint, so give
    // it through a stored session made by signIn directly.
    const r = await signIn({
      http: LOOPBACK,
      baseUrl: hs.baseUrl,
      homeserver: hs.key,
      seed: me.seed,
    });
    const { saveSession } = await import("../lib/homeserver/session_store.ts");
    await saveSession(home, {
      homeserver: hs.key,
      baseUrl: hs.baseUrl,
      cookie: r.cookie,
      createdAt: "x",
    });
    assertEquals((await Deno.stat(sessionFile(home))).mode! & 0o777, 0o600);
    const c = await connect(fakeTransport, baseHs);
    assertEquals(c.session, "stored");
    await c.client.put("/pub/cipherpost/x", enc.encode("no passphrase needed"));
    // A stored file with wider capabilities is ignored.
    const j = JSON.parse(await Deno.readTextFile(sessionFile(home)));
    j.capabilities = "/:rw";
    await Deno.writeTextFile(sessionFile(home), JSON.stringify(j));
    assertEquals(await loadSession(home, encodeZ32(me.publicKey)), null);
  } finally {
    await hs.close();
    await Deno.remove(home, { recursive: true });
  }
});

// --- CLI --------------------------------------------------------------------------------------

Deno.test("cli: homeserver signup (token file) publishes _pubky keeping other records; status", async () => {
  await withTestnet(async (net) => {
    const hs = await startHomeserverOnTestnet(net, { signupMode: "token_required" });
    const base = await tmpDir();
    try {
      const alice = await makeUser(base, "alice");
      // Something else in alice's packet first: a v1 share record.
      const sent = await sendAs(
        alice,
        net,
        ["--self", "-p", "x", "--protocol", "1", "-"],
        "s3cret",
      );
      assertEquals(sent.code, 0, sent.stderr);
      const env = { ...alice.env };
      // No token: a clear error, exit 4, nothing stored.
      const noTok = await cli(["homeserver", "signup", hs.key], { home: alice.home, env, net });
      assertEquals(noTok.code, 4, noTok.stderr);
      assert(noTok.stderr.includes("signup requires a signup token"), noTok.stderr);
      assert(!(await exists(sessionFile(alice.home))));
      const tokenFile = `${base}/token.txt`;
      await Deno.writeTextFile(tokenFile, hs.mintSignupToken() + "\n");
      // A token file readable by others is refused, as a passphrase file is (exit 4).
      await Deno.chmod(tokenFile, 0o644);
      const loose = await cli(
        ["homeserver", "signup", hs.key, "--signup-token-file", tokenFile],
        { home: alice.home, env, net },
      );
      assertEquals(loose.code, 4, loose.stderr);
      assert(loose.stderr.includes("permissions too permissive"), loose.stderr);
      assert(!(await exists(sessionFile(alice.home))));
      await Deno.chmod(tokenFile, 0o600);
      hs.resetCounts();
      const up = await cli(
        ["homeserver", "signup", hs.key, "--signup-token-file", tokenFile],
        { home: alice.home, env, net },
      );
      assertEquals(up.code, 0, up.stderr);
      assertEquals(up.stdout.trim(), hs.key);
      assert(up.stderr.includes("signed up at"), up.stderr);
      // Exactly one session, asking for /pub/cipherpost/:rw only.
      assertEquals(hs.sessionCapabilities(alice.z32), ["/pub/cipherpost/:rw"]);
      assertEquals((await Deno.stat(sessionFile(alice.home))).mode! & 0o777, 0o600);
      const t = testTransport(net);
      try {
        const p = await t.resolve(decodeZ32(alice.z32));
        assert(p);
        assertEquals(homeserverInPacket(p.packet), hs.key);
        assertEquals(recordsNamed(p.packet, "_cipherpost").length, 1, "the share record is kept");
      } finally {
        await t.close();
      }
      // A second signup signs in (token already used does not matter) and changes nothing.
      const again = await cli(["homeserver", "signup", hs.key], { home: alice.home, env, net });
      assertEquals(again.code, 0, again.stderr);
      assert(again.stderr.includes("signed in at"), again.stderr);
      assert(again.stderr.includes("already points there"), again.stderr);

      // Status: files and bytes per blob folder, judged as gc judges them: a live large share
      // of this home, an expired one, and a folder this home knows nothing of.
      const state = new State(alice.home);
      const ids = { live: "a".repeat(32), expired: "b".repeat(32), other: "c".repeat(32) };
      const now = Math.floor(Date.now() / 1000);
      for (
        const [ref, id, expiresAt] of [["1", ids.live, now + 3600], [
          "2",
          ids.expired,
          now - 1,
        ]] as const
      ) {
        await state.saveSent({
          version: 2,
          shareRef: ref.repeat(32),
          uri: `cipherpost://${alice.z32}/x`,
          sender: alice.z32,
          recipient: null,
          createdAt: 0,
          expiresAt,
          locator: "0".repeat(64),
          packets: [],
          large: { blob_id: id },
        });
      }
      const conn = await connect({} as never, {
        home: alice.home,
        user: decodeZ32(alice.z32),
        http: LOOPBACK,
      });
      for (const id of Object.values(ids)) {
        await conn.client.put(partPath(id, 0), new Uint8Array(1000));
        await conn.client.put(partPath(id, 1), new Uint8Array(500));
      }
      await conn.client.put("/pub/cipherpost/loose", new Uint8Array(7));
      const st = await cli(["homeserver", "status", "--json"], { home: alice.home, env: {}, net });
      assertEquals(st.code, 0, st.stderr);
      const s = JSON.parse(st.stdout);
      assertEquals([s.user, s.homeserver, s.base_url], [alice.z32, hs.key, hs.baseUrl]);
      assert(String(s.session).startsWith("valid (/pub/cipherpost/:rw"), s.session);
      assertEquals([s.stored.files, s.stored.bytes, s.stored.other_files], [7, 4507, 1]);
      assertEquals(s.stored.blobs, [
        { blob_id: ids.live, files: 2, bytes: 1500, state: "live", share_ref: "1".repeat(32) },
        {
          blob_id: ids.expired,
          files: 2,
          bytes: 1500,
          state: "expired",
          share_ref: "2".repeat(32),
        },
        { blob_id: ids.other, files: 2, bytes: 1500, state: "unknown" },
      ]);
      const text = await cli(["homeserver", "status"], { home: alice.home, env: {}, net });
      assertEquals(text.code, 0, text.stderr);
      assert(text.stdout.includes(`homeserver:  ${hs.key}`), text.stdout);
      assert(text.stdout.includes("7 file(s), 4.4 KiB in 3 blob folder(s)"), text.stdout);
      assert(!/share_ref|not in this home/.test(text.stdout), text.stdout);
      assert(text.stdout.includes(`${ids.other}  2 file(s)  1.5 KiB  not sent from this home`));
      // gc agrees: the expired folder goes, the live one and the unknown one stay
      const gc = await cli(["homeserver", "gc"], { home: alice.home, env: {}, net });
      assertEquals(gc.code, 0, gc.stderr);
      const after = JSON.parse(
        (await cli(["homeserver", "status", "--json"], { home: alice.home, env: {}, net })).stdout,
      );
      assertEquals(after.stored.blobs.map((b: { state: string }) => b.state), ["live", "unknown"]);
      // After signing out on the server the stored session is reported as dead.
      const stored = await loadSession(alice.home, alice.z32);
      await signOut(hs.baseUrl, stored!.cookie, { http: LOOPBACK });
      const dead = await cli(["homeserver", "status", "--json"], {
        home: alice.home,
        env: {},
        net,
      });
      assert(JSON.parse(dead.stdout).session.startsWith("expired or signed out"), dead.stdout);
    } finally {
      await hs.close();
      await Deno.remove(base, { recursive: true });
    }
  });
});

/** Run `cipherpost testnet --nodes 4 --homeserver <extra>`; `f` gets its first `n` stdout lines. */
async function withCliTestnet(
  extra: string[],
  n: number,
  f: (env: Record<string, string>, stderr: () => Promise<string>) => Promise<void>,
): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-P=cipherpost",
      "--no-prompt",
      "--quiet",
      new URL("../main.ts", import.meta.url).pathname,
      "testnet",
      "--nodes",
      "4",
      "--homeserver",
      ...extra,
    ],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const lines: string[] = [];
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (lines.length < n) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    const parts = buf.split("\n");
    buf = parts.pop()!;
    lines.push(...parts);
  }
  // stderr is collected as it comes; `stderr()` waits for the line naming the signup mode
  let errText = "";
  const errDone = (async () => {
    for await (const c of child.stderr.pipeThrough(new TextDecoderStream())) errText += c;
  })();
  const stderr = async () => {
    for (let i = 0; i < 200 && !/^signup /m.test(errText); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    return errText;
  };
  try {
    await f(Object.fromEntries(lines.map((l) => l.split("=", 2) as [string, string])), stderr);
  } finally {
    child.kill("SIGTERM");
    await reader.cancel();
    await errDone;
    await child.status;
  }
}

/**
 * A transport that reaches the CLI testnet through its relay, with the homeserver settings its
 * printed lines give (as a shell that exports them does).
 */
function relayTransport(env: Record<string, string>): Transport {
  const t = new Transport({
    bootstrap: env.CIPHERPOST_BOOTSTRAP.split(","),
    relays: [env.CIPHERPOST_RELAYS],
    useDht: false,
    useRelays: true,
    timeoutMs: 2000,
  });
  bindHomeserverHttp(t, homeserverHttpFrom((name) => env[name]));
  return t;
}

Deno.test("cli: testnet --homeserver has open signup by default: several identities sign up", async () => {
  await withCliTestnet([], 4, async (env, stderr) => {
    assert(isZ32Key(env.CIPHERPOST_HOMESERVER), JSON.stringify(env));
    assertEquals(env.CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK, "1", "the loopback switch is printed");
    // without the printed switch the stand-in's plain-http loopback endpoint is refused
    const bare = new Transport({
      bootstrap: env.CIPHERPOST_BOOTSTRAP.split(","),
      relays: [env.CIPHERPOST_RELAYS],
      useDht: false,
      useRelays: true,
      timeoutMs: 2000,
    });
    try {
      const refused = await assertRejects(
        () => endpointOf(bare, env.CIPHERPOST_HOMESERVER),
        CipherpostError,
      );
      assertEquals([refused.kind, EXIT_OF[refused.kind]], ["homeserver", 6]);
    } finally {
      await bare.close();
    }
    assertEquals(env.CIPHERPOST_SIGNUP_TOKEN, undefined);
    assert((await stderr()).includes("signup open: any number of local identities"));
    const t = relayTransport(env);
    try {
      const baseUrl = await endpointOf(t, env.CIPHERPOST_HOMESERVER);
      for (let i = 0; i < 3; i++) {
        const r = await signIn({
          http: LOOPBACK,
          baseUrl,
          homeserver: env.CIPHERPOST_HOMESERVER,
          seed: generateKeypair().seed,
        });
        assert(r.signedUp, `identity ${i} signed up`);
      }
    } finally {
      await t.close();
    }
  });
});

Deno.test("cli: testnet --signup-mode token_required mints several tokens; a used one says what to do", async () => {
  const extra = ["--signup-mode", "token_required", "--signup-tokens", "3"];
  await withCliTestnet(extra, 5, async (env, stderr) => {
    assert(/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/.test(env.CIPHERPOST_SIGNUP_TOKEN));
    const err = await stderr();
    assert(err.includes("3 single-use tokens, one per identity"), err);
    const tokens = [...err.matchAll(/^ {2}([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})$/gm)].map((m) =>
      m[1]
    );
    assertEquals(tokens.length, 3, err);
    assertEquals(tokens[0], env.CIPHERPOST_SIGNUP_TOKEN);
    // The homeserver is found through the testnet's relay, and takes each printed token once.
    const t = relayTransport(env);
    try {
      const baseUrl = await endpointOf(t, env.CIPHERPOST_HOMESERVER);
      const signUp = (signupToken: string) =>
        signIn({
          http: LOOPBACK,
          baseUrl,
          homeserver: env.CIPHERPOST_HOMESERVER,
          seed: generateKeypair().seed,
          signupToken,
        });
      for (const tok of tokens) assert((await signUp(tok)).signedUp);
      const used = await signUp(tokens[0]).then(() => null, (e) => e);
      assert(used instanceof CipherpostError, String(used));
      assertEquals(used.message, "homeserver: the signup token is invalid or already used");
      assert(/admits one identity, once: ask the homeserver's operator/.test(used.hint ?? ""));
    } finally {
      await t.close();
    }
  });
});

Deno.test("cli: a v1 share never crowds out _pubky: it goes as v2, then signup fits and a large share works", async () => {
  await withTestnet(async (net) => {
    const hs = await startHomeserverOnTestnet(net, { signupMode: "open" });
    const base = await tmpDir();
    const t = testTransport(net);
    try {
      const alice = await makeUser(base, "alice");
      const bob = await makeUser(base, "bob");
      // 60 bytes to another key: a v1 record of ~880 bytes, which fits a packet alone but
      // leaves no room for a _pubky record (~90 bytes)
      const secret = "s".repeat(60);
      const first = await sendAs(alice, net, ["--share", bob.z32, "-p", "x", "-"], secret);
      assertEquals(first.code, 0, first.stderr);
      assert(first.stderr.includes("note: sent as protocol v2"), first.stderr);
      assert(first.stderr.includes("keeps room for the _pubky"), first.stderr);
      // a small one still goes as v1, next to the room kept
      const small = await sendAs(alice, net, ["--self", "-p", "x", "-"], "tiny");
      assertEquals(small.code, 0, small.stderr);
      assert(/^cipherpost:\/\/[a-z0-9]{52}\/[0-9a-f]{32}$/.test(small.uri), small.uri);
      const up = await cli(["homeserver", "signup", hs.key], {
        home: alice.home,
        env: alice.env,
        net,
      });
      assertEquals(up.code, 0, up.stderr);
      assert(!up.stderr.includes("did not fit"), up.stderr);
      assert(up.stderr.includes("published _pubky record"), up.stderr);
      const p = await t.resolve(decodeZ32(alice.z32));
      assert(p);
      assertEquals(homeserverInPacket(p.packet), hs.key);
      assertEquals(recordsNamed(p.packet, "_cipherpost").length, 1, "the v1 share is kept");
      // the saved copy (what republish re-puts) has the _pubky record too
      const saved = await new State(alice.home).loadOwnPacket();
      assertEquals(homeserverInPacket(packetFromBytes(saved!)), hs.key);
      // both shares open, and a large share goes through the homeserver
      for (
        const [who, uri, want] of [[bob, first.uri, secret], [alice, small.uri, "tiny"]] as const
      ) {
        const r = await receiveAs(who, net, uri, ["--accept", alice.z32]);
        assertEquals(r.code, 0, r.stderr);
        assertEquals(r.stdout, want);
      }
      const big = `${base}/big.bin`;
      const bytes = new Uint8Array(200_000).map((_, i) => (i * 7919) & 0xff);
      await Deno.writeFile(big, bytes);
      const large = await sendAs(alice, net, [
        "--share",
        bob.z32,
        "-p",
        "big",
        "--material-file",
        big,
      ]);
      assertEquals(large.code, 0, large.stderr);
      const out = `${base}/big-copy.bin`;
      const got = await receiveAs(bob, net, large.uri, ["--accept", alice.z32, "-o", out]);
      assertEquals(got.code, 0, got.stderr);
      assert(/Protocol:\s+v2 \+ homeserver/.test(got.stderr), got.stderr);
      assertEquals(await Deno.readFile(out), bytes);
    } finally {
      await t.close();
      await hs.close();
      await Deno.remove(base, { recursive: true });
    }
  });
});

Deno.test("cli: homeserver signup with a full PKARR packet warns, keeps the packet, stores the session", async () => {
  await withTestnet(async (net) => {
    const hs = await startHomeserverOnTestnet(net, { signupMode: "open" });
    const base = await tmpDir();
    const t = testTransport(net);
    try {
      const seed = new Uint8Array(32).fill(0x5a);
      const bob = await makeUserWithSeed(base, "bob", seed);
      // a packet with ~950 bytes of other records: no room for _pubky
      const filler = txtRecord("_other", 300, "x".repeat(900));
      const full = signPacket(seed, [filler], Date.now() * 1000);
      await t.publish(full);
      const up = await cli(["homeserver", "signup", hs.key], { home: bob.home, env: bob.env, net });
      assertEquals(up.code, 0, up.stderr);
      assertEquals(up.stdout.trim(), hs.key);
      assert(up.stderr.includes("warning: the _pubky record did not fit"), up.stderr);
      assert(up.stderr.includes("run this signup again"), up.stderr);
      assertEquals((await Deno.stat(sessionFile(bob.home))).mode! & 0o777, 0o600);
      const p = await t.resolve(decodeZ32(bob.z32));
      assert(p);
      assertEquals(p.packet.timestamp, full.timestamp, "the packet was left as it was");
      assertEquals(homeserverInPacket(p.packet), null);
    } finally {
      await t.close();
      await hs.close();
    }
  });
});
