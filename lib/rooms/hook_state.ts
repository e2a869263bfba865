/**
 * Which rooms a Claude Code session reads through `room hook`, and how far it has read each:
 * `<home>/rooms/hook.json` (0600): bindings per session, one cursor per (session, room). Not on
 * the wire; holds no secret. At most 1000 sessions are kept (the oldest bound go first).
 *
 * @module
 */

import { ensurePrivateDir, writeFileAtomic } from "../util/fsutil.ts";
import { utf8 } from "../util/encoding.ts";
import type { Placed } from "./order.ts";

/** A read position: messages ordered after it are unread. */
export interface Cursor {
  ms: number;
  c: number;
  author: string;
  epoch: number;
  seq: number;
}

interface HookFile {
  v: 1;
  /** session id → bound room ids, in binding order */
  bindings: Record<string, string[]>;
  /** `${session}/${room}` → cursor */
  cursors: Record<string, Cursor>;
}

const MAX_SESSIONS = 1000;
const SESSION_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

/** True for a session id we store (Claude Code's are UUIDs). */
export function isSessionId(s: string): boolean {
  return SESSION_RE.test(s);
}

async function load(home: string): Promise<HookFile> {
  try {
    const o = JSON.parse(await Deno.readTextFile(`${home}/rooms/hook.json`));
    if (o && o.v === 1 && typeof o.bindings === "object" && typeof o.cursors === "object") {
      return o as HookFile;
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound) && !(e instanceof SyntaxError)) throw e;
  }
  return { v: 1, bindings: {}, cursors: {} };
}

async function save(home: string, f: HookFile): Promise<void> {
  const sessions = Object.keys(f.bindings);
  for (const s of sessions.slice(0, Math.max(0, sessions.length - MAX_SESSIONS))) {
    delete f.bindings[s];
    for (const k of Object.keys(f.cursors)) if (k.startsWith(`${s}/`)) delete f.cursors[k];
  }
  await ensurePrivateDir(`${home}/rooms`);
  await writeFileAtomic(`${home}/rooms/hook.json`, utf8(JSON.stringify(f)));
}

/** Bind `room` to `session`; its cursor starts now (only later messages are shown). */
export async function bindRoom(home: string, session: string, room: string): Promise<void> {
  const f = await load(home);
  const list = (f.bindings[session] ?? []).filter((r) => r !== room);
  delete f.bindings[session]; // re-inserted last: the newest binding is kept longest
  f.bindings[session] = [...list, room];
  f.cursors[`${session}/${room}`] ??= { ms: Date.now(), c: 0, author: "", epoch: 0, seq: 0 };
  await save(home, f);
}

/** Unbind `room` from `session`. */
export async function unbindRoom(home: string, session: string, room: string): Promise<void> {
  const f = await load(home);
  f.bindings[session] = (f.bindings[session] ?? []).filter((r) => r !== room);
  if (f.bindings[session].length === 0) delete f.bindings[session];
  delete f.cursors[`${session}/${room}`];
  await save(home, f);
}

/** The rooms bound to `session`. */
export async function boundRooms(home: string, session: string): Promise<string[]> {
  return (await load(home)).bindings[session] ?? [];
}

function cmp(p: Placed, c: Cursor): number {
  const m = p.message;
  return p.key.ms - c.ms || p.key.c - c.c ||
    (m.author < c.author ? -1 : m.author > c.author ? 1 : 0) ||
    m.epoch - c.epoch || m.seq - c.seq;
}

/** The placed messages after `session`'s cursor in `room`. */
export async function unread(
  home: string,
  session: string,
  room: string,
  placed: readonly Placed[],
): Promise<Placed[]> {
  const c = (await load(home)).cursors[`${session}/${room}`];
  return c ? placed.filter((p) => cmp(p, c) > 0) : [...placed];
}

/** Move `session`'s cursor in `room` past `shown` (its last, in order). */
export async function advance(
  home: string,
  session: string,
  room: string,
  shown: readonly Placed[],
): Promise<void> {
  if (shown.length === 0) return;
  const last = shown[shown.length - 1];
  const f = await load(home);
  f.cursors[`${session}/${room}`] = {
    ms: last.key.ms,
    c: last.key.c,
    author: last.message.author,
    epoch: last.message.epoch,
    seq: last.message.seq,
  };
  await save(home, f);
}
