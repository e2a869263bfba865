/**
 * One iterative Kademlia lookup of `sha1(k)` with BEP44 `get` queries, as a small state machine.
 *
 * The lookup is our own, on k-rpc-socket (not k-rpc's `_closest`, which queries every unqueried
 * node among the k closest it knows, each round, and so sends 55 to 90 queries per lookup in a
 * 200-node network): at most α queries in flight per lookup, and the lookup ends as soon as the
 * k closest nodes it has seen have all answered (or failed). It starts from the known contacts
 * closest to its target (the bootstrap entries too while fewer than K are known), so the many
 * lookups of a multi-packet share mostly start next to their target.
 *
 * Unresponsive nodes: a query unanswered for the stale wait (2 × the 90th percentile of recent
 * reply times) gives back its α and client-wide slots and is sent once more (a lost datagram).
 * Sooner, once unanswered for the suspect wait (1.25 × that percentile), the node is *suspect*:
 * it leaves the lookup's window of the K closest and its α, so the next closest is asked instead
 * of the lookup waiting for a stale wait and the retry (on a network with 15 % dead nodes, most
 * windows hold two or three of them). A suspect that answers after all is back in
 * its place; one whose retry goes stale too has failed, and is skipped by the client's other
 * lookups for a while (`RoutingTable.markDead`, unless it has answered this client before). Once
 * the lookup has heard from anyone, a silence of the idle wait ends it as complete: dead nodes in
 * routing tables cost at most that.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { DhtPeer, Krpc, KrpcQuery } from "./bittorrent-dht.d.ts";
import { bytesEqual } from "../../util/encoding.ts";
import { dhtTarget } from "../public_key.ts";
import { type MutableItem, verifyItem } from "../item.ts";
import { type Pacer, patientTimeout, type PatientTimer } from "./pacing.ts";
import type { TokenCache } from "./tokens.ts";
import {
  closer,
  closestTo,
  type Contact,
  contact,
  type DhtNodeInfo,
  isBytes,
  K,
  prefixDistance,
  type RoutingTable,
  toBuf,
} from "./routing.ts";

/**
 * Queries in flight per lookup that may stop at its first valid item (a read): wide, since the
 * first reply of many holders comes sooner (on the realistic DHT of bench_dht, with reply
 * delays of 20–400 ms, a first answer took p50/p95 95/269 ms at 4 and 42/102 ms at 16; pkarr
 * 46/221 ms).
 */
const ALPHA_FIRST = 16;
/** Queries in flight per lookup that must reach all of the k closest (before a put). */
const ALPHA_FULL = 10;
/** Candidates one lookup keeps, closest first. */
const MAX_CANDIDATES = 4 * K;

/** What a lookup (a `DhtClient.get`) saw. */
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
  /**
   * False when the traversal was cut short: an early stop via `onItem`, or the deadline before
   * every one of the K closest candidates it knew had been asked.
   */
  complete: boolean;
}

/** Options of one lookup. */
export interface LookupOptions {
  /** Called with every valid item as it arrives; return true to stop and resolve at once. */
  onItem?: (item: MutableItem, from: string) => boolean;
  signal?: AbortSignal;
  /**
   * "first": the caller will stop at the first item it likes (α = 16); "full": a
   * complete traversal for the most recent item (α = 10). Default: "first" with `onItem`.
   */
  mode?: "first" | "full";
}

/** What a lookup uses of its client. */
export interface LookupContext {
  /** The client's k-rpc (its socket sends the queries; `id` is the client's node id). */
  rpc: Krpc;
  routing: RoutingTable;
  pacer: Pacer;
  tokens: TokenCache;
  /** Overall deadline of the lookup. */
  deadlineMs: number;
  /** The bootstrap entries, the lookups' last resort. */
  bootPeers: readonly DhtPeer[];
  /** Running operations' fail callbacks: closing the client rejects them. */
  pending: Set<(e: Error) => void>;
  /** Whether the client was closed. */
  closed(): boolean;
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
  /** A query to it went stale: out of the window until it answers (see the module notes). */
  suspect: boolean;
}

/** A query in flight; `held` while it holds a client-wide query slot. */
type Query = { held: boolean };

/**
 * One lookup: construct, then {@link Lookup.run} once. Resolves when the K closest candidates
 * that have not failed have all answered, when `onItem` stops it, at the idle end or at the
 * deadline; rejects on abort, on a throwing `onItem` and when the client closes.
 */
export class Lookup {
  readonly #ctx: LookupContext;
  readonly #opts: LookupOptions;
  readonly #target: Buffer;
  readonly #targetHex: string;
  readonly #message: KrpcQuery;
  readonly #alpha: number;
  /** A cold client (fewer than K known contacts) sends its first wave to every bootstrap node. */
  readonly #cold: boolean;
  readonly #items: GetResult["items"] = [];
  /** Responders that handed out a token, by `host:port`. */
  readonly #nodes = new Map<string, DhtNodeInfo>();
  /** Candidates, closest first (unknown ids last). */
  readonly #cands: Candidate[] = [];
  readonly #byKey = new Map<number, Candidate>();
  /** Queries in flight that hold a client-wide query slot. */
  readonly #holding = new Set<Query>();
  #queried = 0;
  #responded = 0;
  #invalid = 0;
  #settled = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #idle: PatientTimer | undefined;
  #staleTimer: PatientTimer | undefined;
  /** Queries sent before this time count as stale (set when the idle wait passes). */
  #forceBefore = -Infinity;
  #resolve: (r: GetResult) => void = () => {};
  #reject: (e: Error) => void = () => {};
  /** The step function, one identity for the client's wait list. */
  readonly #pump = (): void => this.#step();
  readonly #fail = (e: Error): void => {
    if (this.#settled) return;
    this.#cleanup();
    this.#reject(e);
  };
  readonly #onAbort = (): void => this.#fail(this.#opts.signal?.reason ?? new Error("aborted"));

  /** Prepares a lookup of the item of public key `k` (32 bytes). */
  constructor(ctx: LookupContext, k: Uint8Array, opts: LookupOptions) {
    this.#ctx = ctx;
    this.#opts = opts;
    this.#target = Buffer.from(dhtTarget(k));
    this.#targetHex = this.#target.toString("hex");
    this.#message = { q: "get", a: { id: ctx.rpc.id, target: this.#target } };
    this.#alpha = (opts.mode ?? (opts.onItem ? "first" : "full")) === "first"
      ? ALPHA_FIRST
      : ALPHA_FULL;
    const seeds = ctx.routing.seeds(this.#target, 2 * K);
    for (const c of seeds) this.#consider(c);
    // A cold client (a fresh CLI process) knows nothing near the target: its first wave goes to
    // every bootstrap node at once instead of α of them, which saves a round trip.
    this.#cold = seeds.length < K;
    if (this.#cold) {
      for (const p of ctx.bootPeers) this.#consider(contact(p.host, p.port, null));
    }
  }

  /** Runs the lookup (once). */
  run(): Promise<GetResult> {
    return new Promise<GetResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
      this.#timer = setTimeout(() => {
        // At the deadline: reached its target when the K closest it knows have all been asked
        // (only their answers were still out, as on a busy machine), cut short otherwise.
        const reached = this.#responded > 0 && !this.#window().some((c) => c.state === "fresh");
        this.#finish(reached, reached);
      }, this.#ctx.deadlineMs);
      this.#opts.signal?.addEventListener("abort", this.#onAbort, { once: true });
      this.#ctx.pending.add(this.#fail);
      this.#pump();
    });
  }

  #result(complete: boolean): GetResult {
    return {
      items: [...this.#items],
      queried: this.#queried,
      responded: this.#responded,
      invalid: this.#invalid,
      closest: closestTo(this.#target, [...this.#nodes.values()]),
      complete,
    };
  }

  #cleanup(): void {
    this.#settled = true;
    // Queries still out no longer hold client-wide slots: nobody waits for them.
    if (this.#holding.size > 0) {
      for (const q of [...this.#holding]) this.#release(q);
      queueMicrotask(() => this.#ctx.pacer.wake());
    }
    clearTimeout(this.#timer);
    this.#idle?.clear();
    this.#staleTimer?.clear();
    this.#ctx.pacer.waiting.delete(this.#pump);
    this.#opts.signal?.removeEventListener("abort", this.#onAbort);
    this.#ctx.pending.delete(this.#fail);
  }

  /** Resolves; `remember` stores the closest token holders for a following put. */
  #finish(complete: boolean, remember: boolean): void {
    if (this.#settled) return;
    this.#cleanup();
    if (remember && this.#nodes.size > 0) {
      const tokens = this.#ctx.tokens;
      tokens.remember(
        this.#targetHex,
        closestTo(this.#target, [...this.#nodes.values()]),
        tokens.holdersWith(this.#targetHex, this.#items),
      );
    }
    this.#resolve(this.#result(complete));
  }

  /**
   * Idle rule: after the first reply, a silence of the idle wait ends the lookup as if it had
   * completed (what is still outstanding is, in practice, dead nodes) — unless some of the K
   * closest candidates have not been asked yet: then the queries out count as stale and those
   * are asked instead (α queries all sent to dead nodes must not end a lookup short of its
   * target). The silence is measured by a patient timer: the client's own stall is not the
   * network's silence.
   */
  #rearm(): void {
    this.#idle?.clear();
    this.#idle = patientTimeout(() => {
      if (this.#settled || this.#responded === 0) return;
      // Waiting for one of the client's query slots is not silence of the network.
      if (this.#ctx.pacer.waiting.has(this.#pump)) return this.#rearm();
      if (this.#window().some((c) => c.state === "fresh")) {
        this.#forceBefore = performance.now();
        this.#step();
        if (!this.#settled) this.#rearm();
        return;
      }
      this.#finish(true, true);
    }, this.#ctx.pacer.idleWait());
  }

  /** The K closest candidates that have not failed and have not answered yet (no suspects). */
  #window(): Candidate[] {
    const out: Candidate[] = [];
    let considered = 0;
    for (const c of this.#cands) {
      if (considered >= K) break;
      if (c.state === "failed" || (c.suspect && c.state !== "answered")) continue;
      considered++;
      if (c.state !== "answered") out.push(c);
    }
    return out;
  }

  /** Inserts a contact in distance order (unknown ids last); false when not kept. */
  #insert(c: Candidate): boolean {
    const cands = this.#cands;
    let i = cands.length;
    while (i > 0 && candCloser(c, cands[i - 1], this.#target)) i--;
    if (i >= MAX_CANDIDATES) return false;
    cands.splice(i, 0, c);
    this.#byKey.set(c.key, c);
    if (cands.length > MAX_CANDIDATES) this.#byKey.delete(cands.pop()!.key);
    return true;
  }

  /** Makes a contact a candidate unless it is too far, known already, dead or ourselves. */
  #consider = (c: Contact): void => {
    const cands = this.#cands;
    let d = Infinity;
    if (c.id) {
      d = prefixDistance(c.id, this.#target);
      // Not closer than the farthest kept candidate: skip early.
      const last = cands[cands.length - 1];
      if (
        cands.length >= MAX_CANDIDATES && last.id &&
        !closer(d, c.id, last.d, last.id, this.#target)
      ) return;
    }
    if (this.#byKey.has(c.key) || this.#ctx.routing.isDead(c.key)) return;
    if (c.id && this.#ctx.routing.isSelf(c.id)) return;
    this.#insert({
      ...c,
      d,
      state: "fresh",
      sent: 0,
      tries: 0,
      out: 0,
      query: null,
      suspect: false,
    });
  };

  #onReply(c: Candidate, r: Record<string, unknown>): void {
    this.#responded++;
    this.#rearm();
    c.state = "answered";
    if (!c.id && isBytes(r.id, 20)) {
      // A bootstrap entry: now that its id is known, move it to its place.
      const i = this.#cands.indexOf(c);
      if (i >= 0) this.#cands.splice(i, 1);
      this.#byKey.delete(c.key);
      c.id = toBuf(r.id);
      c.d = prefixDistance(c.id, this.#target);
      this.#insert(c);
    }
    if (isBytes(r.id, 20)) {
      this.#ctx.routing.learn(c.host, c.port, r.id);
      if (isBytes(r.token)) {
        this.#nodes.set(c.addr, {
          host: c.host,
          port: c.port,
          id: new Uint8Array(r.id),
          token: new Uint8Array(r.token),
        });
      }
    }
    if (isBytes(r.nodes)) this.#ctx.routing.learnNodes(r.nodes, this.#consider);
    if (r.v === undefined) return;
    const item = itemFromReply(r, this.#target);
    if (!item) {
      this.#invalid++;
      return;
    }
    this.#items.push({ item, from: c.addr });
    let stop = false;
    try {
      stop = this.#opts.onItem?.(item, c.addr) === true;
    } catch (e) {
      this.#fail(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    if (stop) this.#finish(false, false);
  }

  /** Gives back a query's client-wide slot; false when it held none. */
  #release(q: Query): boolean {
    if (!q.held) return false;
    q.held = false;
    this.#holding.delete(q);
    this.#ctx.pacer.inflight--;
    return true;
  }

  #send(c: Candidate): void {
    const ctx = this.#ctx;
    const q: Query = { held: true };
    this.#holding.add(q);
    c.state = "in flight";
    c.sent = performance.now();
    c.query = q;
    c.tries++;
    c.out++;
    this.#queried++;
    ctx.pacer.inflight++;
    const peer: DhtPeer = { host: c.host, port: c.port };
    if (c.id) peer.id = c.id;
    ctx.rpc.socket.query(peer, this.#message, (err, res) => {
      this.#release(q);
      c.out--;
      if (ctx.closed()) return;
      const r = err ? undefined : res?.r;
      if (!r && c.out === 0) {
        if (err?.code === "ETIMEDOUT") ctx.routing.markDead(c.key);
        else if (err?.code === "EUNEXPECTEDNODE") ctx.routing.forget(c.key);
      }
      if (!this.#settled && c.state !== "answered") {
        if (r) this.#onReply(c, r);
        else if (c.out === 0) c.state = "failed";
        this.#pump();
      }
      ctx.pacer.wake();
    });
  }

  /** α, or at least K for the first wave of a cold client. */
  #width(): number {
    return this.#cold && this.#responded === 0 ? Math.max(this.#alpha, K) : this.#alpha;
  }

  /**
   * Sends what α and the client-wide cap allow, and ends the lookup once the K closest
   * candidates that have not failed have all answered. A query unanswered for the suspect wait
   * makes its node suspect (out of the window and of α; see the module notes). A query
   * unanswered for the stale wait is stale: it gives back its α and client-wide slots (a lost datagram must not hold them
   * for a whole KRPC timeout) and is sent once more; a node whose second query goes stale
   * too counts as failed (until it answers after all). Candidates never asked go first, closest
   * first; second queries to stale ones after them.
   */
  #step(): void {
    if (this.#settled) return;
    const pacer = this.#ctx.pacer;
    const now = performance.now();
    const staleMs = pacer.staleWait();
    const suspectMs = pacer.suspectWait();
    const stale = (c: Candidate) => now - c.sent >= staleMs || c.sent <= this.#forceBefore;
    let active = 0;
    let released = false;
    const retry: Candidate[] = [];
    for (const c of this.#cands) {
      if (c.state !== "in flight") continue;
      if (!stale(c)) {
        // Slower than nearly every reply: its place in the window goes to the next closest (it
        // keeps its query slot until stale, and a reply still counts).
        if (now - c.sent >= suspectMs) c.suspect = true;
        if (!c.suspect) active++;
      } else {
        if (c.query && this.#release(c.query)) released = true;
        c.suspect = true;
        if (c.tries < 2) retry.push(c);
        else {
          // Sent twice, stale twice: as good as failed (a late reply still counts), here and
          // in the client's other lookups.
          c.state = "failed";
          this.#ctx.routing.markDead(c.key);
        }
      }
    }
    const open = this.#window();
    if (open.length === 0) return this.#finish(true, true);
    const due = [...open.filter((c) => c.state === "fresh"), ...retry];
    for (const c of due) {
      if (active >= this.#width()) break;
      if (!pacer.slotFree()) {
        pacer.waiting.add(this.#pump);
        break;
      }
      this.#send(c);
      active++;
    }
    // The next step: when the oldest query goes stale, or the oldest unsuspected one suspect.
    let wakeAt = Infinity;
    for (const c of this.#cands) {
      if (c.state !== "in flight" || stale(c)) continue;
      wakeAt = Math.min(wakeAt, c.sent + (c.suspect ? staleMs : suspectMs));
    }
    this.#staleTimer?.clear();
    if (wakeAt < Infinity) {
      this.#staleTimer = patientTimeout(this.#pump, Math.max(1, wakeAt - performance.now() + 1));
    }
    if (released) pacer.wake();
  }
}

/** The verified item of a `get` reply, or null when it is malformed, forged or off-target. */
function itemFromReply(r: Record<string, unknown>, target: Uint8Array): MutableItem | null {
  const { k, sig, v, seq } = r;
  if (!isBytes(k, 32) || !isBytes(sig, 64) || !isBytes(v) || typeof seq !== "number") return null;
  const item: MutableItem = {
    k: new Uint8Array(k),
    seq,
    sig: new Uint8Array(sig),
    v: new Uint8Array(v),
  };
  if (!bytesEqual(dhtTarget(item.k), target)) return null;
  return verifyItem(item) ? item : null;
}

/** Candidate order: by distance, contacts without an id last. */
function candCloser(a: Candidate, b: Candidate, target: Uint8Array): boolean {
  if (!a.id) return false;
  if (!b.id) return true;
  return closer(a.d, a.id, b.d, b.id, target);
}
