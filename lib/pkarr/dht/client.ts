/**
 * Mainline DHT client at the level of BEP44 mutable items (no salt), on `npm:bittorrent-dht`.
 *
 * `get` runs one iterative Kademlia lookup towards `sha1(k)`, checks every item it is handed
 * (target, sizes, Ed25519 signature) and streams the valid ones to the caller, who may stop
 * early. The closest responders and their write tokens are kept per target for a few minutes so
 * that a following `put` goes straight to the k (=20) closest token holders, not to every node
 * touched.
 *
 * The lookup is our own, on k-rpc-socket (not k-rpc's `_closest`, which queries every unqueried
 * node among the k closest it knows, each round, and so sends 55 to 90 queries per lookup in a
 * 200-node network): at most α queries in flight per lookup, and the lookup ends as soon as the
 * k closest nodes it has seen have all answered (or failed). Every contact learned is kept by
 * the client (up to {@link MAX_KNOWN}), and each lookup starts from the known contacts closest
 * to its target, so the many lookups of a multi-packet share mostly start next to their target.
 * The client bootstraps by asking its bootstrap entries for its own id (no traversal).
 *
 * Queries (of lookups and puts) share client-wide slots, `concurrency` at most, fewer when
 * replies are fast: each reply to a burst of queries arrives in a burst too, and what exceeds
 * the UDP receive buffer is dropped by the kernel while the event loop is busy (Deno's
 * `setRecvBufferSize` does not reach the socket, so the default ~208 KiB applies: ~48 replies
 * of a bittorrent-dht node listing its whole table). Each drop would cost a stale wait.
 *
 * bittorrent-dht 11.0.12 is pinned: `_rpc` and the k-rpc-socket internals used here are private
 * API.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { lookup } from "node:dns/promises";
import { isIPv4 } from "node:net";
import { ed25519 } from "@noble/curves/ed25519.js";
// @ts-types="./bittorrent-dht.d.ts"
import DHT from "bittorrent-dht";
import type { DhtPeer, DhtRinfo, KrpcError, KrpcQuery } from "./bittorrent-dht.d.ts";
import { CipherpostError, signatureError } from "../../util/errors.ts";
import { verifyPacketSignature } from "../../crypto/keys.ts";
import { dhtTarget } from "../public_key.ts";
import { MAX_V_BYTES, signable as encodeSignable } from "../signed_packet.ts";

// The item-level names this module's users import; one definition each, where packets live.
export { dhtTarget, encodeSignable, MAX_V_BYTES };

/** Kademlia replication factor: a put goes to this many closest token holders. */
export const K = 20;
/** How long the closest token holders of a target are reused (tokens live 5 to 10 min). */
const TOKEN_CACHE_MS = 4 * 60 * 1000;
const DEFAULT_TIMEOUT_MS = 2000;
/** Queries in flight per lookup that may stop at its first valid item (a read). */
const ALPHA_FIRST = 4;
/** Queries in flight per lookup that must reach all of the k closest (before a put). */
const ALPHA_FULL = 10;
/** Replies per second the client plans for (see `#slots`). */
const QUERY_RATE = 2000;
/** The fewest query slots (see `#slots`). */
const MIN_SLOTS = 24;
/** Contacts the client remembers across lookups, to start each lookup near its target. */
const MAX_KNOWN = 4096;
/** Candidates one lookup keeps, closest first. */
const MAX_CANDIDATES = 4 * K;
/** A contact whose query timed out is not used again for this long. */
const DEAD_MS = 5 * 60 * 1000;

/** A BEP44 mutable item without salt: what a PKARR signed packet is on the DHT. */
export interface MutableItem {
  /** 32-byte Ed25519 public key. */
  k: Uint8Array;
  /** Sequence number: the packet timestamp in microseconds. */
  seq: number;
  /** 64-byte Ed25519 signature over {@link encodeSignable}(seq, v). */
  sig: Uint8Array;
  /** The value, at most {@link MAX_V_BYTES} bytes. */
  v: Uint8Array;
}

/** A DHT node that answered a lookup, with the write token it handed out. */
export interface DhtNodeInfo {
  host: string;
  port: number;
  id: Uint8Array;
  token: Uint8Array;
}

/** What a {@link DhtClient.get} saw. */
export interface GetResult {
  /** Every valid item received, in arrival order, with the `host:port` that sent it. */
  items: Array<{ item: MutableItem; from: string }>;
  /** Queries sent during the traversal. */
  queried: number;
  /** Replies received. */
  responded: number;
  /** Items dropped because their target, sizes or signature were wrong. */
  invalid: number;
  /** Up to {@link K} responders closest to the target that handed out a write token. */
  closest: DhtNodeInfo[];
  /** False when the traversal was cut short (early stop via `onItem`, or the deadline). */
  complete: boolean;
}

/** What a {@link DhtClient.put} achieved. */
export interface PutResult {
  /** Nodes that stored the item (including nodes known to hold this very item already). */
  stored: number;
  /** Nodes the put was sent to. */
  attempted: number;
  /** Failures by KRPC error code ("203", "301", "302", ...), "timeout" or "other". */
  errors: Record<string, number>;
}

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
   * Queries in flight at once across all lookups and puts (default 128; fewer while replies
   * come back within a few ms, see the module notes).
   */
  concurrency?: number;
  /**
   * A traversal that has heard from at least one node ends once no reply has arrived for this
   * long (default: half the request timeout, at most 750 ms). Dead nodes in routing tables then
   * cost this wait instead of a full request timeout each.
   */
  idleMs?: number;
}

/**
 * A put was refused because the network holds a newer item (BEP44 302) or the `cas` did not
 * match (301). The caller should re-read, merge and publish again.
 */
export class DhtConflictError extends CipherpostError {
  /** 301 (CAS mismatch) or 302 (sequence number not newer than the stored one). */
  readonly code: 301 | 302;

  constructor(code: 301 | 302, message: string) {
    super("network", message, "someone published a newer record: re-read it and try again");
    this.name = "DhtConflictError";
    this.code = code;
  }
}

/** Ed25519 verification that never throws (false on malformed keys or signatures). */
export function verifySignature(sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): boolean {
  return verifyPacketSignature(pk, msg, sig);
}

/** True when the item has valid sizes, a safe-integer seq and a valid signature. */
export function verifyItem(item: MutableItem): boolean {
  return item.k.length === 32 && item.sig.length === 64 && item.v.length <= MAX_V_BYTES &&
    Number.isSafeInteger(item.seq) && item.seq >= 0 &&
    verifySignature(item.sig, encodeSignable(item.seq, item.v), item.k);
}

/** Builds and signs an item with a 32-byte Ed25519 secret key (seed). */
export function signItem(secretKey: Uint8Array, seq: number, v: Uint8Array): MutableItem {
  return {
    k: ed25519.getPublicKey(secretKey),
    seq,
    sig: ed25519.sign(encodeSignable(seq, v), secretKey),
    v,
  };
}

interface TargetCache {
  at: number;
  nodes: DhtNodeInfo[];
  /** `host:port` → the item that node is known to hold. */
  holders: Map<string, { seq: number; sig: Uint8Array }>;
}

/** A DHT contact: `id` is null for a bootstrap entry that has not answered yet. */
interface Contact {
  host: string;
  port: number;
  id: Buffer | null;
  /** `host:port` */
  addr: string;
  /** {@link addrKey} of host and port. */
  key: number;
}

/** A node in a lookup's candidate list. */
interface Candidate extends Contact {
  /** The first 6 bytes of the XOR distance to the target (Infinity while `id` is unknown). */
  d: number;
  state: "fresh" | "in flight" | "answered" | "failed";
  /** When the query was sent (performance.now()). */
  sent: number;
  /** Queries sent to it so far (a stale query is sent once more), and how many are out. */
  tries: number;
  out: number;
  /** The last query sent to it: `held` while it holds a client-wide query slot. */
  query: { held: boolean } | null;
}

/** A Mainline DHT client: one UDP socket, BEP44 get/put of unsalted mutable items. */
export class DhtClient {
  #dht: DHT;
  #deadlineMs: number;
  #idleMs: number;
  #cache = new Map<string, TargetCache>();
  /** Contacts learned so far, by {@link addrKey}, least recently heard of first. */
  #known = new Map<number, Contact>();
  /** Contacts whose queries timed out, by {@link addrKey} → until when they are skipped. */
  #dead = new Map<number, number>();
  /**
   * Contacts that have answered this client: a timeout of theirs is a lost datagram (a lossy
   * network), not a dead node, so it does not remove them from every later lookup.
   */
  #answered = new Set<number>();
  /** The bootstrap entries, the lookups' last resort. */
  #bootPeers: DhtPeer[] = [];
  /** Resolves with how many bootstrap nodes answered. */
  #ready: Promise<number> = Promise.resolve(1);
  #bootStarted = 0;

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
  /** Queries in flight (lookups and puts), and the operations waiting for a slot. */
  #inflight = 0;
  #maxInflight: number;
  #waiting = new Set<() => void>();
  #pending = new Set<(e: Error) => void>();
  #closed = false;

  private constructor(dht: DHT, deadlineMs: number, idleMs: number, maxInflight: number) {
    this.#idleMs = idleMs;
    this.#dht = dht;
    this.#deadlineMs = deadlineMs;
    this.#maxInflight = maxInflight;
    // Every reply time feeds the adaptive idle rule.
    const sock = dht._rpc.socket;
    const query = sock.query.bind(sock);
    sock.query = (peer, q, cb) => {
      const sent = performance.now();
      return query(peer, q, (err, res, from) => {
        if (!err) this.#recordRtt(performance.now() - sent);
        return cb(err, res, from);
      });
    };
  }

  /** Recent reply times, for the adaptive idle rule. */
  #rtts: number[] = [];

  /** The idle wait and the query slots, recomputed every 8 reply times. */
  #idle = { wait: 0, stale: 0, slots: 0, fresh: 0 };

  #recordRtt(ms: number): void {
    this.#rtts.push(ms);
    if (this.#rtts.length > 64) this.#rtts.shift();
    this.#idle.fresh--;
  }

  /**
   * How long a traversal may stay silent before it ends: 3 × the 90th percentile of recent
   * reply times, between 100 ms and the configured maximum. On loopback that is ~100 ms, on
   * the Internet it reaches the maximum.
   */
  #idleWait(): number {
    if (this.#rtts.length < 8) return this.#idleMs;
    this.#refresh();
    return this.#idle.wait;
  }

  /**
   * Queries (lookups and puts together) the client keeps in flight: `concurrency`, or less when
   * replies come back fast. Replies to a burst of queries arrive as a burst, and the kernel
   * drops what exceeds the UDP receive buffer while the event loop is busy (Linux's default
   * holds ~48 replies of 2.7 KB, the size of a bittorrent-dht reply listing its whole table);
   * each drop then costs the idle wait. So the client keeps about {@link QUERY_RATE} × the
   * median reply time in flight (at least {@link MIN_SLOTS}): ~128 at 50 ms, ~30 on loopback.
   */
  /**
   * How long a lookup query may go unanswered before it is stale (see `#traverse`): like the
   * idle wait, without its 100 ms floor, since a stale query keeps a lookup going rather than
   * ending it.
   */
  #staleWait(): number {
    if (this.#rtts.length < 8) return this.#idleMs;
    this.#refresh();
    return this.#idle.stale;
  }

  #slots(): number {
    if (this.#rtts.length < 8) return Math.min(MIN_SLOTS, this.#maxInflight);
    this.#refresh();
    return this.#idle.slots;
  }

  #refresh(): void {
    if (this.#idle.fresh > 0) return;
    const sorted = [...this.#rtts].sort((a, b) => a - b);
    const p50 = sorted[Math.floor(sorted.length * 0.5)];
    const p90 = sorted[Math.floor(sorted.length * 0.9)];
    this.#idle = {
      wait: Math.min(this.#idleMs, Math.max(100, 3 * p90)),
      stale: Math.min(this.#idleMs, Math.max(20, 3 * p90)),
      slots: Math.min(this.#maxInflight, Math.max(MIN_SLOTS, Math.round(QUERY_RATE * p50 / 1000))),
      fresh: 8,
    };
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
    const concurrency = opts.concurrency ?? 128;
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

  /**
   * Looks up the mutable item of public key `k`. Every item received is checked; valid ones are
   * passed to `onItem` as they arrive (return true to stop the traversal and resolve at once).
   * Resolves with what was seen when the traversal ends, `onItem` stops it, or the deadline
   * passes; rejects with `signal.reason` on abort.
   */
  async get(
    k: Uint8Array,
    opts: {
      onItem?: (item: MutableItem, from: string) => boolean;
      /**
       * "first": the caller will stop at the first item it likes (narrow, α = 4); "full": a
       * complete traversal for the most recent item (α = 10). Default: "first" with `onItem`.
       */
      mode?: "first" | "full";
      signal?: AbortSignal;
    } = {},
  ): Promise<GetResult> {
    this.#assertOpen();
    if (k.length !== 32) {
      throw new CipherpostError("invalid_material", "DHT get: public key must be 32 bytes");
    }
    opts.signal?.throwIfAborted();
    const r = await this.#traverse(k, opts);
    if (r.responded === 0 && !opts.signal?.aborted) await this.#assertReachable();
    return r;
  }

  /** Known holders of a target's item: the cached ones plus those of `items`. */
  #holdersWith(targetHex: string, items: GetResult["items"]) {
    const holders = this.#cache.get(targetHex)?.holders ?? new Map();
    for (const { item, from } of items) holders.set(from, { seq: item.seq, sig: item.sig });
    return holders;
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
            if (err?.code === "ETIMEDOUT") this.#markDead(addrKey(peer.host, peer.port));
            if (++failed === peers.length) done();
            return;
          }
          this.#markAlive(addrKey(peer.host, peer.port));
          if (isBytes(r.id, 20)) this.#learn(peer.host, peer.port, r.id);
          if (isBytes(r.nodes)) this.#learnNodes(r.nodes);
          answered++;
          done();
        });
      }
    });
  }

  /** Remembers a contact that answered (it becomes the most recently heard of). */
  #learn(host: string, port: number, id: Uint8Array): void {
    const key = addrKey(host, port);
    if (this.#isDead(key) || equalBytes(id, this.#dht._rpc.id)) return;
    const old = this.#known.get(key);
    if (old) this.#known.delete(key);
    const c = old?.id && equalBytes(old.id, id) ? old : contact(host, port, toBuf(id), key);
    this.#known.set(key, c);
    if (this.#known.size > MAX_KNOWN) this.#known.delete(this.#known.keys().next().value!);
  }

  /**
   * Learns the contacts of a compact `nodes` string (second-hand: a known contact keeps its
   * place) and passes each one to `visit`.
   */
  #learnNodes(nodes: Uint8Array, visit?: (c: Contact) => void): void {
    const self = this.#dht._rpc.id;
    for (let i = 0; i + 26 <= nodes.length; i += 26) {
      const port = (nodes[i + 24] << 8) | nodes[i + 25];
      if (port === 0) continue;
      const ip = ((nodes[i + 20] << 24) | (nodes[i + 21] << 16) | (nodes[i + 22] << 8) |
        nodes[i + 23]) >>> 0;
      const key = ip * 65536 + port;
      let c = this.#known.get(key);
      if (!c || !c.id || !equalAt(c.id, nodes, i)) {
        if (this.#isDead(key) || equalAt(self, nodes, i)) continue;
        const host = `${nodes[i + 20]}.${nodes[i + 21]}.${nodes[i + 22]}.${nodes[i + 23]}`;
        c = contact(host, port, Buffer.from(nodes.subarray(i, i + 20)), key);
        this.#known.delete(key);
        this.#known.set(key, c);
        if (this.#known.size > MAX_KNOWN) this.#known.delete(this.#known.keys().next().value!);
      }
      visit?.(c);
    }
  }

  /** A query to `key` timed out: dead, unless it has answered this client before. */
  #markDead(key: number): void {
    if (this.#answered.has(key)) return;
    this.#dead.set(key, Date.now() + DEAD_MS);
    this.#known.delete(key);
  }

  /** `key` answered a query. */
  #markAlive(key: number): void {
    if (this.#answered.size < MAX_KNOWN) this.#answered.add(key);
  }

  #isDead(key: number): boolean {
    if (this.#dead.size === 0) return false;
    const until = this.#dead.get(key);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.#dead.delete(key);
    return false;
  }

  /** The `n` known contacts closest to `target`. */
  #seeds(target: Uint8Array, n: number): Contact[] {
    const best: Array<{ c: Contact; d: number }> = [];
    for (const c of this.#known.values()) {
      if (!c.id) continue;
      const d = prefixDistance(c.id, target);
      if (best.length === n && !closer(d, c.id, best[n - 1].d, best[n - 1].c.id!, target)) {
        continue;
      }
      let i = best.length;
      while (i > 0 && closer(d, c.id, best[i - 1].d, best[i - 1].c.id!, target)) i--;
      best.splice(i, 0, { c, d });
      if (best.length > n) best.pop();
    }
    return best.map((x) => x.c);
  }

  /** Wakes lookups waiting for a query slot. */
  #wake(): void {
    for (const pump of [...this.#waiting]) {
      if (this.#inflight >= this.#slots()) return;
      this.#waiting.delete(pump);
      pump();
    }
  }

  /**
   * One Kademlia lookup of `sha1(k)` with `get` queries: starts from the known contacts closest
   * to the target (the bootstrap entries too while fewer than K are known), keeps at most α
   * queries in flight, and ends when the K closest candidates that have not failed have all
   * answered, when `onItem` stops it, or at the deadline.
   *
   * Unresponsive nodes: a query unanswered for the stale wait (3 × the 90th percentile of
   * recent reply times) gives back its α and client-wide slots and is sent once more (a lost
   * datagram); when that one goes stale too, the node counts as failed (a late reply still
   * counts). And as before, once the lookup has heard from anyone, a silence of the idle wait
   * ends it as complete: dead nodes in routing tables cost at most that.
   */
  #traverse(
    k: Uint8Array,
    opts: {
      onItem?: (item: MutableItem, from: string) => boolean;
      signal?: AbortSignal;
      mode?: "first" | "full";
    },
  ): Promise<GetResult> {
    const target = Buffer.from(dhtTarget(k));
    const targetHex = target.toString("hex");
    const message: KrpcQuery = { q: "get", a: { id: this.#dht._rpc.id, target } };
    const alpha = (opts.mode ?? (opts.onItem ? "first" : "full")) === "first"
      ? ALPHA_FIRST
      : ALPHA_FULL;
    const items: GetResult["items"] = [];
    const nodes = new Map<string, DhtNodeInfo>();
    const cands: Candidate[] = [];
    const byKey = new Map<number, Candidate>();
    let queried = 0;
    let responded = 0;
    let invalid = 0;
    let settled = false;

    /** Inserts a contact in distance order (unknown ids last); false when not kept. */
    const insert = (c: Candidate): boolean => {
      let i = cands.length;
      while (i > 0 && candCloser(c, cands[i - 1], target)) i--;
      if (i >= MAX_CANDIDATES) return false;
      cands.splice(i, 0, c);
      byKey.set(c.key, c);
      if (cands.length > MAX_CANDIDATES) byKey.delete(cands.pop()!.key);
      return true;
    };
    const consider = (c: Contact) => {
      let d = Infinity;
      if (c.id) {
        d = prefixDistance(c.id, target);
        // Not closer than the farthest kept candidate: skip early.
        const last = cands[cands.length - 1];
        if (
          cands.length >= MAX_CANDIDATES && last.id && !closer(d, c.id, last.d, last.id, target)
        ) return;
      }
      if (byKey.has(c.key) || this.#isDead(c.key)) return;
      if (c.id && equalBytes(c.id, this.#dht._rpc.id)) return;
      insert({ ...c, d, state: "fresh", sent: 0, tries: 0, out: 0, query: null });
    };
    const seeds = this.#seeds(target, 2 * K);
    for (const c of seeds) consider(c);
    // A cold client (a fresh CLI process) knows nothing near the target: its first wave goes to
    // every bootstrap node at once instead of α of them, which saves a round trip.
    const cold = seeds.length < K;
    if (cold) {
      for (const p of this.#bootPeers) consider(contact(p.host, p.port, null));
    }

    return new Promise<GetResult>((resolve, reject) => {
      const result = (complete: boolean): GetResult => ({
        items: [...items],
        queried,
        responded,
        invalid,
        closest: closestTo(target, [...nodes.values()]),
        complete,
      });
      const cleanup = () => {
        settled = true;
        // Queries still out no longer hold client-wide slots: nobody waits for them.
        if (holding.size > 0) {
          for (const q of [...holding]) release(q);
          queueMicrotask(() => this.#wake());
        }
        clearTimeout(timer);
        clearTimeout(idle);
        clearTimeout(staleTimer);
        this.#waiting.delete(pump);
        opts.signal?.removeEventListener("abort", onAbort);
        this.#pending.delete(fail);
      };
      const finish = (complete: boolean, remember: boolean) => {
        if (settled) return;
        cleanup();
        if (remember && nodes.size > 0) {
          this.#remember(
            targetHex,
            closestTo(target, [...nodes.values()]),
            this.#holdersWith(targetHex, items),
          );
        }
        resolve(result(complete));
      };
      const fail = (e: Error) => {
        if (settled) return;
        cleanup();
        reject(e);
      };
      const onAbort = () => fail(opts.signal?.reason ?? new Error("aborted"));
      const timer = setTimeout(() => finish(false, false), this.#deadlineMs);
      // Idle rule: after the first reply, a silence of the idle wait ends the lookup as if it
      // had completed (what is still outstanding is, in practice, dead nodes).
      let idle: ReturnType<typeof setTimeout> | undefined;
      const rearm = () => {
        clearTimeout(idle);
        idle = setTimeout(() => {
          if (settled || responded === 0) return;
          // Waiting for one of the client's query slots is not silence of the network.
          if (this.#waiting.has(pump)) rearm();
          else finish(true, true);
        }, this.#idleWait());
      };
      let staleTimer: ReturnType<typeof setTimeout> | undefined;
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      this.#pending.add(fail);

      const onReply = (c: Candidate, r: Record<string, unknown>) => {
        responded++;
        rearm();
        c.state = "answered";
        if (!c.id && isBytes(r.id, 20)) {
          // A bootstrap entry: now that its id is known, move it to its place.
          const i = cands.indexOf(c);
          if (i >= 0) cands.splice(i, 1);
          byKey.delete(c.key);
          c.id = toBuf(r.id);
          c.d = prefixDistance(c.id, target);
          insert(c);
        }
        if (isBytes(r.id, 20)) {
          this.#learn(c.host, c.port, r.id);
          if (isBytes(r.token)) {
            nodes.set(c.addr, {
              host: c.host,
              port: c.port,
              id: new Uint8Array(r.id),
              token: new Uint8Array(r.token),
            });
          }
        }
        if (isBytes(r.nodes)) this.#learnNodes(r.nodes, consider);
        if (r.v === undefined) return;
        const item = itemFromReply(r, target);
        if (!item) {
          invalid++;
          return;
        }
        items.push({ item, from: c.addr });
        let stop = false;
        try {
          stop = opts.onItem?.(item, c.addr) === true;
        } catch (e) {
          fail(e instanceof Error ? e : new Error(String(e)));
          return;
        }
        if (stop) finish(false, false);
      };

      /** Queries in flight that hold a client-wide query slot. */
      const holding = new Set<{ held: boolean }>();
      const release = (q: { held: boolean }) => {
        if (!q.held) return false;
        q.held = false;
        holding.delete(q);
        this.#inflight--;
        return true;
      };
      const send = (c: Candidate) => {
        const q = { held: true };
        holding.add(q);
        c.state = "in flight";
        c.sent = performance.now();
        c.query = q;
        c.tries++;
        c.out++;
        queried++;
        this.#inflight++;
        const peer: DhtPeer = { host: c.host, port: c.port };
        if (c.id) peer.id = c.id;
        this.#dht._rpc.socket.query(peer, message, (err, res) => {
          release(q);
          c.out--;
          if (this.#closed) return;
          const r = err ? undefined : res?.r;
          if (r) this.#markAlive(c.key);
          if (!r && c.out === 0) {
            if (err?.code === "ETIMEDOUT") this.#markDead(c.key);
            else if (err?.code === "EUNEXPECTEDNODE") this.#known.delete(c.key);
          }
          if (!settled && c.state !== "answered") {
            if (r) onReply(c, r);
            else if (c.out === 0) c.state = "failed";
            pump();
          }
          this.#wake();
        });
      };

      /**
       * Sends what α and the client-wide cap allow, and ends the lookup once the K closest
       * candidates that have not failed have all answered. A query unanswered for the idle wait
       * is stale: it gives back its α and client-wide slots (a lost datagram must not hold them
       * for a whole KRPC timeout) and is sent once more; a node whose second query goes stale
       * too counts as failed (until it answers after all).
       */
      function pump(this: void): void {
        if (settled) return;
        const now = performance.now();
        const staleMs = staleAfter();
        const stale = (c: Candidate) => now - c.sent >= staleMs;
        let active = 0;
        let released = false;
        for (const c of cands) {
          if (c.state !== "in flight") continue;
          if (!stale(c)) active++;
          else {
            if (c.query && release(c.query)) released = true;
            // Sent twice, stale twice: as good as failed (a late reply still counts).
            if (c.tries >= 2) c.state = "failed";
          }
        }
        let considered = 0;
        let open = false;
        for (const c of cands) {
          if (considered >= K) break;
          if (c.state === "failed") continue;
          considered++;
          if (c.state === "answered") continue;
          open = true;
          if (active >= (cold && responded === 0 ? Math.max(alpha, K) : alpha)) continue;
          if (c.state === "in flight" && (!stale(c) || c.tries >= 2)) continue;
          if (!slotFree()) {
            wait();
            break;
          }
          send(c);
          active++;
        }
        if (!open) return finish(true, true);
        let oldest = Infinity;
        for (const c of cands) {
          if (c.state === "in flight" && !stale(c)) {
            oldest = Math.min(oldest, c.sent);
          }
        }
        clearTimeout(staleTimer);
        if (oldest < Infinity) {
          staleTimer = setTimeout(pump, Math.max(1, oldest + staleMs - performance.now() + 1));
        }
        if (released) wake();
      }
      const staleAfter = () => this.#staleWait();
      const slotFree = () => this.#inflight < this.#slots();
      const wait = () => this.#waiting.add(pump);
      const wake = () => this.#wake();

      pump();
    });
  }

  /**
   * Stores `item` on the {@link K} closest nodes that handed out a write token (looked up first
   * unless a recent lookup of the same key is cached), in parallel, with an optional BEP44
   * `cas`. Once a node has answered, a silence of twice the idle wait (see
   * {@link DhtClientOptions.idleMs}) ends the put; the nodes still silent count as timeouts.
   *
   * A 302 from a node that is known (from an earlier get or put) to hold this very item (same
   * seq and signature) counts as stored: bittorrent-dht nodes answer 302 to an equal seq.
   * Throws {@link DhtConflictError} when more than half of the answering nodes reply 301 or 302,
   * and `CipherpostError("network")` when no node stored the item.
   */
  async put(item: MutableItem, opts: { cas?: number } = {}): Promise<PutResult> {
    this.#assertOpen();
    if (!verifyItem(item)) throw signatureError("DHT put: item does not verify");
    if (opts.cas !== undefined && !Number.isSafeInteger(opts.cas)) {
      throw new CipherpostError("invalid_material", "DHT put: cas must be an integer");
    }
    try {
      return await this.#putChecked(item, opts.cas);
    } catch (e) {
      if (!(e instanceof DhtConflictError)) throw e;
      // bittorrent-dht nodes answer 302 to an *equal* seq, so a conflict may be our very item
      // stored a moment earlier by another path (a relay forwarding it). Then the put succeeded.
      const seen = await this.get(item.k);
      const holders = seen.items.filter(({ item: x }) =>
        x.seq === item.seq && Buffer.from(x.sig).equals(Buffer.from(item.sig))
      );
      const newer = seen.items.some(({ item: x }) => x.seq > item.seq);
      if (holders.length === 0 || newer) throw e;
      return { stored: holders.length, attempted: holders.length, errors: {} };
    }
  }

  async #putChecked(item: MutableItem, cas: number | undefined): Promise<PutResult> {
    let first: { result: PutResult; fromCache: boolean };
    try {
      first = await this.#putOnce(item, cas, false);
    } catch (e) {
      // A put that stored nowhere forgets the cached closest nodes: they may be read-only
      // clients, gone, or their tokens may have rotated out. One fresh lookup, then one retry
      // (when the failed attempt used the cache); a later put starts afresh either way.
      if (e instanceof DhtConflictError) throw e;
      const targetHex = Buffer.from(dhtTarget(item.k)).toString("hex");
      const cached = this.#cache.get(targetHex);
      this.#cache.delete(targetHex);
      if (!cached || !(e instanceof CipherpostError && e.kind === "network")) throw e;
      return (await this.#putOnce(item, cas, true)).result;
    }
    return first.result;
  }

  async #putOnce(
    item: MutableItem,
    cas: number | undefined,
    fresh: boolean,
  ): Promise<{ result: PutResult; fromCache: boolean }> {
    const targetHex = Buffer.from(dhtTarget(item.k)).toString("hex");
    let entry = fresh ? undefined : this.#cache.get(targetHex);
    if (entry && Date.now() - entry.at > TOKEN_CACHE_MS) entry = undefined;
    const fromCache = entry !== undefined;
    if (!entry) {
      this.#cache.delete(targetHex);
      const res = await this.get(item.k);
      entry = this.#cache.get(targetHex) ?? {
        at: Date.now(),
        nodes: res.closest,
        holders: new Map(res.items.map(({ item, from }) => [from, item])),
      };
      if (entry.nodes.length === 0) {
        throw new CipherpostError(
          "network",
          `DHT put failed: no node handed out a write token (${res.queried} queried, ` +
            `${res.responded} responded)`,
        );
      }
    }
    const result = await this.#send(item, cas, entry);
    return { result, fromCache };
  }

  #send(item: MutableItem, cas: number | undefined, entry: TargetCache): Promise<PutResult> {
    const targets = entry.nodes.slice(0, K);
    const errors: Record<string, number> = {};
    let stored = 0;
    let answers = 0;
    let c301 = 0;
    let c302 = 0;
    let missing = targets.length;
    const k = Buffer.from(item.k);
    const sig = Buffer.from(item.sig);
    const v = Buffer.from(item.v);
    const bump = (key: string) => (errors[key] = (errors[key] ?? 0) + 1);

    return new Promise<PutResult>((resolve, reject) => {
      let settled = false;
      const answered = new Set<string>();
      /** Puts in flight that hold a client-wide query slot. */
      const holding = new Set<string>();
      const stop = () => {
        settled = true;
        clearTimeout(timer);
        clearTimeout(idle);
        this.#waiting.delete(pumpPuts);
        this.#pending.delete(fail);
        if (holding.size > 0) {
          this.#inflight -= holding.size;
          holding.clear();
          queueMicrotask(() => this.#wake());
        }
      };
      const conclude = () => {
        if (settled) return;
        stop();
        for (const n of targets) {
          if (!answered.has(`${n.host}:${n.port}`)) bump("timeout");
        }
        const attempted = targets.length;
        const conflicts = c301 + c302;
        if (conflicts > 0 && conflicts * 2 > answers) {
          const code = c301 >= c302 ? 301 : 302;
          const what = code === 301 ? "CAS mismatch (301)" : "a newer or equal record exists (302)";
          return reject(
            new DhtConflictError(
              code,
              `DHT put rejected: ${conflicts} of ${answers} answering nodes report ${what}`,
            ),
          );
        }
        if (stored === 0) {
          return reject(
            new CipherpostError(
              "network",
              `DHT put failed: 0 of ${attempted} nodes stored the item (${summarize(errors)})`,
            ),
          );
        }
        resolve({ stored, attempted, errors });
      };
      const fail = (e: Error) => {
        if (settled) return;
        stop();
        reject(e);
      };
      const timer = setTimeout(conclude, this.#deadlineMs);
      // Idle rule, as for lookups but twice as patient: once a node has answered, a silence of
      // 2 × the idle wait ends the put, and the nodes still silent count as timeouts (each was
      // sent the item anyway; waiting longer would only refine the count).
      let idle: ReturnType<typeof setTimeout> | undefined;
      const rearm = () => {
        clearTimeout(idle);
        // (Not while puts still wait for a query slot: they have not been sent yet.)
        idle = setTimeout(
          () => (next < targets.length ? rearm() : conclude()),
          2 * this.#idleWait(),
        );
      };
      this.#pending.add(fail);
      if (targets.length === 0) return conclude();

      const sendPut = (node: DhtNodeInfo) => {
        const key = `${node.host}:${node.port}`;
        const a: Record<string, unknown> = {
          id: this.#dht._rpc.id,
          token: Buffer.from(node.token),
          k,
          seq: item.seq,
          sig,
          v,
        };
        if (cas !== undefined) a.cas = cas;
        const peer: DhtPeer = { host: node.host, port: node.port, id: Buffer.from(node.id) };
        this.#inflight++;
        holding.add(key);
        this.#dht._rpc.socket.query(peer, { q: "put", a }, (err: KrpcError | null) => {
          if (holding.delete(key)) {
            this.#inflight--;
            this.#wake();
          }
          if (settled) return;
          answered.add(key);
          rearm();
          if (!err) {
            answers++;
            stored++;
            entry.holders.set(key, { seq: item.seq, sig: item.sig });
          } else if (typeof err.code === "number") {
            answers++;
            const held = entry.holders.get(key);
            if (
              err.code === 302 && held && held.seq === item.seq && equalBytes(held.sig, item.sig)
            ) {
              stored++;
            } else {
              if (err.code === 301) c301++;
              if (err.code === 302) c302++;
              bump(String(err.code));
            }
          } else {
            bump(err.code === "ETIMEDOUT" ? "timeout" : "other");
          }
          if (--missing === 0) conclude();
        });
      };
      // Through the client-wide query slots, like lookup queries: replies arriving faster than
      // the client reads them overflow its UDP receive buffer.
      let next = 0;
      const pumpPuts = () => {
        while (!settled && next < targets.length) {
          if (this.#inflight >= this.#slots()) {
            this.#waiting.add(pumpPuts);
            return;
          }
          sendPut(targets[next++]);
        }
      };
      pumpPuts();
    });
  }

  /** Cancels pending operations and closes the socket and every timer. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const fail of [...this.#pending]) {
      fail(new CipherpostError("network", "DHT client closed during the operation"));
    }
    this.#cache.clear();
    await new Promise<void>((resolve) => {
      try {
        this.#dht.destroy(() => resolve());
      } catch {
        resolve();
      }
    });
  }

  #remember(targetHex: string, nodes: DhtNodeInfo[], holders: TargetCache["holders"]): void {
    const now = Date.now();
    for (const [key, e] of this.#cache) if (now - e.at > TOKEN_CACHE_MS) this.#cache.delete(key);
    this.#cache.set(targetHex, { at: now, nodes, holders });
  }

  #assertOpen(): void {
    if (this.#closed) throw new CipherpostError("network", "DHT client is closed");
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

function itemFromReply(r: Record<string, unknown>, target: Uint8Array): MutableItem | null {
  const { k, sig, v, seq } = r;
  if (!isBytes(k, 32) || !isBytes(sig, 64) || !isBytes(v) || typeof seq !== "number") return null;
  const item: MutableItem = {
    k: new Uint8Array(k),
    seq,
    sig: new Uint8Array(sig),
    v: new Uint8Array(v),
  };
  if (!equalBytes(dhtTarget(item.k), target)) return null;
  return verifyItem(item) ? item : null;
}

function isBytes(x: unknown, len?: number): x is Uint8Array {
  return x instanceof Uint8Array && (len === undefined || x.length === len);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** `id` as a Buffer (a copy when it is a view of a larger message). */
function toBuf(id: Uint8Array): Buffer {
  return Buffer.from(id);
}

/** The first 6 bytes of the XOR distance of `id` to `target`, as an exact integer. */
/** A number that identifies an IPv4 `host` and `port` (exact: below 2^48). */
function addrKey(host: string, port: number): number {
  const b = host.split(".");
  return (((+b[0] << 24) | (+b[1] << 16) | (+b[2] << 8) | +b[3]) >>> 0) * 65536 + port;
}

function contact(host: string, port: number, id: Buffer | null, key?: number): Contact {
  return { host, port, id, addr: `${host}:${port}`, key: key ?? addrKey(host, port) };
}

/** Whether `id` equals the 20 bytes of `buf` at `offset`. */
function equalAt(id: Uint8Array, buf: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 20; i++) if (id[i] !== buf[offset + i]) return false;
  return true;
}

function prefixDistance(id: Uint8Array, target: Uint8Array): number {
  let d = 0;
  for (let i = 0; i < 6; i++) d = d * 256 + (id[i] ^ target[i]);
  return d;
}

/** Whether `a` (prefix distance `da`) is strictly closer to `target` than `b`. */
function closer(da: number, a: Uint8Array, db: number, b: Uint8Array, target: Uint8Array): boolean {
  if (da !== db) return da < db;
  for (let i = 6; i < target.length; i++) {
    const x = a[i] ^ target[i], y = b[i] ^ target[i];
    if (x !== y) return x < y;
  }
  return false;
}

/** Candidate order: by distance, contacts without an id last. */
function candCloser(a: Candidate, b: Candidate, target: Uint8Array): boolean {
  if (!a.id) return false;
  if (!b.id) return true;
  return closer(a.d, a.id, b.d, b.id, target);
}

function closestTo(target: Uint8Array, nodes: DhtNodeInfo[]): DhtNodeInfo[] {
  const dist = (id: Uint8Array) => id.map((b, i) => b ^ target[i]);
  const keyed = nodes.map((n) => ({ n, d: dist(n.id) }));
  keyed.sort((x, y) => {
    for (let i = 0; i < x.d.length; i++) if (x.d[i] !== y.d[i]) return x.d[i] - y.d[i];
    return 0;
  });
  return keyed.slice(0, K).map((x) => x.n);
}

function summarize(errors: Record<string, number>): string {
  const parts = Object.entries(errors).map(([k, n]) => `${k}: ${n}`);
  return parts.length ? parts.join(", ") : "no answers";
}
