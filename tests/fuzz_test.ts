// Keep attacking: every parser that takes bytes from outside gets fast-check inputs (random,
// mutated-valid, validly signed hostile); only documented CipherpostErrors may come out.
// scripts/fuzz.ts runs the same targets with ≥ 100,000 inputs each.
import assert from "node:assert/strict";
import { allTargets } from "./fuzz/targets.ts";
import { fuzz } from "./fuzz/run.ts";

const RUNS = Number(Deno.env.get("CIPHERPOST_FUZZ_RUNS") ?? "300");

for (const t of allTargets()) {
  Deno.test(`fuzz ${t.name}: only documented errors (${RUNS} inputs)`, async () => {
    const seed = Date.now() % 2 ** 31;
    const r = await fuzz(t, RUNS, seed);
    assert.equal(r.inputs, RUNS);
    assert.deepEqual(
      r.findings,
      [],
      `seed ${seed}: ${r.findings.map((f) => `${f.message} ← ${f.example}`).join("\n")}`,
    );
  });
}
