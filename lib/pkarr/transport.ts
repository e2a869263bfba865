/**
 * PKARR transport: resolve and publish signed packets over the Mainline DHT and pkarr relays.
 *
 * - `resolve` asks the DHT and every relay at once and verifies every packet. It answers as
 *   soon as a packet satisfies the caller's `accept` predicate; otherwise, once every path has
 *   finished, with the most recent valid packet (pkarr ordering).
 * - `publish` puts one packet on both paths; success when any node or relay stored it.
 * - `update` is the non-destructive write (read-merge-write): resolve the most recent packet,
 *   let the caller edit its record list, and publish with BEP44 compare-and-swap on the seq
 *   that was read. On a conflict it re-reads and merges again (bounded, with jitter), so two
 *   concurrent writers both end up in the packet and no record of another tool is lost.
 *
 * @module
 */

import { type DnsRecord, encodeDnsPacket, normalizeName } from "./dns.ts";
import { DhtClient } from "./dht/client.ts";
import { DhtConflictError } from "./conflict.ts";
import type { MutableItem } from "./item.ts";
import { bytesEqual, toHex } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import { relayGet, relayPut } from "./relay.ts";
import { moreRecentThan, type SignedPacket, signPacket, verifyPacket } from "./signed_packet.ts";
import { encodeZ32 } from "./public_key.ts";

/** The public Mainline bootstrap routers pkarr uses. */
export const DEFAULT_BOOTSTRAP = [
  "router.bittorrent.com:6881",
  "dht.transmissionbt.com:6881",
  "dht.libtorrent.org:25401",
  "relay.pkarr.org:6881",
];
/** The public pkarr relays. */
export const DEFAULT_RELAYS = ["https://pkarr.pubky.app", "https://pkarr.pubky.org"];

/** Where and how to reach the network. {@link transportOptions} fills in the defaults. */
export interface TransportOptions {
  /** Mainline DHT bootstrap nodes, `host:port` each. */
  bootstrap: string[];
  /** pkarr relay base URLs (`https://…`; `http://` for a local testnet). */
  relays: string[];
  /** Resolve and publish on the DHT. */
  useDht: boolean;
  /** Resolve and publish through the relays. At least one of the two paths must be on. */
  useRelays: boolean;
  /** Per-request timeout in ms. */
  timeoutMs: number;
  /** Receives debug lines (e.g. a conflict that makes `update` re-read); none when absent. */
  log?: (line: string) => void;
}

/**
 * Complete options: the public bootstrap nodes and relays where none are given (an empty list
 * counts as none), both paths on, a 2000 ms timeout.
 *
 * @param o What to set; the rest gets the defaults above.
 * @returns Options for `new Transport(…)`.
 * @throws {CipherpostError} `usage` when both `useDht` and `useRelays` are false.
 */
export function transportOptions(o: Partial<TransportOptions> = {}): TransportOptions {
  const opts: TransportOptions = {
    bootstrap: o.bootstrap?.length ? o.bootstrap : DEFAULT_BOOTSTRAP,
    relays: o.relays?.length ? o.relays : DEFAULT_RELAYS,
    useDht: o.useDht !== false,
    useRelays: o.useRelays !== false,
    timeoutMs: o.timeoutMs ?? 2000,
  };
  if (o.log) opts.log = o.log;
  if (!opts.useDht && !opts.useRelays) {
    throw new CipherpostError("usage", "--no-dht and --no-relay together leave no network to use");
  }
  return opts;
}

/** Options of a resolve. */
export interface ResolveOptions {
  /** Ask relays only if the DHT has not answered within this many ms (default: at once). */
  hedgeMs?: number;
}

/** Options of a publish. */
export interface PublishOptions {
  /**
   * "always" (default): DHT and relays in parallel; "fallback": relays only when the DHT put
   * stored on fewer than `minDhtStored` nodes.
   */
  relays?: "always" | "fallback";
  /**
   * With "fallback": how many DHT nodes must store the packet for the relays to be skipped
   * (default 1; capped by the number of nodes the put went to).
   */
  minDhtStored?: number;
  /** Abandons the publish: what was sent stays sent, the call rejects with its reason. */
  signal?: AbortSignal;
}

/** A resolved packet and where it came from. */
export interface Resolved {
  /** The most recent verified packet (or the first that `accept` took). */
  packet: SignedPacket;
  /** `dht:host:port` or `relay:url` of every source that delivered this exact packet. */
  sources: string[];
}

/** Statistics of one resolve, for `dht resolve` and error messages. */
export interface ResolveReport {
  /** The packet found, or null when no path had one. */
  result: Resolved | null;
  /** DHT nodes asked. */
  dhtQueried: number;
  /** DHT nodes that answered. */
  dhtResponded: number;
  /** Packets refused (bad signature, malformed DNS, out-of-range timestamp), from any path. */
  invalid: number;
  /** Relays that answered (with a packet or with "not found"). */
  relaysAnswered: number;
  /** One line per path that failed (`dht: …`, `relay <url>: …`); not escaped. */
  errors: string[];
}

/** Outcome of a publish by {@link Transport.update}. */
export interface PublishReport {
  /** The packet published. */
  packet: SignedPacket;
  /** DHT nodes that stored it. */
  dhtStored: number;
  /** Relays that stored it. */
  relaysStored: number;
  /** Read-merge-write rounds it took (1 without a conflict). */
  attempts: number;
}

function toItem(p: SignedPacket): MutableItem {
  return { k: p.publicKey, seq: p.timestamp, sig: p.signature, v: p.v };
}

/** Items come from DhtClient.get or relayGet, which verified their signatures already. */
function fromItem(i: MutableItem): SignedPacket | null {
  try {
    return verifyPacket(i.k, i.sig, i.seq, i.v, true);
  } catch {
    return null;
  }
}

/** Whether two record lists hold the same records (order ignored). */
function sameRecords(origin: string, a: DnsRecord[], b: DnsRecord[]): boolean {
  if (a.length !== b.length) return false;
  const key = (r: DnsRecord) =>
    toHex(encodeDnsPacket([{ ...r, name: normalizeName(origin, r.name) }]));
  const ka = a.map(key).sort(), kb = b.map(key).sort();
  return ka.every((x, i) => x === kb[i]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A handle on the network: resolve and publish PKARR signed packets on the DHT and the relays.
 * Open one per task and {@link Transport.close} it on every path. The DHT client starts on
 * first use. Every request has the {@link TransportOptions.timeoutMs} timeout; every packet
 * received is verified before it is counted.
 */
export class Transport {
  /** The options it was made with. */
  readonly opts: TransportOptions;
  #dht: DhtClient | null = null;
  #dhtOpening: Promise<DhtClient> | null = null;

  /**
   * A transport on `opts`; opens nothing yet.
   *
   * @param opts Where and how to reach the network (see {@link transportOptions}).
   */
  constructor(opts: TransportOptions) {
    this.opts = opts;
  }

  #openDht(): Promise<DhtClient> {
    this.#dhtOpening ??= DhtClient.open({
      bootstrap: this.opts.bootstrap,
      timeoutMs: this.opts.timeoutMs,
    })
      .then((d) => (this.#dht = d));
    return this.#dhtOpening;
  }

  /** Release sockets and timers. Safe to call twice; do not use the transport afterwards. */
  async close(): Promise<void> {
    if (this.#dhtOpening) await this.#dhtOpening.catch(() => {});
    await this.#dht?.close();
    this.#dht = null;
  }

  /**
   * Resolve the packet of `publicKey`. With `accept`, answer as soon as a verified packet
   * satisfies it; otherwise (or if none does) wait for every path and return the most recent.
   *
   * @param publicKey The 32-byte Ed25519 key whose packet to find.
   * @param accept Takes a verified packet; true stops the search there.
   * @param opts Hedging of the relays.
   * @returns The packet found (or none) and what each path did.
   * @throws {CipherpostError} `network` only when no DHT node and no relay could be reached at
   *   all (an empty answer is a `null` result, not an error).
   */
  async resolveReport(
    publicKey: Uint8Array,
    accept?: (p: SignedPacket) => boolean,
    opts: ResolveOptions = {},
  ): Promise<ResolveReport> {
    const report: ResolveReport = {
      result: null,
      dhtQueried: 0,
      dhtResponded: 0,
      invalid: 0,
      relaysAnswered: 0,
      errors: [],
    };
    const abort = new AbortController();
    let accepted: Resolved | null = null;
    let reachable = false;
    const offer = (item: MutableItem, source: string): boolean => {
      const p = fromItem(item);
      if (!p) {
        report.invalid++;
        return false;
      }
      const cur = report.result;
      if (!cur || moreRecentThan(p, cur.packet)) report.result = { packet: p, sources: [source] };
      else if (cur.packet.timestamp === p.timestamp && !moreRecentThan(cur.packet, p)) {
        cur.sources.push(source);
      }
      if (accept && !accepted && accept(p)) {
        accepted = { packet: p, sources: [source] };
        abort.abort();
        return true;
      }
      return false;
    };
    const tasks: Promise<void>[] = [];
    let dhtDone: () => void = () => {};
    const dhtFinished = new Promise<void>((r) => (dhtDone = r));
    if (this.opts.useDht) {
      tasks.push((async () => {
        try {
          const dht = await this.#openDht();
          // Reachable once a lookup has heard from a node (`get` throws when none ever
          // answered): `open` returns before anything has answered.
          const r = await dht.get(publicKey, {
            onItem: (item, from) => offer(item, `dht:${from}`),
            signal: abort.signal,
            mode: accept ? "first" : "full",
          });
          reachable = true;
          report.dhtQueried = r.queried;
          report.dhtResponded = r.responded;
          report.invalid += r.invalid;
        } catch (e) {
          if (!abort.signal.aborted) report.errors.push(`dht: ${(e as Error).message}`);
        } finally {
          dhtDone();
        }
      })());
    } else dhtDone();
    if (this.opts.useRelays) {
      // Hedged: with `hedgeMs`, relays are asked only if the DHT has not answered by then.
      let hedgeTimer: ReturnType<typeof setTimeout> | undefined;
      const hedge = opts.hedgeMs === undefined ? Promise.resolve() : Promise.race([
        dhtFinished,
        new Promise<void>((r) => (hedgeTimer = setTimeout(r, opts.hedgeMs))),
        new Promise<void>((r) => abort.signal.addEventListener("abort", () => r(), { once: true })),
      ]).finally(() => clearTimeout(hedgeTimer));
      for (const url of this.opts.relays) {
        tasks.push((async () => {
          await hedge;
          if (abort.signal.aborted) return;
          try {
            const item = await relayGet(url, publicKey, {
              timeoutMs: this.opts.timeoutMs,
              signal: abort.signal,
            });
            reachable = true;
            report.relaysAnswered++;
            if (item) offer(item, `relay:${url}`);
          } catch (e) {
            if (!abort.signal.aborted) report.errors.push(`relay ${url}: ${(e as Error).message}`);
          }
        })());
      }
    }
    // Answer on the first accepted packet, or when every path is done.
    await new Promise<void>((resolve) => {
      abort.signal.addEventListener("abort", () => resolve(), { once: true });
      Promise.all(tasks).then(() => resolve());
    });
    if (accepted) report.result = accepted;
    if (!reachable && !report.result) {
      throw new CipherpostError(
        "network",
        `network error: no DHT node or relay could be reached (${
          report.errors.join("; ") || "no path enabled"
        })`,
        "check connectivity, or set --bootstrap/--relay (CIPHERPOST_BOOTSTRAP/CIPHERPOST_RELAYS)",
      );
    }
    return report;
  }

  /**
   * Resolve and return just the packet, as {@link Transport.resolveReport} does.
   *
   * @returns The packet and its sources, or null when no path had one.
   * @throws {CipherpostError} `network` when no DHT node and no relay could be reached.
   */
  async resolve(
    publicKey: Uint8Array,
    accept?: (p: SignedPacket) => boolean,
    opts: ResolveOptions = {},
  ): Promise<Resolved | null> {
    return (await this.resolveReport(publicKey, accept, opts)).result;
  }

  /**
   * Publish one packet on every enabled path. This replaces the key's whole packet: to add or
   * change records without losing others, use {@link Transport.update}.
   *
   * @param packet A signed packet of the key.
   * @param cas The timestamp (BEP44 seq) of the packet the caller read, for compare-and-swap.
   * @param opts Whether the relays are asked always or only when the DHT stored nowhere.
   * @returns How many DHT nodes and relays stored it (at least one in all), and how many DHT
   *   nodes the put went to.
   * @throws {DhtConflictError} (kind `network`, `code` 301 or 302) when the network holds a
   *   newer packet or `cas` no longer matches; {@link CipherpostError} `network` when no node
   *   and no relay stored it.
   */
  async publish(
    packet: SignedPacket,
    cas?: number,
    opts: PublishOptions = {},
  ): Promise<{ dhtStored: number; dhtAttempted: number; relaysStored: number }> {
    const item = toItem(packet);
    const errors: string[] = [];
    let conflict: DhtConflictError | null = null;
    let dhtStored = 0, dhtAttempted = 0, relaysStored = 0;
    const tasks: Promise<void>[] = [];
    if (this.opts.useDht) {
      tasks.push((async () => {
        try {
          const dht = await this.#openDht();
          const r = await dht.put(item, { cas, signal: opts.signal });
          dhtStored = r.stored;
          dhtAttempted = r.attempted;
        } catch (e) {
          if (e instanceof DhtConflictError) conflict = e;
          else errors.push(`dht: ${(e as Error).message}`);
        }
      })());
    }
    if (opts.relays === "fallback" && this.opts.useDht) {
      // Relays only when the DHT put stored nowhere (UDP-less networks).
      await Promise.all(tasks);
      tasks.length = 0;
      opts.signal?.throwIfAborted();
    }
    const enough = Math.max(1, Math.min(opts.minDhtStored ?? 1, dhtAttempted));
    if (this.opts.useRelays && !(opts.relays === "fallback" && dhtStored >= enough)) {
      for (const url of this.opts.relays) {
        tasks.push((async () => {
          try {
            relaysStored += (await relayPut(url, item, {
                timeoutMs: this.opts.timeoutMs,
                cas,
                signal: opts.signal,
              })).stored > 0
              ? 1
              : 0;
          } catch (e) {
            if (e instanceof DhtConflictError) conflict = e;
            else errors.push(`relay ${url}: ${(e as Error).message}`);
          }
        })());
      }
    }
    await Promise.all(tasks);
    opts.signal?.throwIfAborted();
    if (conflict) {
      // A conflict may be our own packet arriving first by another path (the relay's DHT put
      // racing ours, or an earlier put of it): if the newest packet out there is exactly this
      // one, the put succeeded. This is the only such re-check (one resolve over both paths);
      // DhtClient.put and relayPut report the conflict as it is.
      const now = await this.resolve(packet.publicKey).catch(() => null);
      if (
        !now || now.packet.timestamp !== packet.timestamp ||
        !bytesEqual(now.packet.signature, packet.signature)
      ) {
        throw conflict;
      }
      dhtStored = Math.max(dhtStored, now.sources.filter((s) => s.startsWith("dht:")).length);
      relaysStored = Math.max(
        relaysStored,
        now.sources.filter((s) => s.startsWith("relay:")).length,
      );
    }
    if (dhtStored === 0 && relaysStored === 0) {
      throw new CipherpostError(
        "network",
        `network error: publish failed, no DHT node or relay stored the packet (${
          errors.join("; ")
        })`,
      );
    }
    return { dhtStored, dhtAttempted, relaysStored };
  }

  /**
   * Read-merge-write the packet of `seed`'s key. `edit` gets the current records (empty when
   * there is no packet) and returns the new list; it may be called again after a conflict, so
   * it must derive its answer from the records it is given. The new packet's timestamp is now,
   * or just after the one read.
   *
   * @param seed The 32-byte Ed25519 seed that signs the packet.
   * @param publicKey The public key of `seed`.
   * @param edit Current records → new records, or null for "nothing to change".
   * @param maxAttempts Read-merge-write rounds before giving up on conflicts (default 8).
   * @returns What was published, or null when `edit` returned null on the first round.
   * @throws {CipherpostError} `network` when no path stored the packet, or when conflicts
   *   persist for `maxAttempts` rounds ({@link DhtConflictError} on the last round's conflict);
   *   `too_large` when `edit`'s records take more than 1000 bytes of DNS; `invalid_material`
   *   when a record cannot be encoded (a label over 63 bytes, a bad address, …). Whatever `edit`
   *   throws propagates.
   */
  async update(
    seed: Uint8Array,
    publicKey: Uint8Array,
    edit: (records: DnsRecord[]) => DnsRecord[] | null,
    maxAttempts: number = 8,
  ): Promise<PublishReport | null> {
    let last: PublishReport | null = null;
    for (let attempt = 1;; attempt++) {
      const current = await this.resolve(publicKey);
      const before = current ? [...current.packet.records] : [];
      const records = edit(before);
      if (records === null) return last;
      // Read-your-write: when the newest packet already holds our change, we are done. This
      // also covers first writes, which BEP44 cannot compare-and-swap (there is no seq yet).
      if (last && current && sameRecords(encodeZ32(publicKey), before, records)) return last;
      const nowUs = Date.now() * 1000;
      const ts = current ? Math.max(nowUs, current.packet.timestamp + 1) : nowUs;
      const packet = signPacket(seed, records, ts);
      try {
        const r = await this.publish(packet, current?.packet.timestamp);
        last = { packet, ...r, attempts: attempt };
      } catch (e) {
        if (!(e instanceof DhtConflictError) || attempt >= maxAttempts) throw e;
        this.opts.log?.(
          `conflict publishing ${encodeZ32(publicKey)}, re-reading (attempt ${attempt})`,
        );
      }
      if (attempt >= maxAttempts) {
        if (last) return last;
        throw new CipherpostError(
          "network",
          "network error: could not publish after repeated conflicts",
        );
      }
      await sleep(40 + Math.random() * 120 * attempt);
    }
  }
}
