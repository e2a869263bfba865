/**
 * Garbage collection of large-share blobs on our homeserver (docs/PROTOCOL.md §5.6): a blob
 * folder is deleted when its share expired, was revoked (no sent record is left for it), or was
 * a burn share that has a receipt. Folders of sends still in progress are kept.
 *
 * @module
 */

import type { HomeserverClient } from "../homeserver/client.ts";
import type { Transport } from "../pkarr/transport.ts";
import { blobDir } from "../protocol/large_manifest.ts";
import { fetchV2Receipt } from "./v2_transfer.ts";
import type { SentShareV2 } from "../state/state.ts";
import type { State } from "../state/state.ts";
import { fromHex } from "../util/encoding.ts";
import { pendingBlobIds } from "./large_send.ts";

const BLOBS = "/pub/cipherpost/blobs/";

/** What gc did. */
export interface GcReport {
  kept: number;
  deletedFolders: number;
  deletedFiles: number;
  /** why each deleted folder went: blob id → reason */
  reasons: Record<string, "expired" | "revoked or unknown" | "burned and receipted">;
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

/** Delete the blobs no live share needs. `nowSec` for tests. */
export async function largeGc(
  t: Transport,
  store: HomeserverClient,
  state: State,
  log: (l: string) => void,
  nowSec = Math.floor(Date.now() / 1000),
): Promise<GcReport> {
  const report: GcReport = { kept: 0, deletedFolders: 0, deletedFiles: 0, reasons: {} };
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
    let reason: GcReport["reasons"][string] | null = null;
    if (!s) reason = pending.has(id) ? null : "revoked or unknown";
    else if (s.expiresAt <= nowSec) reason = "expired";
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
    log(`deleted blob ${id} (${reason})`);
  }
  return report;
}
