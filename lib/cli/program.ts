/**
 * The command-line surface: builds the commander program from one file per command group,
 * dispatches, and maps every outcome to an exit code. Results go to stdout, progress and errors
 * to stderr. Options are typed by `@commander-js/extra-typings`: each action sees exactly the
 * options its command declares.
 *
 * @module
 */

import { Argument, Command, CommanderError } from "@commander-js/extra-typings";
import type { Command as UntypedCommand } from "commander";
import { VERSION } from "../util/version.ts";
import { describeError, Exit, exitCodeOf } from "./exit_codes.ts";
import { defaultIo, type Io } from "./io.ts";
import { registerIdentityCommands } from "./identity.ts";
import { registerSendCommand } from "./send.ts";
import { registerReceiveCommand } from "./receive.ts";
import { registerReceiptCommands } from "./receipts.ts";
import { registerShareCommands } from "./shares.ts";
import { registerDhtCommands } from "./dht.ts";
import { registerTestnetCommand } from "./testnet.ts";
import { registerContactsCommands } from "./contacts.ts";
import { completionScript, SHELLS } from "./completions.ts";
import { ChildExit, registerClaudeCommands, splitPassThrough } from "./claude.ts";
import { registerHomeserverCommands } from "./homeserver.ts";
import { registerRoomCommands } from "./room.ts";
import { registerDoctorCommand } from "./doctor.ts";
import { registerMcpCommand } from "./mcp.ts";

export type { Io } from "./io.ts";

/**
 * Usage errors never echo an option's value: `--pasphrase=Hunter2` is reported as
 * `--pasphrase=…` (a mistyped secret option would otherwise print the secret).
 */
export function redactOptionValues(text: string): string {
  return text.replace(/(-{1,2}[A-Za-z0-9][\w-]*)=[^'"\s]*/g, "$1=…");
}

/** The whole command tree (also read by scripts/gen_man.ts for the man page). */
export function buildProgram(io: Io = defaultIo): Command {
  const program = new Command("cipherpost")
    .description(
      "Serverless, accountless, end-to-end encrypted hand-off of secrets over the Mainline DHT.",
    )
    .version(VERSION, "-V, --version", "print the version")
    .configureOutput({ writeOut: io.out, writeErr: (t) => io.err(redactOptionValues(t)) })
    .showSuggestionAfterError(true)
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();

  program.command("version").description("print version and crypto suite").action(() => {
    io.out(`cipherpost ${VERSION}\ncrypto: age, Ed25519, Argon2id, HKDF-SHA256, JCS\n`);
  });
  registerIdentityCommands(program, io);
  registerReceiptCommands(program, io);
  registerSendCommand(program, io);
  registerReceiveCommand(program, io);
  registerShareCommands(program, io);
  registerDhtCommands(program, io);
  registerTestnetCommand(program, io);
  registerContactsCommands(program, io);
  registerHomeserverCommands(program, io);
  registerClaudeCommands(program, io);
  registerRoomCommands(program, io);
  registerMcpCommand(program, io);
  registerDoctorCommand(program, io);

  program.command("completions")
    .description("print a shell completion script (bash, zsh or fish)")
    .addArgument(new Argument("<shell>", "the shell").choices(SHELLS))
    .addHelpText(
      "after",
      `
Examples:
  cipherpost completions bash > ~/.local/share/bash-completion/completions/cipherpost
  cipherpost completions zsh > ~/.zfunc/_cipherpost     # with fpath=(~/.zfunc $fpath) in .zshrc
  cipherpost completions fish > ~/.config/fish/completions/cipherpost.fish
`,
    )
    // the tree is walked through commander's own (untyped) view of it
    .action((shell) => io.out(completionScript(program as unknown as UntypedCommand, shell)));
  return program;
}

/**
 * Run the CLI with `args` (without the program name) and return the exit code. Never throws.
 */
export async function run(args: string[], io: Io = defaultIo): Promise<number> {
  const program = buildProgram(io);
  const debug = Deno.env.get("CIPHERPOST_DEBUG") === "1";
  try {
    await program.parseAsync(splitPassThrough(args), { from: "user" });
    return Exit.ok;
  } catch (e) {
    if (e instanceof ChildExit) return e.code;
    if (e instanceof CommanderError) {
      if (
        e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.exitCode === 0
      ) {
        return Exit.ok;
      }
      if (e.code === "commander.help") return Exit.ok;
      return Exit.usage; // commander already printed the message and a hint
    }
    for (const line of describeError(e, debug)) io.err(`${line}\n`);
    return exitCodeOf(e);
  }
}
