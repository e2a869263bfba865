// Seeds of the randomised tests: a fresh random seed on every run, or the one named in an
// environment variable to replay a failure (CIPHERPOST_LOSS_SEED: the testnet's lost queries;
// CIPHERPOST_FUZZ_SEED: the fuzz inputs; CIPHERPOST_SAMPLE_SEED: the receipt bytes the CLI test
// changes; CIPHERPOST_CRASH_SEED: the kill moments). On failure a test prints its seed and the
// variable that replays it.
import { MAX_SEED, randomSeed } from "../lib/testing/testnet.ts";

export { seededRandom } from "../lib/testing/testnet.ts";

/** The seed in `$envName` when set, else a fresh random one (0 to 2^31 - 1). */
export function testSeed(envName: string): number {
  const v = Deno.env.get(envName);
  if (v === undefined || v === "") return randomSeed();
  if (!/^\d{1,10}$/.test(v) || Number(v) > MAX_SEED) {
    throw new Error(`${envName}: expected an integer 0 to ${MAX_SEED}, got ${JSON.stringify(v)}`);
  }
  return Number(v);
}

/** How to replay a run with `seed`, e.g. `CIPHERPOST_LOSS_SEED=1234`. */
export function replayHint(envName: string, seed: number): string {
  return `seed ${seed} (replay: ${envName}=${seed})`;
}

/** Run `f`; when it throws, print the seed and how to replay it, then rethrow. */
export async function withSeed<T>(
  envName: string,
  seed: number,
  f: () => T | Promise<T>,
): Promise<T> {
  try {
    return await f();
  } catch (e) {
    console.error(`failed with ${replayHint(envName, seed)}`);
    throw e;
  }
}
