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

/** Messages one author may show per {@link FLOOD_WINDOW_MS} of arrival time. */
export const FLOOD_LIMIT = 30;
/** The flood window. */
export const FLOOD_WINDOW_MS = 10_000;

/**
 * The per-author flood limit, applied as messages arrive: at most `limit` messages of one
 * author are shown per `windowMs` of *arrival* time, a time the author does not sign (the
 * reader's clock as a message arrives live, or the time the author's homeserver stored it), so a
 * flood cannot slip through by spacing its signed stamps apart. Feed each author's messages in
 * arrival order.
 */
export class FloodGate {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #recent = new Map<string, number[]>();

  /** A gate showing at most `limit` messages of one author per `windowMs` of arrival. */
  constructor(limit = FLOOD_LIMIT, windowMs = FLOOD_WINDOW_MS) {
    this.#limit = limit;
    this.#windowMs = windowMs;
  }

  /**
   * Whether a message of `author` that arrived at `at` (Unix ms) is shown: `shown`, `hidden`,
   * or `flooding` (hidden, and the first one hidden since the author last went under the limit,
   * for a one-time notice).
   */
  admit(author: string, at: number): "shown" | "hidden" | "flooding" {
    const times = (this.#recent.get(author) ?? []).filter((t) => t > at - this.#windowMs);
    this.#recent.set(author, times);
    if (times.length >= this.#limit) {
      // hidden ones count too (at most `limit` kept): a steady flood stays hidden
      const first = times.length === this.#limit;
      if (first) times.push(at);
      return first ? "flooding" : "hidden";
    }
    times.push(at);
    return "shown";
  }
}

/**
 * Apply the per-author flood limit to placed messages: each author's messages go through a
 * {@link FloodGate} in order of `arrival` (ties by epoch and sequence number); returns those
 * shown, still in display order, and, per author, how many were hidden.
 */
export function floodLimit(
  placed: readonly Placed[],
  arrival: (m: Message) => number,
  limit = FLOOD_LIMIT,
  windowMs = FLOOD_WINDOW_MS,
): { shown: Placed[]; hidden: Map<string, number> } {
  const gate = new FloodGate(limit, windowMs);
  const hidden = new Map<string, number>();
  const byArrival = [...placed].sort((a, b) =>
    arrival(a.message) - arrival(b.message) || a.message.epoch - b.message.epoch ||
    a.message.seq - b.message.seq
  );
  const out = new Set<Placed>();
  for (const p of byArrival) {
    const a = p.message.author;
    if (gate.admit(a, arrival(p.message)) === "shown") out.add(p);
    else hidden.set(a, (hidden.get(a) ?? 0) + 1);
  }
  return { shown: placed.filter((p) => out.has(p)), hidden };
}
