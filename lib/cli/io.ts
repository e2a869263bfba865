/**
 * Where the CLI reads and writes: the {@link Io} seam (results on stdout, progress and errors on
 * stderr) and standard input read whole. Prompts are lib/cli/tty.ts.
 *
 * @module
 */

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

/** All of standard input. */
export async function readAllStdin(): Promise<Uint8Array> {
  return new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
}

/** Write all of `b` to stdout. */
export async function writeAllStdout(b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await Deno.stdout.write(b.subarray(off));
}
