/**
 * The cutting rule of Claude sync (docs/PROTOCOL.md §8.2): fixed 1 MiB blocks, plus a tail rule
 * so that an append uploads only what was appended. Streams: at most one block is buffered.
 *
 * @module
 */

import type { Hmac } from "node:crypto";
import type { SyncKeys } from "./keys.ts";

/** The block size `C`. */
export const BLOCK = 1 << 20;

/** A chunk of a file: its id and plaintext length. */
export type ChunkRef = [id: string, len: number];

/** One chunk as cut. */
export interface Cut {
  id: string;
  len: number;
  /** the plaintext (for a reused chunk too: the caller may need it when the server lacks it) */
  data: Uint8Array;
  /** the chunk was in `base` at the same offset */
  reused: boolean;
}

/** Reads a stream in exact amounts, buffering at most what was asked plus one read. */
class Reader {
  #r: ReadableStreamDefaultReader<Uint8Array>;
  #parts: Uint8Array[] = [];
  #len = 0;
  #done = false;
  /** bytes read from the stream so far */
  total = 0;

  constructor(s: ReadableStream<Uint8Array>) {
    this.#r = s.getReader();
  }

  /** Buffer at least `n` bytes (fewer only at the end); returns how many are buffered. */
  async fill(n: number): Promise<number> {
    while (this.#len < n && !this.#done) {
      const { value, done } = await this.#r.read();
      if (done) this.#done = true;
      else if (value.length) {
        this.#parts.push(value);
        this.#len += value.length;
        this.total += value.length;
      }
    }
    return Math.min(this.#len, n);
  }

  /** The next `n` buffered bytes, without consuming them. */
  peek(n: number): Uint8Array {
    if (this.#parts.length && this.#parts[0].length >= n) return this.#parts[0].subarray(0, n);
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of this.#parts) {
      const take = Math.min(p.length, n - o);
      out.set(p.subarray(0, take), o);
      o += take;
      if (o === n) break;
    }
    // keep the joined bytes as one part so the next peek is free
    this.#consume(n);
    this.#parts.unshift(out);
    this.#len += n;
    return out;
  }

  #consume(n: number): void {
    let left = n;
    while (left > 0) {
      const p = this.#parts[0];
      if (p.length <= left) {
        this.#parts.shift();
        left -= p.length;
      } else {
        this.#parts[0] = p.subarray(left);
        left = 0;
      }
    }
    this.#len -= n;
  }

  /** Consume and return the next `n` bytes (a copy owned by the caller). */
  take(n: number): Uint8Array {
    const b = this.peek(n).slice();
    this.#consume(n);
    return b;
  }

  cancel(): Promise<void> {
    return this.#r.cancel().catch(() => {});
  }
}

/** What {@link cutChunks} found about the whole content. */
export interface CutSummary {
  size: number;
  /** `file_hash` (64 hex) */
  hash: string;
}

/**
 * Cut the canonical content `stream` into chunks against `base` (the chunk list of the same
 * file as last synced; empty for none), calling `onChunk` for each, in order.
 */
export async function cutChunks(
  stream: ReadableStream<Uint8Array>,
  base: readonly ChunkRef[],
  keys: SyncKeys,
  onChunk: (c: Cut) => Promise<void> | void,
): Promise<CutSummary> {
  const starts = new Map<number, ChunkRef>();
  let at = 0;
  for (const c of base) {
    starts.set(at, c);
    at += c[1];
  }
  const file: Hmac = keys.hasher("file");
  const r = new Reader(stream);
  let o = 0;
  try {
    for (;;) {
      const R = (Math.floor(o / BLOCK) + 1) * BLOCK;
      const avail = await r.fill(R - o);
      if (avail === 0) break;
      const b = starts.get(o);
      let cut: Cut | null = null;
      if (b) {
        const [bid, blen] = b;
        const full = o % BLOCK === 0 && blen === BLOCK;
        const regionComplete = avail === R - o;
        if (full || !regionComplete) {
          if (avail >= blen) {
            const data = r.peek(blen);
            if (keys.chunkId(data) === bid) cut = { id: bid, len: blen, data, reused: true };
          }
        }
      }
      if (cut === null) {
        const data = r.peek(avail);
        cut = { id: keys.chunkId(data), len: avail, data, reused: false };
      }
      const data = r.take(cut.len);
      file.update(data);
      await onChunk({ ...cut, data });
      o += cut.len;
    }
  } catch (e) {
    await r.cancel();
    throw e;
  }
  return { size: o, hash: file.digest("hex") };
}
