/**
 * The DHT client's routing table: every contact learned (up to {@link MAX_KNOWN}, least
 * recently heard of evicted first), the contacts that timed out (skipped for {@link DEAD_MS}),
 * and the XOR-distance helpers that order contacts towards a target.
 *
 * Contacts are keyed by {@link addrKey}, an exact number for an IPv4 host and port.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { bytesEqual } from "../../util/encoding.ts";

/** Kademlia replication factor: a put goes to this many closest token holders. */
export const K = 20;
/** Contacts the client remembers across lookups, to start each lookup near its target. */
const MAX_KNOWN = 4096;
/** A contact whose query timed out is not used again for this long. */
const DEAD_MS = 5 * 60 * 1000;

/** A DHT contact: `id` is null for a bootstrap entry that has not answered yet. */
export interface Contact {
  host: string;
  port: number;
  id: Buffer | null;
  /** `host:port` */
  addr: string;
  /** {@link addrKey} of host and port. */
  key: number;
}

/** A DHT node that answered a lookup, with the write token it handed out. */
export interface DhtNodeInfo {
  host: string;
  port: number;
  id: Uint8Array;
  token: Uint8Array;
}

/** Known contacts and dead ones; `self` (the client's own node id) is never learned. */
export class RoutingTable {
  readonly #self: Uint8Array;
  /** Contacts learned so far, by {@link addrKey}, least recently heard of first. */
  #known = new Map<number, Contact>();
  /** Contacts whose queries timed out, by {@link addrKey} → until when they are skipped. */
  #dead = new Map<number, number>();
  /**
   * Contacts that have answered this client: a timeout of theirs is a lost datagram (a lossy
   * network), not a dead node, so it does not remove them from every later lookup.
   */
  #answered = new Set<number>();

  constructor(self: Uint8Array) {
    this.#self = self;
  }

  /** Whether `id` is the client's own node id. */
  isSelf(id: Uint8Array): boolean {
    return bytesEqual(id, this.#self);
  }

  /** Remembers a contact that answered (it becomes the most recently heard of). */
  learn(host: string, port: number, id: Uint8Array): void {
    const key = addrKey(host, port);
    if (this.isSelf(id)) return;
    if (this.#answered.size < MAX_KNOWN) this.#answered.add(key);
    this.#dead.delete(key); // it answered after all
    const old = this.#known.get(key);
    if (old) this.#known.delete(key);
    const c = old?.id && bytesEqual(old.id, id) ? old : contact(host, port, toBuf(id), key);
    this.#known.set(key, c);
    if (this.#known.size > MAX_KNOWN) this.#known.delete(this.#known.keys().next().value!);
  }

  /**
   * Learns the contacts of a compact `nodes` string (second-hand: a known contact keeps its
   * place) and passes each one to `visit`.
   */
  learnNodes(nodes: Uint8Array, visit?: (c: Contact) => void): void {
    const self = this.#self;
    for (let i = 0; i + 26 <= nodes.length; i += 26) {
      const port = (nodes[i + 24] << 8) | nodes[i + 25];
      if (port === 0) continue;
      const ip = ((nodes[i + 20] << 24) | (nodes[i + 21] << 16) | (nodes[i + 22] << 8) |
        nodes[i + 23]) >>> 0;
      const key = ip * 65536 + port;
      let c = this.#known.get(key);
      if (!c || !c.id || !equalAt(c.id, nodes, i)) {
        if (this.isDead(key) || equalAt(self, nodes, i)) continue;
        const host = `${nodes[i + 20]}.${nodes[i + 21]}.${nodes[i + 22]}.${nodes[i + 23]}`;
        c = contact(host, port, Buffer.from(nodes.subarray(i, i + 20)), key);
        this.#known.delete(key);
        this.#known.set(key, c);
        if (this.#known.size > MAX_KNOWN) this.#known.delete(this.#known.keys().next().value!);
      }
      visit?.(c);
    }
  }

  /**
   * A contact whose query timed out: forgotten, and skipped for a while, unless it has
   * answered this client before (then the timeout was a lost datagram).
   */
  markDead(key: number): void {
    if (this.#answered.has(key)) return;
    this.#dead.set(key, Date.now() + DEAD_MS);
    this.#known.delete(key);
  }

  /** Forgets a contact (it answered with another id than the one we knew). */
  forget(key: number): void {
    this.#known.delete(key);
  }

  /** Whether the contact of `key` timed out recently. */
  isDead(key: number): boolean {
    if (this.#dead.size === 0) return false;
    const until = this.#dead.get(key);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.#dead.delete(key);
    return false;
  }

  /** The `n` known contacts closest to `target`. */
  seeds(target: Uint8Array, n: number): Contact[] {
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
}

/** Whether `x` is a byte string (of length `len` when given), as KRPC replies carry them. */
export function isBytes(x: unknown, len?: number): x is Uint8Array {
  return x instanceof Uint8Array && (len === undefined || x.length === len);
}

/** `id` as a Buffer (a copy when it is a view of a larger message). */
export function toBuf(id: Uint8Array): Buffer {
  return Buffer.from(id);
}

/** A number that identifies an IPv4 `host` and `port` (exact: below 2^48). */
export function addrKey(host: string, port: number): number {
  const b = host.split(".");
  return (((+b[0] << 24) | (+b[1] << 16) | (+b[2] << 8) | +b[3]) >>> 0) * 65536 + port;
}

/** A contact of `host`, `port` and `id` (null while unknown). */
export function contact(host: string, port: number, id: Buffer | null, key?: number): Contact {
  return { host, port, id, addr: `${host}:${port}`, key: key ?? addrKey(host, port) };
}

/** Whether `id` equals the 20 bytes of `buf` at `offset`. */
function equalAt(id: Uint8Array, buf: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 20; i++) if (id[i] !== buf[offset + i]) return false;
  return true;
}

/** The first 6 bytes of the XOR distance of `id` to `target`, as an exact integer. */
export function prefixDistance(id: Uint8Array, target: Uint8Array): number {
  let d = 0;
  for (let i = 0; i < 6; i++) d = d * 256 + (id[i] ^ target[i]);
  return d;
}

/** Whether `a` (prefix distance `da`) is strictly closer to `target` than `b`. */
export function closer(
  da: number,
  a: Uint8Array,
  db: number,
  b: Uint8Array,
  target: Uint8Array,
): boolean {
  if (da !== db) return da < db;
  for (let i = 6; i < target.length; i++) {
    const x = a[i] ^ target[i], y = b[i] ^ target[i];
    if (x !== y) return x < y;
  }
  return false;
}

/** The {@link K} nodes of `nodes` closest to `target`, closest first. */
export function closestTo(target: Uint8Array, nodes: DhtNodeInfo[]): DhtNodeInfo[] {
  const dist = (id: Uint8Array) => id.map((b, i) => b ^ target[i]);
  const keyed = nodes.map((n) => ({ n, d: dist(n.id) }));
  keyed.sort((x, y) => {
    for (let i = 0; i < x.d.length; i++) if (x.d[i] !== y.d[i]) return x.d[i] - y.d[i];
    return 0;
  });
  return keyed.slice(0, K).map((x) => x.n);
}
