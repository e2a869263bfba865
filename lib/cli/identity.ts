/**
 * `cipherpost identity generate | show | export | import`: create, show, export and import the
 * identity of the cipherpost home.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { CipherpostError } from "../util/errors.ts";
import { generateIdentity, parseImport, storeIdentity } from "../state/identity.ts";
import { ageIdentityOfSeed, ageRecipientOfEd, sshFingerprint } from "../crypto/keys.ts";
import { encodeZ32 } from "../pkarr/public_key.ts";
import { getPassphrase } from "./passphrase.ts";
import { cipherpostHome } from "./home.ts";
import { type Io, readAllStdin, SMALL_INPUT_CAP } from "./io.ts";
import { readFileCapped } from "../util/bounded_read.ts";
import { unlockIdentity, withPassphrase } from "./options.ts";

/** Register `identity` and its subcommands on the program. */
export function registerIdentityCommands(program: Command, io: Io): void {
  const identity = program.command("identity").description(
    "create, show, export and import your identity",
  )
    .exitOverride();

  withPassphrase(
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
      const pass = await getPassphrase(o, true);
      const kp = await generateIdentity(cipherpostHome(), pass, o.force === true);
      io.err(
        `Generated identity:\n  ${sshFingerprint(kp.publicKey)}\n  ${encodeZ32(kp.publicKey)}\n`,
      );
    });

  withPassphrase(
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

  withPassphrase(
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

  withPassphrase(
    identity.command("import")
      .description("import a 64-hex seed or a v1.1 CIPHPOSK identity file ('-' for stdin)")
      .argument("<file>", "file to import, or - for stdin")
      .option("--force", "replace an existing identity"),
  ).action(async (file, o) => {
    const bytes = file === "-"
      ? await readAllStdin()
      : await readFileCapped(file, SMALL_INPUT_CAP).catch((e) => {
        if (e instanceof CipherpostError && e.kind === "too_large") throw e;
        throw new CipherpostError("io", `cannot read ${file}`);
      });
    const pass = await getPassphrase(o, true);
    const seed = await parseImport(bytes, () => Promise.resolve(pass));
    const kp = await storeIdentity(cipherpostHome(), seed, pass, o.force === true);
    io.err(`Imported identity:\n  ${sshFingerprint(kp.publicKey)}\n  ${encodeZ32(kp.publicKey)}\n`);
  });
}
