/**
 * Reading input of bounded size: at most `cap + 1` bytes are ever read (from a file, a device,
 * a pipe or standard input), then the input is refused. `/dev/zero`, a sparse multi-GiB file
 * or an endless pipe cost `cap` bytes of memory, not all of them.
 *
 * @module
 */

import { CipherpostError } from "./errors.ts";

/** The error for input over `cap` bytes. */
export function tooLarge(cap: number, what = "input"): CipherpostError {
  return new CipherpostError(
    "too_large",
    `payload exceeds 64 KB limit: ${what} is larger than ${cap} bytes`,
    "send a smaller file (a larger one does not fit a share)",
  );
}

/**
 * All bytes of `stream` when there are at most `cap`; cancels the stream and throws
 * `too_large` as soon as byte `cap + 1` arrives.
 */
export async function readStreamCapped(
  stream: ReadableStream<Uint8Array>,
  cap: number,
  what?: string,
): Promise<Uint8Array> {
  const reader = stream.getReader();
  const out = new Uint8Array(cap + 1);
  let n = 0;
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      if (n + value.length > cap) {
        await reader.cancel().catch(() => {});
        throw tooLarge(cap, what);
      }
      out.set(value, n);
      n += value.length;
    }
  } finally {
    reader.releaseLock();
  }
  return out.slice(0, n);
}

/**
 * The bytes of the file at `path` (any kind: regular, device, FIFO) when there are at most
 * `cap`. A directory, a missing or an unreadable file is an `io` error naming the path.
 */
export async function readFileCapped(
  path: string,
  cap: number,
  what?: string,
): Promise<Uint8Array> {
  let f: Deno.FsFile;
  try {
    const st = await Deno.stat(path);
    if (st.isDirectory) {
      throw new CipherpostError(
        "io",
        `io error: ${path} is a directory`,
        "give the path of a file",
      );
    }
    f = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof CipherpostError) throw e;
    const why = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : "cannot open it";
    throw new CipherpostError("io", `io error: cannot read ${path}: ${why}`);
  }
  const out = new Uint8Array(cap + 1);
  let n = 0;
  try {
    while (true) {
      let r: number | null;
      try {
        r = await f.read(out.subarray(n));
      } catch {
        throw new CipherpostError("io", `io error: cannot read ${path}`);
      }
      if (r === null) break;
      n += r;
      if (n > cap) throw tooLarge(cap, what);
    }
  } finally {
    f.close();
  }
  return out.slice(0, n);
}
