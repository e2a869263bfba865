/**
 * The command-line surface: parses argv with commander, dispatches to the library, and maps
 * every outcome to an exit code. Results go to stdout, progress and errors to stderr.
 *
 * @module
 */

import { Argument, Command, CommanderError, Option } from "commander";
import { CipherpostError, describeError, Exit, exitCodeOf } from "../util/errors.ts";
import {
  checkAction,
  exportAction,
  generateAction,
  importAction,
  showAction,
  unlock,
} from "./identity_actions.ts";
import type { PassphraseOptions } from "./passphrase.ts";
import { formatReceiptSummary, readReceiptInput } from "../protocol/receipts.ts";
import { VERSION } from "../util/version.ts";
import { registerNetworkCommands } from "./network.ts";
import { registerContactsCommands } from "./contacts.ts";
import { completionScript, type Shell, SHELLS } from "./completions.ts";

/** Where the CLI writes; tests may substitute. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

const defaultIo: Io = {
  out: (t) => Deno.stdout.writeSync(new TextEncoder().encode(t)),
  err: (t) => Deno.stderr.writeSync(new TextEncoder().encode(t)),
};

/** Add the passphrase options (and the refused inline form) to a command. */
export function passphraseOptions(cmd: Command): Command {
  return cmd
    .option("--passphrase-file <path>", "read the passphrase from a file (mode 0600 or 0400)")
    .option(
      "--passphrase-fd <n>",
      "read the passphrase from an inherited pipe descriptor (not 0)",
      parseIntArg,
    )
    .addOption(
      new Option("--passphrase <value>", "refused: a passphrase in argv leaks").hideHelp(),
    );
}

/** Parse an integer option value or fail as a usage error. */
export function parseIntArg(v: string): number {
  if (!/^[0-9]+$/.test(v)) {
    throw new CipherpostError("usage", `expected a whole number, got '${v}'`);
  }
  return Number(v);
}

/** The passphrase options of a parsed command. */
export function passOpts(o: Record<string, unknown>): PassphraseOptions {
  return {
    passphrase: o.passphrase as string | undefined,
    passphraseFd: o.passphraseFd as number | undefined,
    passphraseFile: o.passphraseFile as string | undefined,
  };
}

/** Load the user's identity, asking for the passphrase as configured. */
export async function unlockIdentity(o: Record<string, unknown>, io: Io = defaultIo) {
  return await unlock(passOpts(o), io);
}

async function readAllStdin(): Promise<Uint8Array> {
  return new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
}

/** The whole command tree (also read by scripts/gen_man.ts). */
export function buildProgram(io: Io = defaultIo): Command {
  const program = new Command("cipherpost")
    .description(
      "Serverless, accountless, end-to-end encrypted hand-off of secrets over the Mainline DHT.",
    )
    .version(VERSION, "-V, --version", "print the version")
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showSuggestionAfterError(true)
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();

  program.command("version").description("print version and crypto suite").action(() => {
    io.out(`cipherpost ${VERSION}\ncrypto: age, Ed25519, Argon2id, HKDF-SHA256, JCS\n`);
  });

  const identity = program.command("identity").description(
    "create, show, export and import your identity",
  )
    .exitOverride();

  passphraseOptions(
    identity.command("generate")
      .description(
        "create a new Ed25519 identity, passphrase-wrapped, at $CIPHERPOST_HOME/secret_key",
      )
      .option(
        "--force",
        "replace an existing identity (the old file is kept beside it; its path is printed)",
      ),
  )
    .addHelpText(
      "after",
      "\nExample:\n  cipherpost identity generate --passphrase-file ~/.cipherpost-pass\n",
    )
    .action((o) => generateAction(passOpts(o), o.force === true, io));

  passphraseOptions(
    identity.command("show")
      .description(
        "show your public key: z-base-32 (what others send to), fingerprint, pk:, age recipient",
      )
      .option("--json", "machine-readable output"),
  )
    .addHelpText(
      "after",
      "\nNeeds no passphrase: the public key is kept beside the secret one\n" +
        "($CIPHERPOST_HOME/public_key). Give others the first line (or its pk: form).\n",
    )
    .action((o) => showAction(passOpts(o), o.json === true, io));

  passphraseOptions(
    identity.command("check")
      .description(
        "unlock your identity to confirm the passphrase (and that public_key matches it)",
      ),
  ).action((o) => checkAction(passOpts(o), io));

  passphraseOptions(
    identity.command("export")
      .description(
        "write a passphrase-protected backup of your identity (`identity import` reads it back)",
      )
      .option("-o, --output <path>", "write the backup to a file (mode 0600) instead of stdout")
      .option("--force", "overwrite an existing --output file")
      .option(
        "--age",
        "instead, print the age secret key (AGE-SECRET-KEY-1…, unencrypted; cannot be imported)",
      ),
  )
    .addHelpText(
      "after",
      `
The backup is your identity encrypted under your current passphrase (fresh salt), as text:
keep it offline; restoring it needs that passphrase.
Examples:
  cipherpost identity export -o cipherpost-backup.txt
  cipherpost identity import cipherpost-backup.txt
  cipherpost identity export --age > key.txt && chmod 600 key.txt   # for plain \`age -d -i\`
`,
    )
    .action((o) =>
      exportAction(
        passOpts(o),
        { age: o.age === true, output: o.output, force: o.force === true },
        io,
      )
    );

  passphraseOptions(
    identity.command("import")
      .description(
        "import an `identity export` backup, a v1.1 CIPHPOSK identity file or a 64-hex seed ('-' for stdin)",
      )
      .argument("<file>", "file to import, or - for stdin")
      .option("--force", "replace an existing identity (the old file is kept beside it)"),
  )
    .addHelpText(
      "after",
      `
A backup or a CIPHPOSK file is unlocked with its passphrase and stored under the same one; a
hex seed asks for a new passphrase (twice on a terminal).
Example:
  cipherpost identity import cipherpost-backup.txt
`,
    )
    .action((file: string, o) => importAction(file, passOpts(o), o.force === true, io));

  const receipt = program.command("receipt").description("work with saved receipts").exitOverride();
  receipt.command("verify")
    .description("verify a saved receipt JSON offline; exit 3 if anything is wrong")
    .argument("<file>", "receipt JSON file, or - for stdin")
    .addHelpText(
      "after",
      "\nExample:\n  cipherpost receipts --from <z32> --json | jq '.[0]' | cipherpost receipt verify -\n",
    )
    .action(async (file: string) => {
      const r = await readReceiptInput(
        file === "-" ? await readAllStdin() : await Deno.readFile(file),
      );
      io.out(formatReceiptSummary(r));
    });

  registerNetworkCommands(program, io);
  registerContactsCommands(program, io);

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
    .action((shell: Shell) => io.out(completionScript(program, shell)));
  return program;
}

/**
 * Run the CLI with `args` (without the program name) and return the exit code. Never throws.
 */
export async function run(args: string[], io: Io = defaultIo): Promise<number> {
  const program = buildProgram(io);
  const debug = Deno.env.get("CIPHERPOST_DEBUG") === "1";
  try {
    await program.parseAsync(args, { from: "user" });
    return Exit.ok;
  } catch (e) {
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
