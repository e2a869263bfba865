/**
 * Interop with npm pkarr@1.3.0 (the old JS client) over a local testnet: packets go both ways on
 * the DHT, through our testnet relay, and through pkarr 1.3.0's own relay (`lib/relay.js`).
 *
 * pkarr 1.3.0 loads native code and writes `~/.config/pkarr`, so it never runs inside Deno: it
 * runs as a Node subprocess (`tests/peer/pkarr_peer.mjs`) with a temp HOME and loopback
 * bootstrap. Needs `npm ci --prefix tests/peer`.
 */

import assert from "node:assert/strict";
import { startTestnet, type Testnet } from "../lib/testing/testnet.ts";
import { Transport, type TransportOptions } from "../lib/pkarr/transport.ts";
import { type SignedPacket, signPacket } from "../lib/pkarr/signed_packet.ts";
import { type DnsRecord, encodeDnsPacket, txtRecord, txtText } from "../lib/pkarr/dns.ts";
import { encodeZ32, parsePublicKey } from "../lib/pkarr/public_key.ts";
import { generateKeypair } from "../lib/crypto/keys.ts";
import { type LinePeer, type PeerRecord, startPkarrPeer } from "./peer/peer_client.ts";

const TIMEOUT_MS = 500;
/** HTTP timeout for relay-only transports: a relay GET runs a whole DHT traversal, and closed
 * clients of earlier steps linger in the routing tables (each costs one KRPC timeout). */
const RELAY_TIMEOUT_MS = 5000;
const NODES = 20;

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

function transport(net: Testnet, o: Partial<TransportOptions> = {}): Transport {
  return new Transport({
    bootstrap: net.bootstrap,
    relays: [net.relayUrl],
    useDht: true,
    useRelays: false,
    timeoutMs: o.useRelays ? RELAY_TIMEOUT_MS : TIMEOUT_MS,
    ...o,
  });
}

/** Runs `fn` with a fresh testnet, a pkarr@1.3.0 peer on it, and closes everything after. */
async function withPeer(
  fn: (net: Testnet, peer: LinePeer) => Promise<void>,
): Promise<void> {
  const net = await startTestnet({ nodes: NODES, timeoutMs: TIMEOUT_MS });
  let peer: LinePeer | null = null;
  try {
    peer = await startPkarrPeer({
      bootstrap: net.bootstrap,
      timeoutMs: TIMEOUT_MS,
    });
    await fn(net, peer);
  } finally {
    await peer?.close();
    await net.close();
  }
}

/** Runs `fn` with `t`, then closes it. */
async function using<T>(
  t: Transport,
  fn: (t: Transport) => Promise<T>,
): Promise<T> {
  try {
    return await fn(t);
  } finally {
    await t.close();
  }
}

function ourPacket(text: string): { packet: SignedPacket; z32: string } {
  const kp = generateKeypair();
  const records: DnsRecord[] = [
    txtRecord("_cipherpost", 300, text),
    { name: "@", ttl: 60, class: 1, data: { type: "A", address: "127.0.0.1" } },
  ];
  const packet = signPacket(kp.seed, records, Date.now() * 1000);
  return { packet, z32: encodeZ32(kp.publicKey) };
}

/** The TXT text of `name` in a packet our decoder parsed. */
function ourTxt(p: SignedPacket, name: string): string | null {
  const r = p.records.find((r) => r.name === name && r.data.type === "TXT");
  return r ? txtText(r) : null;
}

Deno.test("pkarr@1.3.0 resolves a packet we publish on the DHT", async () => {
  await withPeer(async (net, peer) => {
    const text = "v=cp1; hello from deno ✓";
    const { packet, z32 } = ourPacket(text);
    await using(transport(net), async (t) => {
      const r = await t.publish(packet);
      assert.ok(r.dhtStored > 0, "no DHT node stored our packet");
    });
    for (const full of [false, true]) {
      const res = await peer.call("resolve", { key: z32, full });
      assert.equal(
        res.found,
        true,
        `pkarr@1.3.0 did not find the packet (fullLookup ${full})`,
      );
      assert.equal(res.timestamp, packet.timestamp);
      assert.equal(
        res.v,
        hex(packet.v),
        "v changed on its way through the DHT",
      );
      const records = res.records as PeerRecord[];
      const txt = records.find((x) => x.type === "TXT");
      assert.deepEqual(txt, {
        name: `_cipherpost.${z32}`,
        type: "TXT",
        ttl: 300,
        class: "IN",
        data: text,
      });
      const a = records.find((x) => x.type === "A");
      assert.equal(a?.name, z32);
      assert.equal(a?.data, "127.0.0.1");
    }
  });
});

Deno.test("our Transport resolves a packet pkarr@1.3.0 publishes (uncompressed DNS)", async () => {
  await withPeer(async (net, peer) => {
    const seed = generateKeypair().seed;
    const text = "hello from node, pkarr 1.3.0";
    const pub = await peer.call("publish", {
      seed: hex(seed),
      records: [
        { name: "_interop", type: "TXT", ttl: 30, data: text },
        { name: "@", type: "A", ttl: 60, data: "10.0.0.1" },
      ],
    });
    const z32 = pub.publicKey as string;
    const pk = parsePublicKey(z32);
    await using(transport(net), async (t) => {
      for (const accept of [undefined, () => true]) {
        const got = await t.resolve(pk, accept);
        assert.ok(
          got,
          `our Transport did not find pkarr's packet (accept: ${!!accept})`,
        );
        const p = got.packet;
        assert.equal(p.timestamp, pub.timestamp);
        assert.equal(hex(p.v), pub.v);
        // pkarr 1.3.0 (dns-packet) does not compress: our own encoding is shorter.
        assert.ok(
          p.v.length > encodeDnsPacket(p.records).length,
          "expected uncompressed v",
        );
        assert.equal(p.records.length, 2);
        assert.equal(ourTxt(p, `_interop.${z32}`), text);
        const a = p.records.find((r) => r.data.type === "A");
        assert.deepEqual(a, {
          name: z32,
          ttl: 60,
          class: 1,
          data: { type: "A", address: "10.0.0.1" },
        });
        assert.ok(got.sources.every((s) => s.startsWith("dht:")));
      }
    });
  });
});

Deno.test("relay path: publish via the relay only, resolve via the DHT only, and back", async () => {
  await withPeer(async (net, peer) => {
    // relay → DHT
    const one = ourPacket("via relay, read from the DHT");
    await using(
      transport(net, { useDht: false, useRelays: true }),
      async (t) => {
        const r = await t.publish(one.packet);
        assert.equal(r.relaysStored, 1);
        assert.equal(r.dhtStored, 0);
      },
    );
    await using(transport(net), async (t) => {
      const got = await t.resolve(one.packet.publicKey);
      assert.ok(got, "a packet published through the relay is not on the DHT");
      assert.equal(got.packet.timestamp, one.packet.timestamp);
      assert.equal(hex(got.packet.v), hex(one.packet.v));
      assert.equal(
        ourTxt(got.packet, `_cipherpost.${one.z32}`),
        "via relay, read from the DHT",
      );
    });
    // and pkarr@1.3.0 sees it on the DHT too
    const seen = await peer.call("resolve", { key: one.z32, full: true });
    assert.equal(seen.v, hex(one.packet.v));

    // DHT → relay
    const two = ourPacket("via the DHT, read through the relay");
    await using(transport(net), async (t) => {
      assert.ok((await t.publish(two.packet)).dhtStored > 0);
    });
    await using(
      transport(net, { useDht: false, useRelays: true }),
      async (t) => {
        const got = await t.resolve(two.packet.publicKey);
        assert.ok(got, "the relay did not find a packet published on the DHT");
        assert.deepEqual(got.sources, [`relay:${net.relayUrl}`]);
        assert.equal(hex(got.packet.v), hex(two.packet.v));
      },
    );

    // pkarr@1.3.0 on the DHT → our relay
    const pub = await peer.call("publish", {
      seed: hex(generateKeypair().seed),
      records: [{
        name: "_x",
        type: "TXT",
        ttl: 30,
        data: "node → dht → relay → deno",
      }],
    });
    await using(
      transport(net, { useDht: false, useRelays: true }),
      async (t) => {
        const got = await t.resolve(parsePublicKey(pub.publicKey as string));
        assert.ok(got, "the relay did not find pkarr@1.3.0's packet");
        assert.equal(hex(got.packet.v), pub.v);
        assert.equal(
          ourTxt(got.packet, `_x.${pub.publicKey}`),
          "node → dht → relay → deno",
        );
      },
    );
  });
});

Deno.test("pkarr@1.3.0's JS relay (lib/relay.js) works as a third-party relay", async () => {
  await withPeer(async (net, peer) => {
    const { url } = await peer.call("relay") as unknown as { url: string };
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const relayOnly = { useDht: false, useRelays: true, relays: [url] };
    const { packet, z32 } = ourPacket("through the old JS relay");
    await using(transport(net, relayOnly), async (t) => {
      const r = await t.publish(packet); // 200, no stored-count header → counted as 1
      assert.equal(r.relaysStored, 1);
    });
    await using(transport(net, relayOnly), async (t) => {
      const got = await t.resolve(packet.publicKey); // GET without a query string
      assert.ok(got, "the JS relay did not return our packet");
      assert.deepEqual(got.sources, [`relay:${url}`]);
      assert.equal(hex(got.packet.v), hex(packet.v));
      assert.equal(got.packet.timestamp, packet.timestamp);
      assert.equal(
        ourTxt(got.packet, `_cipherpost.${z32}`),
        "through the old JS relay",
      );
    });
    // The JS relay put it on our testnet's DHT.
    await using(transport(net), async (t) => {
      const got = await t.resolve(packet.publicKey);
      assert.equal(got && hex(got.packet.v), hex(packet.v));
    });
    // Unknown key → 404 → null.
    await using(transport(net, relayOnly), async (t) => {
      assert.equal(await t.resolve(generateKeypair().publicKey), null);
    });
  });
});
