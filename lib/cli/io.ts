/**
 * Where the CLI reads and writes: the {@link Io} seam (results on stdout, progress and errors on
 * stderr), standard input read whole, and one typed line from the terminal.
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

/** One line typed on the terminal after a `> ` prompt on stderr; null on end of input. */
export async function readLineFromTty(): Promise<string | null> {
  await Deno.stderr.write(new TextEncoder().encode("> "));
  const buf = new Uint8Array(1);
  const bytes: number[] = [];
  while (true) {
    const n = await Deno.stdin.read(buf);
    if (n === null) return bytes.length ? new TextDecoder().decode(new Uint8Array(bytes)) : null;
    if (buf[0] === 10) break;
    bytes.push(buf[0]);
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
