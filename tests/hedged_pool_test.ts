// The hedged pool (lib/util/hedged_pool.ts): a straggler is called once more when most items
// are done, the first success settles it, and a failing hedge leaves the original to finish.
import assert from "node:assert/strict";
import { hedgedPool } from "../lib/util/hedged_pool.ts";

/** A promise with its resolver, to hold a call open until the test lets it go. */
function held<T>() {
  let resolve!: (v: T) => void;
  const p = new Promise<T>((r) => (resolve = r));
  return { p, resolve };
}

Deno.test("hedged pool: a straggler is hedged once, settled by the hedge, and told to stop", async () => {
  const calls = new Map<number, number>();
  const stuck = held<boolean>();
  let stuckSignal: AbortSignal | null = null;
  const items = Array.from({ length: 10 }, (_, i) => i);
  await hedgedPool(items, 4, (i, signal) => {
    const n = (calls.get(i) ?? 0) + 1;
    calls.set(i, n);
    // item 7's first call hangs until the end of the test; its hedge succeeds
    if (i === 7 && n === 1) {
      stuckSignal = signal;
      return stuck.p;
    }
    return Promise.resolve(true);
  }, { after: 0.8, factor: 1, minMs: 0, tickMs: 10 });
  assert.equal((stuckSignal as AbortSignal | null)?.aborted, true, "the losing call is aborted");
  stuck.resolve(false);
  assert.deepEqual([...calls.entries()].sort((a, b) => a[0] - b[0]), [
    [0, 1],
    [1, 1],
    [2, 1],
    [3, 1],
    [4, 1],
    [5, 1],
    [6, 1],
    [7, 2],
    [8, 1],
    [9, 1],
  ]);
});

Deno.test("hedged pool: a hedge that fails leaves the original to settle the item", async () => {
  const calls: number[] = [];
  const slow = held<boolean>();
  let settled = false;
  const run = hedgedPool([0, 1, 2, 3], 4, (i) => {
    calls.push(i);
    if (i !== 3) return Promise.resolve(true);
    // the first call of item 3 is slow; the hedge throws (counts as false)
    if (calls.filter((x) => x === 3).length === 1) return slow.p;
    return Promise.reject(new Error("hedge failed"));
  }, { after: 0.75, factor: 1, minMs: 0, tickMs: 10 }).then(() => (settled = true));
  // wait until the hedge has been made (bounded: the pool ticks every 10 ms)
  for (let n = 0; n < 500 && calls.length < 5; n++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(calls.filter((x) => x === 3).length, 2, "item 3 was hedged once");
  assert.equal(settled, false, "a failed hedge does not settle the item");
  slow.resolve(true);
  await run;
  assert.equal(settled, true);
});

Deno.test("hedged pool: nothing is hedged before enough items settle, and items that fail settle", async () => {
  const calls: number[] = [];
  await hedgedPool([0, 1], 2, (i) => {
    calls.push(i);
    // item 1 runs for many ticks past the (zero) hedge wait, but only half the items settled
    return i === 0
      ? Promise.resolve(false)
      : new Promise<boolean>((r) => setTimeout(() => r(false), 150));
  }, { after: 1, factor: 1, minMs: 0, tickMs: 10 });
  assert.deepEqual(calls.sort(), [0, 1], "each item called once");
});
