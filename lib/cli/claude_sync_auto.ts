/**
 * `claude sync auto enable|disable|status`: Claude Code's SessionStart → pull and Stop → push
 * hooks, added to its settings and removed exactly.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import {
  addAutoHooks,
  AUTO_EVENTS,
  type AutoEvent,
  type AutoRecord,
  autoState,
  removeAutoHooks,
} from "../sync/hooks.ts";
import { autoRecordPath, lastHookLog } from "../sync/state.ts";
import { CipherpostError } from "../util/errors.ts";
import { ensurePrivateDir, writeFileAtomic } from "../util/fsutil.ts";
import { configDir, passphraseFileArg } from "./claude_common.ts";
import { shown } from "./claude_sync_common.ts";
import { cipherpostHome } from "./home.ts";
import type { Io } from "./io.ts";

const settingsPath = () => `${configDir()}/settings.json`;

async function readSettings(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    throw e;
  }
  try {
    const o = JSON.parse(text);
    if (typeof o === "object" && o !== null && !Array.isArray(o)) return o;
  } catch { /* below */ }
  throw new CipherpostError(
    "config",
    `configuration error: ${path} is not a JSON object; nothing changed`,
  );
}

async function writeJson(path: string, v: unknown, mode: number): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(v, null, 2) + "\n"), mode);
}

/** Register `claude sync auto` and its `enable`, `disable` and `status`. */
export function registerSyncAuto(sync: Command, io: Io): void {
  const auto = sync.command("auto")
    .description("pull when Claude Code starts a session, push when it stops (its hooks)")
    .exitOverride();
  registerAutoEnable(auto, io);
  registerAutoDisable(auto, io);
  registerAutoStatus(auto, io);
}

function registerAutoEnable(auto: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
  auto.command("enable")
    .description("add SessionStart → sync pull and Stop → sync push to Claude Code's settings")
    .option(
      "--passphrase-file <path>",
      "make the hooks unlock your identity with this file (Claude Code has no prompt for it)",
    )
    .option("--json", "print {changed, settings} as JSON")
    .action(async (o) => {
      const arg = await passphraseFileArg(o.passphraseFile);
      const extra = arg ? ` ${arg}` : "";
      const cmds: Record<AutoEvent, string> = {
        SessionStart: `cipherpost claude sync pull --hook${extra}`,
        Stop: `cipherpost claude sync push --hook${extra}`,
      };
      const path = settingsPath();
      const r = addAutoHooks(await readSettings(path), cmds);
      if (r.changed) {
        await Deno.mkdir(configDir(), { recursive: true });
        await ensurePrivateDir(`${cipherpostHome()}/sync`);
        await writeJson(autoRecordPath(cipherpostHome()), r.record, 0o600);
        await writeJson(path, r.settings, 0o644);
      }
      if (o.json) {
        io.out(JSON.stringify({ changed: r.changed, settings: path }) + "\n");
        return;
      }
      log(r.changed ? `enabled: hooks added to ${path}` : "already enabled");
      if (!extra) {
        log(
          "the hooks need cipherpost on Claude Code's PATH and CIPHERPOST_PASSPHRASE, or --passphrase-file",
        );
      }
    });
}

function registerAutoDisable(auto: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
  auto.command("disable")
    .description("remove exactly the hooks `auto enable` added")
    .option("--json", "print {changed, settings} as JSON")
    .action(async (o) => {
      let record: AutoRecord;
      try {
        record = JSON.parse(await Deno.readTextFile(autoRecordPath(cipherpostHome())));
      } catch {
        if (o.json) io.out(JSON.stringify({ changed: false, settings: null }) + "\n");
        else log("not enabled from this cipherpost home: nothing to remove");
        return;
      }
      const path = settingsPath();
      const r = removeAutoHooks(await readSettings(path), record);
      if (r.changed) await writeJson(path, r.settings, 0o644);
      await Deno.remove(autoRecordPath(cipherpostHome())).catch(() => {});
      if (o.json) io.out(JSON.stringify({ changed: r.changed, settings: path }) + "\n");
      else log(r.changed ? `disabled: hooks removed from ${path}` : "the hooks were already gone");
    });
}

function registerAutoStatus(auto: Command, io: Io): void {
  auto.command("status")
    .description("whether the hooks are in Claude Code's settings, and the last hook failure")
    .option("--json", "print {SessionStart, Stop, last_hook_failure} as JSON")
    .action(async (o) => {
      let cmds: Record<AutoEvent, string> | null = null;
      try {
        const rec = JSON.parse(await Deno.readTextFile(autoRecordPath(cipherpostHome())));
        cmds = (rec as AutoRecord).commands;
      } catch { /* not enabled */ }
      const st = cmds
        ? autoState(await readSettings(settingsPath()), cmds)
        : { SessionStart: false, Stop: false };
      const last = await lastHookLog(cipherpostHome());
      if (o.json) {
        io.out(JSON.stringify({ ...st, last_hook_failure: last }) + "\n");
        return;
      }
      for (const ev of AUTO_EVENTS) io.out(`${ev.padEnd(13)} ${st[ev] ? "on" : "off"}\n`);
      if (last) io.out(`last hook failure: ${shown(last)}\n`);
    });
}
