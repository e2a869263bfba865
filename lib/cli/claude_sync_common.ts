/**
 * What the `claude sync …` commands share: the machine's sync environment, the `--json` form of
 * the counters, hook mode, and escaping of what came from the homeserver.
 *
 * @module
 */

import { escapeControl } from "../util/encoding.ts";
import type { SyncCounters, SyncEnv } from "../flows/sync/common.ts";
import { appendHookLog } from "../sync/state.ts";
import { CipherpostError } from "../util/errors.ts";
import { configDir } from "./claude_common.ts";
import { configuredEnv } from "./claude_sync_config.ts";
import { describeError, exitCodeOf } from "./exit_codes.ts";
import { cipherpostHome } from "./home.ts";

/** The device's label: `CIPHERPOST_DEVICE_LABEL`, else the host name (≤ 64, no controls). */
function label(): string {
  let l = Deno.env.get("CIPHERPOST_DEVICE_LABEL") ?? "";
  if (!l) {
    try {
      l = Deno.readTextFileSync("/etc/hostname").trim();
    } catch { /* none */ }
  }
  // deno-lint-ignore no-control-regex
  l = l.replace(/[\u0000-\u001f\u007f]/g, "").slice(0, 64);
  return l || "device";
}

/** This machine's sync environment: Claude Code's config folder, `$HOME`, the label. */
export function syncEnv(): SyncEnv {
  return configuredEnv({
    configDir: configDir(),
    homeDir: Deno.env.get("HOME") || undefined,
    label: label(),
  });
}

/** The counters as `--json` prints them. */
export function countersJson(c: SyncCounters) {
  return {
    files: c.files,
    stat_hits: c.statHits,
    files_read: c.filesRead,
    bytes_read: c.bytesRead,
    chunks_uploaded: c.chunksUploaded,
    pages_uploaded: c.pagesUploaded,
    bytes_uploaded: c.bytesUploaded,
    chunks_downloaded: c.chunksDownloaded,
    bytes_downloaded: c.bytesDownloaded,
  };
}

/** Text for a terminal: control characters escaped (paths, labels from other machines). */
export function shown(s: string): string {
  return escapeControl(s, { backslash: true });
}

/**
 * Run a sync as a Claude Code hook: print nothing, never fail (a hook's error would show in
 * Claude Code or block it); a failure goes to `sync/hook.log`, which `sync status` shows.
 */
export async function asHook(
  what: string,
  o: { passphraseFile?: string; passphraseFd?: number },
  f: () => Promise<unknown>,
): Promise<void> {
  try {
    // a hook must never wait at a prompt on Claude Code's terminal
    if (
      o.passphraseFile === undefined && o.passphraseFd === undefined &&
      !Deno.env.get("CIPHERPOST_PASSPHRASE")
    ) {
      throw new CipherpostError(
        "config",
        "configuration error: a hook cannot ask for the passphrase",
        "cipherpost claude sync auto enable --passphrase-file PATH",
      );
    }
    await f();
  } catch (e) {
    const line = `${new Date().toISOString()} ${what} failed (exit ${exitCodeOf(e)}): ${
      describeError(e).join(" ")
    }`;
    await appendHookLog(cipherpostHome(), line).catch(() => {});
  }
}
