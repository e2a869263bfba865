/**
 * Large test payloads: files of seeded xorshift32 bytes, written in 1 MiB blocks (constant
 * memory), and the BLAKE3 of a file, for the large-share tests and benchmarks.
 *
 * @module
 */

import { createBLAKE3 } from "hash-wasm";

const MiB = 1 << 20;

/** Write `size` bytes from a PRNG seeded with `seed` to `path`; returns their BLAKE3 (hex). */
export async function writePrngFile(path: string, size: number, seed: number): Promise<string> {
  const h = await createBLAKE3();
  h.init();
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    let x = seed >>> 0 || 1;
    const buf = new Uint32Array(MiB / 4);
    for (let left = size; left > 0;) {
      for (let i = 0; i < buf.length; i++) {
        x ^= x << 13;
        x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5;
        x >>>= 0;
        buf[i] = x;
      }
      const bytes = new Uint8Array(buf.buffer, 0, Math.min(MiB, left));
      h.update(bytes);
      let off = 0;
      while (off < bytes.length) off += f.writeSync(bytes.subarray(off));
      left -= bytes.length;
    }
  } finally {
    f.close();
  }
  return h.digest("hex");
}

/** BLAKE3 (hex) of a file, streamed. */
export async function blake3File(path: string): Promise<string> {
  const h = await createBLAKE3();
  h.init();
  const f = await Deno.open(path);
  for await (const c of f.readable) h.update(c);
  return h.digest("hex");
}
