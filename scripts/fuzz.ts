/**
 * Long fuzz run: `deno run -P=cipherpost --no-prompt scripts/fuzz.ts [inputs-per-target] [seed]
 * [target…]` (default 100,000 inputs; the seed defaults to `$CIPHERPOST_FUZZ_SEED`, else a random
 * one). Prints the seed, then, per target, the number of inputs and every finding (an error that
 * is not a documented CipherpostError, or a broken property); exits 1 if any.
 *
 * @module
 */

import { allTargets } from "../tests/fuzz/targets.ts";
import { fuzz } from "../tests/fuzz/run.ts";
import { replayHint, testSeed } from "../tests/_seed.ts";

const n = Number(Deno.args[0] ?? "100000");
const seed = Deno.args[1] === undefined ? testSeed("CIPHERPOST_FUZZ_SEED") : Number(Deno.args[1]);
const only = Deno.args.slice(2);
if (!Number.isSafeInteger(n) || n < 1 || !Number.isSafeInteger(seed)) {
  console.error("usage: scripts/fuzz.ts [inputs-per-target] [seed] [target…]");
  Deno.exit(2);
}

let failures = 0;
console.log(`seed ${seed}`);
for (const t of allTargets()) {
  if (only.length > 0 && !only.includes(t.name)) continue;
  const start = performance.now();
  const r = await fuzz(t, n, seed);
  const s = ((performance.now() - start) / 1000).toFixed(1);
  console.log(
    `${r.target.padEnd(14)} ${r.inputs} inputs, ${r.findings.length} finding(s) (${s} s)`,
  );
  for (const f of r.findings) {
    failures++;
    console.log(`  FAIL ×${f.count}: ${f.message}\n    e.g. ${f.example}`);
  }
}
console.log(
  failures === 0
    ? "no findings"
    : `${failures} finding(s), ${replayHint("CIPHERPOST_FUZZ_SEED", seed)}`,
);
Deno.exit(failures === 0 ? 0 : 1);
