/**
 * CLI side of large shares (docs/PROTOCOL.md §5): deciding when a `send` goes through the
 * homeserver, running the large send, wiring the large receive, and the progress bar (stderr,
 * only when it is a terminal).
 *
 * @module
 */

import { MATERIAL_CAP } from "../material/material.ts";
import { MAX_PART_SIZE, MIN_PART_SIZE } from "../protocol/large_manifest.ts";
import { CipherpostError, configError } from "../util/errors.ts";
import { concat } from "../util/encoding.ts";
import { formatBytes } from "../util/human.ts";
import type { GcReport } from "../flows/large/gc.ts";
import { type Progress, startProgress } from "./progress.ts";
import type { LargeSource } from "../flows/large/send.ts";
import type { FlowUi } from "../flows/share/ui.ts";

/** What `send` should do with its input. */
export type InputPlan =
  | { kind: "small"; bytes?: Uint8Array }
  | { kind: "large"; source: LargeSource };

function prefixed(prefix: Uint8Array, rest: ReadableStreamDefaultReader<Uint8Array>) {
  let first = true;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      if (first) {
        first = false;
        if (prefix.length) return c.enqueue(prefix);
      }
      const r = await rest.read();
      if (r.done) c.close();
      else c.enqueue(r.value);
    },
    cancel: (why) => rest.cancel(why),
  });
}

/**
 * Decide between a DHT share and a large share: a directory, a file over the 64 KiB material
 * cap, standard input over the cap, or anything with `--via homeserver` is large.
 */
export async function planInput(
  file: string | undefined,
  positional: string | undefined,
  via: string | undefined,
  material: string,
): Promise<InputPlan> {
  if (via !== undefined && via !== "dht" && via !== "homeserver") {
    throw new CipherpostError("usage", "--via takes dht or homeserver");
  }
  if (positional !== undefined && positional !== "-") return { kind: "small" };
  // typed material (a key or certificate) has its own caps and never goes large by itself
  if (material !== "generic-secret" && via !== "homeserver") return { kind: "small" };
  if (file !== undefined && positional !== undefined) return { kind: "small" };
  const src = file ?? positional;
  if (src === undefined) return { kind: "small" };
  const forced = via === "homeserver";
  const checkMaterial = () => {
    if (material !== "generic-secret") {
      throw configError(
        "large shares carry generic-secret material only",
        "drop --material, or send a typed key or certificate (≤ 64 KiB) over the DHT",
      );
    }
  };
  if (src === "-") {
    const reader = Deno.stdin.readable.getReader();
    const chunks: Uint8Array[] = [];
    let n = 0;
    while (n <= MATERIAL_CAP) {
      const r = await reader.read();
      if (r.done) break;
      chunks.push(r.value);
      n += r.value.length;
    }
    const head = concat(...chunks);
    if (n <= MATERIAL_CAP && !forced) {
      reader.releaseLock();
      return { kind: "small", bytes: head };
    }
    if (via === "dht") {
      throw new CipherpostError(
        "too_large",
        `input exceeds the ${MATERIAL_CAP}-byte DHT material cap`,
      );
    }
    checkMaterial();
    return { kind: "large", source: { kind: "stream", stream: prefixed(head, reader) } };
  }
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(src);
  } catch {
    throw new CipherpostError("io", `io error: cannot read ${src}`);
  }
  const large = st.isDirectory || (st.isFile && st.size > MATERIAL_CAP) || forced;
  if (!large) return { kind: "small" };
  if (via === "dht") {
    throw new CipherpostError(
      "too_large",
      st.isDirectory
        ? "a directory cannot be sent over the DHT"
        : `${src} exceeds the ${MATERIAL_CAP}-byte DHT material cap`,
      "drop --via dht: large payloads go to your homeserver",
    );
  }
  checkMaterial();
  return { kind: "large", source: { kind: "path", path: src } };
}

/** Options of {@link cliUi}. */
export interface CliUiOptions {
  /** the acceptance step (see `acceptanceConfirm`) */
  confirm?: FlowUi["confirm"];
  /** the bar that shows DHT packet fetches ("fetch" progress) */
  fetchBar?: { update(done: number, total: number): void; end(): void };
}

/**
 * The CLI's UI port: status lines and notes on stderr, and, when stderr is a terminal, a
 * progress bar with rate and ETA for homeserver transfers (a status line clears it first).
 * `end()` finishes a bar still drawn.
 */
export function cliUi(
  log: (l: string) => void,
  o: CliUiOptions = {},
): FlowUi & { end(): void; uploaded(): { done: number; total: number } | null } {
  const confirm = o.confirm;
  let bar: Progress | null = null;
  let barPhase = "";
  let upload: { done: number; total: number } | null = null;
  const clear = () => {
    o.fetchBar?.end();
    bar?.clear();
  };
  return {
    status(line) {
      clear();
      log(line);
    },
    note(text) {
      clear();
      log(`note: ${text}`);
    },
    confirm: confirm
      ? (s) => {
        clear();
        return confirm(s);
      }
      : undefined,
    progress(phase, done, total) {
      if (phase === "fetch") return o.fetchBar?.update(done, total);
      if (phase === "upload") upload = { done, total };
      if (bar === null || barPhase !== phase) {
        bar?.end();
        bar = startProgress(phase, { bytes: true, intervalMs: 200 });
        barPhase = phase;
      }
      bar.update(done, total);
    },
    end() {
      o.fetchBar?.end();
      bar?.end();
    },
    uploaded: () => upload,
  };
}

/**
 * While a large send runs: Ctrl-C (SIGINT) ends it with one line saying how far the upload got
 * and that running the same command again resumes it (the resume record and the kept
 * ciphertext survive any stop), and exit 130. Returns the function that removes the handler.
 */
export function interruptibleSend(
  ui: ReturnType<typeof cliUi>,
  log: (l: string) => void,
  exit: (code: number) => never,
  code: number,
): () => void {
  const onSigint = () => {
    ui.end();
    const u = ui.uploaded();
    const done = u
      ? `${formatBytes(u.done)} of ${formatBytes(u.total)} uploaded`
      : "no part uploaded yet";
    log(`interrupted (${done}): run the same command again to resume`);
    exit(code);
  };
  Deno.addSignalListener("SIGINT", onSigint);
  return () => Deno.removeSignalListener("SIGINT", onSigint);
}

/**
 * Part workers per side: `CIPHERPOST_PART_WORKERS`, default 0 = the parts run as concurrent
 * streams on the main thread (3 in flight sending, 2 receiving). Measured on the 2-core box this
 * was built on (docs/development.md, Benchmarks), that was as fast or faster than 1 or 2 Web Workers and the
 * only setting that kept both sides under 200 MiB of peak RSS; workers pay ~25 MiB and a module
 * load each, and win only when a core is idle.
 */
export function partWorkers(): number {
  const v = Deno.env.get("CIPHERPOST_PART_WORKERS");
  return v !== undefined && /^[0-9]{1,2}$/.test(v) ? Number(v) : 0;
}

/** Plaintext part size override in bytes: `CIPHERPOST_PART_SIZE` (1 MiB to 63 MiB), else none. */
export function partSizeOverride(): number | undefined {
  const v = Deno.env.get("CIPHERPOST_PART_SIZE");
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < MIN_PART_SIZE || n > MAX_PART_SIZE) {
    throw new CipherpostError(
      "usage",
      `CIPHERPOST_PART_SIZE must be ${MIN_PART_SIZE}..${MAX_PART_SIZE}`,
    );
  }
  return n;
}

/**
 * Whether large sends publish a streaming pointer (§5.7, the default) or, with
 * `CIPHERPOST_LARGE_POINTER=1`, a version-1 pointer once every part is sealed (for receivers
 * that predate streaming pointers).
 */
export function streamingPointers(): boolean {
  return Deno.env.get("CIPHERPOST_LARGE_POINTER") !== "1";
}

/** The one-line summary of a gc run (stdout). */
export function gcSummary(r: GcReport): string {
  const unknown = r.unknown > 0
    ? `; ${r.unknown} of them not sent from this home (--delete-unknown deletes those)`
    : "";
  return `deleted ${r.deletedFolders} blob(s) (${r.deletedFiles} files); kept ${r.kept}${unknown}`;
}
