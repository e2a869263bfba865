/**
 * The write-token cache: per target, the closest responders of the last lookup with the write
 * tokens they handed out, and which node is known to hold which item. A `put` shortly after a
 * `get` of the same key goes straight to these nodes instead of looking them up again.
 *
 * @module
 */

import type { MutableItem } from "../item.ts";
import type { DhtNodeInfo } from "./routing.ts";

/** How long the closest token holders of a target are reused (tokens live 5 to 10 min). */
const TOKEN_CACHE_MS = 4 * 60 * 1000;

/** What a node is known to hold: the seq and signature of its item. */
export interface Held {
  seq: number;
  sig: Uint8Array;
}

/** The cached token holders of one target. */
export interface TokenEntry {
  /** When it was stored (Date.now()). */
  at: number;
  /** The closest responders that handed out a write token, closest first. */
  nodes: DhtNodeInfo[];
  /** `host:port` → the item that node is known to hold. */
  holders: Map<string, Held>;
}

/** Token holders by target (hex of the 20-byte target). */
export class TokenCache {
  #cache = new Map<string, TokenEntry>();

  /** The entry of `targetHex` unless it is older than the token lifetime we rely on. */
  fresh(targetHex: string): TokenEntry | undefined {
    const entry = this.#cache.get(targetHex);
    return entry && Date.now() - entry.at <= TOKEN_CACHE_MS ? entry : undefined;
  }

  /** The entry of `targetHex`, however old. */
  get(targetHex: string): TokenEntry | undefined {
    return this.#cache.get(targetHex);
  }

  /** Known holders of a target's item: the cached ones plus those of `items`. */
  holdersWith(
    targetHex: string,
    items: ReadonlyArray<{ item: MutableItem; from: string }>,
  ): Map<string, Held> {
    const holders = this.#cache.get(targetHex)?.holders ?? new Map<string, Held>();
    for (const { item, from } of items) holders.set(from, { seq: item.seq, sig: item.sig });
    return holders;
  }

  /** Stores the token holders of a target (and drops expired entries). */
  remember(targetHex: string, nodes: DhtNodeInfo[], holders: Map<string, Held>): void {
    const now = Date.now();
    for (const [key, e] of this.#cache) if (now - e.at > TOKEN_CACHE_MS) this.#cache.delete(key);
    this.#cache.set(targetHex, { at: now, nodes, holders });
  }

  /** Forgets the entry of `targetHex`. */
  delete(targetHex: string): void {
    this.#cache.delete(targetHex);
  }

  /** Forgets everything. */
  clear(): void {
    this.#cache.clear();
  }
}
