/**
 * Reading a large share's blob status file (docs/PROTOCOL.md §5.3) anonymously, as a receiver
 * does while deciding whether to wait for a missing part (§5.5 step 4).
 *
 * @module
 */

import { type BlobStatus, parseBlobStatus, statusPath } from "../protocol/large_manifest.ts";
import type { HomeserverHttp } from "./endpoint_policy.ts";
import type { FetchFn } from "./http.ts";
import { homeserverGet } from "./request.ts";
import { readStreamCapped } from "../util/bounded_read.ts";

/** A status file is a few dozen bytes; more is not one. */
const MAX_STATUS_BYTES = 1024;

/** Options of {@link readBlobStatus}. */
export interface BlobStatusOptions {
  /** endpoint policy and timeouts (default: HTTPS to public names only, 30 s each) */
  http?: HomeserverHttp;
  /** aborts the GET (e.g. at the end of the receiver's `--wait`) */
  signal?: AbortSignal;
  fetch?: FetchFn;
}

/**
 * The status of blob `blobId` of `sender` (z32) on the homeserver at `baseUrl` (from
 * `endpointOf`), for a share of `parts` parts: "uploading" or "complete", or null when the file
 * is absent, unreadable, invalid, over 1 KiB, rate limited (a 429 is not waited out: the
 * receiver asks again a second later), refused by the endpoint policy, or when the server does
 * not answer within the timeouts. Never throws, except an abort of `signal`.
 */
export async function readBlobStatus(
  baseUrl: string,
  sender: string,
  blobId: string,
  parts: number,
  o: BlobStatusOptions = {},
): Promise<BlobStatus | null> {
  try {
    const res = await homeserverGet(`${baseUrl}${statusPath(blobId)}`, {
      tenant: sender,
      retries429: 0,
      http: o.http,
      signal: o.signal,
      fetch: o.fetch,
    });
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel();
      return null;
    }
    return parseBlobStatus(await readStreamCapped(res.body, MAX_STATUS_BYTES), parts);
  } catch (e) {
    if (o.signal?.aborted) throw e;
    return null;
  }
}
