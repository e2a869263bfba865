// The hostile homeserver (lib/testing/hostile_homeserver.ts) does what each mode says, seen with
// plain fetch and a timeout, in front of a real stand-in holding a two-part blob.
import assert from "node:assert/strict";
import { generateKeypair, keypairFromSeed } from "../lib/crypto/keys.ts";
import { HomeserverClient } from "../lib/homeserver/client.ts";
import { endpointOf } from "../lib/homeserver/discovery.ts";
import { type SessionCookie, signIn } from "../lib/homeserver/session.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";
import {
  encodeBlobStatus,
  parseBlobStatus,
  partPath,
  statusPath,
} from "../lib/protocol/large_manifest.ts";
import { type HomeserverStandIn, startHomeserver } from "../lib/testing/homeserver.ts";
import {
  type HostileHomeserver,
  type HostileMode,
  startHostileHomeserver,
} from "../lib/testing/hostile_homeserver.ts";
import { testTransport, withTestnet } from "./_helpers.ts";

const BLOB = "0123456789abcdef0123456789abcdef";
const PART0 = new Uint8Array(1000).map((_, i) => i % 251);
const PART1 = new Uint8Array(700).map((_, i) => 255 - (i % 13));

/** A stand-in holding BLOB (two parts and a `complete` status) and the user it belongs to. */
async function upstreamWithBlob(): Promise<{ hs: HomeserverStandIn; user: string }> {
  const hs = await startHomeserver({ signupMode: "open" });
  const seed = generateKeypair().seed;
  const user = encodeZ32(keypairFromSeed(seed).publicKey);
  let cookie: SessionCookie | null = null;
  // the stand-in is plain http on 127.0.0.1: allowed explicitly, as a testnet's is
  const http = { allowLoopback: true };
  const client = new HomeserverClient({
    http,
    baseUrl: hs.baseUrl,
    user,
    auth: {
      cookie: () => cookie,
      reauthenticate: async () => {
        cookie = (await signIn({ http, baseUrl: hs.baseUrl, homeserver: hs.key, seed })).cookie;
        return true;
      },
    },
  });
  await client.put(partPath(BLOB, 0), PART0);
  await client.put(partPath(BLOB, 1), PART1);
  await client.put(statusPath(BLOB), encodeBlobStatus(2, "complete"));
  return { hs, user };
}

/** Run `f` against a hostile server in `mode` in front of a fresh upstream. */
async function withHostile(
  mode: HostileMode,
  f: (h: HostileHomeserver, get: (path: string, ms?: number) => Promise<Response>) => Promise<void>,
  withUpstream = true,
): Promise<void> {
  const { hs, user } = await upstreamWithBlob();
  const h = await startHostileHomeserver({ mode, upstream: withUpstream ? hs.baseUrl : undefined });
  const get = (path: string, ms = 10_000) =>
    fetch(`${h.baseUrl}${path}`, {
      headers: { "pubky-host": user },
      redirect: "manual",
      signal: AbortSignal.timeout(ms),
    });
  try {
    await f(h, get);
  } finally {
    await h.close();
    await hs.close();
  }
}

async function bytesOf(res: Response): Promise<Uint8Array> {
  return new Uint8Array(await res.arrayBuffer());
}

/** The rejection of `p` (which must reject). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

Deno.test("hostile homeserver, hang: the request is taken and never answered; other paths are forwarded", async () => {
  await withHostile({ kind: "hang", paths: /\/part-\d{5}$/ }, async (h, get) => {
    const e = await rejection(get(partPath(BLOB, 0), 1500));
    assert.equal((e as Error).name, "TimeoutError", String(e));
    const status = await get(statusPath(BLOB));
    assert.equal(status.status, 200);
    assert.equal(parseBlobStatus(await bytesOf(status), 2), "complete");
    assert.deepEqual(h.requests.map((r) => r.hostile), [true, false]);
  });
});

Deno.test("hostile homeserver, drip: headers at once, then a byte at a time (1 s by default)", async () => {
  await withHostile({ kind: "drip" }, async (_h, get) => {
    const res = await get(partPath(BLOB, 0), 3500);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-length"), String(PART0.length));
    let got = 0;
    const reader = res.body!.getReader();
    const e = await rejection((async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        got += value.length;
      }
    })());
    assert.equal((e as Error).name, "TimeoutError", String(e));
    assert.ok(got >= 1 && got < PART0.length, `${got} bytes came`);
  });
  // dripped fast, the body is the upstream's, whole and in order
  await withHostile({ kind: "drip", intervalMs: 1 }, async (_h, get) => {
    const res = await get(partPath(BLOB, 1));
    assert.deepEqual(await bytesOf(res), PART1);
  });
  // without an upstream, the given body
  await withHostile({ kind: "drip", intervalMs: 1, body: new Uint8Array([1, 2, 3]) }, async (
    _h,
    get,
  ) => {
    assert.deepEqual(await bytesOf(await get("/anything")), new Uint8Array([1, 2, 3]));
  }, false);
});

Deno.test("hostile homeserver, redirect: 302 to another URL, which fetch follows unless told not to", async () => {
  const target = await startHomeserver({ signupMode: "open" });
  try {
    await withHostile({ kind: "redirect", location: `${target.baseUrl}/` }, async (h, get) => {
      const res = await get(partPath(BLOB, 0));
      assert.equal(res.status, 302);
      assert.equal(res.headers.get("location"), `${target.baseUrl}/`);
      await res.body?.cancel();
      const followed = await fetch(`${h.baseUrl}${partPath(BLOB, 0)}`, {
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(followed.status, 200);
      assert.equal(await followed.text(), `cipherpost stand-in homeserver ${target.key}\n`);
    });
  } finally {
    await target.close();
  }
});

Deno.test("hostile homeserver, cursor loop: every page of a listing is the same, whatever the cursor", async () => {
  await withHostile({ kind: "cursor-loop", pageSize: 7 }, async (h, get) => {
    const dir = "/pub/cipherpost/blobs/";
    const first = await (await get(`${dir}?limit=7`)).text();
    const lines = first.split("\n");
    assert.equal(lines.length, 7);
    assert.match(lines[0], /^pubky:\/\/[a-z0-9]{52}\/pub\/cipherpost\/blobs\/entry-00000$/);
    const cursor = encodeURIComponent(lines[6]);
    const next = await (await get(`${dir}?limit=7&cursor=${cursor}`)).text();
    assert.equal(next, first, "the cursor did not move the page");
    // files are still the upstream's
    assert.deepEqual(await bytesOf(await get(partPath(BLOB, 1))), PART1);
    assert.deepEqual(h.requests.map((r) => r.hostile), [true, true, false]);
  });
});

Deno.test("hostile homeserver, lying status: `uploading` forever (parts as upstream), parts hidden if asked", async () => {
  await withHostile({ kind: "lying-status", hideParts: true }, async (_h, get) => {
    const status = await bytesOf(await get(statusPath(BLOB)));
    assert.equal(parseBlobStatus(status, 2), "uploading", "the real status file says complete");
    const part = await get(partPath(BLOB, 0));
    assert.equal(part.status, 404, "the part is on the upstream");
    await part.body?.cancel();
  });
  await withHostile({ kind: "lying-status", parts: 5 }, async (_h, get) => {
    assert.equal(parseBlobStatus(await bytesOf(await get(statusPath(BLOB))), 5), "uploading");
  }, false);
});

Deno.test("hostile homeserver, swapped bytes: a part is answered with another part's bytes", async () => {
  await withHostile({ kind: "swapped-bytes" }, async (_h, get) => {
    assert.deepEqual(await bytesOf(await get(partPath(BLOB, 0))), PART1);
    assert.deepEqual(await bytesOf(await get(partPath(BLOB, 1))), PART0);
    assert.equal(
      parseBlobStatus(await bytesOf(await get(statusPath(BLOB))), 2),
      "complete",
      "the status file is forwarded as it is",
    );
  });
  await withHostile({ kind: "swapped-bytes", swap: () => 0 }, async (_h, get) => {
    assert.deepEqual(await bytesOf(await get(partPath(BLOB, 1))), PART0);
  });
});

Deno.test("hostile homeserver, huge body: 1 GiB announced and streamed; any size, chunked, of any pattern", async () => {
  await withHostile({ kind: "huge-body" }, async (_h, get) => {
    const res = await get(partPath(BLOB, 0));
    assert.equal(res.headers.get("content-length"), String(1024 ** 3));
    const reader = res.body!.getReader();
    let got = 0;
    while (got < 8 * 1024 * 1024) {
      const { value, done } = await reader.read();
      assert.ok(!done, "the body ended early");
      assert.ok(value.every((b) => b === 0x78));
      got += value.length;
    }
    await reader.cancel();
  });
  const fill = new TextEncoder().encode("ab\n");
  await withHostile({ kind: "huge-body", bytes: 300_001, fill, chunked: true }, async (_h, get) => {
    const res = await get("/pub/cipherpost/blobs/");
    assert.equal(res.headers.get("content-length"), null);
    const body = await bytesOf(res);
    assert.equal(body.length, 300_001);
    assert.ok(body.every((b, i) => b === fill[i % 3]));
  }, false);
});

Deno.test("hostile homeserver: the mode changes while it runs; close ends hung and dripping requests", async () => {
  await withHostile({ kind: "drip", intervalMs: 60_000 }, async (h, get) => {
    const dripping = await get(partPath(BLOB, 0), 60_000);
    const reading = rejection(bytesOf(dripping)); // caught from now on: close ends it
    h.mode = { kind: "hang" };
    const hung = rejection(get(partPath(BLOB, 1), 60_000));
    // both are inside the server (the drip has sent its first byte): closing must end them
    while (h.requests.length < 2) await new Promise((r) => setTimeout(r, 10));
    await h.close();
    assert.ok(await reading instanceof Error);
    assert.ok(await hung instanceof Error);
  });
});

Deno.test("hostile homeserver: with a seed and a transport it publishes a packet naming itself", async () => {
  await withTestnet(async (net) => {
    const tr = testTransport(net);
    const seed = generateKeypair().seed;
    const h = await startHostileHomeserver({ mode: { kind: "hang" }, seed, transport: tr });
    try {
      assert.equal(h.key, encodeZ32(keypairFromSeed(seed).publicKey));
      assert.equal(await endpointOf(tr, h.key!), h.baseUrl);
    } finally {
      await h.close();
      await tr.close();
    }
  });
});
