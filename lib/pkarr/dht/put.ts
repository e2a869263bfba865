/**
 * The DHT put engine: stores a BEP44 item on the {@link K} closest nodes that handed out a write
 * token (from the token cache, or a fresh lookup), in parallel through the client-wide query
 * slots, and judges the answers (stored, conflict, failure).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { DhtPeer, Krpc, KrpcError } from "./bittorrent-dht.d.ts";
import { bytesEqual } from "../../util/encoding.ts";
import { CipherpostError } from "../../util/errors.ts";
import { DhtConflictError } from "../conflict.ts";
import type { MutableItem } from "../item.ts";
import { dhtTarget } from "../public_key.ts";
import type { GetResult } from "./lookup.ts";
import { type Pacer, patientTimeout, type PatientTimer } from "./pacing.ts";
import { type DhtNodeInfo, K } from "./routing.ts";
import type { TokenCache, TokenEntry } from "./tokens.ts";

/**
 * A put ends once this share of the nodes it went to have stored the item (after every put was
 * sent): the rest were sent the item too, and waiting for the last answers (a lost datagram
 * costs twice the idle wait; the slowest of 20 replies is most of a round trip) would only
 * refine the count. Half: on bench_dht's network a put phase took p50 320 ms at 3/4 and 230 ms
 * at half, with the same parts stored.
 */
const PUT_QUORUM = 0.5;
/**
 * Lookups a put may run to find the closest nodes when one ends short (at its deadline); when
 * the last one ends short too, the put fails rather than store the item off its place.
 */
const PUT_LOOKUPS = 2;

/** What a put achieved. */
export interface PutResult {
  /**
   * Nodes that confirmed storing the item before the put ended (including nodes known to hold
   * this very item already): a lower bound once {@link PUT_QUORUM} of them had.
   */
  stored: number;
  /** Nodes the put was sent to. */
  attempted: number;
  /** Failures by KRPC error code ("203", "301", "302", ...), "timeout" or "other". */
  errors: Record<string, number>;
}

/** What a put uses of its client. */
export interface PutContext {
  /** The client's k-rpc (its socket sends the puts; `id` is the client's node id). */
  rpc: Krpc;
  pacer: Pacer;
  tokens: TokenCache;
  /** Overall deadline of the put phase. */
  deadlineMs: number;
  /** Running operations' fail callbacks: closing the client rejects them. */
  pending: Set<(e: Error) => void>;
  /** A full lookup of `k` (it refreshes the token cache). */
  get(k: Uint8Array, opts?: { signal?: AbortSignal }): Promise<GetResult>;
}

/**
 * Stores a verified `item` (see `DhtClient.put` for the rules): cached token holders first;
 * when they all refuse the token (203), one fresh lookup and one retry. Rejects with
 * `signal.reason` once `signal` aborts (puts already sent stay sent).
 */
export async function putItem(
  ctx: PutContext,
  item: MutableItem,
  cas: number | undefined,
  signal?: AbortSignal,
): Promise<PutResult> {
  const first = await putOnce(ctx, item, cas, false, signal);
  // Cached tokens may have rotated out: one fresh lookup, then one retry.
  if (first.result.stored === 0 && first.fromCache && (first.result.errors["203"] ?? 0) > 0) {
    return (await putOnce(ctx, item, cas, true, signal)).result;
  }
  return first.result;
}

async function putOnce(
  ctx: PutContext,
  item: MutableItem,
  cas: number | undefined,
  fresh: boolean,
  signal: AbortSignal | undefined,
): Promise<{ result: PutResult; fromCache: boolean }> {
  const targetHex = Buffer.from(dhtTarget(item.k)).toString("hex");
  let entry = fresh ? undefined : ctx.tokens.fresh(targetHex);
  const fromCache = entry !== undefined;
  if (!entry) {
    ctx.tokens.delete(targetHex);
    // A lookup cut short by its deadline (a busy client or network) has not reached the closest
    // nodes: a put to the nodes it did reach would be stored where no reader looks. One more
    // lookup starts from the contacts the first one learned, so nearer the target.
    let res = await ctx.get(item.k, { signal });
    for (let n = 1; !res.complete && n < PUT_LOOKUPS; n++) {
      ctx.tokens.delete(targetHex);
      res = await ctx.get(item.k, { signal });
    }
    // Still short: storing it where no reader looks would count as published. Fail (the caller
    // retries later, or reports the publish as failed).
    if (!res.complete) {
      throw new CipherpostError(
        "network",
        `DHT put failed: ${PUT_LOOKUPS} lookups ended at their deadline before reaching the ` +
          `closest nodes (${res.queried} queried, ${res.responded} responded)`,
      );
    }
    entry = ctx.tokens.get(targetHex) ?? {
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
  const result = await sendPuts(ctx, item, cas, entry, signal);
  return { result, fromCache };
}

/** Sends the put to the entry's K closest token holders and judges their answers. */
function sendPuts(
  ctx: PutContext,
  item: MutableItem,
  cas: number | undefined,
  entry: TokenEntry,
  signal: AbortSignal | undefined,
): Promise<PutResult> {
  const pacer = ctx.pacer;
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
      signal?.removeEventListener("abort", onAbort);
      clearTimeout(timer);
      idle?.clear();
      pacer.waiting.delete(pumpPuts);
      ctx.pending.delete(fail);
      if (holding.size > 0) {
        pacer.inflight -= holding.size;
        holding.clear();
        queueMicrotask(() => pacer.wake());
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
    const timer = setTimeout(conclude, ctx.deadlineMs);
    // Idle rule, as for lookups but twice as patient: once a node has answered, a silence of
    // 2 × the idle wait ends the put, and the nodes still silent count as timeouts (each was
    // sent the item anyway; waiting longer would only refine the count).
    let idle: PatientTimer | undefined;
    const rearm = () => {
      idle?.clear();
      // (Not while puts still wait for a query slot: they have not been sent yet.)
      idle = patientTimeout(
        () => (next < targets.length ? rearm() : conclude()),
        2 * pacer.idleWait(),
      );
    };
    const quorum = Math.max(1, Math.ceil(targets.length * PUT_QUORUM));
    const onAbort = () => fail(signal?.reason ?? new Error("aborted"));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    ctx.pending.add(fail);
    if (targets.length === 0) return conclude();

    const sendPut = (node: DhtNodeInfo) => {
      const key = `${node.host}:${node.port}`;
      const a: Record<string, unknown> = {
        id: ctx.rpc.id,
        token: Buffer.from(node.token),
        k,
        seq: item.seq,
        sig,
        v,
      };
      if (cas !== undefined) a.cas = cas;
      const peer: DhtPeer = { host: node.host, port: node.port, id: Buffer.from(node.id) };
      pacer.inflight++;
      holding.add(key);
      ctx.rpc.socket.query(peer, { q: "put", a }, (err: KrpcError | null) => {
        if (holding.delete(key)) {
          pacer.inflight--;
          pacer.wake();
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
            err.code === 302 && held && held.seq === item.seq && bytesEqual(held.sig, item.sig)
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
        if (--missing === 0 || (next >= targets.length && stored >= quorum)) conclude();
      });
    };
    // Through the client-wide query slots, like lookup queries: replies arriving faster than
    // the client reads them overflow its UDP receive buffer.
    let next = 0;
    const pumpPuts = () => {
      while (!settled && next < targets.length) {
        if (pacer.inflight >= pacer.slots()) {
          pacer.waiting.add(pumpPuts);
          return;
        }
        sendPut(targets[next++]);
      }
    };
    pumpPuts();
  });
}

function summarize(errors: Record<string, number>): string {
  const parts = Object.entries(errors).map(([k, n]) => `${k}: ${n}`);
  return parts.length ? parts.join(", ") : "no answers";
}
