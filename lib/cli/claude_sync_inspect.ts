/**
 * `claude sync status`, `diff`, `log` and `devices`: what is here, what is there, and who
 * pushed it (docs/PROTOCOL.md §8.7). None of them writes anything.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { syncDevices } from "../flows/sync/devices.ts";
import { syncDiff } from "../flows/sync/diff.ts";
import { syncLog } from "../flows/sync/log.ts";
import { syncStatus } from "../flows/sync/status.ts";
import { lastHookLog } from "../sync/state.ts";
import { CipherpostError } from "../util/errors.ts";
import { countersJson, shown, syncEnv } from "./claude_sync_common.ts";
import { cipherpostHome } from "./home.ts";
import type { Io } from "./io.ts";
import {
  NETWORK_HELP,
  parseIntArg,
  unlockIdentity,
  withNetwork,
  withPassphrase,
  withTransport,
} from "./options.ts";

/** Register `claude sync status`. */
export function registerSyncStatus(sync: Command, io: Io): void {
  withPassphrase(
    sync.command("status")
      .description("what changed here since the last sync (no network)")
      .option("--json", "print {added, modified, deleted, counters} as JSON"),
  ).action(async (o) => {
    const me = await unlockIdentity(o, io);
    const r = await syncStatus({ me, home: cipherpostHome() }, syncEnv());
    const hookLine = await lastHookLog(cipherpostHome());
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
          last_hook_failure: hookLine,
        }) + "\n",
      );
      return;
    }
    if (hookLine) io.err(`last hook failure: ${shown(hookLine)}\n`);
    for (const p of r.added) io.out(`added     ${shown(p)}\n`);
    for (const p of r.modified) io.out(`modified  ${shown(p)}\n`);
    for (const p of r.deleted) io.out(`deleted   ${shown(p)}\n`);
    if (r.added.length + r.modified.length + r.deleted.length === 0) io.err("nothing changed\n");
  });
}

/** Register `claude sync diff`. */
export function registerSyncDiff(sync: Command, io: Io): void {
  withNetwork(withPassphrase(
    sync.command("diff")
      .description("each file here against the newest remote version (reads snapshots only)")
      .option("--json", "print {devices, files, counters} as JSON"),
  ))
    .addHelpText(
      "after",
      `
Each file listed differs between here and the newest remote state (every machine's head).
Both columns say how that side differs from the last sync: added, modified, deleted or same.${NETWORK_HELP}`,
    )
    .action(async (o) => {
      const me = await unlockIdentity(o, io);
      const r = await withTransport(
        o,
        (t) => syncDiff({ transport: t, me, home: cipherpostHome() }, syncEnv()),
      );
      if (o.json) {
        io.out(
          JSON.stringify({
            devices: r.devices,
            files: r.files.map((f) => ({
              path: f.path,
              local: f.local,
              remote: f.remote,
              local_size: f.localSize,
              remote_size: f.remoteSize,
              from: f.from,
            })),
            counters: countersJson(r.counters),
          }) + "\n",
        );
        return;
      }
      if (r.files.length === 0) {
        io.err("no difference: here is the newest remote state\n");
        return;
      }
      io.out(`${"here".padEnd(9)} ${"remote".padEnd(9)} path\n`);
      for (const f of r.files) {
        const sizes = `here ${f.localSize ?? "-"} B, remote ${f.remoteSize ?? "-"} B${
          f.from === null ? "" : ` from ${shown(f.from)}`
        }`;
        io.out(`${f.local.padEnd(9)} ${f.remote.padEnd(9)} ${shown(f.path)}  (${sizes})\n`);
      }
    });
}

/** Register `claude sync log`. */
export function registerSyncLog(sync: Command, io: Io): void {
  withNetwork(withPassphrase(
    sync.command("log")
      .description("the snapshots of every machine, newest first")
      .option("--limit <n>", "snapshots per machine (default 20)", parseIntArg)
      .option("--json", "print the snapshots as JSON"),
  ))
    .addHelpText(
      "after",
      `
The first column names a snapshot for restore --at: DEVICE:SEQ (a bare SEQ is this machine).${NETWORK_HELP}`,
    )
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
          `${e.id.padEnd(14)} ${new Date(e.time).toISOString()}  ${e.mine ? "*" : " "} ${
            shown(e.label).padEnd(20)
          } ${e.files} files, ${e.deleted} deleted\n`,
        );
      }
    });
}

/** Register `claude sync devices`. */
export function registerSyncDevices(sync: Command, io: Io): void {
  withNetwork(withPassphrase(
    sync.command("devices")
      .description("the machines that have pushed, newest push first (from their signed heads)")
      .option("--json", "print [{device, label, seq, time, files, mine}] as JSON"),
  ))
    .addHelpText("after", NETWORK_HELP)
    .action(async (o) => {
      const me = await unlockIdentity(o, io);
      const ds = await withTransport(
        o,
        (t) => syncDevices({ transport: t, me, home: cipherpostHome() }),
      );
      if (o.json) {
        io.out(JSON.stringify(ds) + "\n");
        return;
      }
      if (ds.length === 0) io.err("no machine has pushed yet\n");
      for (const d of ds) {
        io.out(
          `${d.mine ? "*" : " "} ${shown(d.label).padEnd(20)} ${d.device}  #${d.seq}  ${
            new Date(d.time).toISOString()
          }  ${d.files} files\n`,
        );
      }
    });
}
