/**
 * The stored session (docs/PROTOCOL.md §4.3): `<home>/homeserver/session.json`, mode 0600,
 * written atomically. It holds a cookie limited to `/pub/cipherpost/:rw`; a file with any other
 * capabilities, or for another user, is ignored.
 *
 * @module
 */

import { ensurePrivateDir, writeFileAtomic } from "../util/fsutil.ts";
import { isCipherpostOnly, parseCapabilities } from "./capabilities.ts";
import { isZ32Key } from "./discovery.ts";
import type { SessionCookie } from "./session.ts";

/** What is stored. */
export interface StoredSession {
  homeserver: string;
  baseUrl: string;
  cookie: SessionCookie;
  /** ISO time the session was made */
  createdAt: string;
}

/** The folder of homeserver state in a cipherpost home. */
export function homeserverDir(home: string): string {
  return `${home}/homeserver`;
}

/** The session file. */
export function sessionFile(home: string): string {
  return `${homeserverDir(home)}/session.json`;
}

/** The stored session of `user` (z32), or null (none, unreadable, or not ours). */
export async function loadSession(home: string, user: string): Promise<StoredSession | null> {
  const s = await readStoredSession(home);
  return s !== null && s.cookie.user === user ? s : null;
}

/** Store a session (replacing any other). */
export async function saveSession(home: string, s: StoredSession): Promise<void> {
  await ensurePrivateDir(homeserverDir(home));
  const body = {
    version: 1,
    homeserver: s.homeserver,
    base_url: s.baseUrl,
    user: s.cookie.user,
    secret: s.cookie.secret,
    capabilities: s.cookie.capabilities,
    created_at: s.createdAt,
  };
  await writeFileAtomic(sessionFile(home), new TextEncoder().encode(JSON.stringify(body) + "\n"));
}

/**
 * The stored session whoever it belongs to, or null (none, unreadable, malformed, or with
 * capabilities beyond `/pub/cipherpost/:rw`). The one reader of the session file.
 */
export async function readStoredSession(home: string): Promise<StoredSession | null> {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(await Deno.readTextFile(sessionFile(home)));
  } catch {
    return null;
  }
  if (j === null || typeof j !== "object") return null;
  const s = (k: string) => (typeof j[k] === "string" ? j[k] as string : "");
  if (!isZ32Key(s("user")) || !isZ32Key(s("homeserver"))) return null;
  if (!/^[0-9A-Za-z]{1,128}$/.test(s("secret"))) return null;
  if (!/^https?:\/\/[^/\s]+$/.test(s("base_url"))) return null;
  try {
    if (!isCipherpostOnly(parseCapabilities(s("capabilities")))) return null;
  } catch {
    return null;
  }
  return {
    homeserver: s("homeserver"),
    baseUrl: s("base_url"),
    cookie: { user: s("user"), secret: s("secret"), capabilities: s("capabilities") },
    createdAt: s("created_at"),
  };
}
