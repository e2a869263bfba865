/**
 * Where the CLI reads and writes: the {@link Io} seam (results on stdout, progress and errors on
 * stderr) and standard input read whole. Prompts are lib/cli/tty.ts.
 *
 * @module
 */

import { fstatSync } from "node:fs";
import { CipherpostError } from "../util/errors.ts";
import { readStreamCapped } from "../util/bounded_read.ts";

/** Where the CLI writes; tests may substitute. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

/** The process's stdout and stderr. */
export const defaultIo: Io = {
  out: (t) => Deno.stdout.writeSync(new TextEncoder().encode(t)),
  err: (t) => Deno.stderr.writeSync(new TextEncoder().encode(t)),
};

/** Largest receipt file or import input read (more is refused, not read). */
export const SMALL_INPUT_CAP = 1 << 20;

/** All of standard input, when it has at most `cap` bytes (at most `cap + 1` are read). */
export async function readAllStdin(cap = SMALL_INPUT_CAP): Promise<Uint8Array> {
  return await readStreamCapped(Deno.stdin.readable, cap, "standard input");
}

/**
 * Standard output must be able to take the material: a closed descriptor (which the runtime
 * turns into /dev/null) would accept the write and lose it, and burn a burn share.
 */
export function checkStdout(): void {
  let st;
  try {
    st = fstatSync(1);
  } catch {
    return; // cannot tell (another platform): the write itself reports errors
  }
  if (st.isCharacterDevice() && st.rdev === 259) {
    throw new CipherpostError(
      "io",
      "io error: standard output is closed or /dev/null: the material would be lost",
      "receive with -o <file>, or redirect standard output to where it should go",
    );
  }
}

/** Write all of `b` to stdout. */
export async function writeAllStdout(b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await Deno.stdout.write(b.subarray(off));
}
