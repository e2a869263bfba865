/**
 * `cipherpost claude sync …`: keep the Claude Code folders of the machines that hold this
 * identity in step through its homeserver (docs/PROTOCOL.md §8, lib/flows/sync/). One small
 * registration per command: lib/cli/claude_sync_*.ts. The device's label comes from
 * `CIPHERPOST_DEVICE_LABEL` or the host name.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { registerSyncAuto } from "./claude_sync_auto.ts";
import { registerSyncConfig } from "./claude_sync_config.ts";
import {
  registerSyncDevices,
  registerSyncDiff,
  registerSyncLog,
  registerSyncStatus,
} from "./claude_sync_inspect.ts";
import { registerSyncConflicts, registerSyncRestore } from "./claude_sync_restore.ts";
import { registerSyncPull, registerSyncPush } from "./claude_sync_transfer.ts";
import type { Io } from "./io.ts";

/** Register `claude sync …` on the `claude` command group. */
export function registerClaudeSync(claude: Command, io: Io): void {
  const sync = claude.command("sync")
    .description("keep Claude Code's sessions in step on every machine holding this identity")
    .exitOverride()
    .addHelpText(
      "after",
      `
What travels (scope "sessions"): projects/ (transcripts, sidecars, memory), history.jsonl,
tasks/, plans/; "sync config" widens it (full, excludes, path map, MCP servers). Never
credentials, .claude.json (but its mcpServers if opted in), sessions/, *.lock or conflict copies.
Everything is age-encrypted to your identity under keyed names on your homeserver, and each
snapshot is signed: a homeserver that rolls back, drops or swaps anything gets exit 3.
One sync at a time per cipherpost home: a second push or pull waits up to 10 s, then exits 1
("another sync is running"; a hook logs it to sync/hook.log).`,
    );
  registerSyncPush(sync, io);
  registerSyncPull(sync, io);
  registerSyncStatus(sync, io);
  registerSyncDiff(sync, io);
  registerSyncLog(sync, io);
  registerSyncRestore(sync, io);
  registerSyncConflicts(sync, io);
  registerSyncDevices(sync, io);
  registerSyncConfig(sync, io);
  registerSyncAuto(sync, io);
}
