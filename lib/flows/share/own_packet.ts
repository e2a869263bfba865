/**
 * Writing this identity's own packet: one read-merge-write at a time per home (a lock in the
 * state folder), starting from the newest of the network's packet and the saved copy of the
 * last one we published, confirmed by a read after the write, and saved again afterwards.
 *
 * Every write of the identity packet goes through here (send, the v1 receipt, revoke), so the
 * saved copy that `republish` re-puts is always the latest (issue 9, S2) and a write that
 * reports success is in the packet (R1).
 *
 * @module
 */

import { type DnsRecord, encodeDnsPacket, normalizeName } from "../../pkarr/dns.ts";
import { toHex } from "../../util/encoding.ts";
import { CipherpostError, configError } from "../../util/errors.ts";
import type { Keypair } from "../../crypto/keys.ts";
import { encodeZ32 } from "../../pkarr/public_key.ts";
import {
  moreRecentThan,
  packetFromBytes,
  packetToBytes,
  type SignedPacket,
  signPacket,
} from "../../pkarr/signed_packet.ts";
import type { State } from "../../state/state.ts";
import { DhtConflictError } from "../../pkarr/conflict.ts";
import type { FlowUi } from "./ui.ts";
import type { PublishReport, Transport } from "../../pkarr/transport.ts";
import { withPubkyRecord } from "../../homeserver/discovery.ts";

function recordKey(origin: string, r: DnsRecord): string | null {
  try {
    return toHex(encodeDnsPacket([{ ...r, name: normalizeName(origin, r.name) }]));
  } catch {
    return null;
  }
}

function sameRecords(origin: string, a: DnsRecord[], b: DnsRecord[]): boolean {
  if (a.length !== b.length) return false;
  const ka = a.map((r) => recordKey(origin, r)).sort();
  const kb = b.map((r) => recordKey(origin, r)).sort();
  return ka.every((x, i) => x === kb[i]);
}

/** Whether `records` make a packet of at most 1000 bytes of DNS. */
function fits(seed: Uint8Array, records: DnsRecord[]): boolean {
  try {
    signPacket(seed, records, Date.now() * 1000);
    return true;
  } catch (e) {
    if (e instanceof CipherpostError && e.kind === "too_large") return false;
    throw e;
  }
}

/**
 * Whether `records` still leave room for a `_pubky` record (the pointer to a homeserver that
 * `homeserver signup` publishes): the list with its `_pubky` record replaced by, or extended
 * with, one of the standard size (the target is a 52-character key, written uncompressed, so
 * any key measures the same) must fit.
 */
function roomForPubky(me: Keypair, origin: string, records: DnsRecord[]): boolean {
  return fits(me.seed, withPubkyRecord(origin, records, origin) ?? records);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The saved copy of our packet, when it is ours and readable. */
async function savedPacket(state: State, me: Keypair): Promise<SignedPacket | null> {
  const bytes = await state.loadOwnPacket();
  if (!bytes) return null;
  try {
    const p = packetFromBytes(bytes);
    return toHex(p.publicKey) === toHex(me.publicKey) ? p : null;
  } catch {
    return null; // damaged: the network's copy is used
  }
}

/**
 * Read-merge-write the identity packet of `me`. `edit` gets the current records (empty when
 * there is none) and returns the new list, or null for "nothing to change"; it may be called
 * again after a conflict. Records that cannot be re-encoded (a name that is too long once
 * under our key, written by another tool) are dropped with a note on `ui`.
 *
 * The packet always keeps room for a `_pubky` record: an edit that adds a record (a v1 share, a
 * receipt) fails with `too_large` when the packet would then have no room left for one (its
 * caller falls back: a share goes as v2, a receipt to its overflow slot), unless
 * `o.keepPubkyRoom` is false (a share the user forces to v1). Edits that only remove records are
 * never refused. `o.maxAttempts` bounds the retries after conflicts (default 8).
 *
 * @returns the report of the publish (null when nothing changed)
 * @throws CipherpostError("network") when the write cannot be confirmed, ("config") when the
 *   packet out there is stamped so far ahead that nothing newer can be published,
 *   ("too_large") when the records do not fit, or an added record would crowd out `_pubky`
 */
export async function updateOwnPacket(
  t: Transport,
  state: State,
  me: Keypair,
  edit: (records: DnsRecord[]) => DnsRecord[] | null,
  ui: FlowUi = { status: () => {}, note: () => {} },
  o: { maxAttempts?: number; keepPubkyRoom?: boolean } = {},
): Promise<PublishReport | null> {
  const maxAttempts = o.maxAttempts ?? 8;
  const origin = encodeZ32(me.publicKey);
  const release = await state.lockPacket();
  try {
    let last: PublishReport | null = null;
    for (let attempt = 1;; attempt++) {
      const network = (await t.resolve(me.publicKey))?.packet ?? null;
      const saved = await savedPacket(state, me);
      const current = saved && (!network || moreRecentThan(saved, network)) ? saved : network;
      const all = current ? [...current.records] : [];
      const before = all.filter((r) => recordKey(origin, r) !== null);
      if (before.length < all.length) {
        ui.note(
          `dropping ${all.length - before.length} record(s) of your packet that cannot be ` +
            "re-encoded (a name too long once under your key)",
        );
      }
      const records = edit(before);
      if (records === null) return last;
      // Read-your-write: the newest packet holds our change (also after a first write).
      if (last && current && sameRecords(origin, before, records)) return last;
      const had = new Set(before.map((r) => recordKey(origin, r)));
      const adds = records.some((r) => !had.has(recordKey(origin, r)));
      if (adds && o.keepPubkyRoom !== false && !roomForPubky(me, origin, records)) {
        throw new CipherpostError(
          "too_large",
          "no room in your packet: it keeps room for the _pubky record of a homeserver",
        );
      }
      if (current && current.timestamp >= Number.MAX_SAFE_INTEGER) {
        throw configError(
          "your packet's timestamp is at its maximum " +
            `(${current.timestamp}), so nothing newer can be published under your key`,
          "it was written with a skewed clock or by another tool; DHT nodes forget it within " +
            "hours if nobody republishes it (then remove $CIPHERPOST_HOME/state/packet.bin), " +
            "or use a new identity",
        );
      }
      const nowUs = Date.now() * 1000;
      const ts = current ? Math.max(nowUs, current.timestamp + 1) : nowUs;
      const packet = signPacket(me.seed, records, ts);
      try {
        const r = await t.publish(packet, network?.timestamp);
        last = { packet, ...r, attempts: attempt };
        await state.saveOwnPacket(packetToBytes(packet));
      } catch (e) {
        if (!(e instanceof DhtConflictError) || attempt >= maxAttempts) throw e;
      }
      if (attempt >= maxAttempts) {
        if (last) return last;
        throw new CipherpostError(
          "network",
          "network error: could not publish your packet after repeated conflicts",
          "try again",
        );
      }
      await sleep(40 + Math.random() * 120 * attempt);
    }
  } finally {
    release();
  }
}
