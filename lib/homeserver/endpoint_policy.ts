/**
 * Which homeserver endpoints we contact, and how long we wait for them (docs/PROTOCOL.md §4.2,
 * §4.5; docs/THREAT-MODEL.md rows 57–58). A pointer names any homeserver key, so the endpoint in
 * that key's packet is chosen by whoever sends us a share: without these rules a sender could
 * make our requests go to `http://127.0.0.1:6379`, `http://169.254.169.254/` or an intranet name.
 *
 * {@link checkEndpoint} is the one rule, applied by discovery and again by every request:
 * - `https:` only, with a public DNS name: no IP literal (v4 or v6, so no private, loopback,
 *   link-local, CGNAT or unique-local address), no single-label host (`localhost`,
 *   `metadata`), no name under `.internal`, `.local`, `.localhost`, `.lan`, `.home.arpa`, and
 *   no user name or password in the URL;
 * - except, when {@link HomeserverHttp.allowLoopback} is set (a local testnet, never the default),
 *   `http:` or `https:` to a loopback host (`127.0.0.0/8`, `::1`, `localhost`);
 * - and except, when {@link HomeserverHttp.allowHttp} names it (a testnet on a private test
 *   address inside network namespaces, never the default), `http:` to that one `host:port`.
 *
 * Redirects are never followed (each request is sent with `redirect: "manual"` and a 3xx is an
 * error), so the checked URL is the only one contacted. A public name whose DNS answer is a
 * private address is not detected (DNS is resolved inside `fetch`); THREAT-MODEL row 57 says so.
 *
 * @module
 */

import type { Transport } from "../pkarr/transport.ts";
import { CipherpostError } from "../util/errors.ts";

/** How the homeserver requests of one command may go (library option; the CLI fills it). */
export interface HomeserverHttp {
  /**
   * Admit plain `http://` (and `https://`) to a loopback host: `127.0.0.0/8`, `[::1]`,
   * `localhost`. For a local testnet only; default false (HTTPS to public names only).
   */
  allowLoopback?: boolean;
  /**
   * Admit plain `http://` to exactly this `a.b.c.d:port` (an IPv4 literal and a port, nothing
   * else): the one endpoint of a testnet run on a private test address inside network
   * namespaces (`cipherpost testnet --host`). Default unset (nothing extra admitted).
   */
  allowHttp?: string;
  /**
   * Milliseconds to wait for the response headers (connect, TLS, the server's first byte), and
   * for a request body to be taken; default {@link DEFAULT_HTTP_TIMEOUT_MS}.
   */
  firstByteTimeoutMs?: number;
  /**
   * Milliseconds of waiting for body bytes in which fewer than {@link IDLE_MIN_BYTES} arrive
   * (a server that hangs or drips) before the request fails; default
   * {@link DEFAULT_HTTP_TIMEOUT_MS}. Only time spent waiting on the server counts.
   */
  idleTimeoutMs?: number;
}

/** Default first-byte and idle timeouts of every homeserver request: 30 s. */
export const DEFAULT_HTTP_TIMEOUT_MS = 30_000;
/** A body that brings fewer bytes than this in an idle window counts as stalled. */
export const IDLE_MIN_BYTES = 16 * 1024;

/** Name suffixes that are never public (RFC 6762 `.local`, RFC 8375 `.home.arpa`, …). */
const INTERNAL_SUFFIXES = [".internal", ".local", ".localhost", ".lan", ".home.arpa"];

const IPV4_RE = /^\d{1,3}(\.\d{1,3}){3}$/;

/** Whether `host` (a WHATWG URL hostname, IPv6 in brackets) is a loopback host. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  if (h === "localhost") return true;
  if (IPV4_RE.test(h)) return h.startsWith("127.");
  return h === "[::1]";
}

function refused(url: string, why: string): CipherpostError {
  return new CipherpostError(
    "homeserver",
    `homeserver refused: ${url.slice(0, 200)} ${why}`,
    "a homeserver is reached only over HTTPS at a public domain name; a local testnet's " +
      "loopback endpoint must be allowed explicitly",
  );
}

/**
 * The URL if the policy lets us contact it; else a `homeserver` {@link CipherpostError}
 * ("homeserver refused: …", exit 6). Pure: no DNS, no request.
 */
export function checkEndpoint(url: string | URL, http: HomeserverHttp = {}): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw refused(String(url), "is not a URL");
  }
  const shown = u.origin === "null" ? String(url) : u.origin;
  if (u.protocol !== "https:" && u.protocol !== "http:") {
    throw refused(shown, "is not an HTTPS URL");
  }
  if (u.username !== "" || u.password !== "") throw refused(shown, "carries credentials");
  const host = u.hostname.toLowerCase();
  if (http.allowLoopback && isLoopbackHost(host)) return u;
  if (http.allowHttp && u.protocol === "http:" && u.host === http.allowHttp) return u;
  if (u.protocol !== "https:") {
    throw refused(shown, "is plain http (only HTTPS; plain http only to a loopback testnet)");
  }
  const name = host.replace(/\.$/, "");
  if (IPV4_RE.test(name) || name.startsWith("[")) {
    throw refused(shown, "names an IP address (only public domain names are contacted)");
  }
  if (!name.includes(".")) {
    throw refused(shown, "names a single-label host (only public domain names are contacted)");
  }
  if (INTERNAL_SUFFIXES.some((s) => name.endsWith(s))) {
    throw refused(shown, "names an internal host (only public domain names are contacted)");
  }
  return u;
}

const bound = new WeakMap<Transport, HomeserverHttp>();

/**
 * Make `http` the homeserver settings of everything done with `t`: discovery through `t`
 * (`endpointOf`, `discover`) and the clients `connect` and `reader` make from it use them
 * unless given their own. The CLI binds what its environment says to each
 * command's Transport; without a binding the defaults apply (HTTPS to public names, 30 s).
 */
export function bindHomeserverHttp(t: Transport, http: HomeserverHttp): void {
  bound.set(t, { ...http });
}

/** The settings bound to `t` by {@link bindHomeserverHttp}, else `{}` (the defaults). */
export function homeserverHttpOf(t: Transport): HomeserverHttp {
  return bound.get(t) ?? {};
}
