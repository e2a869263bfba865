/**
 * The terminal, for prompts. Like age, ssh and gpg, a prompt does not need stdin:
 * `printf secret | cipherpost send … -` at a terminal still asks for the passphrase there while
 * the material comes through the pipe. Deno's sandbox opens `/dev/tty` only under `--allow-all`,
 * which this program never has, so the terminal is found on the standard descriptors instead:
 * stdin when it is a terminal, else stderr (a terminal's descriptor is readable too, as `less`
 * and `more` use it). Without either, there is no terminal to prompt on.
 *
 * @module
 */

import tty from "node:tty";
import { CipherpostError, configError } from "../util/errors.ts";

const enc = new TextEncoder();

/** The user pressed Ctrl-C (or Ctrl-D on an empty line) at a prompt. */
export function interruptedError(): CipherpostError {
  return new CipherpostError("interrupted", "interrupted");
}

/** Byte-wise access to the terminal. */
interface TtyReader {
  readByte(): Promise<number | null>;
  setRaw(on: boolean): void;
  close(): void;
}

function isTerminal(f: { isTerminal(): boolean }): boolean {
  try {
    return f.isTerminal();
  } catch {
    return false;
  }
}

function stdinReader(): TtyReader {
  const buf = new Uint8Array(1);
  return {
    async readByte() {
      const n = await Deno.stdin.read(buf);
      return n === null || n === 0 ? null : buf[0];
    },
    setRaw: (on) => Deno.stdin.setRaw(on),
    close() {},
  };
}

/** The terminal behind stderr, read through node:tty (Deno's own API cannot read fd 2). */
function stderrReader(): TtyReader {
  const s = new tty.ReadStream(2);
  const queue: number[] = [];
  let wake: (() => void) | null = null;
  let ended = false;
  s.on("data", (d: Uint8Array) => {
    for (const b of d) queue.push(b);
    wake?.();
  });
  const stop = () => {
    ended = true;
    wake?.();
  };
  s.on("end", stop);
  s.on("error", stop);
  return {
    async readByte() {
      while (queue.length === 0 && !ended) await new Promise<void>((r) => (wake = r));
      wake = null;
      return queue.length ? queue.shift()! : null;
    },
    setRaw: (on) => void s.setRawMode(on),
    close: () => void s.destroy(),
  };
}

function openReader(): TtyReader | null {
  if (isTerminal(Deno.stdin)) return stdinReader();
  if (isTerminal(Deno.stderr)) return stderrReader();
  return null;
}

/** True when stderr is a terminal (progress bars, next steps, QR codes). */
export function isStderrTty(): boolean {
  return isTerminal(Deno.stderr);
}

/** True when a prompt can be shown (stdin or stderr is a terminal). */
export function hasTty(): boolean {
  return isTerminal(Deno.stdin) || isTerminal(Deno.stderr);
}

/** Write prompt-related text where prompts go (stderr). */
export function ttyWrite(text: string): void {
  Deno.stderr.writeSync(enc.encode(text));
}

/**
 * Show `prompt` and read one line from the terminal. `hidden` turns echo off (raw mode;
 * Backspace edits, Ctrl-U clears, Ctrl-C interrupts). Returns the line's bytes without its end.
 *
 * @throws CipherpostError("config") when there is no terminal; interruptedError on Ctrl-C.
 */
export async function ttyReadLine(
  prompt: string,
  hidden: boolean,
  what: string,
): Promise<Uint8Array> {
  const r = openReader();
  if (!r) {
    throw configError(
      `no terminal to ask for the ${what} on`,
      what === "PIN"
        ? "give it with --pin-file, --pin-fd or CIPHERPOST_PIN"
        : what === "passphrase"
        ? "give it with --passphrase-file, --passphrase-fd or CIPHERPOST_PASSPHRASE"
        : undefined,
    );
  }
  const bytes: number[] = [];
  try {
    ttyWrite(prompt);
    if (!hidden) {
      while (true) {
        const c = await r.readByte();
        if (c === null) {
          if (bytes.length === 0) throw interruptedError();
          break;
        }
        if (c === 10) break;
        bytes.push(c);
      }
      if (bytes.length && bytes[bytes.length - 1] === 13) bytes.pop();
      return new Uint8Array(bytes);
    }
    r.setRaw(true);
    try {
      while (true) {
        const c = await r.readByte();
        if (c === null || c === 13 || c === 10) break;
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
      r.setRaw(false);
      ttyWrite("\n");
    }
    return new Uint8Array(bytes);
  } finally {
    r.close();
  }
}
