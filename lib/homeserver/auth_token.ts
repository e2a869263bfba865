/**
 * The Pubky AuthToken codec (docs/PROTOCOL.md §6.1), pure: build for the client, parse and verify
 * for the stand-in homeserver and the tests.
 *
 * Layout (postcard, version 0): sig(64) ‖ "PUBKY:AUTH"(10) ‖ version(1) ‖ timestamp µs u64 BE(8)
 * ‖ public key(32) ‖ varint length ‖ capabilities UTF-8. The signature covers bytes 65..end.
 *
 * @module
 */

import { keypairFromSeed, sign, verifyStrict } from "../crypto/keys.ts";
import { bytesEqual, concat, fromUtf8, utf8 } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import { type Capability, formatCapabilities, parseCapabilities } from "./capabilities.ts";

/** ASCII namespace at offset 64. */
export const AUTH_NAMESPACE = utf8("PUBKY:AUTH");
/** The only version. */
export const AUTH_VERSION = 0;
/** Offset where the signed bytes start (the frozen off-by-one of the reference). */
export const SIGNED_FROM = 65;
/** Offset and end of the replay id (timestamp ‖ public key). */
export const ID_FROM = 75;
export const ID_TO = 115;
/** v0.6's window (±45 s), in µs; 0.9+ accepts ±3 min. */
export const WINDOW_V06_US = 45_000_000;

/** A decoded token. */
export interface AuthToken {
  signature: Uint8Array;
  version: number;
  /** microseconds since the Unix epoch */
  timestampUs: number;
  publicKey: Uint8Array;
  capabilities: Capability[];
  /** bytes 75..115, what a replay guard remembers */
  id: Uint8Array;
}

/** Why a token was rejected (the reference maps all of these to HTTP 400). */
export type AuthTokenFault =
  | "malformed"
  | "unknown_version"
  | "expired"
  | "too_far_in_future"
  | "invalid_signature"
  | "already_used";

/** A rejected token. `fault` says why; the message is one line. */
export class AuthTokenError extends CipherpostError {
  readonly fault: AuthTokenFault;
  constructor(fault: AuthTokenFault) {
    super("homeserver_auth", `homeserver auth token rejected: ${fault.replaceAll("_", " ")}`);
    this.fault = fault;
  }
}

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return new Uint8Array(out);
}

let lastTimestampUs = 0;

/** A strictly increasing µs timestamp within this process (two tokens never share an id). */
export function freshTimestampUs(nowMs = Date.now()): number {
  lastTimestampUs = Math.max(nowMs * 1000, lastTimestampUs + 1);
  return lastTimestampUs;
}

/** Build and sign a token for `seed`'s key asking for `caps`. */
export function buildAuthToken(
  seed: Uint8Array,
  caps: readonly Capability[],
  timestampUs: number = freshTimestampUs(),
): Uint8Array {
  if (!Number.isSafeInteger(timestampUs) || timestampUs < 0) {
    throw new CipherpostError("homeserver", "homeserver error: invalid token timestamp");
  }
  const ts = new Uint8Array(8);
  new DataView(ts.buffer).setBigUint64(0, BigInt(timestampUs), false);
  const capBytes = utf8(formatCapabilities(caps));
  const body = concat(
    AUTH_NAMESPACE,
    new Uint8Array([AUTH_VERSION]),
    ts,
    keypairFromSeed(seed).publicKey,
    varint(capBytes.length),
    capBytes,
  );
  const unsigned = concat(new Uint8Array(64), body);
  const sig = sign(seed, unsigned.subarray(SIGNED_FROM));
  unsigned.set(sig, 0);
  return unsigned;
}

/** Decode without checking time or signature. Throws {@link AuthTokenError} `malformed`. */
export function parseAuthToken(bytes: Uint8Array): AuthToken {
  if (bytes.length < ID_TO + 1) throw new AuthTokenError("malformed");
  if (!bytesEqual(bytes.subarray(64, 74), AUTH_NAMESPACE)) throw new AuthTokenError("malformed");
  const version = bytes[74];
  if (version !== AUTH_VERSION) throw new AuthTokenError("unknown_version");
  const ts = new DataView(bytes.buffer, bytes.byteOffset + 75, 8).getBigUint64(0, false);
  if (ts > BigInt(Number.MAX_SAFE_INTEGER)) throw new AuthTokenError("malformed");
  let len = 0, shift = 0, pos = ID_TO;
  for (;;) {
    if (pos >= bytes.length || shift > 28) throw new AuthTokenError("malformed");
    const b = bytes[pos++];
    len |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) break;
    shift += 7;
  }
  if (pos + len !== bytes.length) throw new AuthTokenError("malformed");
  let capabilities: Capability[];
  try {
    capabilities = parseCapabilities(fromUtf8(bytes.subarray(pos)));
  } catch {
    throw new AuthTokenError("malformed");
  }
  return {
    signature: bytes.slice(0, 64),
    version,
    timestampUs: Number(ts),
    publicKey: bytes.slice(83, 115),
    capabilities,
    id: bytes.slice(ID_FROM, ID_TO),
  };
}

/** Options of {@link verifyAuthToken}. */
export interface VerifyOptions {
  /** the verifier's clock in µs (default: now) */
  nowUs?: number;
  /** allowed distance from the clock in µs (default ±45 s, as v0.6) */
  windowUs?: number;
}

/**
 * Parse, check the time window and the signature (bytes 65..end, strict Ed25519). Replay is the
 * caller's job ({@link ReplayGuard}).
 */
export function verifyAuthToken(bytes: Uint8Array, opts: VerifyOptions = {}): AuthToken {
  const t = parseAuthToken(bytes);
  const now = opts.nowUs ?? Date.now() * 1000;
  const window = opts.windowUs ?? WINDOW_V06_US;
  const diff = t.timestampUs - now;
  if (diff > window) throw new AuthTokenError("too_far_in_future");
  if (diff < -window) throw new AuthTokenError("expired");
  if (!verifyStrict(t.publicKey, bytes.subarray(SIGNED_FROM), t.signature)) {
    throw new AuthTokenError("invalid_signature");
  }
  return t;
}

/** Remembers token ids inside the time window and rejects a second use. */
export class ReplayGuard {
  readonly #seen = new Map<string, number>();
  readonly #windowUs: number;

  constructor(windowUs = WINDOW_V06_US) {
    this.#windowUs = windowUs;
  }

  /** Throws `already_used` when `token` was seen before; remembers it otherwise. */
  check(token: AuthToken, nowUs = Date.now() * 1000): void {
    for (const [k, ts] of this.#seen) {
      if (ts < nowUs - 2 * this.#windowUs) this.#seen.delete(k);
    }
    const key = Array.from(token.id, (b) => b.toString(16).padStart(2, "0")).join("");
    if (this.#seen.has(key)) throw new AuthTokenError("already_used");
    this.#seen.set(key, token.timestampUs);
  }
}
