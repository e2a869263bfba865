/**
 * What a machine keeps about sync in `$CIPHERPOST_HOME/sync/` (docs/PROTOCOL.md §8.3, §8.5):
 * the device secret, and `state.json`: this device's seq, the newest head seen of every device
 * (seq and SHA-256: the rollback check), the origins known, the last synced version of every
 * file with the stat cache of the local copy, and the project folders' roots.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { fromUtf8, toHex, utf8 } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import { ensurePrivateDir, writeFileAtomic } from "../util/fsutil.ts";
import type { FileEntry, Tombstone } from "./snapshot.ts";

/** The stat signature of a local file: equal signature, same content (not re-read). */
export interface StatSig {
  size: number;
  mtime: number;
  ino: number;
  ctime: number;
}

/** The stat signature of a file's info. */
export function statSig(i: Deno.FileInfo): StatSig {
  return {
    size: i.size,
    mtime: i.mtime?.getTime() ?? 0,
    ino: i.ino ?? 0,
    ctime: i.ctime?.getTime() ?? 0,
  };
}

/** True when two stat signatures are the same. */
export function sameStat(a: StatSig | undefined, b: StatSig): boolean {
  return !!a && a.size === b.size && a.mtime === b.mtime && a.ino === b.ino && a.ctime === b.ctime;
}

/** One file as this machine knows it. */
export interface FileState {
  /** the last synced version (pushed or pulled), or its deletion */
  base?: { file?: FileEntry; gone?: Tombstone };
  /** the local copy: its stat and what it was when read (the stat cache) */
  local?: { st: StatSig; entry: FileEntry };
}

/** `state.json`. */
export interface SyncState {
  /** this device's newest pushed seq */
  seq: number;
  /** newest head read of each device: seq and SHA-256 of the object */
  heads: Record<string, { seq: number; sha256: string }>;
  /** newest seq known of each device (directly or through another head's `seen`) */
  known: Record<string, number>;
  files: Record<string, FileState>;
  /** project folder name → root token */
  roots: Record<string, string>;
  /** the identity (z-base-32 public key) and device of the last completed push */
  owner?: string;
  device?: string;
  /** the page ids of this device's last pushed head (stored already) */
  pages?: string[];
  /**
   * conflict copies a pull made, by config-relative path: which side the copy holds and the
   * label of the device whose version met the local one (docs/PROTOCOL.md §8.7)
   */
  conflicts?: Record<string, ConflictRecord>;
}

/** What a pull recorded of a conflict copy. */
export interface ConflictRecord {
  /** `remote`: the copy is the other device's version; `local`: the local one that lost */
  side: "local" | "remote";
  /** the label of the device whose version met the local one */
  from: string;
}

/** The sync folder of a cipherpost home. */
export function syncDir(home: string): string {
  return `${home}/sync`;
}

/** SHA-256 hex. */
export function sha256Hex(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/** This machine's device secret (made on first use, 0600). */
export async function deviceSecret(home: string): Promise<Uint8Array> {
  const path = `${syncDir(home)}/device`;
  try {
    const t = (await Deno.readTextFile(path)).trim();
    if (/^[0-9a-f]{32}$/.test(t)) {
      return Uint8Array.from(t.match(/../g)!.map((h) => parseInt(h, 16)));
    }
    throw new CipherpostError("config", `configuration error: ${path} is damaged`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await ensurePrivateDir(syncDir(home));
  const s = crypto.getRandomValues(new Uint8Array(16));
  await writeFileAtomic(path, utf8(`${toHex(s)}\n`), 0o600);
  return s;
}

/** Load `state.json` (an empty state when there is none). */
export async function loadState(home: string): Promise<SyncState> {
  const path = `${syncDir(home)}/state.json`;
  let text: string;
  try {
    text = fromUtf8(await Deno.readFile(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { seq: 0, heads: {}, known: {}, files: {}, roots: {} };
    }
    throw e;
  }
  try {
    const o = JSON.parse(text) as SyncState;
    if (typeof o.seq !== "number" || typeof o.files !== "object") throw new Error();
    o.roots ??= {};
    o.known ??= {};
    o.heads ??= {};
    return o;
  } catch {
    throw new CipherpostError(
      "config",
      `configuration error: ${path} is damaged`,
      "move it away: the next pull rebuilds it (files that differ are kept as conflict copies)",
    );
  }
}

/** Save `state.json` atomically (0600). */
export async function saveState(home: string, s: SyncState): Promise<void> {
  await ensurePrivateDir(syncDir(home));
  await writeFileAtomic(`${syncDir(home)}/state.json`, utf8(JSON.stringify(s)), 0o600);
}

/** Largest `hook.log` kept (older lines are dropped past it). */
const HOOK_LOG_MAX = 256 * 1024;

/** Append one line to `sync/hook.log` (what a failing hook would otherwise print). */
export async function appendHookLog(home: string, line: string): Promise<void> {
  await ensurePrivateDir(syncDir(home));
  const path = `${syncDir(home)}/hook.log`;
  let old = "";
  try {
    old = await Deno.readTextFile(path);
  } catch { /* none yet */ }
  let text = old + line.replace(/\n/g, " ") + "\n";
  if (text.length > HOOK_LOG_MAX) {
    text = text.slice(text.indexOf("\n", text.length - HOOK_LOG_MAX) + 1);
  }
  await writeFileAtomic(path, utf8(text), 0o600);
}

/** The last line of `sync/hook.log`, or null. */
export async function lastHookLog(home: string): Promise<string | null> {
  try {
    const lines = (await Deno.readTextFile(`${syncDir(home)}/hook.log`)).split("\n")
      .filter((l) => l);
    return lines.length ? lines[lines.length - 1] : null;
  } catch {
    return null;
  }
}

/** `sync/auto.json`: what `auto enable` added (read by `auto disable`). */
export function autoRecordPath(home: string): string {
  return `${syncDir(home)}/auto.json`;
}
