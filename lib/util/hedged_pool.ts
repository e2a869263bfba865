/**
 * A bounded pool that hedges its stragglers: when most items are done, an item still running
 * well past the typical time is started once more, and whichever call succeeds first settles it.
 * For work whose time has a long tail that a fresh attempt usually avoids (a DHT lookup that
 * wandered, a lost datagram), where a second attempt is harmless (idempotent).
 *
 * @module
 */

/** When to hedge (see {@link hedgedPool}). */
export interface HedgeOptions {
  /** Share of the items that must have settled before any is hedged (0..1). */
  after: number;
  /** An item is hedged once it has run this many times the median settled time… */
  factor: number;
  /** …and at least this long (ms). */
  minMs: number;
  /** How often the stragglers are checked (ms; default 100). */
  tickMs?: number;
}

/**
 * Runs `fn` over `items` with at most `limit` items in flight. `fn` returns true when the item
 * is done. Once `after` of the items have settled, an item that has run longer than `factor` ×
 * the median time of the settled ones (and at least `minMs`) is called once more, at most once;
 * the item settles when any of its calls returns true, or when all of them have returned. A call
 * that throws counts as false. When an item settles, the `signal` of a call of it still running
 * aborts: `fn` should stop then (its promise is no longer observed), and must tolerate being
 * called twice for one item.
 *
 * @returns when every item has settled
 */
export async function hedgedPool<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, signal: AbortSignal) => Promise<boolean>,
  o: HedgeOptions,
): Promise<void> {
  const times: number[] = [];
  /** Items in flight: when started, calls still out, whether hedged, how to settle. */
  interface Running {
    started: number;
    calls: number;
    hedged: boolean;
    stop: AbortController;
    settle: () => void;
  }
  const running = new Map<number, Running>();
  const call = (i: number, r: Running) => {
    r.calls++;
    fn(items[i], r.stop.signal).catch(() => false).then((good) => {
      r.calls--;
      if (good || r.calls === 0) r.settle();
    });
  };
  const check = () => {
    if (running.size === 0 || times.length < Math.ceil(items.length * o.after)) return;
    const sorted = [...times].sort((a, b) => a - b);
    const wait = Math.max(o.minMs, o.factor * sorted[Math.floor(sorted.length / 2)]);
    const now = performance.now();
    for (const [i, r] of running) {
      if (!r.hedged && now - r.started > wait) {
        r.hedged = true;
        call(i, r);
      }
    }
  };
  const runItem = (i: number) =>
    new Promise<void>((resolve) => {
      const r: Running = {
        started: performance.now(),
        calls: 0,
        hedged: false,
        stop: new AbortController(),
        settle: () => {
          if (!running.delete(i)) return;
          r.stop.abort(new Error("settled by another attempt"));
          times.push(performance.now() - r.started);
          resolve();
        },
      };
      running.set(i, r);
      call(i, r);
    });
  let next = 0;
  const worker = async () => {
    while (next < items.length) await runItem(next++);
  };
  const timer = setInterval(check, o.tickMs ?? 100);
  try {
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  } finally {
    clearInterval(timer);
  }
}
