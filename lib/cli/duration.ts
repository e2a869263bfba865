/**
 * Durations typed by people: `--ttl 30m`, `1h`, `1d`, `7d`, `90s` or a plain number of seconds.
 *
 * @module
 */

import { CipherpostError } from "../util/errors.ts";

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** The largest TTL accepted, in seconds (12 digits, as the record's `ttl_seconds` allows). */
export const MAX_TTL_SECONDS = 999_999_999_999;

/** The accepted forms, for help texts and errors. */
export const DURATION_FORMS = "seconds, or a number with s, m, h, d or w (e.g. 30m, 1h, 7d)";

/**
 * Parse a duration into whole seconds. Accepts `N` (seconds) or `N<unit>` with unit `s`, `m`,
 * `h`, `d`, `w`; whitespace around it is ignored, case is not. The result is 1 to
 * {@link MAX_TTL_SECONDS}.
 *
 * @throws CipherpostError("usage") naming `flag` and the accepted forms.
 */
export function parseDuration(text: string, flag = "--ttl"): number {
  const m = /^([0-9]{1,12})([smhdw]?)$/.exec(text.trim().toLowerCase());
  const bad = () =>
    new CipherpostError(
      "usage",
      `${flag} takes ${DURATION_FORMS}; got '${text}'`,
      flag === "--ttl"
        ? `the share must live at least 1 second and at most ${MAX_TTL_SECONDS} seconds`
        : `at least 1 second and at most ${MAX_TTL_SECONDS} seconds`,
    );
  if (!m) throw bad();
  const seconds = Number(m[1]) * UNIT_SECONDS[m[2] || "s"];
  if (seconds < 1 || seconds > MAX_TTL_SECONDS) throw bad();
  return seconds;
}

/** A duration for people: `1d 2h`, `23h 59m`, `5m`, `42s`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return h > 0 ? `${d}d ${h}h` : `${d}d`;
  if (h > 0) return m > 0 ? `${h}h ${m}m` : `${h}h`;
  if (m > 0) return `${m}m`;
  return `${s}s`;
}
