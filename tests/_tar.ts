// Hand-made tar pieces for refusal tests: headers the codec's writer refuses to produce.
import { encodeTarHeader } from "../lib/material/tar.ts";

/** Recompute the checksum of a 512-byte ustar header in place. */
export function fixChecksum(h: Uint8Array): Uint8Array {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i];
  h.set(new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return h;
}

/**
 * A ustar header with any name bytes (≤ 100), size and type flag, checksum right: for paths
 * and types the writer refuses.
 */
export function rawHeader(name: string | Uint8Array, size: number, flag = "0"): Uint8Array {
  const h = encodeTarHeader({ path: "x", type: "file", mode: 0o600, size, mtime: 0 }, {
    ustarOnly: true,
  });
  const b = typeof name === "string" ? new TextEncoder().encode(name) : name;
  h.fill(0, 0, 100);
  h.set(b.subarray(0, 100), 0);
  h[156] = flag.charCodeAt(0);
  return fixChecksum(h);
}

/** `b` as a stream of `chunk`-byte pieces (parsers must not care where chunks end). */
export function streamOf(b: Uint8Array, chunk = 1000): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= b.length) return c.close();
      c.enqueue(b.slice(off, off + chunk));
      off += chunk;
    },
  });
}
