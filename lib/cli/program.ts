/**
 * The command-line surface: parses argv with commander, dispatches to the library, and maps
 * every outcome to an exit code. Results go to stdout, progress and errors to stderr.
 *
 * @module
 */

import { Command, CommanderError, Option } from "commander";
import { CipherpostError, describeError, Exit, exitCodeOf } from "../util/errors.ts";
import { cipherpostHome } from "../util/fsutil.ts";
import { generateIdentity, loadIdentity, parseImport, storeIdentity } from "../state/identity.ts";
import { ageIdentityOfSeed, ageRecipientOfEd, sshFingerprint } from "../crypto/keys.ts";
import { getPassphrase, type PassphraseOptions } from "./passphrase.ts";
import { encodeZ32 } from "../pkarr/public_key.ts";
import { formatReceiptSummary, readReceiptInput } from "../protocol/receipts.ts";
import { VERSION } from "../util/version.ts";
import { registerNetworkCommands } from "./network.ts";
import { ChildExit, registerClaudeCommands, splitPassThrough } from "./claude.ts";
import { registerHomeserverCommands } from "./homeserver.ts";

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
  const home = cipherpostHome();
  const pass = await getPassphrase(passOpts(o));
  const id = await loadIdentity(home, pass);
  if (id.leaksKdfOutput) {
    io.err(
      "warning: this identity file was written by cipherpost v1.1 and stores its KDF output: anyone\n" +
        "with the file can decrypt it without the passphrase. Re-wrap it safely with:\n" +
        `  cipherpost identity import --force ${home}/secret_key\n`,
    );
  }
  return id;
}

async function readAllStdin(): Promise<Uint8Array> {
  return new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
}

function buildProgram(io: Io): Command {
  const program = new Command("cipherpost")
    .description(
      "Serverless, accountless, end-to-end encrypted hand-off of secrets over the Mainline DHT.",
    )
    .version(VERSION, "-V, --version-flag", "print the version")
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
      .option("--force", "replace an existing identity (shares sent to it become unreadable)"),
  )
    .addHelpText(
      "after",
      "\nExample:\n  cipherpost identity generate --passphrase-file ~/.cipherpost-pass\n",
    )
    .action(async (o) => {
      const pass = await getPassphrase(passOpts(o), true);
      const kp = await generateIdentity(cipherpostHome(), pass, o.force === true);
      io.err(
        `Generated identity:\n  ${sshFingerprint(kp.publicKey)}\n  ${encodeZ32(kp.publicKey)}\n`,
      );
    });

  passphraseOptions(
    identity.command("show")
      .description("show your public key (z-base-32, pk:, fingerprint, age recipient)")
      .option("--json", "machine-readable output"),
  ).action(async (o) => {
    const kp = await unlockIdentity(o, io);
    const z = encodeZ32(kp.publicKey);
    const info = {
      z32: z,
      pk: `pk:${z}`,
      fingerprint: sshFingerprint(kp.publicKey),
      age_recipient: ageRecipientOfEd(kp.publicKey),
    };
    if (o.json) io.out(JSON.stringify(info, null, 2) + "\n");
    else {io.out(
        `${info.fingerprint}\n${info.z32}\npk:        ${info.pk}\nage:       ${info.age_recipient}\n`,
      );}
  });

  passphraseOptions(
    identity.command("export")
      .description("print your identity as an age secret key (decrypt with plain `age -d -i`)")
      .requiredOption("--age", "export as AGE-SECRET-KEY-1…"),
  )
    .addHelpText(
      "after",
      "\nExample:\n  cipherpost identity export --age > key.txt && chmod 600 key.txt\n",
    )
    .action(async (o) => {
      const kp = await unlockIdentity(o, io);
      io.err(
        "warning: the following line is your SECRET key; store it like the identity file itself\n",
      );
      io.out(`${ageIdentityOfSeed(kp.seed)}\n`);
    });

  passphraseOptions(
    identity.command("import")
      .description(
        "import a 64-hex seed, a v1.1 CIPHPOSK identity file or a cclink CCLINKEK key file ('-' for stdin)",
      )
      .argument("<file>", "file to import, or - for stdin")
      .option("--force", "replace an existing identity"),
  ).action(async (file: string, o) => {
    const bytes = file === "-" ? await readAllStdin() : await Deno.readFile(file).catch(() => {
      throw new CipherpostError("io", `cannot read ${file}`);
    });
    const pass = await getPassphrase(passOpts(o), true);
    const seed = await parseImport(bytes, () => Promise.resolve(pass));
    const kp = await storeIdentity(cipherpostHome(), seed, pass, o.force === true);
    io.err(`Imported identity:\n  ${sshFingerprint(kp.publicKey)}\n  ${encodeZ32(kp.publicKey)}\n`);
  });

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
  registerClaudeCommands(program, io);
  registerHomeserverCommands(program, io);
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
