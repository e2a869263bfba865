/**
 * A bounded parser of the homeserver's event stream (Server-Sent Events, docs/PROTOCOL.md
 * §9.6): `event:` PUT or DEL, `data:` lines `pubky://<user>/<path>`, `cursor: <n>` and
 * `content_hash: <b64>`. Comments (keep-alives) are skipped. A line over 8 KiB, an event over
 * 16 KiB or an event without URI or cursor is malformed (the reader then falls back to polling).
 * Pure.
 *
 * @module
 */

import { CipherpostError } from "../util/errors.ts";

/** One homeserver event. */
export interface HomeserverEvent {
  type: "PUT" | "DEL";
  /** z32 of the user whose file changed */
  user: string;
  /** the absolute path */
  path: string;
  /** the event's cursor (decimal text) */
  cursor: string;
  /** PUT only: base64 BLAKE3 of the content */
  contentHash?: string;
}

const MAX_LINE = 8192;
const MAX_EVENT = 16384;

function bad(why: string): CipherpostError {
  return new CipherpostError("homeserver", `homeserver: malformed event stream (${why})`);
}

/** Feeds bytes, yields events as they complete. */
export class SseParser {
  #buf = "";
  #event = "";
  #data: string[] = [];
  #size = 0;
  readonly #decoder = new TextDecoder();

  /** Take `chunk`; returns the events it completed. Throws when the stream is malformed. */
  push(chunk: Uint8Array): HomeserverEvent[] {
    this.#buf += this.#decoder.decode(chunk, { stream: true });
    const out: HomeserverEvent[] = [];
    for (;;) {
      const i = this.#buf.search(/\r\n|\n|\r/);
      if (i < 0) break;
      const line = this.#buf.slice(0, i);
      this.#buf = this.#buf.slice(
        this.#buf[i] === "\r" && this.#buf[i + 1] === "\n" ? i + 2 : i + 1,
      );
      const e = this.#line(line);
      if (e) out.push(e);
    }
    if (this.#buf.length > MAX_LINE) throw bad("line too long");
    return out;
  }

  #line(line: string): HomeserverEvent | null {
    if (line.length > MAX_LINE) throw bad("line too long");
    if (line === "") return this.#dispatch();
    if (line.startsWith(":")) return null;
    this.#size += line.length;
    if (this.#size > MAX_EVENT) throw bad("event too large");
    const c = line.indexOf(":");
    const name = c < 0 ? line : line.slice(0, c);
    let value = c < 0 ? "" : line.slice(c + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "event") this.#event = value;
    else if (name === "data") this.#data.push(value);
    // id, retry and unknown fields are ignored, as the SSE rules say
    return null;
  }

  #dispatch(): HomeserverEvent | null {
    const type = this.#event, data = this.#data;
    this.#event = "";
    this.#data = [];
    this.#size = 0;
    if (type === "" && data.length === 0) return null;
    if (type !== "PUT" && type !== "DEL") throw bad("unknown event type");
    const m = /^pubky:\/\/([ybndrfg8ejkmcpqxot1uwisza345h769]{52})(\/.*)$/.exec(data[0] ?? "");
    if (!m) throw bad("no pubky URI");
    let cursor: string | undefined;
    let contentHash: string | undefined;
    for (const d of data.slice(1)) {
      if (d.startsWith("cursor: ")) cursor = d.slice(8);
      else if (d.startsWith("content_hash: ")) contentHash = d.slice(14);
    }
    if (cursor === undefined || !/^[0-9]{1,20}$/.test(cursor)) throw bad("no cursor");
    return { type, user: m[1], path: m[2], cursor, contentHash };
  }
}
