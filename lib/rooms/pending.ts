/**
 * Pending joins: an invite URI that an agent (Claude, through `cipherpost mcp`) asked to join,
 * kept until the human accepts it with `cipherpost room accept TOKEN` (the consent gate).
 * `<home>/rooms/pending.json`, 0600; at most 100 kept (the oldest go first).
 *
 * @module
 */

import { ensurePrivateDir, writeFileAtomic } from "../util/fsutil.ts";
import { toHex, utf8 } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";

const MAX_PENDING = 100;

type Pending = Record<string, { uri: string; at: number }>;

async function load(home: string): Promise<Pending> {
  try {
    const o = JSON.parse(await Deno.readTextFile(`${home}/rooms/pending.json`));
    return o && typeof o === "object" ? o as Pending : {};
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof SyntaxError) return {};
    throw e;
  }
}

async function save(home: string, p: Pending): Promise<void> {
  const keys = Object.keys(p).sort((a, b) => p[a].at - p[b].at);
  for (const k of keys.slice(0, Math.max(0, keys.length - MAX_PENDING))) delete p[k];
  await ensurePrivateDir(`${home}/rooms`);
  await writeFileAtomic(`${home}/rooms/pending.json`, utf8(JSON.stringify(p)));
}

/** File a pending join of `uri`; returns its token. */
export async function addPending(home: string, uri: string): Promise<string> {
  if (!/^cipherpost:\/\/[\x21-\x7e]{1,2000}$/.test(uri)) {
    throw new CipherpostError("invalid_uri", "invalid share URI");
  }
  const p = await load(home);
  const token = toHex(crypto.getRandomValues(new Uint8Array(8)));
  p[token] = { uri, at: Date.now() };
  await save(home, p);
  return token;
}

/** The URI of the pending join `token` (kept until {@link dropPending}). */
export async function pendingUri(home: string, token: string): Promise<string> {
  const p = await load(home);
  const e = Object.hasOwn(p, token) ? p[token] : undefined;
  if (!e) {
    throw new CipherpostError(
      "not_found",
      "no pending join with that token",
      "list them with: cipherpost room pending",
    );
  }
  return e.uri;
}

/** Remove the pending join `token` (once joined). */
export async function dropPending(home: string, token: string): Promise<void> {
  const p = await load(home);
  delete p[token];
  await save(home, p);
}

/** The pending joins, oldest first. */
export async function listPending(
  home: string,
): Promise<{ token: string; uri: string; at: number }[]> {
  const p = await load(home);
  return Object.entries(p).map(([token, v]) => ({ token, ...v })).sort((a, b) => a.at - b.at);
}
