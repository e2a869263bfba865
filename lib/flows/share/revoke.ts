/**
 * `revoke`: remove one of the sender's live shares from the network (a merge-write of the
 * sender's packet for v1, a revocation manifest for v2) and forget its record.
 *
 * @module
 */

import { fromHex } from "../../util/encoding.ts";
import { CipherpostError, configError } from "../../util/errors.ts";
import type { Keypair } from "../../crypto/keys.ts";
import { encodeZ32 } from "../../pkarr/public_key.ts";
import type { Transport } from "../../pkarr/transport.ts";
import { recordNamesShare, shareRecords } from "../../protocol/labels.ts";
import { parseShareUri } from "../../protocol/share_uri.ts";
import type { SentShare, State } from "../../state/state.ts";
import { revokeV2 } from "./v2_transfer.ts";
import { updateOwnPacket } from "./own_packet.ts";

/**
 * Resolve a `revoke` argument to a sent-share record: the share URI, the share_ref, or a unique
 * prefix of it (at least 4 hex digits), as `cipherpost shares` lists them.
 */
export async function findSent(state: State, target: string): Promise<SentShare> {
  const sent = await state.listSent();
  let ref = target.trim();
  if (ref.startsWith("cipherpost://")) {
    const uri = parseShareUri(ref);
    const hit = sent.find((s) => s.uri === ref);
    if (hit) return hit;
    if (uri.version === 1) ref = uri.shareRef;
  }
  ref = ref.toLowerCase();
  const exact = sent.find((s) => s.shareRef === ref);
  if (exact) return exact;
  const matches = /^[0-9a-f]{4,32}$/.test(ref)
    ? sent.filter((s) => s.shareRef.startsWith(ref))
    : [];
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) {
    throw new CipherpostError(
      "usage",
      `share ref prefix ${ref} is ambiguous: ${matches.length} of your shares start with it (${
        matches.map((m) => m.shareRef.slice(0, ref.length + 4)).join(", ")
      })`,
      "give more of the share ref (see cipherpost shares)",
    );
  }
  throw new CipherpostError(
    "not_found",
    `no live share ${ref.replace(/[^0-9a-zA-Z]/g, "?")} in this identity's records`,
    /^[0-9a-f]{1,3}$/.test(ref)
      ? "give at least 4 characters of the share ref (see cipherpost shares)"
      : "list them with: cipherpost shares",
  );
}

/** Remove one live share (merge-write for v1, a revocation manifest for v2); returns its ref. */
export async function revoke(
  t: Transport,
  state: State,
  me: Keypair,
  target: string,
): Promise<string> {
  const s = await findSent(state, target);
  const ref = s.shareRef;
  if (s.sender !== encodeZ32(me.publicKey)) {
    throw configError(
      "that share was sent by another identity",
    );
  }
  if (s.version === 2) {
    await revokeV2(t, fromHex(s.locator));
  } else {
    const report = await updateOwnPacket(t, state, me, (records) => {
      const drop = new Set(
        shareRecords({ publicKey: me.publicKey, records }).filter((r) => recordNamesShare(r, ref)),
      );
      return drop.size === 0 ? null : records.filter((r) => !drop.has(r));
    });
    if (report === null) {
      await state.removeSent(ref);
      throw new CipherpostError(
        "not_found",
        `share ${ref} is no longer in your packet (already replaced or expired)`,
      );
    }
  }
  await state.removeSent(ref);
  return ref;
}
