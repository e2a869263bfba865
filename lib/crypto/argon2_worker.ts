/**
 * Web Worker that runs one Argon2id (`kdf.ts`): the 64 MiB of WebAssembly memory it needs is
 * released when the worker is terminated, instead of staying in the process for its lifetime.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { argon2Here, type Argon2Params } from "./kdf.ts";

/** What `kdf.ts` posts. */
export interface Argon2Job {
  password: Uint8Array;
  salt: Uint8Array;
  params: Argon2Params;
}

self.onmessage = async (e: MessageEvent<Argon2Job>) => {
  const j = e.data;
  try {
    const out = await argon2Here(j.password, j.salt, j.params);
    self.postMessage({ ok: out });
  } catch (err) {
    self.postMessage({ error: (err as Error).message });
  }
};
