/**
 * Where cipherpost keeps things on a homeserver (docs/PROTOCOL.md §4.4).
 *
 * @module
 */

import { CipherpostError } from "../util/errors.ts";
import { CIPHERPOST_ROOT } from "./capabilities.ts";

/** `/pub/cipherpost/blobs/`: one folder per large share. */
export const BLOBS_DIR = `${CIPHERPOST_ROOT}blobs/`;

const REF_RE = /^[0-9a-f]{32}$/;

function checkRef(ref: string): void {
  if (!REF_RE.test(ref)) {
    throw new CipherpostError("config", "configuration error: malformed share_ref");
  }
}

/** `/pub/cipherpost/blobs/<share_ref>/`. */
export function blobDir(shareRef: string): string {
  checkRef(shareRef);
  return `${BLOBS_DIR}${shareRef}/`;
}

/** `/pub/cipherpost/blobs/<share_ref>/part-00000` for part `index` (0-based, < 100000). */
export function partPath(shareRef: string, index: number): string {
  if (!Number.isInteger(index) || index < 0 || index > 99999) {
    throw new CipherpostError("usage", `part index out of range: ${index}`);
  }
  return `${blobDir(shareRef)}part-${String(index).padStart(5, "0")}`;
}

/** `/pub/cipherpost/blobs/<share_ref>/manifest`. */
export function manifestPath(shareRef: string): string {
  return `${blobDir(shareRef)}manifest`;
}

/** The share_ref of a path under {@link BLOBS_DIR}, or null. */
export function shareRefOfPath(path: string): string | null {
  const m = /^\/pub\/cipherpost\/blobs\/([0-9a-f]{32})\//.exec(path);
  return m ? m[1] : null;
}
