/**
 * One sync at a time per cipherpost home (docs/PROTOCOL.md §8.5): every push and pull holds the
 * home's `sync` lock (`state/locks/sync.lock`, an exclusive `flock`) from before it reads the
 * sync state until after it saved it, so a Claude Code hook that pushes while the user pulls
 * cannot interleave their reads and writes of `sync/state.json` or of the config folder. A
 * second run waits a little for the first, then gives up without touching anything.
 *
 * @module
 */

import { State } from "../state/state.ts";
import { CipherpostError } from "../util/errors.ts";

/** How long a second sync waits for the first by default. */
export const SYNC_LOCK_WAIT_MS = 10_000;

/** How often the lock is tried while waiting. */
const POLL_MS = 100;

/**
 * Run `f` holding this home's sync lock. When another process (or another call in this one)
 * holds it, wait up to `waitMs` (default {@link SYNC_LOCK_WAIT_MS}) for it.
 * @throws CipherpostError `config` "another sync is running from this home" when the lock is
 *   still held after the wait (nothing was read or written)
 */
export async function withSyncLock<T>(
  home: string,
  f: () => Promise<T>,
  o: { waitMs?: number } = {},
): Promise<T> {
  const state = new State(home);
  const until = Date.now() + (o.waitMs ?? SYNC_LOCK_WAIT_MS);
  let release = await state.tryLock("sync");
  while (!release) {
    if (Date.now() >= until) {
      throw new CipherpostError(
        "config",
        "configuration error: another sync is running from this home; nothing was done",
        "run it again when the other one has finished",
      );
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
    release = await state.tryLock("sync");
  }
  try {
    return await f();
  } finally {
    release();
  }
}
