/**
 * `claude sync push` and `claude sync pull` (docs/PROTOCOL.md §8.5, §8.6).
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { type PullResult, syncPull } from "../flows/sync/pull.ts";
import { syncPush, syncPushUnchanged } from "../flows/sync/push.ts";
import { asHook, countersJson, shown, syncEnv } from "./claude_sync_common.ts";
import { cipherpostHome } from "./home.ts";
import type { Io } from "./io.ts";
import { cliUi } from "./large.ts";
import {
  NETWORK_HELP,
  unlockIdentity,
  withNetwork,
  withPassphrase,
  withTransport,
} from "./options.ts";

/** Register `claude sync push`. */
export function registerSyncPush(sync: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
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
        if (o.quiet || o.json) ui.progress = undefined; // a bar only when the user watches
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
}

/** Register `claude sync pull`. */
export function registerSyncPull(sync: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
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
      if (o.quiet || o.json) ui.progress = undefined; // a bar only when the user watches
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
        const other = a.other ? ` -> ${shown(a.other)}` : "";
        log(`${a.action.padEnd(12)} ${shown(a.path)}${other}  (from ${shown(a.from)})`);
      }
      log(
        r.actions.length === 0
          ? "up to date"
          : `${r.actions.length} file(s) ${r.dryRun ? "would change (dry run)" : "changed"}`,
      );
    });
}
