/**
 * The controlling terminal, for prompts. Like age, ssh and gpg, prompts read and write
 * `/dev/tty` rather than stdin/stderr, so `printf secret | cipherpost send … -` at a terminal
 * still asks for the passphrase there while the material comes through the pipe.
 *
 * @module
 */

import { CipherpostError, configError } from "../util/errors.ts";

const enc = new TextEncoder();

/** The user pressed Ctrl-C (or Ctrl-D on an empty line) at a prompt. */
export function interruptedError(): CipherpostError {
  return new CipherpostError("declined", "interrupted");
}

/** The terminal, open for reading and writing; null when the process has none. */
export function openTty(): Deno.FsFile | null {
  if (Deno.build.os === "windows") return null;
  try {
    const f = Deno.openSync("/dev/tty", { read: true, write: true });
    if (!f.isTerminal()) {
      f.close();
      return null;
    }
    return f;
  } catch {
    return null;
  }
}

/** True when a prompt can be shown (the process has a controlling terminal). */
export function hasTty(): boolean {
  const f = openTty();
  if (!f) return false;
  f.close();
  return true;
}

/** Write a line of text to the terminal (for prompt-related messages). */
export function ttyWrite(text: string): void {
  const f = openTty();
  if (!f) {
    Deno.stderr.writeSync(enc.encode(text));
    return;
  }
  try {
    f.writeSync(enc.encode(text));
  } finally {
    f.close();
  }
}

/**
 * Show `prompt` on the terminal and read one line. `hidden` turns echo off (raw mode; Backspace
 * edits, Ctrl-C and Ctrl-U work). Returns the bytes of the line without its end.
 *
 * @throws CipherpostError("config") when there is no terminal; interruptedError on Ctrl-C.
 */
export async function ttyReadLine(
  prompt: string,
  hidden: boolean,
  what: string,
): Promise<Uint8Array> {
  const f = openTty();
  if (!f) {
    throw configError(
      `no terminal to ask for the ${what} on`,
      what === "PIN"
        ? "give it with --pin-file, --pin-fd or CIPHERPOST_PIN"
        : "give it with --passphrase-file, --passphrase-fd or CIPHERPOST_PASSPHRASE",
    );
  }
  const bytes: number[] = [];
  const buf = new Uint8Array(1);
  try {
    await f.write(enc.encode(prompt));
    if (!hidden) {
      while (true) {
        const n = await f.read(buf);
        if (n === null) {
          if (bytes.length === 0) throw interruptedError();
          break;
        }
        if (buf[0] === 10) break;
        bytes.push(buf[0]);
      }
      if (bytes.length && bytes[bytes.length - 1] === 13) bytes.pop();
      return new Uint8Array(bytes);
    }
    f.setRaw(true);
    try {
      while (true) {
        const n = await f.read(buf);
        if (n === null) break;
        const c = buf[0];
        if (c === 13 || c === 10) break;
        if (c === 3) throw interruptedError();
        if (c === 4 && bytes.length === 0) throw interruptedError();
        if (c === 21) {
          bytes.length = 0;
          continue;
        }
        if (c === 127 || c === 8) {
          // drop one UTF-8 character, not one byte
          while (bytes.length && (bytes[bytes.length - 1] & 0xc0) === 0x80) bytes.pop();
          bytes.pop();
          continue;
        }
        bytes.push(c);
      }
    } finally {
      f.setRaw(false);
      await f.write(enc.encode("\n"));
    }
    return new Uint8Array(bytes);
  } finally {
    f.close();
  }
}
