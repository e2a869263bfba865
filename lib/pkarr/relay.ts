/**
 * pkarr relay HTTP client (design/relays.md): `PUT /<z32>` and `GET /<z32>` of relay payloads
 * (`sig(64) ‖ seq u64 BE ‖ v`, coded by relay_payload.ts).
 *
 * GET is sent without a query string so that the old JS relay (pkarr\@1.3.0) also answers; PUT
 * accepts 200 and 204. A payload whose signature or sizes are wrong is a misbehaving relay, so it
 * surfaces as a `network` error (like an invalid item on the DHT, it is not the user's fault).
 *
 * @module
 */

import { concat } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import { DhtConflictError } from "./conflict.ts";
import type { MutableItem } from "./item.ts";
import { encodeZ32 } from "./public_key.ts";
import { decodeRelayPayload, encodeRelayPayload } from "./relay_payload.ts";

/** The relay body read limit (the Rust relay's axum limit): anything larger is refused unread. */
export const RELAY_BODY_LIMIT = 1104;
/** Response header carrying the number of DHT nodes that stored a PUT. */
export const STORED_NODES_HEADER = "Pkarr-Dht-Stored-Nodes";

/**
 * Publishes `item` through the relay at `baseUrl`. `cas` is sent as `If-Match: <seq>` (the
 * pkarr ≤ 6 convention). Resolves with the relay's stored-node count (1 when it sends none).
 * Throws {@link DhtConflictError} on 409/428/412 and `CipherpostError("network")` otherwise.
 */
export async function relayPut(
  baseUrl: string,
  item: MutableItem,
  opts: { timeoutMs: number; cas?: number; signal?: AbortSignal },
): Promise<{ stored: number }> {
  const base = trimBase(baseUrl);
  const headers: Record<string, string> = {
    "Content-Type": "application/pkarr.org/relays#payload",
  };
  if (opts.cas !== undefined) headers["If-Match"] = String(opts.cas);
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const res = await send(base, `${base}/${encodeZ32(item.k)}`, opts, timeout, {
    method: "PUT",
    headers,
    body: encodeRelayPayload(item),
  });
  await res.body?.cancel();
  if (res.status === 200 || res.status === 204) {
    const raw = res.headers.get(STORED_NODES_HEADER);
    if (raw === null) return { stored: 1 };
    if (!/^\d{1,10}$/.test(raw.trim())) {
      throw new CipherpostError(
        "network",
        `relay ${base} answered ${res.status} with a malformed ${STORED_NODES_HEADER} header`,
      );
    }
    return { stored: Number(raw.trim()) };
  }
  if (res.status === 409 || res.status === 428) {
    throw new DhtConflictError(302, `relay ${base} answered ${res.status}: a newer record exists`);
  }
  if (res.status === 412) {
    throw new DhtConflictError(301, `relay ${base} answered 412: CAS mismatch`);
  }
  throw new CipherpostError("network", `relay ${base} answered ${res.status}`);
}

/**
 * Fetches the item of key `k` from the relay at `baseUrl` (no query string). Resolves with null
 * on 404; the payload's sizes and signature are verified before it is returned.
 */
export async function relayGet(
  baseUrl: string,
  k: Uint8Array,
  opts: { timeoutMs: number; signal?: AbortSignal },
): Promise<MutableItem | null> {
  const base = trimBase(baseUrl);
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const res = await send(base, `${base}/${encodeZ32(k)}`, opts, timeout, { method: "GET" });
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new CipherpostError("network", `relay ${base} answered ${res.status}`);
  }
  let body: Uint8Array | null;
  try {
    body = await readLimited(res.body, RELAY_BODY_LIMIT);
  } catch (e) {
    throw fetchError(e, base, opts, timeout, "broke off while sending the body");
  }
  const item = body && decodeRelayPayload(k, body);
  if (!item) {
    throw new CipherpostError(
      "network",
      `relay ${base} answered 200 with an invalid payload (${
        body ? `${body.length} bytes` : `over ${RELAY_BODY_LIMIT} bytes`
      })`,
    );
  }
  return item;
}

function trimBase(baseUrl: string): string {
  return baseUrl.replace(/\/+$/, "");
}

async function send(
  base: string,
  url: string,
  opts: { timeoutMs: number; signal?: AbortSignal },
  timeout: AbortSignal,
  init: RequestInit,
): Promise<Response> {
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  try {
    return await fetch(url, { ...init, signal });
  } catch (e) {
    throw fetchError(e, base, opts, timeout);
  }
}

function fetchError(
  e: unknown,
  base: string,
  opts: { timeoutMs: number; signal?: AbortSignal },
  timeout: AbortSignal,
  failed = "unreachable (connection failed)",
): unknown {
  if (opts.signal?.aborted) return opts.signal.reason;
  if (timeout.aborted) {
    return new CipherpostError(
      "network",
      `relay ${base} did not answer within ${opts.timeoutMs} ms`,
    );
  }
  const err = new CipherpostError("network", `relay ${base} ${failed}`);
  err.cause = e;
  return err;
}

/**
 * Reads a body of at most `max` bytes; resolves with null (and cancels the stream) when it is
 * larger. Rejects when the stream errors.
 */
export async function readLimited(
  body: ReadableStream<Uint8Array> | null,
  max: number,
): Promise<Uint8Array | null> {
  if (!body) return new Uint8Array();
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > max) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  return concat(...chunks);
}
