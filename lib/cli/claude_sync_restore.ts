/**
 * `claude sync restore` and `claude sync conflicts`: bring back a past version, and settle the
 * conflict copies pulls left (docs/PROTOCOL.md §8.7).
 *
 * @module
 */

import { Option } from "@commander-js/extra-typings";
import type { Command } from "@commander-js/extra-typings";
import { syncConflicts } from "../flows/sync/conflicts.ts";
import { syncRestore } from "../flows/sync/restore.ts";
import { configDir } from "./claude_common.ts";
import { countersJson, shown, syncEnv } from "./claude_sync_common.ts";
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

/** Register `claude sync restore`. */
export function registerSyncRestore(sync: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
  withNetwork(withPassphrase(
    sync.command("restore")
      .description("bring back files as a past snapshot had them (into place, or -o DIR)")
      .argument("[paths...]", "files or folders (as status/diff print them); default: all")
      .requiredOption("--at <snapshot>", "the snapshot: DEVICE:SEQ as `sync log` prints it")
      .option("-o, --output <dir>", "write below this folder instead of into place")
      .option("--force", "replace files changed here since the last sync (or existing in DIR)")
      .option("--json", "print {snapshot, files, counters} as JSON"),
  ))
    .addHelpText(
      "after",
      `
Into place, a file changed here since the last sync is not replaced without --force (and then
nothing is written); the next push publishes what was restored. Every part is fetched and
checked before any file is written; a homeserver that serves a wrong snapshot gets exit 3.${NETWORK_HELP}`,
    )
    .action(async (paths, o) => {
      const me = await unlockIdentity(o, io);
      const ui = cliUi(o.json ? () => {} : log);
      let r;
      try {
        r = await withTransport(
          o,
          (t) =>
            syncRestore({ transport: t, me, home: cipherpostHome() }, syncEnv(), {
              at: o.at,
              paths,
              outDir: o.output,
              force: o.force === true,
            }, ui),
        );
      } finally {
        ui.end();
      }
      if (o.json) {
        io.out(
          JSON.stringify({
            snapshot: r.snapshot,
            files: r.files,
            counters: countersJson(r.counters),
          }) + "\n",
        );
        return;
      }
      for (const f of r.files) {
        io.out(`${f.unchanged ? "unchanged" : "restored "} ${shown(f.path)}\n`);
      }
      const n = r.files.filter((f) => !f.unchanged).length;
      log(
        `${n} file(s) restored from snapshot ${r.snapshot.id} (${shown(r.snapshot.label)}, ${
          new Date(r.snapshot.time).toISOString()
        })${o.output ? ` into ${shown(o.output)}` : ""}`,
      );
    });
}

/** Register `claude sync conflicts`. */
export function registerSyncConflicts(sync: Command, io: Io): void {
  sync.command("conflicts")
    .description("the conflict copies pulls kept here (never synced); --keep resolves them")
    .argument("[paths...]", "only these copies, files or folders (config-relative)")
    .addOption(
      new Option("--keep <side>", "keep this version and delete the other")
        .choices(["local", "remote"] as const),
    )
    .option("--json", "print {conflicts, resolved} as JSON")
    .addHelpText(
      "after",
      `
A copy holds the version that lost: the other machine's (side remote) or this machine's (side
local). --keep local keeps this machine's version in place, --keep remote the other one; the
copy is then deleted, or renamed over the file in one step. No network, no passphrase.`,
    )
    .action(async (paths, o) => {
      const r = await syncConflicts({ home: cipherpostHome() }, { configDir: configDir() }, {
        keep: o.keep,
        paths,
      });
      if (o.json) {
        io.out(JSON.stringify(r) + "\n");
        return;
      }
      for (const x of r.resolved) {
        io.out(`${x.action.padEnd(9)} ${shown(x.copy)}\n`);
      }
      for (const c of r.conflicts) {
        io.out(
          `${c.side.padEnd(7)} ${shown(c.copy)}  (${c.size} B, ${c.time}${
            c.from === null ? "" : `, against ${shown(c.from)}`
          })\n`,
        );
      }
      if (r.conflicts.length + r.resolved.length === 0) io.err("no conflict copies\n");
    });
}
