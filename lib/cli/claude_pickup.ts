/**
 * `cipherpost claude pickup`: receive a hand-off through the one receive pipeline, place it,
 * and run `claude --resume` there (without any cipherpost secret in its environment).
 *
 * @module
 */

import { escapeControl } from "../util/encoding.ts";
import type { Command } from "@commander-js/extra-typings";
import { CipherpostError } from "../util/errors.ts";
import { State } from "../state/state.ts";
import { claudePickup } from "../flows/handoff/pickup.ts";
import { cipherpostHome } from "./home.ts";
import type { Io } from "./io.ts";
import { pinIsPrompted } from "./passphrase.ts";
import { acceptanceConfirm } from "./receive.ts";
import {
  NETWORK_HELP,
  pinOf,
  pinSources,
  unlockIdentity,
  withNetwork,
  withPassphrase,
  withPin,
  withTransport,
} from "./options.ts";
import { cliUi, partWorkers } from "./large.ts";
import { resolveRecipient } from "./recipient.ts";
import { Contacts } from "../state/contacts.ts";
import {
  childEnv,
  ChildExit,
  claudeBinary,
  configDir,
  interactive,
  passThroughArgs,
  shellQuote,
} from "./claude_common.ts";

/** Register `claude pickup` on the `claude` command group. */
export function registerClaudePickup(claude: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
  withNetwork(withPin(withPassphrase(
    claude.command("pickup")
      .description(
        "fetch, verify and accept a session hand-off, place it, and run claude --resume there",
      )
      .argument("[uri]", "the cipherpost:// URI (default: the newest hand-off to you)")
      .option(
        "--from <key>",
        "without a URI: the newest hand-off from this key or contact (default: you)",
      )
      .option(
        "--accept <key>",
        "accept non-interactively: the sender's key (z-base-32 or pk: form) or contact name",
      )
      .option("--project <dir>", "place the session for this directory")
      .option("--no-launch", "place it and print the claude command instead of running it")
      .option("--fork", "if a local copy has diverged, place the received one under a new ID"),
  )))
    .usage("[options] [uri] [-- claude_args...]")
    .addHelpText(
      "after",
      `
Everything after -- goes to claude (e.g. -- -p "go on").
Target directory: --project DIR; else where this session already lives here (a hand-back);
else the session's original directory if it exists here; else the current directory. Paths
recorded in the transcript are rewritten when the directory differs. A local copy with the same
ID: the longer one wins when one extends the other; diverged copies are refused (--fork keeps
both). Then runs \`claude --resume <id> CLAUDE_ARGS…\` in that directory and exits with its
code. The claude binary: $CIPHERPOST_CLAUDE, else claude on PATH.
Examples:
  cipherpost claude pickup
  cipherpost claude pickup "$URI" --accept <sender-z32> -- -p "carry on"
${NETWORK_HELP}`,
    )
    .action(async (uri: string | undefined, o) => {
      const args = passThroughArgs();
      const home = cipherpostHome();
      const contacts = new Contacts(home);
      const from = o.from === undefined
        ? undefined
        : (await resolveRecipient(o.from, contacts, "--from")).z32;
      const accept = o.accept === undefined
        ? undefined
        : (await resolveRecipient(o.accept, contacts, "--accept")).z32;
      const me = await unlockIdentity(o, io);
      const state = new State(home);
      const ui = cliUi(log, { confirm: acceptanceConfirm(accept, interactive(), log) });
      let r;
      try {
        r = await withTransport(o, (t) =>
          claudePickup({ transport: t, state, me }, {
            uri,
            from,
            configDir: configDir(),
            cwd: Deno.cwd(),
            project: o.project,
            fork: o.fork === true,
            pin: () => pinOf(o, false),
            pinTries: pinIsPrompted(pinSources(o)) ? 3 : 1,
            workers: partWorkers(),
          }, ui));
      } finally {
        ui.end();
      }
      if (r.status === "already_accepted" || !r.placement) {
        log("nothing placed (this hand-off was already picked up here)");
        return;
      }
      const p = r.placement;
      const verb = {
        new: "placed",
        replace: "updated (the received copy extends the local one)",
        keep: "kept the local copy (it already extends the received one)",
        same: "already here (identical)",
        fork: `forked: the local copy diverged, so it was placed as ${p.sessionId}`,
      }[p.action];
      log(`Session ${p.sessionId} ${verb} in ${escapeControl(p.folder, { backslash: true })}`);
      const bin = claudeBinary();
      const argv = ["--resume", p.sessionId, ...args];
      if (o.launch === false) {
        io.out(`cd ${shellQuote(p.targetDir)} && ${[bin, ...argv].map(shellQuote).join(" ")}\n`);
        return;
      }
      log(
        `Running: ${[bin, ...argv].map(shellQuote).join(" ")}  (in ${
          escapeControl(p.targetDir, { backslash: true })
        })`,
      );
      let child;
      try {
        child = new Deno.Command(bin, {
          args: argv,
          cwd: p.targetDir,
          clearEnv: true,
          env: childEnv(),
          stdin: "inherit",
          stdout: "inherit",
          stderr: "inherit",
        }).spawn();
      } catch (e) {
        const denied = e instanceof Deno.errors.NotCapable ||
          e instanceof Deno.errors.PermissionDenied;
        throw new CipherpostError(
          "config",
          denied
            ? `configuration error: not allowed to run ${bin} (the run permission names the claude binary)`
            : `configuration error: cannot run ${bin}`,
          denied
            ? `grant it: deno run -P=cipherpost --allow-run=${bin} …, or run: ${
              [bin, ...argv].map(shellQuote).join(" ")
            } in ${p.targetDir}`
            : "install Claude Code, or set CIPHERPOST_CLAUDE to its path",
        );
      }
      const st = await child.status;
      throw new ChildExit(st.code);
    });
}
