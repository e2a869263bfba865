/**
 * `cipherpost claude install-command`: write Claude Code's `/handoff` custom command.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { CipherpostError, configError } from "../util/errors.ts";
import { writeFileAtomic } from "../util/fsutil.ts";
import type { Io } from "./io.ts";
import { configDir, shellQuote } from "./claude_common.ts";

function handoffCommand(extra: string): string {
  return HANDOFF_COMMAND.replace(
    "cipherpost claude send $ARGUMENTS",
    `cipherpost claude send ${extra}$ARGUMENTS`,
  );
}

const HANDOFF_COMMAND = `---
description: Hand this session off with cipherpost (end-to-end encrypted; pick it up elsewhere with cipherpost claude pickup)
argument-hint: "[--share KEY] [-p PURPOSE] [--pin] [--burn]"
allowed-tools: Bash(cipherpost claude send:*)
---
!\`cipherpost claude send $ARGUMENTS\`

The command above handed off this Claude Code session (its own transcript, found through
CLAUDE_CODE_SESSION_ID). Tell the user, in one or two lines, the cipherpost:// URI it printed and
that \`cipherpost claude pickup URI\` on the other machine continues the session (with --self,
\`cipherpost claude pickup\` alone finds it). If it failed, show its error line and stop.
`;

/** Register `claude send|pickup|list|install-command`. */

/** Register `claude install-command` on the `claude` command group. */
export function registerClaudeInstallCommand(claude: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
  claude.command("install-command")
    .description("write the Claude Code custom command /handoff (runs cipherpost claude send)")
    .option("--force", "replace an existing handoff.md")
    .option(
      "--passphrase-file <path>",
      "make /handoff unlock your identity with this file (Claude Code has no prompt for it)",
    )
    .action(async (o) => {
      const dir = `${configDir()}/commands`;
      const path = `${dir}/handoff.md`;
      if (!o.force) {
        try {
          await Deno.lstat(path);
          throw new CipherpostError(
            "config",
            `cannot write ${path}: it already exists`,
            "pass --force to replace it",
          );
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
      }
      await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
      let extra = "";
      if (o.passphraseFile !== undefined) {
        let abs: string;
        try {
          abs = await Deno.realPath(o.passphraseFile);
        } catch {
          throw new CipherpostError("io", `io error: cannot read ${o.passphraseFile}`);
        }
        extra = `--passphrase-file ${shellQuote(abs)} `;
      }
      await writeFileAtomic(path, new TextEncoder().encode(handoffCommand(extra)), 0o644);
      io.out(`${path}\n`);
      log(
        "In Claude Code, /handoff [--share KEY] sends the current session. cipherpost must be on\n" +
          "Claude Code's PATH and unlock your identity without a prompt: " +
          (extra
            ? "it reads the passphrase file."
            : "pass --passphrase-file here, or set CIPHERPOST_PASSPHRASE."),
      );
    });
}
