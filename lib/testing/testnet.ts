/**
 * A local Mainline testnet: N real bittorrent-dht nodes on 127.0.0.1 with BEP44 storage and
 * Ed25519 verification, seeded as a full mesh (like Rust mainline's seeded `Testnet`), plus a
 * pkarr relay (design/relays.md) on `Deno.serve` backed by a {@link DhtClient} on the testnet.
 *
 * Fault injection wraps each node's k-rpc-socket `emit("query", …)`: `latencyMs` delays every
 * incoming query (so every reply), `lossPct` silently drops that share of them and `deadNodes`
 * nodes drop all of them. Faults start once the relay's own DHT client has bootstrapped. Which
 * queries are lost follows from `lossSeed` (the n-th query a node gets is dropped or not
 * whatever the timing), so a lossy run can be replayed with the seed it reports.
 *
 * @module
 */

// @ts-types="../pkarr/dht/bittorrent-dht.d.ts"
import DHT from "bittorrent-dht";
import { DhtClient } from "../pkarr/dht/client.ts";
import { DhtConflictError } from "../pkarr/conflict.ts";
import { type MutableItem, verifySignature } from "../pkarr/item.ts";
import { CipherpostError } from "../util/errors.ts";
import { bytesEqual, utf8 } from "../util/encoding.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { decodeZ32, isValidPoint } from "../pkarr/public_key.ts";
import { moreRecentThan } from "../pkarr/signed_packet.ts";
import { readLimited, RELAY_BODY_LIMIT, STORED_NODES_HEADER } from "../pkarr/relay.ts";
import {
  decodeRelayPayload,
  encodeRelayPayload,
  RELAY_PAYLOAD_MAX_BYTES,
  RELAY_PAYLOAD_MIN_BYTES,
} from "../pkarr/relay_payload.ts";

/**
 * BEP44 items all the nodes of a testnet store together before each evicts its least recently
 * used: a byte budget, not a count per node. An item costs about 1.5 KiB in a node (the value,
 * key and signature are views of the whole received datagram), and on a testnet of a dozen
 * nodes every node holds every item. With 100 000 items per node, as before, a testnet that ran
 * for a day of large-share traffic grew to 0.66–1.6 GiB (issue 17): 20 nodes × 35 000+ items.
 * 160 000 items in all bound the stores to about 240 MiB (20 nodes: 8 000 each, room for the
 * packets of a hundred of the largest shares), and the relay cache holds at most as many.
 */
const MAX_ITEMS_TOTAL = 160_000;
/** Items one node keeps when there are `nodes` (at least the bittorrent-dht default). */
export function itemsPerNode(nodes: number): number {
  return Math.max(1000, Math.floor(MAX_ITEMS_TOTAL / nodes));
}
/** Options of {@link startTestnet}. */
export interface TestnetOptions {
  /** Number of DHT nodes (at least 1). */
  nodes: number;
  /** UDP port of the first node, the others follow consecutively; 0 (default) = random. */
  port?: number;
  /** Relay HTTP port; 0 (default) = random. */
  relayPort?: number;
  /**
   * The IPv4 address the nodes and the relay listen on and are named by (default 127.0.0.1):
   * a private test address inside a network namespace, for a shaped-network benchmark.
   */
  host?: string;
  /** Every node delays its replies by this much (default 0). */
  latencyMs?: number;
  /** Every node silently drops this percentage of incoming queries (default 0). */
  lossPct?: number;
  /**
   * Seed of the loss decisions, an integer 0 to 2^31 - 1 (default: a random one, reported as
   * {@link Testnet.lossSeed}).
   */
  lossSeed?: number;
  /**
   * This many nodes (the last ones; the bootstrap list still names them) answer nothing at all
   * once the testnet is up, like nodes that went offline (default 0).
   */
  deadNodes?: number;
  /** KRPC timeout of the nodes and of the relay's DHT client (default 500, or 4 × latency). */
  timeoutMs?: number;
  /**
   * Items each node (and the relay's cache) keeps before evicting the least recently used;
   * default {@link itemsPerNode} of `nodes` (tests set a small bound to see it hold).
   */
  maxItemsPerNode?: number;
}

/** One BEP44 item as a testnet node stores it (bittorrent-dht's own record). */
export interface TestnetStoredItem {
  /** The value (for cipherpost, a DNS packet). */
  v: Uint8Array;
  /** The Ed25519 public key of a mutable item. */
  k?: Uint8Array;
  /** The Ed25519 signature of a mutable item. */
  sig?: Uint8Array;
  /** The sequence number of a mutable item (pkarr: its timestamp in µs). */
  seq?: number;
  /** The salt of a mutable item, when it has one. */
  salt?: Uint8Array;
  /** The id of the node that put the item. */
  id: Uint8Array;
}

/**
 * A testnet node's item store (bittorrent-dht's private `_values` LRU), keyed by the lowercase
 * hex of the DHT target. Tests read it to count holders, and write it to plant or drop items.
 */
export interface TestnetStore {
  /** The item under `target`, or undefined; marks it recently used. */
  get(target: string): TestnetStoredItem | undefined;
  /** The item under `target`, or undefined; leaves the LRU order alone. */
  peek(target: string): TestnetStoredItem | undefined;
  /** Stores `item` under `target`, replacing any item there (no signature check). */
  set(target: string, item: TestnetStoredItem): void;
  /** The number of items held. */
  readonly length: number;
}

/** What a test may reach of one testnet node: its id and its item store. */
export interface TestnetNode {
  /** The node's 20-byte DHT id. */
  readonly nodeId: Uint8Array;
  /** The node's item store (a private member of bittorrent-dht, version pinned by the lock). */
  readonly _values: TestnetStore;
}

/** A running testnet. */
export interface Testnet {
  /** `"host:port"` of every node (host: {@link TestnetOptions.host}, default 127.0.0.1). */
  bootstrap: string[];
  /** `http://host:port` of the relay. */
  relayUrl: string;
  /** The nodes, in `bootstrap` order (tests inspect and edit their item stores). */
  nodes: TestnetNode[];
  /** Packets the relay keeps in its cache (bounded like a node's store). */
  relayCached(): number;
  /** The seed of the loss decisions (given, or the random one chosen). */
  lossSeed: number;
  /** Stops the relay, its DHT client and every node; leaves no socket or timer behind. */
  close(): Promise<void>;
}

/**
 * Starts `opts.nodes` DHT nodes on 127.0.0.1, seeded as a full mesh, and a pkarr relay backed by
 * a DHT client on them; fault injection (`latencyMs`, `lossPct`, `deadNodes`) starts once that
 * client has bootstrapped. Call {@link Testnet.close} on every path.
 *
 * @param opts How many nodes, which ports and which faults; see {@link TestnetOptions}.
 * @returns The running testnet.
 * @throws {CipherpostError} `usage` when `nodes` is not a positive integer or `deadNodes` is not
 *   0 to `nodes - 1`. A port already in use rejects with the socket's error, after everything
 *   started so far is closed.
 */
export async function startTestnet(opts: TestnetOptions): Promise<Testnet> {
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1) {
    throw new CipherpostError("usage", "testnet: nodes must be a positive integer");
  }
  const latencyMs = opts.latencyMs ?? 0;
  const lossPct = opts.lossPct ?? 0;
  const deadNodes = opts.deadNodes ?? 0;
  const lossSeed = opts.lossSeed ?? randomSeed();
  if (!Number.isInteger(lossSeed) || lossSeed < 0 || lossSeed > MAX_SEED) {
    throw new CipherpostError("usage", "testnet: lossSeed must be an integer 0 to 2^31 - 1");
  }
  if (!Number.isInteger(deadNodes) || deadNodes < 0 || deadNodes >= opts.nodes) {
    throw new CipherpostError("usage", "testnet: deadNodes must be 0 to nodes - 1");
  }
  const timeoutMs = opts.timeoutMs ?? Math.max(500, latencyMs * 4);
  const maxItems = opts.maxItemsPerNode ?? itemsPerNode(opts.nodes);
  const cache = new BoundedCache<string, MutableItem>(maxItems);
  const host = opts.host ?? "127.0.0.1";
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const nodes: DHT[] = [];
  let relayClient: DhtClient | null = null;
  let server: Deno.HttpServer<Deno.NetAddr> | null = null;

  const close = async () => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
    await server?.shutdown();
    await relayClient?.close();
    await Promise.all(nodes.map((n) => new Promise<void>((r) => n.destroy(() => r()))));
  };

  try {
    for (let i = 0; i < opts.nodes; i++) {
      // bittorrent-dht keeps at most 1000 items per node (an LRU). On the Internet a key's items
      // spread over millions of nodes; on a testnet of a dozen every node is among the 20
      // closest to every key and holds every item, so a few 100-packet shares would evict the
      // oldest shares' parts. Room for MAX_ITEMS_PER_NODE items keeps a long test run faithful.
      const node = new DHT({
        bootstrap: false,
        verify: verifySignature,
        timeout: timeoutMs,
        maxValues: maxItems,
      });
      node.on("warning", () => {});
      nodes.push(node);
      await new Promise<void>((resolve, reject) => {
        node.once("error", reject);
        node.listen(opts.port ? opts.port + i : 0, host, () => resolve());
      });
      node.on("error", () => {});
    }
    for (const a of nodes) {
      for (const b of nodes) {
        if (a !== b) a.addNode({ host, port: b.address().port, id: b.nodeId });
      }
    }
    const bootstrap = nodes.map((n) => `${host}:${n.address().port}`);
    relayClient = await DhtClient.open({ bootstrap, timeoutMs });
    // Faults start after the relay's client has bootstrapped, so that it can start at all.
    if (latencyMs > 0 || lossPct > 0 || deadNodes > 0) {
      nodes.forEach((node, i) => {
        const dead = i >= nodes.length - deadNodes;
        const drop = seededRandom(lossSeed, `loss node ${i}`);
        injectFaults(node, latencyMs, dead ? 100 : lossPct, timers, drop);
      });
    }
    server = Deno.serve(
      { hostname: host, port: opts.relayPort ?? 0, onListen: () => {} },
      relayHandler(relayClient, cache),
    );
    const relayUrl = `http://${host}:${server.addr.port}`;
    return { bootstrap, relayUrl, nodes, lossSeed, relayCached: () => cache.size, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** The largest seed {@link seededRandom} and {@link TestnetOptions.lossSeed} take. */
export const MAX_SEED: number = 2 ** 31 - 1;

/** A random seed, 0 to {@link MAX_SEED}. */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] & MAX_SEED;
}

/**
 * A replayable stream of numbers in [0, 1): the n-th is read from SHA-256(`seed`, `stream`, n).
 * The same seed and stream name give the same numbers on every run; different stream names give
 * independent streams.
 */
export function seededRandom(seed: number, stream: string): () => number {
  let n = 0;
  return () => {
    const h = sha256(utf8(`${seed}\0${stream}\0${n++}`));
    return new DataView(h.buffer, h.byteOffset, 4).getUint32(0) / 2 ** 32;
  };
}

/**
 * Makes `node` delay every incoming query by `latencyMs` and silently drop `lossPct` percent of
 * them (100 = a dead node), drawing from `random` (default `Math.random`; a seeded one makes a
 * benchmark's losses repeatable). Pending delays go into `timers`, for the caller to clear.
 */
export function injectFaults(
  node: DHT,
  latencyMs: number,
  lossPct: number,
  timers: Set<ReturnType<typeof setTimeout>>,
  random: () => number = Math.random,
): void {
  const sock = node._rpc.socket;
  const emit = sock.emit.bind(sock);
  sock.emit = (event: string, ...args: unknown[]): boolean => {
    if (event !== "query") return emit(event, ...args);
    if (lossPct >= 100 || (lossPct > 0 && random() * 100 < lossPct)) return true;
    if (latencyMs <= 0) return emit(event, ...args);
    const t = setTimeout(() => {
      timers.delete(t);
      if (!sock.destroyed) emit(event, ...args);
    }, latencyMs);
    timers.add(t);
    return true;
  };
}

const CORS: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Methods": "GET, PUT, OPTIONS",
  "Access-Control-Allow-Headers": "*",
  "Access-Control-Expose-Headers": `${STORED_NODES_HEADER}, Pkarr-Invalid-Signed-Packet-Seq`,
};

function reply(status: number, body?: BodyInit | null, headers: Record<string, string> = {}) {
  return new Response(body ?? null, { status, headers: { ...CORS, ...headers } });
}

/** How long a GET of a cached packet waits for the DHT to find a newer one. */
const CACHED_WAIT_MS = 200;

/** A Map that forgets its least recently set or read entry beyond `max`. */
class BoundedCache<K, V> {
  readonly #m = new Map<K, V>();
  constructor(readonly max: number) {}
  get size(): number {
    return this.#m.size;
  }
  get(k: K): V | undefined {
    const v = this.#m.get(k);
    if (v !== undefined) {
      this.#m.delete(k);
      this.#m.set(k, v);
    }
    return v;
  }
  set(k: K, v: V): void {
    this.#m.delete(k);
    this.#m.set(k, v);
    if (this.#m.size > this.max) this.#m.delete(this.#m.keys().next().value!);
  }
}

/**
 * The relay (§3.1/§3.2): verify, then BEP44 put/get through `dht`, with a bounded cache. A GET
 * of a cached packet gives the DHT {@link CACHED_WAIT_MS} to find a newer one, then answers
 * with the most recent it has (as a pkarr relay answers from its cache): a relay that waited
 * for a whole DHT lookup before giving a packet it was just given made clients with short
 * timeouts miss it on a busy testnet (issue 17).
 */
function relayHandler(
  dht: DhtClient,
  cache: BoundedCache<string, MutableItem>,
): (req: Request) => Promise<Response> {
  return async (req: Request): Promise<Response> => {
    if (req.method === "OPTIONS") return reply(204);
    const url = new URL(req.url);
    if (url.pathname === "/" && req.method === "GET") return reply(200, "pkarr relay (testnet)\n");
    const name = url.pathname.slice(1);
    const k = decodeKey(name);
    if (!k) return reply(400, "invalid key\n");
    const policy = url.searchParams.get("policy");
    if (policy !== null && !["CacheOnly", "CacheFirst", "NetworkOnly"].includes(policy)) {
      return reply(400, "invalid policy\n");
    }
    if (req.method === "PUT") return await put(req, name, k);
    if (req.method === "GET") return await get(req, name, k, policy);
    return reply(405, null, { Allow: "GET, PUT, OPTIONS" });
  };

  async function put(req: Request, name: string, k: Uint8Array): Promise<Response> {
    const declared = Number(req.headers.get("Content-Length") ?? "0");
    if (declared > RELAY_BODY_LIMIT) {
      await req.body?.cancel();
      return reply(413, "payload too large\n");
    }
    const body = await readLimited(req.body, RELAY_BODY_LIMIT).catch(() => new Uint8Array());
    if (!body) return reply(413, "payload too large\n");
    if (body.length < RELAY_PAYLOAD_MIN_BYTES || body.length > RELAY_PAYLOAD_MAX_BYTES) {
      return reply(400, "invalid payload size\n");
    }
    const item = decodeRelayPayload(k, body);
    if (!item) return reply(400, "invalid signed packet\n");
    const ifMatch = req.headers.get("If-Match");
    if (ifMatch !== null && !/^\d{1,16}$/.test(ifMatch)) return reply(400, "invalid If-Match\n");
    const cached = cache.get(name);
    if (cached && moreRecentThan(asPacket(cached), asPacket(item))) {
      return reply(409, "a more recent packet exists\n");
    }
    try {
      let stored: number;
      try {
        stored = (await dht.put(item, ifMatch === null ? {} : { cas: Number(ifMatch) })).stored;
      } catch (e) {
        if (!(e instanceof DhtConflictError)) throw e;
        // The publisher's own DHT put of this very item may have landed first (bittorrent-dht
        // nodes answer 302 to an equal seq, 301 to a cas that it has overtaken): then the
        // item is stored, as a relay in front of a real DHT node would report.
        stored = await holdersOfExactly(dht, item);
        if (stored === 0) throw e;
      }
      cache.set(name, item);
      return reply(204, null, { [STORED_NODES_HEADER]: String(stored) });
    } catch (e) {
      if (e instanceof DhtConflictError) return reply(e.code === 301 ? 412 : 409, `${e.message}\n`);
      return reply(500, `${e instanceof CipherpostError ? e.message : "internal error"}\n`);
    }
  }

  async function get(
    req: Request,
    name: string,
    k: Uint8Array,
    policy: string | null,
  ): Promise<Response> {
    let best = cache.get(name) ?? null;
    if (policy !== "CacheOnly") {
      // with a cached packet, the DHT gets CACHED_WAIT_MS to find a newer one
      const cached = best !== null && policy !== "NetworkOnly";
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const lookup = dht.get(k);
        const res = cached
          ? await Promise.race([
            lookup,
            new Promise<null>((r) => (timer = setTimeout(() => r(null), CACHED_WAIT_MS))),
          ])
          : await lookup;
        if (res === null) lookup.catch(() => {});
        for (const { item } of res?.items ?? []) {
          if (!best || moreRecentThan(asPacket(item), asPacket(best))) best = item;
        }
        if (!best && res?.responded === 0) return reply(503, "no DHT node responded\n");
      } catch {
        if (!best) return reply(503, "DHT unavailable\n");
      } finally {
        clearTimeout(timer);
      }
    }
    if (!best) return reply(404, "not found\n");
    cache.set(name, best);
    const lastModified = new Date(Math.floor(best.seq / 1e6) * 1000).toUTCString();
    const ims = Date.parse(req.headers.get("If-Modified-Since") ?? "");
    if (!Number.isNaN(ims) && best.seq <= ims * 1000) {
      return reply(304, null, { "Last-Modified": lastModified });
    }
    return reply(200, encodeRelayPayload(best), {
      "Content-Type": "application/pkarr.org/relays#payload",
      "Cache-Control": "public, max-age=300",
      "Last-Modified": lastModified,
    });
  }
}

/**
 * How many nodes hold exactly `item` (same seq and signature), 0 when none does or a node holds
 * a newer seq.
 */
async function holdersOfExactly(dht: DhtClient, item: MutableItem): Promise<number> {
  const seen = await dht.get(item.k);
  if (seen.items.some(({ item: x }) => x.seq > item.seq)) return 0;
  return seen.items.filter(({ item: x }) => x.seq === item.seq && bytesEqual(x.sig, item.sig))
    .length;
}

function decodeKey(name: string): Uint8Array | null {
  if (!/^[ybndrfg8ejkmcpqxot1uwisza345h769]{52}$/.test(name)) return null;
  const k = decodeZ32(name);
  return isValidPoint(k) ? k : null;
}

/** The ordering fields of an item, as `moreRecentThan` reads them. */
function asPacket(i: MutableItem): { timestamp: number; v: Uint8Array } {
  return { timestamp: i.seq, v: i.v };
}
