/**
 * Mainline DHT client at the level of BEP44 mutable items (no salt), on `npm:bittorrent-dht`.
 *
 * `get` runs one iterative traversal towards `sha1(k)`, checks every item it is handed (target,
 * sizes, Ed25519 signature) and streams the valid ones to the caller, who may stop early. The
 * closest responders and their write tokens are kept per target for a few minutes so that a
 * following `put` goes straight to the k (=20) closest token holders, not to every node touched.
 *
 * bittorrent-dht 11.0.12 is pinned: `_closest`, `_rpc` and the k-rpc-socket internals used here
 * are private API.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { lookup } from "node:dns/promises";
import { isIPv4 } from "node:net";
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha1 } from "@noble/hashes/legacy.js";
// @ts-types="./types/bittorrent-dht.d.ts"
import DHT from "bittorrent-dht";
import type {
  DhtPeer,
  DhtRinfo,
  KrpcError,
  KrpcMessage,
  KrpcQuery,
} from "./types/bittorrent-dht.d.ts";
import { CipherpostError, signatureError } from "./errors.ts";
import { verifyPacketSignature } from "./keys.ts";

/** BEP44 limit on `v`, in bytes. */
export const MAX_V_BYTES = 1000;
/** Kademlia replication factor: a put goes to this many closest token holders. */
export const K = 20;
/** How long the closest token holders of a target are reused (tokens live 5 to 10 min). */
const TOKEN_CACHE_MS = 4 * 60 * 1000;
const DEFAULT_TIMEOUT_MS = 2000;

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
  /** Queries in flight at once across all lookups (default 128). */
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

/** The BEP44 signable without salt: ASCII `3:seqi<seq>e1:v<len>:` followed by `v`. */
export function encodeSignable(seq: number, v: Uint8Array): Uint8Array {
  const prefix = new TextEncoder().encode(`3:seqi${seq}e1:v${v.length}:`);
  const out = new Uint8Array(prefix.length + v.length);
  out.set(prefix);
  out.set(v, prefix.length);
  return out;
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

/** The DHT target of a public key: `sha1(k)`, 20 bytes. */
export function dhtTarget(k: Uint8Array): Uint8Array {
  return sha1(k);
}

interface TargetCache {
  at: number;
  nodes: DhtNodeInfo[];
  /** `host:port` → the item that node is known to hold. */
  holders: Map<string, { seq: number; sig: Uint8Array }>;
}

interface Traversal {
  queried: number;
}

/** A Mainline DHT client: one UDP socket, BEP44 get/put of unsalted mutable items. */
export class DhtClient {
  #dht: DHT;
  #deadlineMs: number;
  #idleMs: number;
  #cache = new Map<string, TargetCache>();
  #traversals = new WeakMap<object, Traversal>();
  #pending = new Set<(e: Error) => void>();
  #closed = false;

  private constructor(dht: DHT, deadlineMs: number, idleMs: number) {
    this.#idleMs = idleMs;
    this.#dht = dht;
    this.#deadlineMs = deadlineMs;
    // Count the queries each traversal sends: k-rpc passes our message object through as is.
    const sock = dht._rpc.socket;
    const query = sock.query.bind(sock);
    sock.query = (peer, q, cb) => {
      const t = this.#traversals.get(q);
      if (t) t.queried++;
      const sent = performance.now();
      return query(peer, q, (err, res, from) => {
        if (!err) this.#recordRtt(performance.now() - sent);
        return cb(err, res, from);
      });
    };
  }

  /** Recent reply times, for the adaptive idle rule. */
  #rtts: number[] = [];

  #recordRtt(ms: number): void {
    this.#rtts.push(ms);
    if (this.#rtts.length > 64) this.#rtts.shift();
  }

  /**
   * How long a traversal may stay silent before it ends: 3 × the 90th percentile of recent
   * reply times, between 100 ms and the configured maximum. On loopback that is ~100 ms, on
   * the Internet it reaches the maximum.
   */
  #idleWait(): number {
    if (this.#rtts.length < 8) return this.#idleMs;
    const sorted = [...this.#rtts].sort((a, b) => a - b);
    const p90 = sorted[Math.floor(sorted.length * 0.9)];
    return Math.min(this.#idleMs, Math.max(100, 3 * p90));
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
    // k-rpc's traversal falls back to the routing table whenever it knows fewer nodes than the
    // bootstrap list is long, so more than K bootstrap entries would defeat the traversal.
    const peers = shuffle(await resolveBootstrap(opts.bootstrap)).slice(0, K);
    if (peers.length === 0) {
      throw new CipherpostError(
        "network",
        `DHT unreachable: none of ${opts.bootstrap.length} bootstrap hosts resolved to IPv4`,
      );
    }
    const bindHost = peers.every((p) => p.host.startsWith("127.")) ? "127.0.0.1" : "0.0.0.0";
    // k-rpc caps queries in flight across *all* lookups at `concurrency` (default 16); a
    // multi-packet share runs dozens of lookups at once, so the client allows more.
    const dht = new DHT({
      bootstrap: peers,
      verify: verifySignature,
      timeout: timeoutMs,
      k: K,
      concurrency: opts.concurrency ?? 128,
    });
    const bootKeys = new Set(peers.map((p) => `${p.host}:${p.port}`));
    const answered = new Set<string>();
    const onResponse = (_m: KrpcMessage, rinfo: DhtRinfo) => {
      const key = `${rinfo.address}:${rinfo.port}`;
      if (bootKeys.has(key)) answered.add(key);
    };
    dht._rpc.socket.on("response", onResponse);
    dht.on("warning", () => {});
    // A client is not a replica: it lives for one command, so data put to it would vanish with
    // it while the putter counted it as stored. Refuse puts (KRPC 201, generic error).
    dht._onput = (query: KrpcQuery, peer: DhtRinfo) => dht._rpc.error(peer, query, [201, "read-only client"]);
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
    const client = new DhtClient(dht, deadlineMs, opts.idleMs ?? Math.min(timeoutMs / 2, 750));
    await bound;
    if (bindError) {
      await client.close();
      throw new CipherpostError("network", `DHT: could not bind UDP ${bindHost}:${opts.port ?? 0}`);
    }
    // Usable as soon as one bootstrap node has answered: lookups start from the bootstrap list
    // and the routing table anyway. Waiting for 'ready' (the end of the bootstrap find_node
    // traversal) costs a full KRPC timeout whenever a dead node is in someone's table, which
    // on the real DHT is always.
    const started = performance.now();
    await new Promise<void>((resolve) => {
      if (dht.ready || answered.size > 0) return resolve();
      const timer = setTimeout(done, Math.max(deadlineMs, timeoutMs * 2));
      const poll = setInterval(() => answered.size > 0 && done(), 5);
      dht.once("ready", done);
      function done() {
        clearTimeout(timer);
        clearInterval(poll);
        dht.removeListener("ready", done);
        resolve();
      }
    });
    dht._rpc.socket.removeListener("response", onResponse);
    if (answered.size === 0) {
      await client.close();
      const ms = Math.round(performance.now() - started);
      throw new CipherpostError(
        "network",
        `DHT unreachable: 0 of ${peers.length} bootstrap nodes answered within ${ms} ms`,
        "check the network connection or the bootstrap list",
      );
    }
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
      signal?: AbortSignal;
    } = {},
  ): Promise<GetResult> {
    this.#assertOpen();
    if (k.length !== 32) {
      throw new CipherpostError("invalid_material", "DHT get: public key must be 32 bytes");
    }
    opts.signal?.throwIfAborted();
    return await this.#traverse(k, opts);
  }

  /** Known holders of a target's item: the cached ones plus those of `items`. */
  #holdersWith(targetHex: string, items: GetResult["items"]) {
    const holders = this.#cache.get(targetHex)?.holders ?? new Map();
    for (const { item, from } of items) holders.set(from, { seq: item.seq, sig: item.sig });
    return holders;
  }

  #traverse(
    k: Uint8Array,
    opts: { onItem?: (item: MutableItem, from: string) => boolean; signal?: AbortSignal },
  ): Promise<GetResult> {
    const target = Buffer.from(dhtTarget(k));
    const targetHex = target.toString("hex");
    const message: KrpcQuery = { q: "get", a: { id: this.#dht._rpc.id, target } };
    const trav: Traversal = { queried: 0 };
    this.#traversals.set(message, trav);
    const items: GetResult["items"] = [];
    const nodes = new Map<string, DhtNodeInfo>();
    let responded = 0;
    let invalid = 0;
    let stopped = false;
    let settled = false;

    return new Promise<GetResult>((resolve, reject) => {
      const result = (complete: boolean): GetResult => ({
        items: [...items],
        queried: trav.queried,
        responded,
        invalid,
        closest: closestTo(target, [...nodes.values()]),
        complete,
      });
      const cleanup = () => {
        settled = true;
        stopped = true;
        clearTimeout(timer);
        clearTimeout(idle);
        opts.signal?.removeEventListener("abort", onAbort);
        this.#pending.delete(fail);
      };
      const finish = (complete: boolean) => {
        if (settled) return;
        cleanup();
        resolve(result(complete));
      };
      const fail = (e: Error) => {
        if (settled) return;
        cleanup();
        reject(e);
      };
      const onAbort = () => fail(opts.signal?.reason ?? new Error("aborted"));
      const timer = setTimeout(() => finish(false), this.#deadlineMs);
      // Idle rule: after the first reply, a silence of idleMs ends the traversal as if it had
      // completed (what is still outstanding is, in practice, dead nodes).
      let idle: ReturnType<typeof setTimeout> | undefined;
      const rearm = () => {
        clearTimeout(idle);
        idle = setTimeout(() => {
          if (settled || responded === 0) return;
          this.#remember(
            targetHex,
            closestTo(target, [...nodes.values()]),
            this.#holdersWith(targetHex, items),
          );
          finish(true);
        }, this.#idleWait());
      };
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      this.#pending.add(fail);

      const onreply = (msg: KrpcMessage, from: DhtRinfo): boolean => {
        const r = msg.r;
        if (!r || settled) return !stopped;
        responded++;
        rearm();
        const fromKey = `${from.address}:${from.port}`;
        if (isBytes(r.id, 20) && isBytes(r.token)) {
          nodes.set(fromKey, {
            host: from.address,
            port: from.port,
            id: new Uint8Array(r.id),
            token: new Uint8Array(r.token),
          });
        }
        if (r.v === undefined) return true;
        const item = itemFromReply(r, target);
        if (!item) {
          invalid++;
          return true;
        }
        items.push({ item, from: fromKey });
        let stop = false;
        try {
          stop = opts.onItem?.(item, fromKey) === true;
        } catch (e) {
          fail(e instanceof Error ? e : new Error(String(e)));
          return false;
        }
        if (stop) {
          finish(false);
          return false;
        }
        return true;
      };

      this.#dht._closest(target, message, onreply, () => {
        if (this.#closed) return;
        if (!stopped) {
          this.#remember(
            targetHex,
            closestTo(target, [...nodes.values()]),
            this.#holdersWith(targetHex, items),
          );
        }
        finish(!stopped);
      });
    });
  }

  /**
   * Stores `item` on the {@link K} closest nodes that handed out a write token (looked up first
   * unless a recent lookup of the same key is cached), in parallel, with an optional BEP44
   * `cas`.
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
    const opts = { cas };
    const first = await this.#putOnce(item, opts.cas, false);
    // Cached tokens may have rotated out: one fresh lookup, then one retry.
    if (first.result.stored === 0 && first.fromCache && (first.result.errors["203"] ?? 0) > 0) {
      return (await this.#putOnce(item, opts.cas, true)).result;
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
      const conclude = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#pending.delete(fail);
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
        settled = true;
        clearTimeout(timer);
        this.#pending.delete(fail);
        reject(e);
      };
      const timer = setTimeout(conclude, this.#deadlineMs);
      this.#pending.add(fail);
      if (targets.length === 0) return conclude();

      for (const node of targets) {
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
        // Straight to the socket: k-rpc's queue (concurrency 16) would split 20 puts in 2 rounds.
        this.#dht._rpc.socket.query(peer, { q: "put", a }, (err: KrpcError | null) => {
          if (settled) return;
          answered.add(key);
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
      }
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
