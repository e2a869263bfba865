/**
 * Client-wide pacing of DHT queries: the query slots that lookups and puts share, and the
 * adaptive waits, all derived from recent reply times.
 *
 * Replies to a burst of queries arrive as a burst, and the kernel drops what exceeds the UDP
 * receive buffer while the event loop is busy (Linux's default holds ~48 replies of 2.7 KB, the
 * size of a bittorrent-dht reply listing its whole table); each drop then costs the idle wait.
 * So the client keeps about {@link QUERY_RATE} × the median reply time in flight (at least
 * {@link MIN_SLOTS}, at most the client's `concurrency`): ~250 at 50 ms, ~1000 at 200 ms, ~24 on
 * loopback. A multi-packet share runs up to 100 lookups and puts at once, ~60 queries each; on
 * the realistic DHT of `scripts/bench_dht.ts` (reply delays 20–400 ms) a 40 KiB share published
 * in 8.7 s at 2000 replies a second and a cap of 128, 4.6 s at 2000 and no cap, 3.9 s at 5000
 * (docs/network.md).
 *
 * @module
 */

/**
 * How much later than planned a timer may run before its silence is taken for our own stall: a
 * timer that runs later than this after its time was held up by a busy event loop (or a busy
 * machine), and the replies that arrived meanwhile are still unread: after a stall Deno runs the
 * expired timers before it reads the queued datagrams. See {@link patientTimeout}.
 */
const LAG_MS = 50;

/** A timer of {@link patientTimeout}. */
export interface PatientTimer {
  /** Cancels it (idempotent). */
  clear(): void;
}

/**
 * `setTimeout(fn, ms)` for decisions made on silence ("nothing has answered for `ms`"): when the
 * timer runs more than {@link LAG_MS} late, the event loop was stalled and replies may be
 * waiting unread, so it waits once more, as long as it was late (at most `ms`), before calling
 * `fn`. Once only: on a machine so busy that every timer runs late, a silence costs at most
 * twice its wait.
 */
export function patientTimeout(fn: () => void, ms: number): PatientTimer {
  const due = performance.now() + ms;
  let handle = setTimeout(() => {
    const late = performance.now() - due;
    if (late > LAG_MS) handle = setTimeout(fn, Math.min(ms, late));
    else fn();
  }, ms);
  return { clear: () => clearTimeout(handle) };
}

/** Replies per second the client plans for (see {@link Pacer.slots}). */
const QUERY_RATE = 5000;
/** The fewest query slots (see {@link Pacer.slots}). */
const MIN_SLOTS = 24;

/** Query slots and adaptive waits of one DHT client. */
export class Pacer {
  /** Queries in flight (lookups and puts together). */
  inflight = 0;
  /** Operations waiting for a query slot (each is called again by {@link wake}). */
  readonly waiting = new Set<() => void>();
  readonly #idleMs: number;
  readonly #maxInflight: number;
  /** Recent reply times, for the adaptive idle rule. */
  #rtts: number[] = [];
  /** The idle wait and the query slots, recomputed every 8 reply times. */
  #idle = { wait: 0, stale: 0, suspect: 0, slots: 0, fresh: 0 };

  /** `idleMs`: the longest idle wait; `maxInflight`: the `concurrency` cap. */
  constructor(idleMs: number, maxInflight: number) {
    this.#idleMs = idleMs;
    this.#maxInflight = maxInflight;
  }

  /** Records the time one reply took. */
  recordRtt(ms: number): void {
    this.#rtts.push(ms);
    if (this.#rtts.length > 64) this.#rtts.shift();
    this.#idle.fresh--;
  }

  /**
   * How long a traversal may stay silent before it ends: 3 × the 90th percentile of recent
   * reply times, between 100 ms and the configured maximum. On loopback that is ~100 ms, on
   * the Internet it reaches the maximum.
   */
  idleWait(): number {
    if (this.#rtts.length < 8) return this.#idleMs;
    this.#refresh();
    return this.#idle.wait;
  }

  /**
   * How long a lookup query may go unanswered before it is stale: 2 × the 90th percentile of
   * recent reply times (the idle wait's 3 × less one), without its 100 ms floor, since a stale
   * query keeps a lookup going rather than ending it.
   */
  staleWait(): number {
    if (this.#rtts.length < 8) return this.#idleMs;
    this.#refresh();
    return this.#idle.stale;
  }

  /**
   * How long a lookup query may go unanswered before its node is suspect (lookup.ts): 1.25 ×
   * the 90th percentile of recent reply times, at least 20 ms; never more than the stale wait.
   */
  suspectWait(): number {
    if (this.#rtts.length < 8) return this.#idleMs;
    this.#refresh();
    return this.#idle.suspect;
  }

  /**
   * Queries (lookups and puts together) the client keeps in flight: `concurrency`, or less when
   * replies come back fast (see the module notes).
   */
  slots(): number {
    if (this.#rtts.length < 8) return Math.min(MIN_SLOTS, this.#maxInflight);
    this.#refresh();
    return this.#idle.slots;
  }

  /** Whether a query may be sent now. */
  slotFree(): boolean {
    return this.inflight < this.slots();
  }

  /** Wakes operations waiting for a query slot, while slots are free. */
  wake(): void {
    for (const pump of [...this.waiting]) {
      if (this.inflight >= this.slots()) return;
      this.waiting.delete(pump);
      pump();
    }
  }

  #refresh(): void {
    if (this.#idle.fresh > 0) return;
    const sorted = [...this.#rtts].sort((a, b) => a - b);
    const p50 = sorted[Math.floor(sorted.length * 0.5)];
    const p90 = sorted[Math.floor(sorted.length * 0.9)];
    this.#idle = {
      wait: Math.min(this.#idleMs, Math.max(100, 3 * p90)),
      stale: Math.min(this.#idleMs, Math.max(20, 2 * p90)),
      suspect: Math.min(this.#idleMs, Math.max(20, 1.25 * p90)),
      slots: Math.min(this.#maxInflight, Math.max(MIN_SLOTS, Math.round(QUERY_RATE * p50 / 1000))),
      fresh: 8,
    };
  }
}
