// Keep attacking: every parser that takes bytes from outside gets fast-check inputs (random,
// mutated-valid, validly signed hostile); only documented CipherpostErrors may come out.
// scripts/fuzz.ts runs the same targets with ≥ 100,000 inputs each. The inputs follow from one
// seed per run, printed on failure; CIPHERPOST_FUZZ_SEED=<seed> replays it.
import assert from "node:assert/strict";
import { allTargets } from "./fuzz/targets.ts";
import { fuzz } from "./fuzz/run.ts";
import { replayHint, testSeed, withSeed } from "./_seed.ts";

const RUNS = Number(Deno.env.get("CIPHERPOST_FUZZ_RUNS") ?? "300");
const SEED = testSeed("CIPHERPOST_FUZZ_SEED");

for (const t of allTargets()) {
  Deno.test(`fuzz ${t.name}: only documented errors (${RUNS} inputs)`, async () => {
    await withSeed("CIPHERPOST_FUZZ_SEED", SEED, async () => {
      const r = await fuzz(t, RUNS, SEED);
      assert.equal(r.inputs, RUNS);
      assert.deepEqual(
        r.findings,
        [],
        `${replayHint("CIPHERPOST_FUZZ_SEED", SEED)}: ${
          r.findings.map((f) => `${f.message} ← ${f.example}`).join("\n")
        }`,
      );
    });
  });
}
