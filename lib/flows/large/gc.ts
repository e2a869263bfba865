/**
 * Garbage collection of large-share blobs on our homeserver (docs/PROTOCOL.md §5.6): a blob
 * folder is deleted when its share expired, was revoked (its record is gone and a tombstone
 * names the folder), or was a burn share that has a receipt. Folders of sends still in progress
 * are kept, and so are folders this home knows nothing of (another machine of the same
 * identity may have sent them) unless `deleteUnknown` is set.
 *
 * @module
 */

import type { HomeserverClient } from "../../homeserver/client.ts";
import { connect } from "../../homeserver/connect.ts";
import { readStoredSession } from "../../homeserver/session_store.ts";
import type { Keypair } from "../../crypto/keys.ts";
import { parsePublicKey } from "../../pkarr/public_key.ts";
import type { FlowUi } from "../share/ui.ts";
import type { Transport } from "../../pkarr/transport.ts";
import { blobDir, blobIdOfPath } from "../../protocol/large_manifest.ts";
import { fetchV2Receipt } from "../share/v2_transfer.ts";
import type { SentShareV2 } from "../../state/state.ts";
import type { State } from "../../state/state.ts";
import { fromHex } from "../../util/encoding.ts";
import { pendingBlobIds } from "./send.ts";
import { sweepReceives } from "./receive.ts";

const BLOBS = "/pub/cipherpost/blobs/";

/** What gc did. */
export interface GcReport {
  /** Blob folders kept (a live share or a send in progress needs them). */
  kept: number;
  /** Blob folders deleted. */
  deletedFolders: number;
  /** Files deleted in them. */
  deletedFiles: number;
  /** why each deleted folder went: blob id → reason */
  reasons: Record<string, GcReason>;
  /** folders kept because this home did not send them (see `deleteUnknown`) */
  unknown: number;
}

/** Why a folder was deleted. */
export type GcReason = "expired" | "revoked" | "burned and receipted" | "not sent from this home";

/** Options of {@link largeGc}. */
export interface GcOptions {
  /** also delete folders this home has no record of (default false: they are kept) */
  deleteUnknown?: boolean;
  /** "now" in Unix seconds, for tests */
  nowSec?: number;
}

/** Every path below `dir`, by the client's bounded listing (cursor must advance, ≤ 100k). */
async function listAll(store: HomeserverClient, dir: string, shallow: boolean): Promise<string[]> {
  return (await Array.fromAsync(store.listAll(dir, { shallow, pageSize: 1000 }))).map((e) =>
    e.path
  );
}

/**
 * Garbage-collect our homeserver: connect with the session stored in the home (or, when
 * `unlock` is given and no session is stored, sign in with the identity it unlocks) and delete
 * the blobs no live share needs. Null when there is no stored session and no `unlock`.
 */
export async function collectGarbage(
  t: Transport,
  state: State,
  unlock: (() => Promise<Keypair>) | null,
  ui: FlowUi,
  o: GcOptions = {},
): Promise<GcReport | null> {
  // abandoned large receives of expired shares (their resume records and temporary files)
  const swept = await sweepReceives(state, o.nowSec ?? Math.floor(Date.now() / 1000));
  if (swept > 0) ui.status(`removed ${swept} abandoned receive(s) of expired shares`);
  const stored = await readStoredSession(state.home);
  if (!stored && !unlock) return null;
  const conn = stored
    ? await connect(t, { home: state.home, user: parsePublicKey(stored.cookie.user) })
    : await (async () => {
      const me = await unlock!();
      return await connect(t, { home: state.home, user: me.publicKey, seed: me.seed });
    })();
  return await largeGc(t, conn.client, state, ui, o);
}

/**
 * What this home knows of a blob folder, as gc judges it: `live` (a live share sent from this
 * home), `sending` (a send in progress), `unknown` (no record here: another machine of the same
 * identity may have sent it), or the reason it can go (`expired`, `revoked`, `burned and
 * receipted`).
 */
export type BlobVerdict =
  | "live"
  | "sending"
  | "unknown"
  | Exclude<GcReason, "not sent from this home">;

/** Judges blob folders by this home's records; {@link largeGc} and `homeserver status` share it. */
export interface BlobJudge {
  /** the state of folder `id` (a burn share's receipt is looked up on the DHT) */
  judge(id: string): Promise<BlobVerdict>;
  /** the share_ref of the share this home sent from folder `id`, if any */
  shareRefOf(id: string): string | undefined;
}

/** A {@link BlobJudge} over the records of `state` now (or at `nowSec`). */
export async function blobJudge(t: Transport, state: State, nowSec?: number): Promise<BlobJudge> {
  const now = nowSec ?? Math.floor(Date.now() / 1000);
  const gone = await state.goneBlobs();
  const sent = new Map<string, SentShareV2>();
  for (const s of await state.listSent()) {
    const large = s.version === 2 ? s.large : undefined;
    if (s.version === 2 && large && typeof large.blob_id === "string") sent.set(large.blob_id, s);
  }
  const pending = await pendingBlobIds(state);
  return {
    shareRefOf: (id) => sent.get(id)?.shareRef,
    async judge(id) {
      const s = sent.get(id);
      if (!s) {
        if (pending.has(id)) return "sending";
        return gone.get(id) ?? "unknown";
      }
      if (s.expiresAt <= now) return "expired";
      if (s.large?.burn === true) {
        const receipt = await fetchV2Receipt(t, fromHex(s.locator)).catch(() => null);
        if (receipt !== null) return "burned and receipted";
      }
      return "live";
    },
  };
}

/** The blob ids of the folders under `/pub/cipherpost/blobs/` (other paths are skipped). */
export async function blobFolders(store: HomeserverClient): Promise<string[]> {
  return (await listAll(store, BLOBS, true))
    .map((p) => ({ p, id: blobIdOfPath(p) }))
    .filter((x): x is { p: string; id: string } => x.id !== null && x.p === blobDir(x.id))
    .map((x) => x.id);
}

/** Delete the blobs no live share needs, through `store`. `nowSec` for tests. */
export async function largeGc(
  t: Transport,
  store: HomeserverClient,
  state: State,
  ui: FlowUi,
  o: GcOptions = {},
): Promise<GcReport> {
  const report: GcReport = {
    kept: 0,
    deletedFolders: 0,
    deletedFiles: 0,
    reasons: {},
    unknown: 0,
  };
  const gone = await state.goneBlobs();
  const judge = await blobJudge(t, state, o.nowSec);
  const folders = await blobFolders(store);
  for (const id of folders) {
    const st = await judge.judge(id);
    let reason: GcReason | null = null;
    if (st === "unknown") {
      if (o.deleteUnknown) reason = "not sent from this home";
      else report.unknown++;
    } else if (st !== "live" && st !== "sending") reason = st;
    if (reason === null) {
      report.kept++;
      continue;
    }
    for (const path of await listAll(store, blobDir(id), false)) {
      if (await store.delete(path)) report.deletedFiles++;
    }
    report.deletedFolders++;
    report.reasons[id] = reason;
    await state.forgetGoneBlob(id);
    ui.status(`deleted blob ${id} (${reason})`);
  }
  // tombstones of folders that are no longer there have done their work
  for (const id of gone.keys()) if (!folders.includes(id)) await state.forgetGoneBlob(id);
  return report;
}
