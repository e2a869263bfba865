/**
 * Where a passphrase comes from (protocol digest §1.4, v1.1 contract): an inline argv value is
 * always refused; then `--passphrase-fd N`, `--passphrase-file PATH` (mode 0600/0400),
 * `CIPHERPOST_PASSPHRASE`, and finally a TTY prompt without echo.
 *
 * @module
 */

import { CipherpostError, configError } from "../util/errors.ts";
import { fileMode } from "../util/fsutil.ts";
import { readFileCapped } from "../util/bounded_read.ts";

/** Longest passphrase or PIN file read (more is refused, not read). */
const SECRET_FILE_CAP = 65536;

/** The passphrase options a command accepts. */
export interface PassphraseOptions {
  /** An inline value: always refused (it would sit in argv and shell history). */
  passphrase?: string;
  passphraseFd?: number;
  passphraseFile?: string;
}

function invalidInput(msg: string, hint?: string): CipherpostError {
  return new CipherpostError("passphrase_input", `invalid passphrase input: ${msg}`, hint);
}

/** Remove exactly one trailing `\r\n`, else one `\n`, else nothing. */
export function stripOneNewline(b: Uint8Array): Uint8Array {
  const n = b.length;
  if (n >= 2 && b[n - 2] === 13 && b[n - 1] === 10) return b.subarray(0, n - 2);
  if (n >= 1 && b[n - 1] === 10) return b.subarray(0, n - 1);
  return b;
}

function decodePassphrase(b: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(b);
  } catch {
    throw invalidInput("passphrase is not valid UTF-8");
  }
}

async function readLineFromFd(fd: number): Promise<Uint8Array> {
  // Deno's sandbox opens `/dev/fd/N` for pipes, but for a descriptor that is a regular file it
  // demands --allow-all, which this program never has. Say so precisely.
  let f: Deno.FsFile;
  try {
    f = await Deno.open(`/dev/fd/${fd}`, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) {
      throw configError(
        `file descriptor ${fd} is a regular file, which the sandbox cannot open by number`,
        `use --passphrase-file <path> for files; --passphrase-fd takes a pipe, e.g. --passphrase-fd 3 3< <(pass show cipherpost)`,
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

/** Read a line from the terminal without echo. */
export async function promptHidden(prompt: string): Promise<string> {
  if (!Deno.stdin.isTerminal()) {
    throw configError("TTY not available for passphrase prompt");
  }
  await Deno.stderr.write(new TextEncoder().encode(`${prompt}: `));
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  const buf = new Uint8Array(1);
  try {
    while (true) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      const c = buf[0];
      if (c === 13 || c === 10) break;
      if (c === 3) throw new CipherpostError("declined", "interrupted");
      if (c === 127 || c === 8) {
        bytes.pop();
        continue;
      }
      bytes.push(c);
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(new TextEncoder().encode("\n"));
  }
  return decodePassphrase(new Uint8Array(bytes));
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
      `the ${spec.label} is empty`,
      `give a non-empty ${spec.label} (${spec.flags.file}, ${spec.flags.fd}, ${spec.envVar} or the prompt)`,
    );
  }
  return secret;
}

async function readSecret(spec: SecretSpec, confirm: boolean): Promise<string> {
  const { flags, label } = spec;
  if (spec.inline !== undefined) {
    throw invalidInput(
      "inline argv rejected",
      `use ${flags.file}, ${flags.fd} or ${spec.envVar}`,
    );
  }
  if (spec.fd !== undefined && spec.file !== undefined) {
    throw configError(`${flags.fd} and ${flags.file} are mutually exclusive`);
  }
  if (spec.fd !== undefined) {
    const fd = spec.fd;
    if (!Number.isInteger(fd) || fd < 0) {
      throw configError(`${flags.fd} takes a file descriptor number`);
    }
    if (fd === 0) {
      throw configError(
        `${flags.fd} 0 is not allowed (stdin carries data)`,
        `use another descriptor, e.g. ${flags.fd} 3 3< <(pass show cipherpost)`,
      );
    }
    return decodePassphrase(stripOneNewline(await readLineFromFd(fd)));
  }
  if (spec.file !== undefined) {
    const path = spec.file;
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
    return decodePassphrase(stripOneNewline(bytes));
  }
  let env: string | undefined;
  try {
    env = Deno.env.get(spec.envVar);
  } catch {
    throw invalidInput(`${spec.envVar} is not valid UTF-8`);
  }
  if (env !== undefined) return env;
  while (true) {
    const first = await promptHidden(spec.prompt);
    if (!confirm) return first;
    const second = await promptHidden(`Confirm ${label}`);
    if (first === second) return first;
    await Deno.stderr.write(new TextEncoder().encode(`${label}s do not match; try again\n`));
  }
}

/**
 * Obtain a passphrase. With `confirm`, a TTY prompt asks twice and re-prompts on mismatch (used
 * when creating an identity). The value never leaves this process except as KDF input.
 */
export async function getPassphrase(opts: PassphraseOptions, confirm = false): Promise<string> {
  const spec: SecretSpec = {
    inline: opts.passphrase,
    fd: opts.passphraseFd,
    file: opts.passphraseFile,
    envVar: "CIPHERPOST_PASSPHRASE",
    prompt: "Cipherpost passphrase",
    label: "passphrase",
    flags: { fd: "--passphrase-fd", file: "--passphrase-file", inline: "--passphrase" },
  };
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

/**
 * v1.1's PIN rules: ≥ 8 code points, not all the same, not a +1/−1 run, not a common word.
 * Every failure gives the same message (exit 1).
 */
export function validatePin(pin: string): void {
  const cps = [...pin].map((c) => c.codePointAt(0)!);
  const fail = () => configError("PIN does not meet entropy requirements");
  if (cps.length < 8) throw fail();
  if (cps.every((c) => c === cps[0])) throw fail();
  if (cps.every((c, i) => i === 0 || c === cps[i - 1] + 1)) throw fail();
  if (cps.every((c, i) => i === 0 || c === cps[i - 1] - 1)) throw fail();
  if (WEAK_PINS.has(pin.toLowerCase())) throw fail();
}

/** Obtain and validate a PIN: `--pin-fd`, `--pin-file`, `CIPHERPOST_PIN`, or a TTY prompt. */
export async function getPin(opts: PinOptions, confirm: boolean): Promise<string> {
  const pin = await readSecret({
    inline: opts.pin,
    fd: opts.pinFd,
    file: opts.pinFile,
    envVar: "CIPHERPOST_PIN",
    prompt: "Share PIN",
    label: "PIN",
    flags: { fd: "--pin-fd", file: "--pin-file", inline: "--pin-value" },
  }, confirm);
  validatePin(pin);
  return pin;
}
