/**
 * Mainline DHT client at the level of BEP44 mutable items (no salt), on `npm:bittorrent-dht`.
 *
 * `get` runs one iterative Kademlia lookup towards `sha1(k)` (lookup.ts), checks every item it
 * is handed (target, sizes, Ed25519 signature) and streams the valid ones to the caller, who may
 * stop early. The closest responders and their write tokens are kept per target for a few
 * minutes (tokens.ts) so that a following `put` (put.ts) goes straight to the k (=20) closest
 * token holders, not to every node touched. Every contact learned is kept by the client
 * (routing.ts), so each lookup starts from the known contacts closest to its target. The client
 * bootstraps by asking its bootstrap entries for its own id (no traversal).
 *
 * Queries (of lookups and puts) share client-wide slots, `concurrency` at most, fewer when
 * replies are fast (pacing.ts): each reply to a burst of queries arrives in a burst too, and what
 * exceeds the UDP receive buffer is dropped by the kernel while the event loop is busy (Deno's
 * `setRecvBufferSize` does not reach the socket, so the default ~208 KiB applies: ~48 replies
 * of a bittorrent-dht node listing its whole table). Each drop would cost a stale wait.
 *
 * bittorrent-dht 11.0.12 is pinned: `_rpc` and the k-rpc-socket internals used here are private
 * API.
 *
 * @module
 */

import { lookup } from "node:dns/promises";
import { isIPv4 } from "node:net";
// @ts-types="./bittorrent-dht.d.ts"
import DHT from "bittorrent-dht";
import type { DhtPeer, DhtRinfo, KrpcQuery } from "./bittorrent-dht.d.ts";
import { CipherpostError, signatureError } from "../../util/errors.ts";
import { type MutableItem, verifyItem, verifySignature } from "../item.ts";
import { type GetResult, Lookup, type LookupContext, type LookupOptions } from "./lookup.ts";
import { Pacer } from "./pacing.ts";
import { type PutContext, putItem, type PutResult } from "./put.ts";
import { addrKey, isBytes, K, RoutingTable } from "./routing.ts";
import { TokenCache } from "./tokens.ts";

export type { GetResult, LookupOptions } from "./lookup.ts";
export type { PutResult } from "./put.ts";
export type { DhtNodeInfo } from "./routing.ts";
export { K } from "./routing.ts";

const DEFAULT_TIMEOUT_MS = 2000;

/** Options of {@link DhtClient.open}. */
export interface DhtClientOptions {
  /** `"host:port"` entries; host names are resolved (IPv4 only). Never empty. */
  bootstrap: string[];
  /** Per-request KRPC timeout (default 2000 ms; k-rpc-socket fires it after 1 to 1.25 times). */
  timeoutMs?: number;
  /** Overall deadline of one get or put phase (default 5 × timeoutMs). */
  deadlineMs?: number;
  /** Local UDP port (default 0 = random). */
  port?: number;
  /**
   * Queries in flight at once across all lookups and puts (default 1024; fewer while replies
   * come back fast, see the module notes and pacing.ts).
   */
  concurrency?: number;
  /**
   * A traversal that has heard from at least one node ends once no reply has arrived for this
   * long (default: half the request timeout, at most 750 ms). Dead nodes in routing tables then
   * cost this wait instead of a full request timeout each.
   */
  idleMs?: number;
}

/** A Mainline DHT client: one UDP socket, BEP44 get/put of unsalted mutable items. */
export class DhtClient {
  #dht: DHT;
  #deadlineMs: number;
  #tokens = new TokenCache();
  #routing: RoutingTable;
  #pacer: Pacer;
  /** The bootstrap entries, the lookups' last resort. */
  #bootPeers: DhtPeer[] = [];
  /** Resolves with how many bootstrap nodes answered. */
  #ready: Promise<number> = Promise.resolve(1);
  #bootStarted = 0;
  /** Fail callbacks of the operations running (`close` rejects them). */
  #pending = new Set<(e: Error) => void>();
  #closed = false;

  private constructor(dht: DHT, deadlineMs: number, idleMs: number, maxInflight: number) {
    this.#dht = dht;
    this.#deadlineMs = deadlineMs;
    this.#routing = new RoutingTable(dht._rpc.id);
    this.#pacer = new Pacer(idleMs, maxInflight);
    // Every reply time feeds the adaptive idle rule.
    const sock = dht._rpc.socket;
    const query = sock.query.bind(sock);
    sock.query = (peer, q, cb) => {
      const sent = performance.now();
      return query(peer, q, (err, res, from) => {
        if (!err) this.#pacer.recordRtt(performance.now() - sent);
        return cb(err, res, from);
      });
    };
  }

  /** Throws the "unreachable" error when no bootstrap node has answered at all. */
  async #assertReachable(): Promise<void> {
    if (await this.#ready > 0) return;
    const ms = Math.round(performance.now() - this.#bootStarted);
    throw new CipherpostError(
      "network",
      `DHT unreachable: 0 of ${this.#bootPeers.length} bootstrap nodes answered within ${ms} ms`,
      "check the network connection or the bootstrap list",
    );
  }

  /**
   * Binds a UDP socket (127.0.0.1 when every bootstrap host is loopback, else 0.0.0.0) and
   * bootstraps from `opts.bootstrap`. Throws `CipherpostError("network")` when none answers.
   */
  static async open(opts: DhtClientOptions): Promise<DhtClient> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const deadlineMs = opts.deadlineMs ?? timeoutMs * 5;
    if (opts.bootstrap.length === 0) {
      throw new CipherpostError("network", "DHT unreachable: no bootstrap nodes configured");
    }
    // At most K bootstrap entries: they are all asked at once, and again by lookups that know
    // fewer than K contacts.
    const peers = shuffle(await resolveBootstrap(opts.bootstrap)).slice(0, K);
    if (peers.length === 0) {
      throw new CipherpostError(
        "network",
        `DHT unreachable: none of ${opts.bootstrap.length} bootstrap hosts resolved to IPv4`,
      );
    }
    const bindHost = peers.every((p) => p.host.startsWith("127.")) ? "127.0.0.1" : "0.0.0.0";
    // No bootstrap by bittorrent-dht itself (a k-rpc traversal of its own id): the client asks
    // the bootstrap entries directly, below. `concurrency` is our cap on queries in flight
    // across all lookups (a multi-packet share runs dozens of lookups at once).
    const concurrency = opts.concurrency ?? 1024;
    const dht = new DHT({
      bootstrap: false,
      verify: verifySignature,
      timeout: timeoutMs,
      k: K,
      concurrency,
    });
    dht.on("warning", () => {});
    // A client is not a replica: it lives for one command, so data put to it would vanish with
    // it while the putter counted it as stored. Refuse puts (KRPC 201, generic error).
    dht._onput = (query: KrpcQuery, peer: DhtRinfo) =>
      dht._rpc.error(peer, query, [201, "read-only client"]);
    let bindError: Error | null = null;
    const bound = new Promise<void>((resolve) => {
      dht.once("listening", () => resolve());
      dht.once("error", (e: Error) => {
        bindError = e;
        resolve();
      });
    });
    dht.on("error", () => {});
    // Bind synchronously: bittorrent-dht bootstraps on the next tick and would otherwise
    // auto-bind to 0.0.0.0 on its first send.
    dht.listen(opts.port ?? 0, bindHost);
    const client = new DhtClient(
      dht,
      deadlineMs,
      opts.idleMs ?? Math.min(timeoutMs / 2, 750),
      Math.max(1, concurrency),
    );
    await bound;
    if (bindError) {
      await client.close();
      throw new CipherpostError("network", `DHT: could not bind UDP ${bindHost}:${opts.port ?? 0}`);
    }
    // Returns at once: the bootstrap queries run while the first lookup starts (a lookup that
    // knows fewer than K contacts asks the bootstrap nodes itself), which saves a round trip per
    // command. Whether anything answered is checked when a lookup hears from nobody.
    client.#bootStarted = performance.now();
    client.#ready = client.#bootstrap(peers, Math.max(deadlineMs, timeoutMs * 2));
    return client;
  }

  /** The local UDP address (for diagnostics and tests). */
  address(): { address: string; port: number } {
    return this.#dht.address();
  }

  /** What lookups and puts use of this client. */
  #context(): LookupContext & PutContext {
    return {
      rpc: this.#dht._rpc,
      routing: this.#routing,
      pacer: this.#pacer,
      tokens: this.#tokens,
      deadlineMs: this.#deadlineMs,
      bootPeers: this.#bootPeers,
      pending: this.#pending,
      closed: () => this.#closed,
      get: (k, opts) => this.get(k, opts),
    };
  }

  /**
   * Looks up the mutable item of public key `k`. Every item received is checked; valid ones are
   * passed to `onItem` as they arrive (return true to stop the traversal and resolve at once).
   * Resolves with what was seen when the traversal ends, `onItem` stops it, or the deadline
   * passes; rejects with `signal.reason` on abort.
   */
  async get(k: Uint8Array, opts: LookupOptions = {}): Promise<GetResult> {
    this.#assertOpen();
    if (k.length !== 32) {
      throw new CipherpostError("invalid_material", "DHT get: public key must be 32 bytes");
    }
    opts.signal?.throwIfAborted();
    const r = await new Lookup(this.#context(), k, opts).run();
    if (r.responded === 0 && !opts.signal?.aborted) await this.#assertReachable();
    return r;
  }

  /**
   * Stores `item` on the {@link K} closest nodes that handed out a write token (looked up first
   * unless a recent lookup of the same key is cached), in parallel, with an optional BEP44
   * `cas`. Once a node has answered, a silence of twice the idle wait (see
   * {@link DhtClientOptions.idleMs}) ends the put; the nodes still silent count as timeouts.
   *
   * A 302 from a node that is known (from an earlier get or put) to hold this very item (same
   * seq and signature) counts as stored: bittorrent-dht nodes answer 302 to an equal seq.
   * Throws `DhtConflictError` when more than half of the answering nodes reply 301 or 302,
   * and `CipherpostError("network")` when no node stored the item. (Whether a conflict is our
   * own packet, stored first by another path, is for the caller to check: `Transport.publish`
   * does, once, over the DHT and the relays.) Rejects with `signal.reason` once `signal` aborts.
   */
  async put(
    item: MutableItem,
    opts: { cas?: number; signal?: AbortSignal } = {},
  ): Promise<PutResult> {
    this.#assertOpen();
    if (!verifyItem(item)) throw signatureError("DHT put: item does not verify");
    if (opts.cas !== undefined && !Number.isSafeInteger(opts.cas)) {
      throw new CipherpostError("invalid_material", "DHT put: cas must be an integer");
    }
    opts.signal?.throwIfAborted();
    return await putItem(this.#context(), item, opts.cas, opts.signal);
  }

  /** Cancels pending operations and closes the socket and every timer. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const fail of [...this.#pending]) {
      fail(new CipherpostError("network", "DHT client closed during the operation"));
    }
    this.#tokens.clear();
    await new Promise<void>((resolve) => {
      try {
        this.#dht.destroy(() => resolve());
      } catch {
        resolve();
      }
    });
  }

  #assertOpen(): void {
    if (this.#closed) throw new CipherpostError("network", "DHT client is closed");
  }

  /**
   * Asks every bootstrap entry at once (`find_node` of our own id) and learns the contacts the
   * replies list. Resolves with how many had answered when the first one did, or when all
   * failed, or after `waitMs`; later replies are still learned.
   */
  #bootstrap(peers: DhtPeer[], waitMs: number): Promise<number> {
    this.#bootPeers = peers;
    const id = this.#dht._rpc.id;
    const message: KrpcQuery = { q: "find_node", a: { id, target: id } };
    let answered = 0;
    let failed = 0;
    return new Promise<number>((resolve) => {
      const timer = setTimeout(() => resolve(answered), waitMs);
      const done = () => {
        clearTimeout(timer);
        resolve(answered);
      };
      for (const peer of peers) {
        this.#dht._rpc.socket.query(peer, message, (err, res) => {
          if (this.#closed) return;
          const r = res?.r;
          if (err || !r) {
            if (err?.code === "ETIMEDOUT") this.#routing.markDead(addrKey(peer.host, peer.port));
            if (++failed === peers.length) done();
            return;
          }
          if (isBytes(r.id, 20)) this.#routing.learn(peer.host, peer.port, r.id);
          if (isBytes(r.nodes)) this.#routing.learnNodes(r.nodes);
          answered++;
          done();
        });
      }
    });
  }
}

async function resolveBootstrap(entries: string[]): Promise<DhtPeer[]> {
  const out = new Map<string, DhtPeer>();
  await Promise.all(entries.map(async (entry) => {
    const i = entry.lastIndexOf(":");
    const host = entry.slice(0, i);
    const port = Number(entry.slice(i + 1));
    if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) return;
    let addrs: string[];
    if (isIPv4(host)) addrs = [host];
    else {
      try {
        addrs = (await lookup(host, { family: 4, all: true })).map((a) => a.address);
      } catch {
        return;
      }
    }
    for (const addr of addrs) out.set(`${addr}:${port}`, { host: addr, port });
  }));
  return [...out.values()];
}

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}
