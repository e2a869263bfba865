/**
 * The progress bar of the CLI, on a terminal's stderr: `label [#####-----] 12/91 ETA 5s` for
 * counts (packets), `label [#####-----] 50% 2.5 MiB/5.0 MiB 1.2 MiB/s ETA 2s` for bytes (the
 * parts of a large share). Callers report `(done, total)`. Silent when stderr is not a terminal
 * (pipes and logs get the plain status lines the commands print anyway).
 *
 * @module
 */

import { formatBytes } from "../util/human.ts";

/** A running progress display. */
export interface Progress {
  /** Report that `done` of `total` units are complete (`done === total` finishes the bar). */
  update(done: number, total: number): void;
  /** Finish: the last drawn state stays on its own line (call once, on success or failure). */
  end(): void;
  /**
   * Erase an unfinished bar so that a log line can take its place (the next {@link update}
   * draws it again, below that line).
   */
  clear(): void;
}

/** Where and how to draw; everything has a default suitable for the CLI. */
export interface ProgressOptions {
  /** draw at all (default: stderr is a terminal) */
  enabled?: boolean;
  /** write raw text (default: stderr) */
  write?: (text: string) => void;
  /** milliseconds clock (default: performance.now) */
  now?: () => number;
  /** minimum milliseconds between redraws, except the final one (default 100) */
  intervalMs?: number;
  /** bar width in characters (default 24) */
  width?: number;
  /** the units are bytes: show a percentage, sizes and the rate (default: a count) */
  bytes?: boolean;
}

/** How {@link formatProgress} draws: bar width (default 24) and whether the units are bytes. */
export type ProgressFormat = Pick<ProgressOptions, "width" | "bytes">;

/** Seconds as `5s`, `1m05s`, `2h03m`. */
export function formatEta(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/**
 * One line of progress. The ETA is extrapolated from the average rate so far, omitted until
 * something is done and once everything is. In bytes, the rate is the average so far (at the
 * end: of the whole run).
 */
export function formatProgress(
  label: string,
  done: number,
  total: number,
  elapsedMs: number,
  f: ProgressFormat = {},
): string {
  const width = f.width ?? 24;
  const frac = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
  const full = Math.round(frac * width);
  const bar = "#".repeat(full) + "-".repeat(width - full);
  let eta = "";
  if (done > 0 && done < total) {
    eta = ` ETA ${formatEta((elapsedMs / 1000) * (total - done) / done)}`;
  }
  if (!f.bytes) return `${label} [${bar}] ${done}/${total}${eta}`;
  const rate = elapsedMs > 0 ? Math.round(done / (elapsedMs / 1000)) : 0;
  return `${label} [${bar}] ${Math.floor(frac * 100)}% ${formatBytes(done)}/${formatBytes(total)} ${
    formatBytes(rate)
  }/s${eta}`;
}

/** Start a progress display for `label`. */
export function startProgress(label: string, o: ProgressOptions = {}): Progress {
  let enabled = o.enabled;
  if (enabled === undefined) {
    try {
      enabled = Deno.stderr.isTerminal();
    } catch {
      enabled = false;
    }
  }
  if (!enabled) return { update() {}, end() {}, clear() {} };
  const enc = new TextEncoder();
  const write = o.write ?? ((t: string) => {
    Deno.stderr.writeSync(enc.encode(t));
  });
  const now = o.now ?? (() => performance.now());
  const interval = o.intervalMs ?? 100;
  const start = now();
  let last = -Infinity;
  let drawn = false;
  let ended = false;
  return {
    update(done, total) {
      if (ended) return;
      const t = now();
      const finished = done >= total;
      if (!finished && t - last < interval) return;
      last = t;
      drawn = true;
      const line = formatProgress(label, done, total, t - start, o);
      // the finished bar stays, on its own line, so what follows starts cleanly
      write(`\r\x1b[2K${line}${finished ? "\n" : ""}`);
      if (finished) ended = true;
    },
    end() {
      if (ended) return;
      ended = true;
      if (drawn) write("\n");
    },
    clear() {
      if (ended || !drawn) return;
      write("\r\x1b[2K");
      drawn = false;
      last = -Infinity;
    },
  };
}
