/**
 * Share URIs.
 *
 * v1 (docs/PROTOCOL.md §2, §3.2): `cipherpost://<sender-z32>/<share_ref: 32 lowercase hex>`.
 * v2 (docs/PROTOCOL.md §v2): `cipherpost://<sender-z32>/2.<locator: 52 z-base-32 chars>` —
 * a v1 parser rejects it (the ref is not 32 hex characters).
 *
 * @module
 */

import { CipherpostError } from "../util/errors.ts";
import { decodeZ32, encodeZ32, isValidPoint } from "../pkarr/public_key.ts";

const SCHEME = "cipherpost://";

const Z32 = /^[ybndrfg8ejkmcpqxot1uwisza345h769]{52}$/;

/** A parsed share URI; `sender` is always the canonical z-base-32 spelling of a valid key. */
export type ShareUri =
  | { version: 1; sender: string; shareRef: string }
  | { version: 2; sender: string; locator: Uint8Array };

function invalid(reason: string, hint?: string): CipherpostError {
  return new CipherpostError("invalid_uri", `invalid share URI: ${reason}`, hint);
}

/**
 * Parse a share URI and canonicalise it: the sender must be 52 z-base-32 characters naming a
 * valid Ed25519 point (a non-canonical last character is re-spelled canonically), the reference
 * 32 lowercase hex (v1) or `2.` and 52 z-base-32 characters (v2). Surrounding whitespace is
 * ignored. Nothing else (the ledger, the network) may be consulted before this.
 *
 * @param input The URI as the sender printed it.
 * @returns The sender and the share's reference (v1) or locator (v2).
 * @throws {CipherpostError} `invalid_uri` ("invalid share URI: <reason>") on any failure.
 */
export function parseShareUri(input: string): ShareUri {
  const s = input.trim();
  if (!s.startsWith(SCHEME)) {
    throw invalid(
      "must start with cipherpost://",
      /^[a-z0-9]{52}$/.test(s)
        ? "a bare key is not a share; paste the whole URI the sender printed"
        : undefined,
    );
  }
  const rest = s.slice(SCHEME.length);
  const slash = rest.indexOf("/");
  if (slash < 0) throw invalid("missing share reference after the key");
  const sender = rest.slice(0, slash);
  const ref = rest.slice(slash + 1);
  if (new TextEncoder().encode(sender).length !== 52) {
    throw invalid("sender key must be 52 characters");
  }
  if (!Z32.test(sender)) throw invalid("sender key is not lowercase z-base-32");
  const senderPk = decodeZ32(sender);
  if (!isValidPoint(senderPk)) throw invalid("sender is not a valid public key");
  const canonical = encodeZ32(senderPk);
  if (/^[0-9a-f]{32}$/.test(ref)) return { version: 1, sender: canonical, shareRef: ref };
  if (ref.startsWith("2.")) {
    const loc = ref.slice(2);
    if (!Z32.test(loc)) throw invalid("malformed v2 locator");
    return { version: 2, sender: canonical, locator: decodeZ32(loc) };
  }
  throw invalid("share reference must be 32 lowercase hex characters");
}

/**
 * Format a v1 URI, `cipherpost://<sender>/<shareRef>`. Nothing is checked: `sender` should be a
 * canonical z-base-32 key and `shareRef` 32 lowercase hex, as {@link parseShareUri} requires.
 */
export function formatV1Uri(sender: string, shareRef: string): string {
  return `${SCHEME}${sender}/${shareRef}`;
}

/**
 * Format a v2 URI, `cipherpost://<sender>/2.<z-base-32 of locator>`. Nothing is checked:
 * `sender` should be a canonical z-base-32 key and `locator` 32 bytes.
 */
export function formatV2Uri(sender: string, locator: Uint8Array): string {
  return `${SCHEME}${sender}/2.${encodeZ32(locator)}`;
}
