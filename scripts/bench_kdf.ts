/**
 * Identity unlock cost: Argon2id (64 MiB, t=3, p=1) through our code path
 * (`lib/state/identity.ts` decodeIdentityFile on a file made by encodeIdentityFile: parse, Argon2id,
 * HKDF, age decrypt) next to a raw `hash-wasm` argon2id call with the same parameters, in the
 * same process. Runs are interleaved (one of each per round, after one warm-up of each) so that
 * load changes on the machine hit both columns alike. Prints every sample, the medians and the
 * overhead ratio.
 *
 * Run: `deno run -P=cipherpost scripts/bench_kdf.ts [N]` (N rounds, default 5).
 *
 * @module
 */

import { argon2id } from "hash-wasm";
import { decodeIdentityFile, encodeIdentityFile } from "../lib/state/identity.ts";
import { DEFAULT_ARGON2 } from "../lib/crypto/kdf.ts";

const N = Number(Deno.args[0] ?? 5);
if (!Number.isInteger(N) || N < 1) throw new Error("usage: bench_kdf.ts [rounds ≥ 1]");

const PASS = "correct horse battery staple";
const seed = crypto.getRandomValues(new Uint8Array(32));
const salt = crypto.getRandomValues(new Uint8Array(16));
const password = new TextEncoder().encode(PASS);

/** One unlock through lib/state/identity.ts. */
async function ours(file: Uint8Array): Promise<void> {
  const kp = await decodeIdentityFile(file, PASS);
  if (kp.seed.length !== 32) throw new Error("unexpected seed");
}

/** One bare Argon2id call with the same parameters. */
async function raw(): Promise<void> {
  const out = await argon2id({
    password,
    salt,
    parallelism: DEFAULT_ARGON2.p,
    iterations: DEFAULT_ARGON2.t,
    memorySize: DEFAULT_ARGON2.m,
    hashLength: 32,
    outputType: "binary",
  });
  if (out.length !== 32) throw new Error("unexpected hash length");
}

async function time(f: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

const tEncode = performance.now();
const file = await encodeIdentityFile(seed, PASS);
const encodeMs = performance.now() - tEncode;

// warm-up: wasm compilation and the first 64 MiB allocation are not part of an unlock's steady
// state, but a real CLI run pays them once: report them separately
const warmOurs = await time(() => ours(file));
const warmRaw = await time(raw);

const oursMs: number[] = [];
const rawMs: number[] = [];
for (let i = 0; i < N; i++) {
  oursMs.push(await time(() => ours(file)));
  rawMs.push(await time(raw));
}

const mo = median(oursMs), mr = median(rawMs);
console.log(
  `Argon2id m=${DEFAULT_ARGON2.m} KiB (64 MiB), t=${DEFAULT_ARGON2.t}, p=${DEFAULT_ARGON2.p}; ` +
    `N=${N} interleaved rounds; deno ${Deno.version.deno}, ${Deno.build.target}`,
);
console.log(`encodeIdentityFile (first call, incl. wasm init): ${fmt(encodeMs)}`);
console.log(`warm-up: ours ${fmt(warmOurs)}, raw ${fmt(warmRaw)}`);
console.log(`ours  decodeIdentityFile: ${oursMs.map(fmt).join(", ")}  → median ${fmt(mo)}`);
console.log(`raw   hash-wasm argon2id: ${rawMs.map(fmt).join(", ")}  → median ${fmt(mr)}`);
console.log(`overhead ratio (median ours / median raw): ${(mo / mr).toFixed(3)}`);
console.log(`overhead (median ours − median raw): ${fmt(mo - mr)}`);
