/**
 * Numbers and dates as people read them on a terminal: byte sizes, the minute of a Unix time
 * in UTC and local time, and the time a share has left. The one place these are formatted; the
 * acceptance screens, listings and progress bars all use them.
 *
 * @module
 */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/**
 * Bytes in binary units: `123 B` below 1 KiB, else one decimal in the largest unit that keeps
 * the number at least 1 (`4.5 KiB`, `1.2 MiB`, `3.0 GiB`; TiB is the largest unit).
 *
 * @example
 * ```ts
 * formatBytes(1536); // "1.5 KiB"
 * ```
 */
export function formatBytes(n: number): string {
  let i = 0;
  let x = n;
  while (x >= 1024 && i < UNITS.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${x.toFixed(1)} ${UNITS[i]}`;
}

const pad2 = (n: number) => String(n).padStart(2, "0");

/** `YYYY-MM-DD HH:MM UTC` of Unix seconds. */
export function utcMinute(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${
    pad2(d.getUTCHours())
  }:${pad2(d.getUTCMinutes())} UTC`;
}

/** `YYYY-MM-DD HH:MM local` of Unix seconds (the time zone of this process). */
export function localMinute(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${
    pad2(d.getMinutes())
  } local`;
}

/**
 * What an acceptance screen's TTL line says after `TTL:`: the hours and minutes left until
 * `expiresAt` (Unix seconds; none left shows `0h 00m`) and that moment in UTC and local time,
 * e.g. `23h 59m remaining (expires 2026-01-02 10:00 UTC / 2026-01-02 11:00 local)`.
 */
export function ttlRemaining(expiresAt: number, now: Date): string {
  const left = Math.max(0, expiresAt - Math.floor(now.getTime() / 1000));
  return `${Math.floor(left / 3600)}h ${pad2(Math.floor((left % 3600) / 60))}m remaining (expires ${
    utcMinute(expiresAt)
  } / ${localMinute(expiresAt)})`;
}

/**
 * At most `limit` characters (code points) of `s`; longer text becomes its first `limit - 1`
 * characters and `…`.
 */
export function truncate(s: string, limit: number): string {
  const chars = Array.from(s);
  return chars.length <= limit ? s : chars.slice(0, limit - 1).join("") + "…";
}
