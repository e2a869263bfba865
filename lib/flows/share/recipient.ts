/**
 * The recipient of a send (small, large or Claude Code): `null` is the sender itself (`--self`),
 * anything else must be a z-base-32 public key (the CLI resolved contact names before).
 *
 * @module
 */

import type { Keypair } from "../../crypto/keys.ts";
import { encodeZ32, parsePublicKey } from "../../pkarr/public_key.ts";
import { configError } from "../../util/errors.ts";

/** The recipient's key, and its canonical z32 (null for a share to oneself). */
export interface Recipient {
  publicKey: Uint8Array;
  z32: string | null;
}

/** Parse `recipient` (or take the sender's own key for null); a bad key is a config error. */
export function recipientOf(sender: Keypair, recipient: string | null): Recipient {
  if (recipient === null) return { publicKey: sender.publicKey, z32: null };
  let publicKey: Uint8Array;
  try {
    publicKey = parsePublicKey(recipient);
  } catch {
    throw configError(
      "the recipient must be a z-base-32 public key",
      { step: "recipient_key" },
    );
  }
  return { publicKey, z32: encodeZ32(publicKey) };
}
