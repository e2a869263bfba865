/**
 * `cipherpost claude sync push|pull|status|log`: keep the Claude Code folders of the machines
 * that hold this identity in step through its homeserver (docs/PROTOCOL.md §8,
 * lib/flows/sync/). The device's label comes from `CIPHERPOST_DEVICE_LABEL` or the host name.
 *
 * @module
 */

import { escapeControl } from "../util/encoding.ts";
import type { Command } from "@commander-js/extra-typings";
import { syncLog } from "../flows/sync/log.ts";
import { type PullResult, syncPull } from "../flows/sync/pull.ts";
import { syncPush, syncPushUnchanged } from "../flows/sync/push.ts";
import { syncStatus } from "../flows/sync/status.ts";
import type { SyncCounters, SyncEnv } from "../flows/sync/common.ts";
import { CipherpostError } from "../util/errors.ts";
import { configDir, passphraseFileArg } from "./claude_common.ts";
import { describeError, exitCodeOf } from "./exit_codes.ts";
import {
  addAutoHooks,
  AUTO_EVENTS,
  type AutoEvent,
  type AutoRecord,
  autoState,
  removeAutoHooks,
} from "../sync/hooks.ts";
import { appendHookLog, autoRecordPath, lastHookLog } from "../sync/state.ts";
import { ensurePrivateDir, writeFileAtomic } from "../util/fsutil.ts";
import { cipherpostHome } from "./home.ts";
import type { Io } from "./io.ts";
import { cliUi } from "./large.ts";
import {
  NETWORK_HELP,
  parseIntArg,
  unlockIdentity,
  withNetwork,
  withPassphrase,
  withTransport,
} from "./options.ts";

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

function syncEnv(): SyncEnv {
  return { configDir: configDir(), homeDir: Deno.env.get("HOME") || undefined, label: label() };
}

function countersJson(c: SyncCounters) {
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

/**
 * Run a sync as a Claude Code hook: print nothing, never fail (a hook's error would show in
 * Claude Code or block it); a failure goes to `sync/hook.log`, which `sync status` shows.
 */
async function asHook(
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

/** Register `claude sync …` on the `claude` command group. */
export function registerClaudeSync(claude: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
  const sync = claude.command("sync")
    .description("keep Claude Code's sessions in step on every machine holding this identity")
    .exitOverride()
    .addHelpText(
      "after",
      `
What travels (scope "sessions"): projects/ (transcripts, sidecars, memory), history.jsonl,
tasks/, plans/; never credentials, .claude.json, sessions/, *.lock or conflict copies.
Everything is age-encrypted to your identity under keyed names on your homeserver, and each
snapshot is signed: a homeserver that rolls back, drops or swaps anything gets exit 3.`,
    );

  withNetwork(withPassphrase(
    sync.command("push")
      .description("upload what changed here since the last sync (a signed snapshot)")
      .option("-q, --quiet", "print nothing unless it fails")
      .option("--hook", "as a Claude Code hook: print nothing, exit 0, failures to sync/hook.log")
      .option(
        "--force",
        "read every file, re-upload everything and publish a new snapshot (after a homeserver lost data)",
      )
      .option("--json", "print {seq, pushed, changed, deleted, counters} as JSON"),
  ))
    .addHelpText("after", NETWORK_HELP)
    .action(async (o) => {
      const force = o.force === true;
      if (o.hook) {
        return await asHook("push", o, async () => {
          if (!force && await syncPushUnchanged(cipherpostHome(), syncEnv())) return;
          const me = await unlockIdentity(o, io);
          const ctx = { me, home: cipherpostHome() };
          await withTransport(o, (t) => syncPush({ ...ctx, transport: t }, syncEnv()));
        });
      }
      // nothing changed since the last push (the stat cache says so): no unlock, no network
      let r = force ? null : await syncPushUnchanged(cipherpostHome(), syncEnv());
      if (!r) {
        const me = await unlockIdentity(o, io);
        const ui = cliUi(o.quiet ? () => {} : log);
        try {
          r = await withTransport(
            o,
            (t) => syncPush({ transport: t, me, home: cipherpostHome() }, syncEnv(), ui, { force }),
          );
        } finally {
          ui.end();
        }
      }
      if (o.json) {
        io.out(
          JSON.stringify({
            device: r.device,
            seq: r.seq,
            pushed: r.pushed,
            changed: r.changed,
            deleted: r.deleted,
            counters: countersJson(r.counters),
          }) + "\n",
        );
      } else if (!o.quiet) {
        log(
          r.pushed
            ? `pushed snapshot ${r.seq}: ${r.changed} changed, ${r.deleted} deleted, ${r.counters.chunksUploaded} chunk(s) uploaded`
            : `nothing to push (snapshot ${r.seq} is current; ${r.counters.files} file(s) checked, ${r.counters.filesRead} read)`,
        );
      }
    });

  withNetwork(withPassphrase(
    sync.command("pull")
      .description("merge every other machine's newest snapshot into this one")
      .option("--dry-run", "show what would change; write nothing")
      .option("-q, --quiet", "print nothing unless it fails")
      .option("--hook", "as a Claude Code hook: print nothing, exit 0, failures to sync/hook.log")
      .option("--json", "print {devices, actions, counters} as JSON"),
  ))
    .addHelpText("after", NETWORK_HELP)
    .action(async (o) => {
      if (o.hook) {
        return await asHook("pull", o, async () => {
          const me = await unlockIdentity(o, io);
          const ctx = { me, home: cipherpostHome() };
          await withTransport(o, (t) => syncPull({ ...ctx, transport: t }, syncEnv()));
        });
      }
      const me = await unlockIdentity(o, io);
      const ui = cliUi(o.quiet ? () => {} : log);
      let r: PullResult;
      try {
        r = await withTransport(
          o,
          (t) =>
            syncPull({ transport: t, me, home: cipherpostHome() }, syncEnv(), {
              dryRun: o.dryRun === true,
            }, ui),
        );
      } finally {
        ui.end();
      }
      if (o.json) {
        io.out(
          JSON.stringify({
            dry_run: r.dryRun,
            devices: r.devices,
            actions: r.actions,
            counters: countersJson(r.counters),
          }) + "\n",
        );
        return;
      }
      if (o.quiet) return;
      for (const a of r.actions) {
        const other = a.other ? ` -> ${escapeControl(a.other, { backslash: true })}` : "";
        log(
          `${a.action.padEnd(12)} ${escapeControl(a.path, { backslash: true })}${other}  (from ${
            escapeControl(a.from, { backslash: true })
          })`,
        );
      }
      log(
        r.actions.length === 0
          ? "up to date"
          : `${r.actions.length} file(s) ${r.dryRun ? "would change (dry run)" : "changed"}`,
      );
    });

  withPassphrase(
    sync.command("status")
      .description("what changed here since the last sync (no network)")
      .option("--json", "print {added, modified, deleted, counters} as JSON"),
  ).action(async (o) => {
    const me = await unlockIdentity(o, io);
    const r = await syncStatus({ me, home: cipherpostHome() }, syncEnv());
    if (o.json) {
      io.out(
        JSON.stringify({
          device: r.device,
          seq: r.seq,
          added: r.added,
          modified: r.modified,
          deleted: r.deleted,
          seen: r.seen,
          counters: countersJson(r.counters),
          last_hook_failure: await lastHookLog(cipherpostHome()),
        }) + "\n",
      );
      return;
    }
    const hookLine = await lastHookLog(cipherpostHome());
    if (hookLine) log(`last hook failure: ${escapeControl(hookLine, { backslash: true })}`);
    for (const p of r.added) io.out(`added     ${escapeControl(p, { backslash: true })}\n`);
    for (const p of r.modified) io.out(`modified  ${escapeControl(p, { backslash: true })}\n`);
    for (const p of r.deleted) io.out(`deleted   ${escapeControl(p, { backslash: true })}\n`);
    if (r.added.length + r.modified.length + r.deleted.length === 0) log("nothing changed");
  });

  withNetwork(withPassphrase(
    sync.command("log")
      .description("the snapshots of every machine, newest first")
      .option("--limit <n>", "snapshots per machine (default 20)", parseIntArg)
      .option("--json", "print the snapshots as JSON"),
  ))
    .addHelpText("after", NETWORK_HELP)
    .action(async (o) => {
      if (o.limit !== undefined && (o.limit < 1 || o.limit > 1000)) {
        throw new CipherpostError("usage", "--limit must be 1..1000");
      }
      const me = await unlockIdentity(o, io);
      const entries = await withTransport(
        o,
        (t) => syncLog({ transport: t, me, home: cipherpostHome() }, { limit: o.limit }),
      );
      if (o.json) {
        io.out(JSON.stringify(entries) + "\n");
        return;
      }
      for (const e of entries) {
        io.out(
          `${new Date(e.time).toISOString()}  ${e.mine ? "*" : " "} ${
            escapeControl(e.label, { backslash: true }).padEnd(20)
          } #${e.seq}  ${e.files} files, ${e.deleted} deleted  (${e.device})\n`,
        );
      }
    });

  const auto = sync.command("auto")
    .description("pull when Claude Code starts a session, push when it stops (its hooks)")
    .exitOverride();
  const settingsPath = () => `${configDir()}/settings.json`;
  auto.command("enable")
    .description("add SessionStart → sync pull and Stop → sync push to Claude Code's settings")
    .option(
      "--passphrase-file <path>",
      "make the hooks unlock your identity with this file (Claude Code has no prompt for it)",
    )
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
      log(r.changed ? `enabled: hooks added to ${path}` : "already enabled");
      if (!extra) {
        log(
          "the hooks need cipherpost on Claude Code's PATH and CIPHERPOST_PASSPHRASE, or --passphrase-file",
        );
      }
    });
  auto.command("disable")
    .description("remove exactly the hooks `auto enable` added")
    .action(async () => {
      let record: AutoRecord;
      try {
        record = JSON.parse(await Deno.readTextFile(autoRecordPath(cipherpostHome())));
      } catch {
        log("not enabled from this cipherpost home: nothing to remove");
        return;
      }
      const path = settingsPath();
      const r = removeAutoHooks(await readSettings(path), record);
      if (r.changed) await writeJson(path, r.settings, 0o644);
      await Deno.remove(autoRecordPath(cipherpostHome())).catch(() => {});
      log(r.changed ? `disabled: hooks removed from ${path}` : "the hooks were already gone");
    });
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
      if (last) io.out(`last hook failure: ${escapeControl(last, { backslash: true })}\n`);
    });
}
