/**
 * What the `identity` commands do (their options are declared in program.ts): generate, show
 * without the passphrase, check the passphrase, export a backup (or the age key), import.
 *
 * @module
 */

import { CipherpostError } from "../util/errors.ts";
import { checkOutputTarget, writeFileAtomic } from "../util/fsutil.ts";
import { cipherpostHome } from "./home.ts";
import { readAllStdin, SMALL_INPUT_CAP } from "./io.ts";
import { readFileCapped } from "../util/bounded_read.ts";
import {
  encodeBackup,
  generateIdentity,
  isEncryptedImport,
  type LoadedIdentity,
  loadIdentity,
  parseImport,
  readPublicKey,
  type StoredIdentity,
  storeIdentity,
} from "../state/identity.ts";
import { ageIdentityOfSeed, ageRecipientOfEd, sshFingerprint } from "../crypto/keys.ts";
import { encodeZ32, parsePublicKey } from "../pkarr/public_key.ts";
import { getPassphrase, type PassphraseOptions, retryPassphrase } from "./passphrase.ts";
import { unlockIdentity } from "./options.ts";

/** Where the identity commands write. */
export interface IdentityIo {
  out(text: string): void;
  err(text: string): void;
}

/** Unlock the identity of the home (three tries at a terminal), warning about v1.1 files. */
export async function unlock(opts: PassphraseOptions, io: IdentityIo): Promise<LoadedIdentity> {
  return await unlockIdentity(opts, io);
}

/** The lines `generate`/`import` print about a stored identity (z32 first). */
export function storedLines(verb: string, kp: StoredIdentity): string {
  let text = `${verb} identity:\n  ${encodeZ32(kp.publicKey)}\n  ${sshFingerprint(kp.publicKey)}\n`;
  if (kp.backupPath) {
    text += `The identity it replaced was kept at ${kp.backupPath}\n` +
      `(to go back: cipherpost identity import --force ${kp.backupPath})\n`;
  }
  return text;
}

/** `identity generate [--force]` */
export async function generateAction(
  opts: PassphraseOptions,
  force: boolean,
  io: IdentityIo,
): Promise<void> {
  const pass = await getPassphrase(opts, true);
  io.err(storedLines("Generated", await generateIdentity(cipherpostHome(), pass, force)));
}

/** `identity show [--json]`: from `public_key` without a passphrase, else by unlocking. */
export async function showAction(
  opts: PassphraseOptions,
  json: boolean,
  io: IdentityIo,
): Promise<void> {
  const home = cipherpostHome();
  const z = await readPublicKey(home) ?? encodeZ32((await unlock(opts, io)).publicKey);
  const pk = parsePublicKey(z);
  const info = {
    z32: z,
    pk: `pk:${z}`,
    fingerprint: sshFingerprint(pk),
    age_recipient: ageRecipientOfEd(pk),
  };
  if (json) io.out(JSON.stringify(info, null, 2) + "\n");
  else {
    io.out(
      `${info.z32}\nfingerprint: ${info.fingerprint}\npk:          ${info.pk}\nage:         ${info.age_recipient}\n`,
    );
  }
}

/** `identity check` */
export async function checkAction(opts: PassphraseOptions, io: IdentityIo): Promise<void> {
  const kp = await unlock(opts, io);
  io.err(`passphrase OK: it unlocks ${encodeZ32(kp.publicKey)}\n`);
}

/** `identity export [-o PATH] [--force] | --age` */
export async function exportAction(
  opts: PassphraseOptions,
  o: { age: boolean; output?: string; force: boolean },
  io: IdentityIo,
): Promise<void> {
  if (o.age) {
    if (o.output) {
      throw new CipherpostError("usage", "--age prints to stdout; it does not take --output");
    }
    const kp = await unlock(opts, io);
    io.err(
      "warning: the following line is your SECRET key, unencrypted; store it like the identity file itself\n",
    );
    io.out(`${ageIdentityOfSeed(kp.seed)}\n`);
    return;
  }
  // the one check of an output path (a directory, a symlink, a device, an existing file)
  if (o.output) await checkOutputTarget(o.output, o.force === true);
  const home = cipherpostHome();
  const text = await retryPassphrase(opts, async (pass) => {
    const kp = await loadIdentity(home, pass);
    return await encodeBackup(kp.seed, pass);
  });
  if (!o.output) {
    io.out(text);
    return;
  }
  try {
    await writeFileAtomic(o.output, new TextEncoder().encode(text), 0o600);
  } catch {
    throw new CipherpostError("io", `io error: cannot write ${o.output}`);
  }
  io.err(`wrote a passphrase-protected backup of your identity to ${o.output}\n`);
}

/** `identity import FILE|- [--force]` */
export async function importAction(
  file: string,
  opts: PassphraseOptions,
  force: boolean,
  io: IdentityIo,
): Promise<void> {
  const bytes = file === "-"
    ? await readAllStdin()
    : await readFileCapped(file, SMALL_INPUT_CAP).catch((e) => {
      if (e instanceof CipherpostError && e.kind === "too_large") throw e;
      throw new CipherpostError("io", `cannot read ${file}`);
    });
  let seed: Uint8Array, pass: string;
  if (isEncryptedImport(bytes)) {
    // a backup or a CIPHPOSK file: unlocked with its passphrase, stored under the same one
    [seed, pass] = await retryPassphrase(
      opts,
      async (p) => [await parseImport(bytes, () => Promise.resolve(p)), p] as const,
    );
  } else {
    seed = await parseImport(bytes, () => Promise.reject(new Error("unreachable")));
    pass = await getPassphrase(opts, true);
  }
  io.err(storedLines("Imported", await storeIdentity(cipherpostHome(), seed, pass, force)));
}
