// Where a homeserver request may go, and how long it may take: a
// sender's pointer chooses the homeserver key, so its endpoint is checked (HTTPS to a public
// name; loopback only with the testnet switch); redirects are never followed; a server that
// hangs or drips fails the request within the timeout; a listing that does not advance ends.
// Every hostile server here is a real one on 127.0.0.1, written inline.
import assert from "node:assert/strict";
import { generateKeypair } from "../lib/crypto/keys.ts";
import { readBlobStatus } from "../lib/homeserver/blob_status.ts";
import { HomeserverClient } from "../lib/homeserver/client.ts";
import { connect } from "../lib/homeserver/connect.ts";
import { endpointOf, HTTP_PORT_PARAM, PORT_PARAM } from "../lib/homeserver/discovery.ts";
import {
  bindHomeserverHttp,
  checkEndpoint,
  type HomeserverHttp,
} from "../lib/homeserver/endpoint_policy.ts";
import { HomeserverError } from "../lib/homeserver/http.ts";
import { homeserverGet } from "../lib/homeserver/request.ts";
import { signIn } from "../lib/homeserver/session.ts";
import { saveSession } from "../lib/homeserver/session_store.ts";
import { homeserverHttpFrom } from "../lib/cli/network_options.ts";
import { EXIT_OF } from "../lib/cli/exit_codes.ts";
import { runJob } from "../lib/flows/large/part.ts";
import type { DnsRecord } from "../lib/pkarr/dns.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";
import { signPacket } from "../lib/pkarr/signed_packet.ts";
import { Transport } from "../lib/pkarr/transport.ts";
import { startHomeserver } from "../lib/testing/homeserver.ts";
import { startTestnet, type Testnet } from "../lib/testing/testnet.ts";
import { CipherpostError } from "../lib/util/errors.ts";
import { cli, makeUserWithSeed, tmpDir } from "./_helpers.ts";

const enc = new TextEncoder();
const LOOPBACK: HomeserverHttp = { allowLoopback: true };
/** Small timeouts so hostile servers fail fast; nothing asserts how fast. */
const QUICK: HomeserverHttp = { allowLoopback: true, firstByteTimeoutMs: 400, idleTimeoutMs: 400 };
const USER = encodeZ32(generateKeypair().publicKey);

async function rejects<E extends Error>(
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

/**
 * A TCP listener on 127.0.0.1 counting connections (any: HTTP or a TLS handshake); it answers
 * an HTTP 404 and closes.
 */
function countingListener() {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let n = 0;
  const handlers = new Set<Promise<void>>();
  const loop = (async () => {
    for await (const c of l) {
      n++;
      const h = (async () => {
        try {
          await c.read(new Uint8Array(16384));
          await c.write(
            enc.encode("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
          );
        } catch { /* the client went away */ }
        try {
          c.close();
        } catch { /* closed */ }
      })();
      handlers.add(h);
      h.finally(() => handlers.delete(h));
    }
  })().catch(() => {});
  return {
    port: l.addr.port,
    count: () => n,
    async close() {
      l.close();
      await loop;
      await Promise.all(handlers);
    },
  };
}

/** An HTTP server on 127.0.0.1 counting its requests. */
function httpServer(handler: (req: Request) => Response | Promise<Response>) {
  let n = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    n++;
    return handler(req);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    count: () => n,
    close: () => server.shutdown(),
  };
}

const u16 = (n: number) => new Uint8Array([n >> 8, n & 0xff]);
const apex = (target: string, params: [number, Uint8Array][] = []): DnsRecord => ({
  name: ".",
  ttl: 300,
  data: { type: "HTTPS", priority: 10, target, params },
});

Deno.test("endpoint policy: HTTPS to public names only; loopback only with the switch", () => {
  const refused = [
    "http://127.0.0.1:8080",
    "https://127.0.0.1",
    "https://2130706433", // 127.0.0.1 spelled as a number
    "https://169.254.169.254",
    "https://10.0.0.1:6379",
    "https://192.168.1.1",
    "https://100.64.0.1",
    "https://[::1]",
    "http://[::1]:8080",
    "https://[fd00::1]",
    "https://[fe80::1]",
    "https://localhost",
    "https://metadata",
    "https://metadata.google.internal",
    "https://metadata.google.internal.",
    "https://printer.local",
    "https://router.lan",
    "https://nas.home.arpa",
    "https://app.localhost",
    "http://example.com",
    "https://user:pw@example.com",
    "ftp://example.com",
    "not a url",
  ];
  for (const url of refused) {
    assert.throws(
      () => checkEndpoint(url),
      (e: unknown) =>
        e instanceof CipherpostError && e.kind === "homeserver" &&
        e.message.startsWith("homeserver refused: "),
      url,
    );
  }
  for (const url of ["https://example.com", "https://homeserver.pubky.app:8443"]) {
    assert.equal(checkEndpoint(url).origin, new URL(url).origin);
  }
  // the switch admits loopback, over http or https, and nothing else
  for (const url of ["http://127.0.0.1:8080", "https://127.0.0.1", "http://[::1]:8080"]) {
    assert.equal(checkEndpoint(url, LOOPBACK).origin, new URL(url).origin);
  }
  checkEndpoint("http://localhost:1", LOOPBACK);
  for (
    const url of [
      "http://10.0.0.1:6379",
      "https://169.254.169.254",
      "https://metadata.google.internal",
      "http://example.com",
    ]
  ) {
    assert.throws(() => checkEndpoint(url, LOOPBACK), CipherpostError, url);
  }
});

Deno.test("endpoint policy: the CLI's environment (switch and timeout), never on by default", () => {
  const from = (env: Record<string, string>) => homeserverHttpFrom((n) => env[n]);
  assert.deepEqual(from({}), {});
  assert.deepEqual(from({ CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK: "0" }), {});
  assert.deepEqual(from({ CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK: "1" }), { allowLoopback: true });
  assert.deepEqual(from({ CIPHERPOST_HOMESERVER_TIMEOUT: "5000" }), {
    firstByteTimeoutMs: 5000,
    idleTimeoutMs: 5000,
  });
  const bads: Record<string, string>[] = [
    { CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK: "yes" },
    { CIPHERPOST_HOMESERVER_TIMEOUT: "5s" },
    { CIPHERPOST_HOMESERVER_TIMEOUT: "10" },
    { CIPHERPOST_HOMESERVER_TIMEOUT: "99999999" },
  ];
  for (const bad of bads) {
    assert.throws(
      () => from(bad),
      (e: unknown) => e instanceof CipherpostError && e.kind === "usage",
      JSON.stringify(bad),
    );
  }
});

Deno.test("discovery: a homeserver packet naming loopback, IP literals or internal names is refused, no request made", async () => {
  const counter = countingListener();
  let net: Testnet | null = null;
  let t: Transport | null = null;
  try {
    net = await startTestnet({ nodes: 8 });
    t = new Transport({
      bootstrap: net.bootstrap,
      relays: [net.relayUrl],
      useDht: true,
      useRelays: true,
      timeoutMs: 2000,
    });
    const cases: [string, DnsRecord, string][] = [
      ["localhost:P", apex("localhost", [[HTTP_PORT_PARAM, u16(counter.port)]]), "plain http"],
      ["127.0.0.1:P", apex("127.0.0.1", [[PORT_PARAM, u16(counter.port)]]), "IP address"],
      ["169.254.169.254", apex("169.254.169.254"), "IP address"],
      ["10.0.0.1:6379", apex("10.0.0.1", [[PORT_PARAM, u16(6379)]]), "IP address"],
      ["metadata.google.internal", apex("metadata.google.internal"), "internal host"],
      ["metadata", apex("metadata"), "single-label host"],
    ];
    const keys = new Map<string, string>();
    for (const [name, record] of cases) {
      // one fresh homeserver key per case: no older packet of the same key to race with
      const hs = generateKeypair();
      await t.publish(signPacket(hs.seed, [record], Date.now() * 1000));
      keys.set(name, encodeZ32(hs.publicKey));
    }
    for (const [name, , why] of cases) {
      const e = await rejects(() => endpointOf(t!, keys.get(name)!), CipherpostError);
      assert.equal(e.kind, "homeserver", name);
      assert.equal(EXIT_OF[e.kind], 6);
      assert.match(e.message, /^homeserver refused: /, name);
      assert.ok(e.message.includes(why), `${name}: ${e.message}`);
    }
    assert.equal(counter.count(), 0, "no connection was made");
    // With the testnet switch, loopback is reached (the test can see a request) and the rest
    // is still refused.
    const t2 = t;
    bindHomeserverHttp(t2, LOOPBACK);
    const url = await endpointOf(t2, keys.get("localhost:P")!);
    assert.equal(url, `http://127.0.0.1:${counter.port}`);
    const c = new HomeserverClient({ baseUrl: url, user: USER, http: LOOPBACK });
    await rejects(() => c.get("/pub/cipherpost/x"), HomeserverError);
    assert.equal(counter.count(), 1, "the allowed loopback endpoint was contacted");
    for (const name of ["169.254.169.254", "10.0.0.1:6379", "metadata.google.internal"]) {
      await rejects(() => endpointOf(t2, keys.get(name)!), CipherpostError);
    }
  } finally {
    await t?.close();
    await net?.close();
    await counter.close();
  }
});

Deno.test("every request path checks the endpoint: client, anonymous GET, status GET, part GET, stored session", async () => {
  const counter = countingListener();
  const home = await tmpDir("cp-hs-sec-");
  try {
    const base = `http://127.0.0.1:${counter.port}`;
    const noSwitch = [
      () => new HomeserverClient({ baseUrl: base, user: USER }).get("/pub/cipherpost/x"),
      () => new HomeserverClient({ baseUrl: base, user: USER }).list("/pub/cipherpost/"),
      () => homeserverGet(`http://localhost:${counter.port}/pub/x`, { tenant: USER }),
      () => signIn({ baseUrl: base, homeserver: USER, seed: generateKeypair().seed }),
    ];
    for (const f of noSwitch) {
      const e = await rejects(f, CipherpostError);
      assert.equal(e.kind, "homeserver");
      assert.match(e.message, /^homeserver refused: /);
    }
    assert.equal(await readBlobStatus(base, USER, "ab".repeat(16), 1), null);
    // a part job whose URL is not loopback-http-safe under its own policy
    const reply = await runJob({
      op: "decrypt",
      id: 1,
      url: `https://169.254.169.254/pub/cipherpost/blobs/${"ab".repeat(16)}/part-00000`,
      headers: { "pubky-host": USER },
      identity: "unused",
      expectHash: "00",
      maxCipher: 1000,
      dst: `${home}/none`,
      offset: 0,
      plainLength: 10,
    }, () => {});
    assert.equal(reply.op, "failed");
    assert.match((reply as { detail: string }).detail, /homeserver refused: /);
    // a stored session naming [::1] (or any other refused endpoint) is not used
    const me = generateKeypair();
    await saveSession(home, {
      homeserver: encodeZ32(generateKeypair().publicKey),
      baseUrl: `http://[::1]:${counter.port}`,
      cookie: { user: encodeZ32(me.publicKey), secret: "x", capabilities: "/pub/cipherpost/:rw" },
      createdAt: "2026-01-01T00:00:00Z",
    });
    const e = await rejects(
      () => connect({} as never, { home, user: me.publicKey }),
      CipherpostError,
    );
    assert.match(e.message, /^homeserver refused: http:\/\/\[::1\]/);
    assert.equal(counter.count(), 0, "no connection was made");
  } finally {
    await counter.close();
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("redirects are never followed: part GET, client GET, status GET, sign-in", async () => {
  const target = httpServer(() => new Response("secret of the internal service"));
  const redirector = httpServer((req) =>
    new Response(null, {
      status: 302,
      headers: { location: `${target.url}${new URL(req.url).pathname}` },
    })
  );
  const home = await tmpDir("cp-hs-sec-");
  try {
    const blob = "cd".repeat(16);
    for (const http of [LOOPBACK, undefined]) {
      // with the command's policy, and without (the URL then comes from discovery)
      const reply = await runJob({
        op: "decrypt",
        id: 1,
        url: `${redirector.url}/pub/cipherpost/blobs/${blob}/part-00000`,
        headers: { "pubky-host": USER },
        ...(http ? { http } : {}),
        identity: "unused",
        expectHash: "00",
        maxCipher: 1000,
        dst: `${home}/none`,
        offset: 0,
        plainLength: 10,
      }, () => {});
      assert.deepEqual(
        reply.op === "failed" ? [reply.op, reply.kind] : [reply.op],
        ["failed", "network"],
      );
      assert.match(
        (reply as { detail: string }).detail,
        /answered a redirect \(HTTP 302\), which is never followed/,
      );
    }
    const c = new HomeserverClient({ baseUrl: redirector.url, user: USER, http: LOOPBACK });
    const e = await rejects(() => c.get("/pub/cipherpost/x"), HomeserverError);
    assert.deepEqual([e.kind, e.status], ["homeserver", 302]);
    assert.equal(
      await readBlobStatus(redirector.url, USER, blob, 1, { http: LOOPBACK }),
      null,
    );
    await rejects(
      () =>
        signIn({
          baseUrl: redirector.url,
          homeserver: USER,
          seed: generateKeypair().seed,
          http: LOOPBACK,
        }),
      HomeserverError,
    );
    assert.ok(redirector.count() >= 5, "the redirecting server was asked");
    assert.equal(target.count(), 0, "the redirect target saw no request");
  } finally {
    await redirector.close();
    await target.close();
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("timeouts: a server that hangs, or drips its headers or body, fails the request", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const hang = httpServer(async () => {
    await released;
    return new Response("late");
  });
  const drips: ReturnType<typeof setInterval>[] = [];
  const drip = httpServer(() => {
    let timer: ReturnType<typeof setInterval> | undefined;
    return new Response(
      new ReadableStream<Uint8Array>({
        start(ctrl) {
          const every = setInterval(() => ctrl.enqueue(new Uint8Array([0x41])), 40);
          timer = every;
          drips.push(every);
        },
        cancel() {
          clearInterval(timer);
        },
      }),
      { headers: { "content-type": "application/octet-stream" } },
    );
  });
  // a raw TCP server that sends its status line and headers one byte at a time
  const slowHeaders = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const headerConns: Promise<void>[] = [];
  const headerLoop = (async () => {
    for await (const conn of slowHeaders) {
      headerConns.push((async () => {
        try {
          await conn.read(new Uint8Array(16384));
          for (const b of enc.encode("HTTP/1.1 200 OK\r\nx-padding: " + "a".repeat(1000))) {
            await conn.write(new Uint8Array([b]));
            await new Promise((r) => setTimeout(r, 40));
          }
        } catch { /* the client gave up */ }
        try {
          conn.close();
        } catch { /* closed */ }
      })());
    }
  })().catch(() => {});
  const home = await tmpDir("cp-hs-sec-");
  try {
    const path = `/pub/cipherpost/blobs/${"ef".repeat(16)}/part-00000`;
    const slowUrl = `http://127.0.0.1:${slowHeaders.addr.port}`;
    // no response headers in time
    for (const url of [hang.url, slowUrl]) {
      const e = await rejects(
        () => homeserverGet(`${url}${path}`, { tenant: USER, http: QUICK }),
        HomeserverError,
      );
      assert.deepEqual([e.kind, e.status], ["homeserver", 0]);
      assert.match(e.message, /no response within 0\.4 s/);
    }
    // a body that drips: under 16 KiB per idle window
    const got = await homeserverGet(`${drip.url}${path}`, { tenant: USER, http: QUICK });
    const e = await rejects(() => new Response(got.body).arrayBuffer(), HomeserverError);
    assert.equal(e.kind, "homeserver");
    assert.match(e.message, /the response stalled: under 16 KiB in 0\.4 s/);
    // the same through the data client, the status GET and a part job
    const c = new HomeserverClient({ baseUrl: drip.url, user: USER, http: QUICK });
    const r = await c.get("/pub/cipherpost/x");
    await rejects(() => new Response(r!.body).arrayBuffer(), HomeserverError);
    await rejects(
      () => new HomeserverClient({ baseUrl: hang.url, user: USER, http: QUICK }).head("/pub/x"),
      HomeserverError,
    );
    for (const url of [hang.url, drip.url]) {
      assert.equal(await readBlobStatus(url, USER, "ef".repeat(16), 1, { http: QUICK }), null);
      await Deno.writeFile(`${home}/out`, new Uint8Array(10));
      const reply = await runJob({
        op: "decrypt",
        id: 1,
        url: `${url}${path}`,
        headers: { "pubky-host": USER },
        http: QUICK,
        identity: "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ",
        expectHash: "00",
        maxCipher: 1 << 20,
        dst: `${home}/out`,
        offset: 0,
        plainLength: 10,
      }, () => {});
      assert.deepEqual(
        reply.op === "failed" ? [reply.op, reply.kind] : [reply.op],
        ["failed", "network"],
        JSON.stringify(reply),
      );
      assert.match((reply as { detail: string }).detail, /no response within|stalled/);
    }
  } finally {
    release();
    slowHeaders.close();
    await headerLoop;
    await Promise.all(headerConns);
    await hang.close();
    await drip.close();
    for (const d of drips) clearInterval(d);
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("listings: a cursor that does not advance, endless pages and oversized pages end with an error", async () => {
  let served = 0;
  const lines = (names: string[]) =>
    names.map((n) => `pubky://${USER}/pub/cipherpost/${n}`).join("\n") + "\n";
  const stuck = httpServer(() => new Response(lines(["a", "b"]))); // ignores the cursor
  const endless = httpServer(() => {
    const page = Array.from({ length: 10 }, () => `f${String(served++).padStart(9, "0")}`);
    return new Response(lines(page));
  });
  const fat = httpServer(() => new Response(lines(["a", "b", "c"])));
  try {
    const client = (url: string) =>
      new HomeserverClient({ baseUrl: url, user: USER, http: LOOPBACK });
    const e1 = await rejects(
      () => Array.fromAsync(client(stuck.url).listAll("/pub/cipherpost/", { pageSize: 2 })),
      HomeserverError,
    );
    assert.match(e1.message, /the listing does not advance past its cursor/);
    assert.equal(stuck.count(), 2, "the loop stopped at the second page");
    const e2 = await rejects(
      () =>
        Array.fromAsync(
          client(endless.url).listAll("/pub/cipherpost/", { pageSize: 10, maxEntries: 95 }),
        ),
      HomeserverError,
    );
    assert.match(e2.message, /more than 95 entries listed/);
    assert.equal(endless.count(), 10);
    const e3 = await rejects(
      () => client(fat.url).list("/pub/cipherpost/", { limit: 2 }),
      HomeserverError,
    );
    assert.match(e3.message, /the listing page is larger than asked \(2 entries\)/);
  } finally {
    await stuck.close();
    await endless.close();
    await fat.close();
  }
});

Deno.test({
  name:
    "cli: a large share whose homeserver packet names localhost:P is refused without the switch (exit 6, no request)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const counter = countingListener();
    const hsSeed = generateKeypair().seed;
    // the stand-in publishes nothing: the only packet of its key will be the hostile one
    const hs = await startHomeserver({ signupMode: "open", seed: hsSeed });
    const net = await startTestnet({ nodes: 8 });
    const t = new Transport({
      bootstrap: net.bootstrap,
      relays: [net.relayUrl],
      useDht: true,
      useRelays: true,
      timeoutMs: 2000,
    });
    const base = await tmpDir("cp-hs-sec-cli-");
    try {
      const seed = new Uint8Array(32).fill(0x17);
      const alice = await makeUserWithSeed(base, "alice", seed);
      // alice's stored session on the stand-in: her large send needs no discovery
      const r = await signIn({ baseUrl: hs.baseUrl, homeserver: hs.key, seed, http: LOOPBACK });
      await saveSession(alice.home, {
        homeserver: hs.key,
        baseUrl: hs.baseUrl,
        cookie: r.cookie,
        createdAt: "2026-01-01T00:00:00Z",
      });
      await Deno.writeTextFile(`${base}/note.txt`, "a large share\n");
      const sent = await cli(
        ["send", "--self", "--via", "homeserver", "--material-file", `${base}/note.txt`],
        { home: alice.home, env: alice.env, net },
      );
      assert.equal(sent.code, 0, sent.stderr);
      const uri = sent.stdout.trim();
      // the homeserver key's packet now sends receivers to the counting listener
      const hostile = apex("localhost", [[HTTP_PORT_PARAM, u16(counter.port)]]);
      await t.publish(signPacket(hsSeed, [hostile], Date.now() * 1000));
      const receive = (allow: string) =>
        cli(["receive", uri, "--accept", alice.z32, "-o", `${base}/out-${allow}.txt`], {
          home: alice.home,
          env: { ...alice.env, CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK: allow },
          net,
        });
      const refused = await receive("0");
      assert.equal(refused.code, 6, refused.stderr);
      assert.match(refused.stderr, /homeserver refused: http:\/\/127\.0\.0\.1:\d+ is plain http/);
      assert.equal(counter.count(), 0, "no request reached the named endpoint");
      // the same share with the switch does reach it (so the refusal above was the policy's)
      const allowed = await receive("1");
      assert.notEqual(allowed.code, 0);
      assert.ok(counter.count() > 0, allowed.stderr);
    } finally {
      await t.close();
      await net.close();
      await hs.close();
      await counter.close();
      await Deno.remove(base, { recursive: true });
    }
  },
});
