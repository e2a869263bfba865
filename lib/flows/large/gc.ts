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
import { blobDir } from "../../protocol/large_manifest.ts";
import { fetchV2Receipt } from "../share/v2_transfer.ts";
import type { SentShareV2 } from "../../state/state.ts";
import type { State } from "../../state/state.ts";
import { fromHex } from "../../util/encoding.ts";
import { pendingBlobIds } from "./send.ts";
import { sweepReceives } from "./receive.ts";

const BLOBS = "/pub/cipherpost/blobs/";

/** What gc did. */
export interface GcReport {
  kept: number;
  deletedFolders: number;
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

async function listAll(store: HomeserverClient, dir: string, shallow: boolean): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  while (true) {
    const page = await store.list(dir, { limit: 1000, cursor, shallow });
    out.push(...page.map((e) => e.path));
    if (page.length < 1000) return out;
    cursor = page[page.length - 1].url;
  }
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

/** Delete the blobs no live share needs, through `store`. `nowSec` for tests. */
export async function largeGc(
  t: Transport,
  store: HomeserverClient,
  state: State,
  ui: FlowUi,
  o: GcOptions = {},
): Promise<GcReport> {
  const nowSec = o.nowSec ?? Math.floor(Date.now() / 1000);
  const report: GcReport = {
    kept: 0,
    deletedFolders: 0,
    deletedFiles: 0,
    reasons: {},
    unknown: 0,
  };
  const gone = await state.goneBlobs();
  const sent = new Map<string, SentShareV2>();
  for (const s of await state.listSent()) {
    const large = s.version === 2 ? s.large : undefined;
    if (s.version === 2 && large && typeof large.blob_id === "string") sent.set(large.blob_id, s);
  }
  const pending = await pendingBlobIds(state);
  const folders = (await listAll(store, BLOBS, true))
    .map((p) => /^\/pub\/cipherpost\/blobs\/([0-9a-f]{32})\/$/.exec(p)?.[1])
    .filter((x): x is string => x !== undefined);
  for (const id of folders) {
    const s = sent.get(id);
    let reason: GcReason | null = null;
    if (!s) {
      if (pending.has(id)) reason = null;
      else if (gone.has(id)) reason = gone.get(id)!;
      else if (o.deleteUnknown) reason = "not sent from this home";
      else report.unknown++;
    } else if (s.expiresAt <= nowSec) reason = "expired";
    else if (s.large?.burn === true) {
      const receipt = await fetchV2Receipt(t, fromHex(s.locator)).catch(() => null);
      if (receipt !== null) reason = "burned and receipted";
    }
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
