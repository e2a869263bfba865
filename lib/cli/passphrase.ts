/**
 * Where a passphrase comes from (docs/cli.md, "Secrets"; the v1.1 contract): an inline argv value is
 * always refused; then `--passphrase-fd N`, `--passphrase-file PATH` (mode 0600/0400),
 * `CIPHERPOST_PASSPHRASE`, and finally a prompt without echo on the terminal (`/dev/tty`, even
 * when stdin is a pipe). The same rules hold for PINs, and every message names which of the two
 * it is about.
 *
 * @module
 */

import { CipherpostError, configError } from "../util/errors.ts";
import { fileMode } from "../util/fsutil.ts";
import { readFileCapped } from "../util/bounded_read.ts";
import { hasTty, ttyReadLine, ttyWrite } from "./tty.ts";

/** Longest passphrase or PIN file read (more is refused, not read). */
const SECRET_FILE_CAP = 65536;

/** The passphrase options a command accepts. */
export interface PassphraseOptions {
  /** An inline value: always refused (it would sit in argv and shell history). */
  passphrase?: string;
  passphraseFd?: number;
  passphraseFile?: string;
}

function invalidInput(label: string, msg: string, hint?: string): CipherpostError {
  return new CipherpostError("passphrase_input", `invalid ${label} input: ${msg}`, hint);
}

/** The refusal of an inline passphrase (`--passphrase VALUE`), whether or not one is needed. */
export function refuseInlinePassphrase(opts: PassphraseOptions): void {
  if (opts.passphrase !== undefined) readInline(passphraseSpec(opts));
}

function readInline(spec: SecretSpec): never {
  throw invalidInput(
    spec.label,
    "inline argv rejected",
    `use ${spec.flags.file}, ${spec.flags.fd} or ${spec.envVar}`,
  );
}

/** Remove exactly one trailing `\r\n`, else one `\n`, else nothing. */
export function stripOneNewline(b: Uint8Array): Uint8Array {
  const n = b.length;
  if (n >= 2 && b[n - 2] === 13 && b[n - 1] === 10) return b.subarray(0, n - 2);
  if (n >= 1 && b[n - 1] === 10) return b.subarray(0, n - 1);
  return b;
}

function decodeSecret(b: Uint8Array, label = "passphrase"): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(b);
  } catch {
    throw invalidInput(label, `${label} is not valid UTF-8`);
  }
}

async function readLineFromFd(fd: number, flags: SecretSpec["flags"]): Promise<Uint8Array> {
  // Deno's sandbox opens `/dev/fd/N` for pipes, but for a descriptor that is a regular file it
  // demands --allow-all, which this program never has. Say so precisely.
  let f: Deno.FsFile;
  try {
    f = await Deno.open(`/dev/fd/${fd}`, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) {
      throw configError(
        `file descriptor ${fd} is a regular file, which the sandbox cannot open by number`,
        `use ${flags.file} <path> for files; ${flags.fd} takes a pipe, e.g. ${flags.fd} 3 3< <(pass show cipherpost)`,
      );
    }
    throw configError(`cannot read from file descriptor ${fd}`);
  }
  const out: number[] = [];
  const one = new Uint8Array(1);
  try {
    while (out.length < 65536) {
      let n: number | null;
      try {
        n = await f.read(one);
      } catch {
        throw configError(
          `cannot read from file descriptor ${fd}`,
          "--passphrase-fd takes the read end of a pipe, e.g. --passphrase-fd 3 3< <(pass show cipherpost)",
        );
      }
      if (n === null || n === 0) break;
      out.push(one[0]);
      if (one[0] === 10) break;
    }
  } finally {
    f.close();
  }
  return new Uint8Array(out);
}

/** Read a line from the terminal (`/dev/tty`) without echo. */
export async function promptHidden(prompt: string, label = "passphrase"): Promise<string> {
  return decodeSecret(await ttyReadLine(`${prompt}: `, true, label), label);
}

/** Where one kind of secret may come from, and how it is named to the user. */
interface SecretSpec {
  inline?: string;
  fd?: number;
  file?: string;
  envVar: string;
  prompt: string;
  /** "passphrase" or "PIN", for messages */
  label: string;
  /** the option names, for messages */
  flags: { fd: string; file: string; inline: string };
}

/** An empty secret is refused everywhere: it protects nothing, and the KDF rejects it. */
function nonEmpty(secret: string, spec: SecretSpec): string {
  if (secret === "") {
    throw invalidInput(
      spec.label,
      `the ${spec.label} is empty`,
      `give a non-empty ${spec.label} (${spec.flags.file}, ${spec.flags.fd}, ${spec.envVar} or the prompt)`,
    );
  }
  return secret;
}

/** True when a secret would be asked for on the terminal (no flag, no environment variable). */
function willPrompt(spec: SecretSpec): boolean {
  if (spec.inline !== undefined || spec.fd !== undefined || spec.file !== undefined) return false;
  try {
    return Deno.env.get(spec.envVar) === undefined;
  } catch {
    return false; // set, but not UTF-8: readSecret reports it
  }
}

/**
 * Read a secret from a file (a passphrase, a PIN, a signup token): refused unless its mode is
 * 0600 or 0400 (`permissions`), capped, one trailing newline stripped.
 */
export async function readSecretFile(path: string, label: string): Promise<string> {
  let mode: number | null;
  try {
    if ((await Deno.stat(path)).isDirectory) {
      throw configError(`${label} file ${path} is a directory`, `give the path of a file`);
    }
    mode = await fileMode(path);
  } catch (e) {
    if (e instanceof CipherpostError) throw e;
    throw configError(`cannot read ${label} file ${path}`);
  }
  if (mode !== null && mode !== 0o600 && mode !== 0o400) {
    throw new CipherpostError(
      "permissions",
      `${label} file permissions too permissive: ${path} has mode ${
        mode.toString(8).padStart(4, "0")
      }`,
      `chmod 600 ${path}`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = await readFileCapped(path, SECRET_FILE_CAP, `${label} file`);
  } catch (e) {
    if (e instanceof CipherpostError && e.kind === "too_large") {
      throw configError(`${label} file ${path} is larger than ${SECRET_FILE_CAP} bytes`);
    }
    throw configError(`cannot read ${label} file ${path}`);
  }
  return decodeSecret(stripOneNewline(bytes), label);
}

async function readSecret(spec: SecretSpec, confirm: boolean): Promise<string> {
  const { flags, label } = spec;
  if (spec.inline !== undefined) readInline(spec);
  if (spec.fd !== undefined && spec.file !== undefined) {
    throw configError(`${flags.fd} and ${flags.file} are mutually exclusive`);
  }
  if (spec.fd !== undefined) {
    const fd = spec.fd;
    if (!Number.isInteger(fd) || fd < 0) {
      throw configError(`${flags.fd} takes a file descriptor number`);
    }
    if (fd <= 2) {
      // 0 carries data; 1 and 2 are where we write (on a terminal, reading them would wait
      // for typing with echo on; on a pipe they cannot be read at all)
      const what = ["stdin carries data", "stdout is for output", "stderr is for messages"][fd];
      throw configError(
        `${flags.fd} ${fd} is not allowed (${what})`,
        `use another descriptor, e.g. ${flags.fd} 3 3< <(pass show cipherpost)`,
      );
    }
    return decodeSecret(stripOneNewline(await readLineFromFd(fd, flags)), label);
  }
  if (spec.file !== undefined) return await readSecretFile(spec.file, label);
  let env: string | undefined;
  try {
    env = Deno.env.get(spec.envVar);
  } catch {
    throw invalidInput(label, `${spec.envVar} is not valid UTF-8`);
  }
  if (env !== undefined) return env;
  while (true) {
    const first = await promptHidden(spec.prompt, label);
    if (!confirm) return first;
    const second = await promptHidden(`Confirm ${label}`, label);
    if (first === second) return first;
    ttyWrite(`${label}s do not match; try again\n`);
  }
}

/** Where the secret of `spec` comes from, as the user named it; null for the terminal prompt. */
function sourceOf(spec: SecretSpec): string | null {
  if (spec.fd !== undefined) return `${spec.flags.fd} ${spec.fd}`;
  if (spec.file !== undefined) return `${spec.flags.file} ${spec.file}`;
  try {
    if (Deno.env.get(spec.envVar) !== undefined) {
      return `${spec.envVar} (check it, or unset it to be asked on the terminal)`;
    }
  } catch { /* not UTF-8: readSecret reports it */ }
  return null;
}

/** How many times a terminal user may retype a wrong passphrase or PIN. */
export const TTY_TRIES = 3;

/**
 * Run `use` with a secret, and when the secret was typed at the terminal and `use` rejects it
 * (`isWrong`), say so and ask again, up to {@link TTY_TRIES} times in all. A secret from a flag,
 * a file, a descriptor or the environment gets one try.
 */
async function withSecret<T>(
  spec: SecretSpec,
  confirm: boolean,
  use: (secret: string) => Promise<T>,
  isWrong: (e: unknown) => boolean,
  wrongLine: string,
): Promise<T> {
  // wrongLine is what the user is told before being asked again
  const tries = willPrompt(spec) && hasTty() ? TTY_TRIES : 1;
  for (let i = 1;; i++) {
    const secret = nonEmpty(await readSecret(spec, confirm), spec);
    try {
      return await use(secret);
    } catch (e) {
      if (i >= tries && isWrong(e) && e instanceof CipherpostError && !e.hint) {
        // the same line for every credential failure (oracle rule), and where the secret came
        // from, which the user may not have in mind (an old CIPHERPOST_PASSPHRASE)
        const from = sourceOf(spec);
        if (from) {
          throw new CipherpostError(e.kind, e.message, `the ${spec.label} came from ${from}`);
        }
      }
      if (i >= tries || !isWrong(e)) throw e;
      ttyWrite(
        `${wrongLine}; try again (${tries - i} ${tries - i === 1 ? "try" : "tries"} left)\n`,
      );
    }
  }
}

function passphraseSpec(opts: PassphraseOptions): SecretSpec {
  return {
    inline: opts.passphrase,
    fd: opts.passphraseFd,
    file: opts.passphraseFile,
    envVar: "CIPHERPOST_PASSPHRASE",
    prompt: "Cipherpost passphrase",
    label: "passphrase",
    flags: { fd: "--passphrase-fd", file: "--passphrase-file", inline: "--passphrase" },
  };
}

/**
 * Unlock something with the passphrase: `use` is retried on a terminal while it throws the
 * credential-lane error (`kind === "decrypt"`), up to three tries in all.
 */
export async function retryPassphrase<T>(
  opts: PassphraseOptions,
  use: (passphrase: string) => Promise<T>,
): Promise<T> {
  return await withSecret(
    passphraseSpec(opts),
    false,
    use,
    (e) => e instanceof CipherpostError && e.kind === "decrypt",
    "wrong passphrase",
  );
}

/**
 * Obtain a passphrase. With `confirm`, a TTY prompt asks twice and re-prompts on mismatch (used
 * when creating an identity). The value never leaves this process except as KDF input.
 */
export async function getPassphrase(opts: PassphraseOptions, confirm = false): Promise<string> {
  const spec = passphraseSpec(opts);
  return nonEmpty(await readSecret(spec, confirm), spec);
}

/** The PIN options a command accepts (never in argv). */
export interface PinOptions {
  pin?: string;
  pinFd?: number;
  pinFile?: string;
}

const WEAK_PINS = new Set([
  "password",
  "qwerty",
  "letmein",
  "12345678",
  "87654321",
  "qwertyui",
  "asdfghjk",
]);

/** The PIN rules, as stated in the error that rejects a PIN. */
export const PIN_RULES =
  "at least 8 characters, not all the same character, not a run such as 12345678 or " +
  "abcdefgh (or the reverse), and not a common word such as password or qwerty";

/**
 * v1.1's PIN rules: ≥ 8 code points, not all the same, not a +1/−1 run, not a common word.
 * Every failure gives the same message (exit 1), which states the rules.
 */
export function validatePin(pin: string): void {
  const cps = [...pin].map((c) => c.codePointAt(0)!);
  const fail = () =>
    configError("PIN does not meet entropy requirements", `a PIN needs ${PIN_RULES}`);
  if (cps.length < 8) throw fail();
  if (cps.every((c) => c === cps[0])) throw fail();
  if (cps.every((c, i) => i === 0 || c === cps[i - 1] + 1)) throw fail();
  if (cps.every((c, i) => i === 0 || c === cps[i - 1] - 1)) throw fail();
  if (WEAK_PINS.has(pin.toLowerCase())) throw fail();
}

function pinSpec(opts: PinOptions): SecretSpec {
  return {
    inline: opts.pin,
    fd: opts.pinFd,
    file: opts.pinFile,
    envVar: "CIPHERPOST_PIN",
    prompt: "Share PIN",
    label: "PIN",
    flags: { fd: "--pin-fd", file: "--pin-file", inline: "--pin-value" },
  };
}

/**
 * Obtain and validate a PIN: `--pin-fd`, `--pin-file`, `CIPHERPOST_PIN`, or a terminal prompt.
 * At the prompt, a PIN that breaks the rules is explained and asked again (three tries in all).
 */
export async function getPin(opts: PinOptions, confirm: boolean): Promise<string> {
  return await withSecret(
    pinSpec(opts),
    confirm,
    (pin) => {
      validatePin(pin);
      return Promise.resolve(pin);
    },
    (e) => e instanceof CipherpostError && e.message.includes("PIN does not meet"),
    `PIN rejected: a PIN needs ${PIN_RULES}`,
  );
}

/** True when the PIN would be typed at a terminal (so a wrong one may be retyped). */
export function pinIsPrompted(opts: PinOptions): boolean {
  return willPrompt(pinSpec(opts)) && hasTty();
}
