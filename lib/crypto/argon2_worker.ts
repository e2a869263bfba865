/**
 * Web Worker that runs one Argon2id (`kdf.ts`): the 64 MiB of WebAssembly memory it needs is
 * released when the worker is terminated, instead of staying in the process for its lifetime.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { argon2id } from "hash-wasm";

/** What `kdf.ts` posts. */
export interface Argon2Job {
  password: Uint8Array;
  salt: Uint8Array;
  m: number;
  t: number;
  p: number;
}

self.onmessage = async (e: MessageEvent<Argon2Job>) => {
  const j = e.data;
  try {
    const out = await argon2id({
      password: j.password,
      salt: j.salt,
      parallelism: j.p,
      iterations: j.t,
      memorySize: j.m,
      hashLength: 32,
      outputType: "binary",
    });
    self.postMessage({ ok: out });
  } catch (err) {
    self.postMessage({ error: (err as Error).message });
  }
};
