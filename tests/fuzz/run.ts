/**
 * Drive the fuzz targets: `n` inputs per target, every finding collected (deduplicated by its
 * message, with the first input that produced it).
 *
 * @module
 */

import fc from "fast-check";
import { check, type Target } from "./targets.ts";

/** The outcome of fuzzing one target. */
export interface FuzzReport {
  target: string;
  inputs: number;
  findings: Array<{ message: string; count: number; example: string }>;
}

function show(input: unknown): string {
  if (input instanceof Uint8Array) {
    return `bytes(${input.length}) ${
      Array.from(input.subarray(0, 96), (b) => b.toString(16).padStart(2, "0")).join("")
    }${input.length > 96 ? "…" : ""}`;
  }
  const s = JSON.stringify(input) ?? String(input);
  return s.length > 300 ? `${s.slice(0, 300)}…` : s;
}

/** Feed `n` inputs to `t` (seeded, so a run reproduces). Never throws on a finding. */
export async function fuzz(t: Target<never>, n: number, seed: number): Promise<FuzzReport> {
  const findings = new Map<string, { count: number; example: string }>();
  let inputs = 0;
  await fc.assert(
    fc.asyncProperty(t.arbitrary as fc.Arbitrary<never>, async (input) => {
      inputs++;
      const f = await check(t, input);
      if (f !== null) {
        const hit = findings.get(f);
        if (hit) hit.count++;
        else findings.set(f, { count: 1, example: show(input) });
      }
      return true;
    }),
    { numRuns: n, seed },
  );
  return {
    target: t.name,
    inputs,
    findings: [...findings].map(([message, v]) => ({ message, ...v })),
  };
}
