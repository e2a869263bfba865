/**
 * `cipherpost identity generate | show | check | export | import`: create, show, check, back up
 * and restore the identity of the cipherpost home. What each command does is in
 * identity_actions.ts; this file declares their options.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import type { Io } from "./io.ts";
import { withPassphrase } from "./options.ts";
import {
  checkAction,
  exportAction,
  generateAction,
  importAction,
  showAction,
} from "./identity_actions.ts";

/** Register `identity` and its subcommands on the program. */
export function registerIdentityCommands(program: Command, io: Io): void {
  const identity = program.command("identity").description(
    "create, show, check, back up and restore your identity",
  )
    .exitOverride();

  withPassphrase(
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
    .action((o) => generateAction(o, o.force === true, io));

  withPassphrase(
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
    .action((o) => showAction(o, o.json === true, io));

  withPassphrase(
    identity.command("check")
      .description(
        "unlock your identity to confirm the passphrase (and that public_key matches it)",
      ),
  ).action((o) => checkAction(o, io));

  withPassphrase(
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
      exportAction(o, { age: o.age === true, output: o.output, force: o.force === true }, io)
    );

  withPassphrase(
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
    .action((file, o) => importAction(file, o, o.force === true, io));
}
