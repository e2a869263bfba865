/**
 * Homeserver discovery (docs/PROTOCOL.md §6.2), through our own {@link Transport}: the user's
 * `_pubky` HTTPS/SVCB record names the homeserver key; the homeserver's own packet names the
 * ICANN domain (and port) a `fetch` client can reach.
 *
 * A lookup that reaches nobody is `network` (exit 6, thrown by the Transport); a user without a
 * `_pubky` record is `no_homeserver` (exit 5); a homeserver without a usable packet is
 * `homeserver` (exit 6), and so is one whose endpoint the policy refuses (`checkEndpoint`:
 * HTTPS to a public name; loopback only when allowed). The key in a pointer is the sender's
 * choice, so its endpoint is checked before anything is sent to it.
 *
 * @module
 */

import type { DnsRecord } from "../pkarr/dns.ts";
import { decodeZ32, encodeZ32, isValidPoint, Z32_KEY_LENGTH } from "../pkarr/public_key.ts";
import { recordsNamed, type SignedPacket } from "../pkarr/signed_packet.ts";
import type { Transport } from "../pkarr/transport.ts";
import { CipherpostError } from "../util/errors.ts";
import { checkEndpoint, type HomeserverHttp, homeserverHttpOf } from "./endpoint_policy.ts";

/** The record name (relative to the user's key) that points at the homeserver. */
export const PUBKY_RECORD = "_pubky";
/** TTL the reference SDK uses for `_pubky`. */
export const PUBKY_RECORD_TTL = 3600;
/** Private SvcParam carrying the plain-HTTP port of a `localhost` endpoint. */
export const HTTP_PORT_PARAM = 65280;
/** SvcParam `ipv4hint` (RFC 9460): on a `localhost` endpoint, the testnet's address. */
export const IPV4HINT_PARAM = 4;
/** SvcParam `port`. */
export const PORT_PARAM = 3;

/** Where to send a user's requests. */
export interface HomeserverEndpoint {
  /** z-base-32 key of the homeserver */
  homeserver: string;
  /**
   * `https://domain[:port]` or (a testnet, when loopback is allowed) `http://127.0.0.1:port`,
   * without a trailing slash: the URL every request goes to, to be shown to the user
   */
  baseUrl: string;
}

const Z32_RE = /^[ybndrfg8ejkmcpqxot1uwisza345h769]{52}$/;

/** Whether `s` is a raw 52-character z32 public key. */
export function isZ32Key(s: string): boolean {
  if (s.length !== Z32_KEY_LENGTH || !Z32_RE.test(s)) return false;
  try {
    return isValidPoint(decodeZ32(s));
  } catch {
    return false;
  }
}

/** The homeserver key named by a user's packet, or null when it has no `_pubky` record. */
export function homeserverInPacket(p: Pick<SignedPacket, "publicKey" | "records">): string | null {
  for (const r of recordsNamed(p, PUBKY_RECORD)) {
    if (r.data.type !== "HTTPS" && r.data.type !== "SVCB") continue;
    const target = r.data.target.replace(/\.$/, "");
    if (isZ32Key(target)) return target;
  }
  return null;
}

/** The `_pubky` record pointing at `homeserver` (HTTPS, priority 0, alias mode). */
export function pubkyRecord(homeserver: string): DnsRecord {
  if (!isZ32Key(homeserver)) {
    throw new CipherpostError("usage", "not a homeserver key (52-character z-base-32 expected)");
  }
  return {
    name: PUBKY_RECORD,
    ttl: PUBKY_RECORD_TTL,
    data: { type: "HTTPS", priority: 0, target: homeserver, params: [] },
  };
}

/**
 * `records` with every record named `_pubky` (relative, or `_pubky.<origin>`) replaced by one
 * pointing at `homeserver`; every other record is kept in order. Returns null when the list
 * already says exactly that (nothing to publish).
 */
export function withPubkyRecord(
  origin: string,
  records: DnsRecord[],
  homeserver: string,
): DnsRecord[] | null {
  const isPubky = (r: DnsRecord) =>
    r.name === PUBKY_RECORD || r.name === `${PUBKY_RECORD}.${origin}`;
  const current = records.filter(isPubky);
  if (
    current.length === 1 && current[0].data.type === "HTTPS" && current[0].data.priority === 0 &&
    current[0].data.target.replace(/\.$/, "") === homeserver
  ) return null;
  return [...records.filter((r) => !isPubky(r)), pubkyRecord(homeserver)];
}

/** The fetch-reachable URL in a homeserver's own packet, or null when it has none. */
export function endpointInPacket(p: Pick<SignedPacket, "publicKey" | "records">): string | null {
  const apex = recordsNamed(p, ".")
    .filter((r) => r.data.type === "HTTPS" || r.data.type === "SVCB")
    .map((r) => r.data as Extract<DnsRecord["data"], { type: "HTTPS" | "SVCB" }>)
    .filter((d) => d.priority > 0)
    .sort((a, b) => a.priority - b.priority);
  for (const d of apex) {
    const domain = d.target.replace(/\.$/, "").toLowerCase();
    if (domain === "" || isZ32Key(domain)) continue; // Pubky-TLS (raw key) endpoints
    if (
      !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(domain)
    ) {
      continue;
    }
    const param = (key: number) => d.params.find(([k]) => k === key)?.[1];
    const u16 = (b: Uint8Array | undefined) => b && b.length === 2 ? (b[0] << 8) | b[1] : undefined;
    if (domain === "localhost") {
      const port = u16(param(HTTP_PORT_PARAM));
      if (!port) continue;
      // a testnet on a private test address (`cipherpost testnet --host`) names it in ipv4hint
      const hint = param(IPV4HINT_PARAM);
      const ip = hint?.length === 4 ? hint.join(".") : "127.0.0.1";
      return `http://${ip}:${port}`;
    }
    const port = u16(param(PORT_PARAM));
    return port && port !== 443 ? `https://${domain}:${port}` : `https://${domain}`;
  }
  return null;
}

/** The homeserver key of `user` (from `_pubky`). Throws `no_homeserver` or `network`. */
export async function homeserverOf(transport: Transport, user: Uint8Array): Promise<string> {
  const found = await transport.resolve(user, (p) => homeserverInPacket(p) !== null);
  const hs = found ? homeserverInPacket(found.packet) : null;
  if (!hs) {
    throw new CipherpostError(
      "no_homeserver",
      `no homeserver: ${encodeZ32(user)} publishes no _pubky record`,
      found ? { step: "homeserver_signup" } : undefined,
    );
  }
  return hs;
}

/**
 * The base URL of homeserver `homeserver` (z32): the one every request to it will use, checked
 * by `checkEndpoint` under `http` (default: the settings bound to `transport`). Throws
 * `homeserver` (no usable packet, or an endpoint the policy refuses) or `network`.
 */
export async function endpointOf(
  transport: Transport,
  homeserver: string,
  http: HomeserverHttp = homeserverHttpOf(transport),
): Promise<string> {
  if (!isZ32Key(homeserver)) {
    throw new CipherpostError("usage", "not a homeserver key (52-character z-base-32 expected)");
  }
  const found = await transport.resolve(
    decodeZ32(homeserver),
    (p) => endpointInPacket(p) !== null,
  );
  const url = found ? endpointInPacket(found.packet) : null;
  if (!url) {
    throw new CipherpostError(
      "homeserver",
      found
        ? `homeserver unreachable: the packet of ${homeserver} names no HTTPS domain endpoint`
        : `homeserver unreachable: no packet found for homeserver ${homeserver}`,
    );
  }
  checkEndpoint(url, http);
  return url;
}

/** `user`'s homeserver and where to reach it (checked as in {@link endpointOf}). */
export async function discover(
  transport: Transport,
  user: Uint8Array,
  http: HomeserverHttp = homeserverHttpOf(transport),
): Promise<HomeserverEndpoint> {
  const homeserver = await homeserverOf(transport, user);
  return { homeserver, baseUrl: await endpointOf(transport, homeserver, http) };
}
