/**
 * The homeserver side of rooms: our own client (for writes), anonymous readers of members'
 * `/pub/` (one per member, found by discovery, cached), and bounded reads. Every request goes
 * through the homeserver client, hence the one request path (policy, no redirects, timeouts).
 *
 * @module
 */

import { connect, reader } from "../../homeserver/connect.ts";
import type { HomeserverClient } from "../../homeserver/client.ts";
import { readUpTo } from "../../homeserver/http.ts";
import { CipherpostError } from "../../util/errors.ts";
import { decodeZ32, encodeZ32 } from "../../pkarr/public_key.ts";
import type { FlowContext } from "../share/ui.ts";

/** What the room flows run against. */
export type RoomContext = FlowContext;

/** Clients of one command: ours, and readers of other members (by z32). */
export class RoomNet {
  readonly #ctx: RoomContext;
  #own: Promise<HomeserverClient> | null = null;
  readonly #readers = new Map<string, Promise<HomeserverClient>>();

  constructor(ctx: RoomContext) {
    this.#ctx = ctx;
  }

  /** z32 of our identity. */
  get me(): string {
    return encodeZ32(this.#ctx.me.publicKey);
  }

  /** Our own client (signs in at the first write). */
  own(): Promise<HomeserverClient> {
    this.#own ??= connect(this.#ctx.transport, {
      home: this.#ctx.state.home,
      user: this.#ctx.me.publicKey,
      seed: this.#ctx.me.seed,
    }).then((c) => c.client);
    return this.#own;
  }

  /** A reader of `user`'s `/pub/` (our own client for ourselves). */
  reader(user: string): Promise<HomeserverClient> {
    if (user === this.me) return this.own();
    let r = this.#readers.get(user);
    if (!r) {
      r = reader(this.#ctx.transport, decodeZ32(user));
      // a failed discovery is retried by the next call
      r.catch(() => this.#readers.delete(user));
      this.#readers.set(user, r);
    }
    return r;
  }
}

/**
 * The file at `path` on `client`, at most `cap` bytes; null when it does not exist. Larger is
 * `too_large`. `info`, when given, receives the homeserver's `Last-Modified` (null without one).
 */
export async function fetchBounded(
  client: HomeserverClient,
  path: string,
  cap: number,
  info?: { lastModified: string | null },
): Promise<Uint8Array | null> {
  let got;
  try {
    got = await client.get(path);
  } catch (e) {
    if (e instanceof CipherpostError && e.kind === "not_found") return null;
    throw e;
  }
  if (got === null) return null;
  if (info) info.lastModified = got.lastModified;
  const { bytes, more } = await readUpTo(got.body, cap);
  if (more) throw new CipherpostError("too_large", `room file over ${cap} bytes: ${path}`);
  return bytes;
}
