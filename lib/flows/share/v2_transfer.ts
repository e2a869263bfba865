/**
 * Protocol v2 on the network (docs/PROTOCOL.md §3.4–§3.8): publishing a share's packets in
 * rounds, fetching and verifying a share, revoking it, and publishing or fetching its receipt.
 * The codecs are `lib/protocol/v2.ts`; this module only moves their packets.
 *
 * @module
 */

import { concat } from "../../util/encoding.ts";
import { CipherpostError, signatureError } from "../../util/errors.ts";
import type { Keypair } from "../../crypto/keys.ts";
import type { DnsRecord } from "../../pkarr/dns.ts";
import type { SignedPacket } from "../../pkarr/signed_packet.ts";
import type { Transport } from "../../pkarr/transport.ts";
import { checkShareTimes } from "../../protocol/record.ts";
import { hedgedPool } from "../../util/hedged_pool.ts";
import {
  checkBlob,
  deriveV2Keys,
  type Manifest,
  manifestBytes,
  MAX_PARTS,
  openManifest,
  partBytes,
  partLength,
  receiptChunk,
  receiptChunkCount,
  receiptKey,
  revocationRecord,
  sealV2Receipt,
  unsealV2Receipt,
  type V2Keys,
} from "../../protocol/v2.ts";

/**
 * Packets published at once: all of them (≤ MAX_PARTS + 1); the DHT client's query slots bound
 * the queries (32 at once took a 40 KiB share 2 × longer on the realistic DHT of bench_dht).
 */
const CONCURRENCY = MAX_PARTS + 1;
/** Parts fetched at once: all of them (≤ MAX_PARTS); k-rpc's own cap bounds the queries. */
const FETCH_CONCURRENCY = 128;
/** A part read asks relays only if the DHT has not delivered it within this many ms. */
const HEDGE_MS = 400;
/**
 * Rounds of publishing or fetching before the missing packets are reported: three always, and up
 * to six while each round still gets some of the missing packets through. Each retry round
 * sends half as many at once (at least four): on a loaded machine or network, fewer queries in
 * flight time out less.
 */
const ROUNDS = 6;
/** Rounds that run whether or not the previous one made progress. */
const SURE_ROUNDS = 3;
/** Lookups of a part within one fetch round, one after the other. */
const ATTEMPTS = 2;

/** The pause before round `round` (> 1): lets a loaded network or relay catch up. */
function pause(round: number): Promise<void> {
  return new Promise((r) => setTimeout(r, 400 * (round - 1)));
}

/** Whether to run another round, and how wide: see {@link ROUNDS}. */
function nextRound(round: number, before: number, after: number, width: number): number | null {
  if (after === 0 || round >= ROUNDS) return null;
  if (round >= SURE_ROUNDS && after === before) return null;
  return Math.max(4, Math.ceil(width / 2));
}

/**
 * DHT nodes that must store a packet for it to count as published: 3, or every node the put
 * went to when fewer handed out a write token (a tiny testnet). One copy is not enough: a
 * resolver that misses the one node holding it (a timeout, a lookup that ends before it, the
 * node leaving or evicting it) finds the share incomplete, and issue 17 saw exactly that on a
 * busy testnet (1 in 3–6 sends "sent" but "1 of 7 parts missing"). Three holders among the
 * closest nodes survive one such miss each while costing no extra round on a healthy network,
 * where a put is stored by most of the 20 closest nodes. A relay that stored the packet also
 * counts (it keeps it and receivers ask it too).
 */
export const PUBLISH_MIN_STORED = 3;

/** Whether a publish stored the packet widely enough (see {@link PUBLISH_MIN_STORED}). */
function storedEnough(r: { dhtStored: number; dhtAttempted: number; relaysStored: number }) {
  if (r.relaysStored > 0) return true;
  const floor = Math.min(PUBLISH_MIN_STORED, Math.max(r.dhtAttempted, r.dhtStored));
  return r.dhtStored > 0 && r.dhtStored >= floor;
}

/**
 * The stragglers of a publish round are published once more, with what the client has learned
 * since (a lookup that wandered or met dead nodes is the usual tail): once 3/4 of the packets
 * are stored, a packet still at it after 1.5 × the median time (at least 1 s) is hedged. A
 * second put of the same signed packet is harmless: nodes that hold it answer 302, which counts
 * as stored. The attempt that loses is abandoned (its queries already sent stay sent).
 */
const PUBLISH_HEDGE = { after: 0.75, factor: 1.5, minMs: 1000 };

/** Run `fn` over `items` with at most `limit` calls in flight. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Publish packets with at most `concurrency` in flight, in rounds (see {@link ROUNDS}; each
 * retrying the packets not yet stored widely enough). Every packet must be stored by
 * {@link PUBLISH_MIN_STORED} DHT nodes (fewer only when fewer nodes took the put) or by a relay;
 * relays are asked when the DHT put falls short. A BEP44 302 (equal or newer seq) counts as
 * stored when the network is found to hold this exact packet (then `stored` is a lower bound).
 *
 * @returns per packet, how many nodes and relays stored it
 * @throws CipherpostError("network") naming how many of how many packets failed.
 */
export async function publishPackets(
  t: Transport,
  packets: SignedPacket[],
  concurrency = CONCURRENCY,
  o: {
    /** called with (packets stored so far, all packets) */
    progress?: (done: number, total: number) => void;
    /** the command to suggest re-running on failure (default "send") */
    command?: string;
  } = {},
): Promise<{ stored: number[] }> {
  const stored = packets.map(() => 0);
  const ok = packets.map(() => false);
  let done = 0;
  o.progress?.(0, packets.length);
  const publishOne = async (i: number, signal?: AbortSignal): Promise<boolean> => {
    const p = packets[i];
    try {
      const r = await t.publish(p, undefined, {
        relays: "fallback",
        minDhtStored: PUBLISH_MIN_STORED,
        signal,
      });
      const was = ok[i];
      stored[i] = Math.max(stored[i], r.dhtStored + r.relaysStored);
      ok[i] = ok[i] || storedEnough(r);
      if (ok[i] && !was) o.progress?.(++done, packets.length);
    } catch {
      // failed this round (Transport.publish already counts "our own packet got there first"
      // as stored); retried in the next round
    }
    return ok[i];
  };
  let failed = packets.map((_, i) => i);
  let width: number | null = Math.max(1, concurrency);
  for (let round = 1; width !== null; round++) {
    if (round > 1) await pause(round);
    const before = failed.length;
    await hedgedPool(failed, width, publishOne, PUBLISH_HEDGE);
    failed = failed.filter((i) => !ok[i]);
    width = nextRound(round, before, failed.length, width);
  }
  if (failed.length > 0) {
    throw new CipherpostError(
      "network",
      `network error: publish failed for ${failed.length} of ${packets.length} packets (each ` +
        `must be stored by ${PUBLISH_MIN_STORED} DHT nodes or a relay)`,
      `check connectivity and run ${o.command ?? "send"} again`,
    );
  }
  return { stored };
}

/** Steps 1–2 of §3.5: the verified manifest of `locator`. */
async function fetchManifest(
  t: Transport,
  keys: V2Keys,
  expectedSender: string,
): Promise<Manifest> {
  // asked again like a missing part (SURE_ROUNDS in all): one lookup that misses the nodes
  // holding it (lost datagrams, a busy network) is not "not found"
  let sealed: Uint8Array | null = null;
  for (let round = 1; !sealed && round <= SURE_ROUNDS; round++) {
    if (round > 1) await pause(round);
    const resolved = await t.resolve(keys.manifest.publicKey, (p) => manifestBytes(p) !== null);
    sealed = resolved && manifestBytes(resolved.packet);
  }
  if (!sealed) {
    throw new CipherpostError(
      "not_found",
      "share not found: no manifest on the DHT or the relays",
      "it may have expired, or not be published yet; ask the sender to republish",
    );
  }
  return await openManifest(sealed, keys, expectedSender);
}

/** Step 4 of §3.5: every part, in rounds; missing → network, wrong → signature. */
async function fetchParts(
  t: Transport,
  keys: V2Keys,
  m: Manifest,
  progress?: (done: number, total: number) => void,
): Promise<Uint8Array[]> {
  const got: (Uint8Array | null)[] = Array.from({ length: m.parts }, () => null);
  let done = 0;
  progress?.(0, m.parts);
  let wrong = false;
  let width: number | null = FETCH_CONCURRENCY;
  for (let round = 1; width !== null; round++) {
    const missing = got.flatMap((b, i) => (b ? [] : [i]));
    if (missing.length === 0) break;
    if (round > 1) await pause(round);
    await pool(missing, width, async (i) => {
      let resolved = null;
      // a lookup that ends empty is asked again at once (it starts from what the first one
      // learned, and skips the nodes that timed out): the round's slowest part sets its end
      for (let attempt = 0; !resolved && attempt < ATTEMPTS; attempt++) {
        try {
          resolved = await t.resolve(
            keys.part(i).publicKey,
            (p) => partBytes(p)?.length === partLength(m, i),
            { hedgeMs: HEDGE_MS },
          );
        } catch {
          return; // unreachable this round: still missing
        }
      }
      if (!resolved) return;
      const bytes = partBytes(resolved.packet);
      if (bytes?.length === partLength(m, i)) {
        got[i] = bytes;
        progress?.(++done, m.parts);
      } else wrong = true;
    });
    if (wrong) throw signatureError("part length");
    const still = got.reduce((n, b) => (b ? n : n + 1), 0);
    width = nextRound(round, missing.length, still, width);
  }
  const missing = got.flatMap((b, i) => (b ? [] : [i]));
  if (missing.length > 0) {
    const shown = missing.length > 10 ? [...missing.slice(0, 10), "…"] : missing;
    throw new CipherpostError(
      "network",
      `share incomplete: ${missing.length} of ${m.parts} parts missing (parts ${shown.join(", ")})`,
      "try again later, or ask the sender to run `cipherpost republish`",
    );
  }
  return got as Uint8Array[];
}

/**
 * Steps 1–5 of §3.5: resolve, unseal and verify the manifest (sender = `expectedSender`,
 * manifest key, version, part arithmetic, length limit), check the TTL at `nowSec`, fetch every
 * part, and check the whole-blob hash and `share_ref`. The recipient check is the caller's.
 * Nothing is decrypted.
 *
 * @param expectedSender the z32 sender key from the share URI
 * @throws CipherpostError "not_found" (none or revoked), "signature" (any check), "expired",
 *   "network" (parts still missing after the last round, or no network at all).
 */
export async function fetchV2Share(
  t: Transport,
  expectedSender: string,
  locator: Uint8Array,
  nowSec: number = Math.floor(Date.now() / 1000),
  progress?: (done: number, total: number) => void,
): Promise<{ manifest: Manifest; blob: Uint8Array }> {
  const keys = deriveV2Keys(locator);
  const manifest = await fetchManifest(t, keys, expectedSender);
  checkShareTimes(manifest.createdAt, manifest.ttlSeconds, nowSec);
  const blob = concat(...await fetchParts(t, keys, manifest, progress));
  checkBlob(manifest, blob);
  return { manifest, blob };
}

/** Publish `records` as the only records under `kp`, newer than whatever is there. */
async function replaceSlot(t: Transport, kp: Keypair, records: DnsRecord[]): Promise<void> {
  await t.update(kp.seed, kp.publicKey, () => records);
}

/** Revoke a share: publish a newer manifest packet whose `_cpm` is `revoked`. */
export async function revokeV2(t: Transport, locator: Uint8Array): Promise<void> {
  await replaceSlot(t, deriveV2Keys(locator).manifest, [revocationRecord()]);
}

/**
 * Publish the receipt JSON, sealed to the share's seal key, under `R` (a newer packet replaces
 * an older one); continuation packets of a long receipt are published first (§3.7).
 */
export async function publishV2Receipt(
  t: Transport,
  locator: Uint8Array,
  receiptJson: string,
): Promise<void> {
  const [head, ...rest] = await sealV2Receipt(locator, receiptJson);
  await Promise.all(rest.map((c) => replaceSlot(t, c.key, c.records)));
  await replaceSlot(t, head.key, head.records);
}

/**
 * The unsealed receipt JSON text under `R` (and its continuation packets), or null when there
 * is none. The receipt itself is not verified here (use `parseAndVerifyReceipt`).
 *
 * @throws signature error (exit 3) when a receipt packet is there but does not unseal.
 */
export async function fetchV2Receipt(t: Transport, locator: Uint8Array): Promise<string | null> {
  const keys = deriveV2Keys(locator);
  const resolved = await t.resolve(keys.receipt.publicKey, (p) => receiptChunk(p) !== null);
  const head = resolved && receiptChunk(resolved.packet);
  if (!head) return null;
  const n = receiptChunkCount(resolved.packet);
  const rest = await Promise.all(
    Array.from({ length: n - 1 }, (_, k) => k + 1).map(async (i) => {
      const kp = receiptKey(locator, keys, i);
      const r = await t.resolve(kp.publicKey, (p) => receiptChunk(p) !== null);
      const b = r && receiptChunk(r.packet);
      if (!b) throw new CipherpostError("network", `receipt incomplete: part ${i} of ${n} missing`);
      return b;
    }),
  );
  return await unsealV2Receipt(keys, [head, ...rest]);
}
