/**
 * `cipherpost claude list`: the local sessions, newest first, reading only what it shows.
 *
 * @module
 */

import { escapeControl } from "../util/encoding.ts";
import type { Command } from "@commander-js/extra-typings";
import { discoverSession, listSessions } from "../claude/discover.ts";
import { shorten } from "../claude/summary.ts";
import { formatBytes } from "../util/human.ts";
import { transcriptFactsOfFile } from "../claude/transcript.ts";
import type { Io } from "./io.ts";
import { ageOf, configDir } from "./claude_common.ts";

/** Register `claude list` on the `claude` command group. */
export function registerClaudeList(claude: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
  claude.command("list")
    .description("list local Claude Code sessions; * marks the one `claude send` would pick")
    .option("--json", "machine-readable output")
    .action(async (o) => {
      const dir = configDir();
      const all = await listSessions(dir);
      let picked: string | null = null;
      let reason: string | null = null;
      try {
        const pick = await discoverSession({
          configDir: dir,
          cwd: Deno.cwd(),
          envSessionId: Deno.env.get("CLAUDE_CODE_SESSION_ID") || undefined,
        });
        picked = pick.candidates[0].sessionId;
        reason = pick.reason;
      } catch {
        // none would be picked here
      }
      const rows = [];
      for (const s of all) {
        let messages = 0;
        let lastPrompt: string | null = null;
        try {
          const f = await transcriptFactsOfFile(s.transcript);
          messages = f.messages;
          lastPrompt = f.lastPrompt;
        } catch {
          // unreadable: shown with 0 messages
        }
        rows.push({ s, messages, lastPrompt });
      }
      if (o.json) {
        io.out(
          JSON.stringify(
            rows.map(({ s, messages, lastPrompt }) => ({
              session_id: s.sessionId,
              project: s.cwd,
              last_activity: s.mtime.toISOString(),
              messages,
              bytes: s.size,
              last_prompt: lastPrompt,
              picked: s.sessionId === picked,
              ...(s.sessionId === picked ? { picked_because: reason } : {}),
            })),
            null,
            2,
          ) + "\n",
        );
        return;
      }
      if (rows.length === 0) {
        log(`no Claude Code sessions in ${dir}/projects`);
        return;
      }
      io.out(
        "  SESSION                               LAST ACTIVITY  MESSAGES  SIZE       PROJECT\n",
      );
      for (const { s, messages } of rows) {
        io.out(
          `${s.sessionId === picked ? "*" : " "} ${s.sessionId}  ${ageOf(s.mtime).padEnd(13)}  ${
            String(messages).padStart(8)
          }  ${formatBytes(s.size).padEnd(9)}  ${
            escapeControl(shorten(s.cwd ?? "(unknown)", 60), { backslash: true })
          }\n`,
        );
      }
    });
}
