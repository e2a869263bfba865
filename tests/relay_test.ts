import assert from "node:assert/strict";
import { ed25519 } from "@noble/curves/ed25519.js";
import { DhtClient } from "../lib/pkarr/dht/client.ts";
import { DhtConflictError } from "../lib/pkarr/conflict.ts";
import { type MutableItem, signItem } from "../lib/pkarr/item.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";
import { CipherpostError } from "../lib/util/errors.ts";
import { relayGet, relayPut } from "../lib/pkarr/relay.ts";
import { decodeRelayPayload, encodeRelayPayload } from "../lib/pkarr/relay_payload.ts";
import { startTestnet } from "../lib/testing/testnet.ts";

const OPTS = { timeoutMs: 3000 };

function makeItem(sk: Uint8Array, seq: number, v: Uint8Array | string): MutableItem {
  return signItem(sk, seq, typeof v === "string" ? new TextEncoder().encode(v) : v);
}

function freshItem(seq = Date.now() * 1000, v: Uint8Array | string = "payload"): MutableItem {
  return makeItem(ed25519.utils.randomSecretKey(), seq, v);
}

/** A tiny relay stand-in answering every request with `handler`. */
async function withStub(
  handler: (req: Request) => Response | Promise<Response>,
  fn: (url: string) => Promise<void>,
) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`);
  } finally {
    await server.shutdown();
  }
}

function isNetwork(re: RegExp) {
  return (e: unknown) => e instanceof CipherpostError && e.kind === "network" && re.test(e.message);
}

Deno.test("relay payload encode/decode matches the legacy_js_v1 vector", () => {
  const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));
  const pk = hex("3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29");
  const payload = hex(
    "c45d1577e6c0d7fe24d1cd6696776a25628b438ffa10b1419dfdede3c51f8577d8447d44df4523fa43f574d6f1" +
      "3a65433fa828eb280065c271fcdcaef5365c010006076d852b5458000080000000000200000000343870696e78" +
      "7867717334316e346169646964656e773561707170317572666d7a647a7472386a74346162726b646e34333565" +
      "776f00000100010000000000040101010103666f6f343870696e787867717334316e346169646964656e773561" +
      "707170317572666d7a647a7472386a74346162726b646e34333565776f00001000010000001e000403626172",
  );
  const item = decodeRelayPayload(pk, payload);
  assert.ok(item);
  assert.equal(item.seq, 1697016827303000);
  assert.equal(item.v.length, 152);
  assert.deepEqual(encodeRelayPayload(item), payload);
  assert.equal(encodeZ32(pk), "8pinxxgqs41n4aididenw5apqp1urfmzdztr8jt4abrkdn435ewo");
  const tampered = payload.slice();
  tampered[100] ^= 1;
  assert.equal(decodeRelayPayload(pk, tampered), null);
});

Deno.test("testnet relay: PUT then GET returns identical bytes; HTTP details", async () => {
  const net = await startTestnet({ nodes: 10 });
  try {
    const item = freshItem(1_700_000_000_500_000); // x.5 s: Last-Modified floors it
    const put = await relayPut(net.relayUrl, item, OPTS);
    assert.ok(put.stored >= 1, `stored=${put.stored}`);
    const got = await relayGet(net.relayUrl, item.k, OPTS);
    assert.deepEqual(got, item);
    // ...and it really is on the DHT, not only in the relay's cache.
    const client = await DhtClient.open({ bootstrap: net.bootstrap, timeoutMs: 300 });
    try {
      const res = await client.get(item.k);
      assert.ok(res.items.some((x) => x.item.seq === item.seq));
    } finally {
      await client.close();
    }

    const url = `${net.relayUrl}/${encodeZ32(item.k)}`;
    const res = await fetch(url);
    const body = new Uint8Array(await res.arrayBuffer());
    assert.equal(res.status, 200);
    assert.deepEqual(body, encodeRelayPayload(item));
    assert.equal(res.headers.get("content-type"), "application/pkarr.org/relays#payload");
    assert.equal(res.headers.get("content-length"), String(body.length));
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    const lastModified = res.headers.get("last-modified")!;
    assert.equal(Date.parse(lastModified), Math.floor(item.seq / 1e6) * 1000);

    // 304 iff seq <= IMS seconds * 1e6 (relay_http.json if_modified_since_cases).
    const ims = async (ms: number) => {
      const r = await fetch(url, { headers: { "If-Modified-Since": new Date(ms).toUTCString() } });
      await r.body?.cancel();
      return r.status;
    };
    assert.equal(await ims(Date.parse(lastModified)), 200);
    assert.equal(await ims(Date.parse(lastModified) + 1000), 304);

    const options = await fetch(url, { method: "OPTIONS" });
    await options.body?.cancel();
    assert.equal(options.status, 204);
    assert.match(options.headers.get("access-control-expose-headers")!, /Pkarr-Dht-Stored-Nodes/);

    assert.equal(await relayGet(net.relayUrl, freshItem().k, OPTS), null);
    const badKey = await fetch(`${net.relayUrl}/not-a-key`);
    await badKey.body?.cancel();
    assert.equal(badKey.status, 400);
  } finally {
    await net.close();
  }
});

Deno.test("testnet relay: bad signature 400, oversize 413, size limits, conflicts", async () => {
  const net = await startTestnet({ nodes: 8 });
  try {
    const item = freshItem(1_000_000);
    const url = `${net.relayUrl}/${encodeZ32(item.k)}`;
    const put = async (body: Uint8Array<ArrayBuffer>, headers: HeadersInit = {}) => {
      const res = await fetch(url, { method: "PUT", body, headers });
      await res.body?.cancel();
      return res;
    };
    const forged = encodeRelayPayload(item);
    forged[0] ^= 0xff;
    assert.equal((await put(forged)).status, 400);
    assert.equal((await put(new Uint8Array(1200))).status, 413);
    assert.equal((await put(new Uint8Array(1073))).status, 400);
    assert.equal((await put(new Uint8Array(10))).status, 400);

    const ok = await put(encodeRelayPayload(item));
    assert.equal(ok.status, 204);
    assert.match(ok.headers.get("pkarr-dht-stored-nodes")!, /^[1-9]\d*$/);

    // Older than what the relay has: 409 -> DhtConflictError.
    const sk = ed25519.utils.randomSecretKey();
    await relayPut(net.relayUrl, makeItem(sk, 2_000, "new"), OPTS);
    await assert.rejects(
      relayPut(net.relayUrl, makeItem(sk, 1_000, "old"), OPTS),
      DhtConflictError,
    );

    // CAS through If-Match: the right one succeeds, a stale one is 412 -> DhtConflictError(301).
    await relayPut(net.relayUrl, makeItem(sk, 3_000, "cas ok"), { ...OPTS, cas: 2_000 });
    const err = await relayPut(net.relayUrl, makeItem(sk, 4_000, "cas stale"), {
      ...OPTS,
      cas: 2_000,
    }).then(() => null, (e) => e);
    assert.ok(err instanceof DhtConflictError, String(err));
    assert.equal(err.code, 301);
  } finally {
    await net.close();
  }
});

Deno.test("relay client: error statuses and garbage from a stub server", async () => {
  const item = freshItem();
  let status = 500;
  let body: BodyInit | null = null;
  let headers: Record<string, string> = {};
  await withStub(() => new Response(body, { status, headers }), async (url) => {
    for (const s of [400, 404, 413, 429, 500, 503]) {
      status = s;
      await assert.rejects(relayPut(url, item, OPTS), isNetwork(new RegExp(`answered ${s}$`)));
    }
    for (const s of [409, 428, 412]) {
      status = s;
      await assert.rejects(relayPut(url, item, OPTS), DhtConflictError);
    }
    status = 200;
    assert.deepEqual(await relayPut(url, item, OPTS), { stored: 1 });
    status = 204;
    headers = { "Pkarr-Dht-Stored-Nodes": "17" };
    assert.deepEqual(await relayPut(url, item, OPTS), { stored: 17 });
    headers = { "Pkarr-Dht-Stored-Nodes": "lots" };
    await assert.rejects(relayPut(url, item, OPTS), isNetwork(/malformed/));
    headers = {};

    status = 404;
    assert.equal(await relayGet(url, item.k, OPTS), null);
    for (const s of [400, 500, 503, 204, 304]) {
      status = s;
      await assert.rejects(relayGet(url, item.k, OPTS), isNetwork(new RegExp(`answered ${s}$`)));
    }
    status = 200;
    body = "<html>not a payload</html>";
    await assert.rejects(relayGet(url, item.k, OPTS), isNetwork(/invalid payload \(26 bytes\)/));
    body = new Uint8Array(5000);
    await assert.rejects(relayGet(url, item.k, OPTS), isNetwork(/invalid payload \(over 1104/));
    const forged = encodeRelayPayload(item);
    forged[70] ^= 1;
    body = forged;
    await assert.rejects(relayGet(url, item.k, OPTS), isNetwork(/invalid payload/));
    body = encodeRelayPayload(item);
    assert.deepEqual(await relayGet(url, item.k, OPTS), item);
  });
});

Deno.test("relay client: a relay that never answers times out; unreachable relay", async () => {
  const item = freshItem();
  let release = () => {};
  const hang = new Promise<void>((r) => (release = r));
  let requests = 0;
  await withStub(async () => {
    requests++;
    await hang;
    return new Response(null, { status: 204 });
  }, async (url) => {
    // both calls give up while the relay still holds their requests (it answers only on release)
    await assert.rejects(
      relayGet(url, item.k, { timeoutMs: 200 }),
      isNetwork(/did not answer within 200 ms$/),
    );
    await assert.rejects(relayPut(url, item, { timeoutMs: 200 }), isNetwork(/within 200 ms/));
    assert.equal(requests, 2, "one request each, no retry");
    release();
  });
  // Nothing listens on port 9 of 127.0.0.1 (discard; never bound in the sandbox).
  await assert.rejects(
    relayGet("http://127.0.0.1:9", item.k, OPTS),
    isNetwork(/^relay http:\/\/127\.0\.0\.1:9 unreachable/),
  );
});
