/**
 * Work in progress in the home (`state/large/`, `state/claude/`): the resume records of large
 * sends and receives, the folders of kept ciphertext and staged copies, and sessions kept until
 * they are placed. The one place that knows where they live and how they are written (records
 * canonical JSON, 0600, atomically; folders 0700); flows never name these paths themselves.
 *
 * @module
 */

import { canonicalize, type JsonValue, parseJson } from "../util/canonical_json.ts";
import { ensurePrivateDir, writeFileAtomic } from "../util/fsutil.ts";
import type { State } from "./state.ts";

/** The kinds of work folder. */
export type WorkArea = "large" | "claude";

/** The records of one kind (`send` or `recv`), keyed by 32 hex characters. */
export type RecordKind = "send" | "recv";

const KEY = /^[0-9a-f]{32}$/;

/** The work files of a home. */
export class WorkFiles {
  readonly #state: State;

  /** The work files of `state`'s home; touches nothing on disk. */
  constructor(state: State) {
    this.#state = state;
  }

  /** The work folder `area`, made (0700) when absent. */
  async dir(area: WorkArea): Promise<string> {
    const d = `${this.#state.dir}/${area}`;
    await ensurePrivateDir(d);
    return d;
  }

  /** A subfolder of the work folder `area` (e.g. a send's kept ciphertext), made when absent. */
  async subdir(area: WorkArea, name: string): Promise<string> {
    const d = `${await this.dir(area)}/${name}`;
    await ensurePrivateDir(d);
    return d;
  }

  /** Where the record `kind`-`key` lives (it may not exist). */
  recordPath(kind: RecordKind, key: string): string {
    if (!KEY.test(key)) throw new Error("a record key is 32 hex characters");
    return `${this.#state.dir}/large/${kind}-${key}.json`;
  }

  /** The record `kind`-`key`, or null when absent or damaged. */
  async readRecord(kind: RecordKind, key: string): Promise<JsonValue | null> {
    try {
      return parseJson(await Deno.readTextFile(this.recordPath(kind, key)));
    } catch {
      return null;
    }
  }

  /** Write the record `kind`-`key` (canonical JSON, 0600, atomically). */
  async saveRecord(kind: RecordKind, key: string, value: JsonValue): Promise<void> {
    await this.dir("large");
    await writeFileAtomic(this.recordPath(kind, key), canonicalize(value), 0o600);
  }

  /** Remove the record `kind`-`key` (absent is fine). */
  async removeRecord(kind: RecordKind, key: string): Promise<void> {
    await Deno.remove(this.recordPath(kind, key)).catch(() => {});
  }

  /** Every record of `kind`: its key and its content (damaged ones are skipped). */
  async listRecords(kind: RecordKind): Promise<Array<{ key: string; value: JsonValue }>> {
    const keys: string[] = [];
    try {
      for await (const e of Deno.readDir(`${this.#state.dir}/large`)) {
        const m = new RegExp(`^${kind}-([0-9a-f]{32})\\.json$`).exec(e.name);
        if (e.isFile && m) keys.push(m[1]);
      }
    } catch { /* no folder: none */ }
    const out: Array<{ key: string; value: JsonValue }> = [];
    for (const key of keys.sort()) {
      const value = await this.readRecord(kind, key);
      if (value !== null) out.push({ key, value });
    }
    return out;
  }
}
