/**
 * `cipherpost claude …`: hand a Claude Code session to another machine (or person) and pick it
 * up there (PROTOCOL.md §6); one file per command (claude_send.ts, claude_pickup.ts,
 * claude_list.ts, claude_install.ts) and what they share (claude_common.ts). These files know the
 * environment (`CLAUDE_CONFIG_DIR`, `HOME`, `CLAUDE_CODE_SESSION_ID`, `CIPHERPOST_CLAUDE`), the
 * terminal and the one program the CLI may run: the claude binary.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import type { Io } from "./io.ts";
import { registerClaudeInstallCommand } from "./claude_install.ts";
import { registerClaudeList } from "./claude_list.ts";
import { registerClaudePickup } from "./claude_pickup.ts";
import { registerClaudeSend } from "./claude_send.ts";
import { registerClaudeSync } from "./claude_sync.ts";

export { ChildExit, splitPassThrough } from "./claude_common.ts";

/** Register `claude send|pickup|list|install-command`. */
export function registerClaudeCommands(program: Command, io: Io): void {
  const claude = program.command("claude")
    .description("hand a Claude Code session (transcript and all) to another machine")
    .exitOverride();
  registerClaudeSend(claude, io);
  registerClaudePickup(claude, io);
  registerClaudeList(claude, io);
  registerClaudeInstallCommand(claude, io);
  registerClaudeSync(claude, io);
}
