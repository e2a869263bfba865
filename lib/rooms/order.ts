/**
 * What a reader makes of the verified messages (docs/PROTOCOL.md §9.4): the sender's hybrid
 * logical clock, the display order with far-future stamps held back, the missing sequence
 * numbers per author and epoch, and the per-author flood limit. Pure.
 *
 * @module
 */

import { MAX_FUTURE_MS } from "./names.ts";
import type { Message } from "./records.ts";

/** A hybrid logical clock reading. */
export interface Hlc {
  ms: number;
  c: number;
}

/** The sender's next stamp after `last` at wall time `now` (§9.4). */
export function tick(last: Hlc | null, now: number): Hlc {
  if (last === null || now > last.ms) return { ms: now, c: 0 };
  return { ms: last.ms, c: last.c + 1 };
}

function cmp(a: Hlc, b: Hlc): number {
  return a.ms !== b.ms ? a.ms - b.ms : a.c - b.c;
}

/** A message placed for display. */
export interface Placed {
  message: Message;
  /** the order key */
  key: Hlc;
  /** its stamp was more than 5 minutes ahead of the reader's clock */
  future: boolean;
}

/**
 * The display order: each author's messages in (epoch, seq) order carry a running key that a
 * far-future stamp cannot advance; everything sorted by (key, author, epoch, seq).
 */
export function order(messages: readonly Message[], now: number): Placed[] {
  const byAuthor = new Map<string, Message[]>();
  for (const m of messages) {
    const list = byAuthor.get(m.author) ?? [];
    list.push(m);
    byAuthor.set(m.author, list);
  }
  const placed: Placed[] = [];
  for (const list of byAuthor.values()) {
    list.sort((a, b) => a.epoch - b.epoch || a.seq - b.seq);
    let key: Hlc = { ms: 0, c: 0 };
    for (const m of list) {
      const stamp = { ms: m.hlc, c: m.hlcC };
      const future = m.hlc > now + MAX_FUTURE_MS;
      if (!future && cmp(stamp, key) > 0) key = stamp;
      placed.push({ message: m, key, future });
    }
  }
  placed.sort((a, b) =>
    cmp(a.key, b.key) ||
    (a.message.author < b.message.author ? -1 : a.message.author > b.message.author ? 1 : 0) ||
    a.message.epoch - b.message.epoch || a.message.seq - b.message.seq
  );
  return placed;
}

/** Numbers in 1..max(listed) with no file, as ranges; at most `cap` ranges. */
export function missingRanges(listed: Iterable<number>, cap = 100): [number, number][] {
  const have = [...new Set(listed)].filter((n) => n >= 1).sort((a, b) => a - b);
  const out: [number, number][] = [];
  let next = 1;
  for (const n of have) {
    if (n > next && out.length < cap) out.push([next, n - 1]);
    next = n + 1;
  }
  return out;
}

/** The count of numbers in some ranges. */
export function rangeCount(ranges: [number, number][]): number {
  return ranges.reduce((s, [a, b]) => s + b - a + 1, 0);
}

/** Messages one author may show per {@link FLOOD_WINDOW_MS} of order key. */
export const FLOOD_LIMIT = 30;
/** The flood window. */
export const FLOOD_WINDOW_MS = 10_000;

/**
 * Apply the per-author flood limit to placed messages: returns those shown and, per author,
 * how many were hidden.
 */
export function floodLimit(
  placed: readonly Placed[],
  limit = FLOOD_LIMIT,
  windowMs = FLOOD_WINDOW_MS,
): { shown: Placed[]; hidden: Map<string, number> } {
  const recent = new Map<string, number[]>();
  const hidden = new Map<string, number>();
  const shown: Placed[] = [];
  for (const p of placed) {
    const a = p.message.author;
    const times = (recent.get(a) ?? []).filter((t) => t > p.key.ms - windowMs);
    if (times.length >= limit) {
      hidden.set(a, (hidden.get(a) ?? 0) + 1);
      recent.set(a, times);
      continue;
    }
    times.push(p.key.ms);
    recent.set(a, times);
    shown.push(p);
  }
  return { shown, hidden };
}
