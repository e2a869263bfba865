/**
 * Files that hold secrets or state: private folders, atomic writes (temp file created
 * exclusively with the final mode, fsync, rename), and mode checks.
 *
 * @module
 */

import { CipherpostError } from "./errors.ts";

/** Create a directory (and parents) and set it to 0700. */
export async function ensurePrivateDir(path: string): Promise<void> {
  await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  if (Deno.build.os !== "windows") await Deno.chmod(path, 0o700);
}

/** Temp files of {@link writeFileAtomic}: `.cipherpost-<8 hex>.tmp`, beside the target. */
const TEMP_RE = /^\.cipherpost-[0-9a-f]{8}\.tmp$/;

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

/**
 * Remove the temp files that a killed writer left in `dir`. A live writer holds an exclusive
 * lock on its temp file from creation to rename, so a temp file whose lock we can take belongs
 * to nobody. Best effort: what we cannot list, open or lock is left alone.
 */
export async function sweepStaleTemps(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  let names: string[];
  try {
    names = [];
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && TEMP_RE.test(e.name)) names.push(e.name);
    }
  } catch {
    return;
  }
  for (const name of names) {
    const p = `${dir}/${name}`;
    let f: Deno.FsFile;
    try {
      f = await Deno.open(p, { read: true });
    } catch {
      continue;
    }
    try {
      if (!await f.tryLock(true)) continue; // a live writer
      const [held, now] = [await f.stat(), await Deno.lstat(p).catch(() => null)];
      if (now && now.ino === held.ino && now.dev === held.dev) await Deno.remove(p).catch(() => {});
    } catch {
      /* leave it */
    } finally {
      f.close();
    }
  }
}

/** Create and lock a fresh temp file in `dir` (see {@link sweepStaleTemps}). */
async function createTemp(dir: string, mode: number): Promise<{ f: Deno.FsFile; tmp: string }> {
  for (let attempt = 0;; attempt++) {
    const suffix = Array.from(
      crypto.getRandomValues(new Uint8Array(4)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    const tmp = `${dir}/.cipherpost-${suffix}.tmp`;
    const f = await Deno.open(tmp, { write: true, createNew: true, mode });
    if (Deno.build.os === "windows") return { f, tmp };
    await f.lock(true);
    // a sweeper may have taken the file between create and lock: then start again
    const [mine, named] = [await f.stat(), await Deno.lstat(tmp).catch(() => null)];
    if (named && named.ino === mine.ino && named.dev === mine.dev) return { f, tmp };
    f.close();
    if (attempt >= 3) throw new Deno.errors.NotFound(`temp file ${tmp} vanished`);
  }
}

/**
 * Write `data` (bytes, or chunks streamed in) to `path` atomically: a temp file beside it (`.cipherpost-<8 hex>.tmp`, short
 * whatever the target's name, locked while in use) is created exclusively with `mode`, written,
 * fsynced and renamed over `path`. A crash leaves either the old file or the new one, never a
 * partial file; the temp file is removed on failure, and one left by a killed process is
 * removed by the next write into that directory.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | AsyncIterable<Uint8Array>,
  mode = 0o600,
): Promise<void> {
  const dir = dirOf(path);
  await sweepStaleTemps(dir);
  const { f, tmp } = await createTemp(dir, mode);
  try {
    for await (const c of data instanceof Uint8Array ? [data] : data) {
      let off = 0;
      while (off < c.length) off += await f.write(c.subarray(off));
    }
    await f.sync();
    if (Deno.build.os !== "windows") await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, path);
    f.close();
  } catch (e) {
    try {
      f.close();
    } catch { /* already closed */ }
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** The permission bits of a file, or null where the platform has none (Windows). */
export async function fileMode(path: string): Promise<number | null> {
  const st = await Deno.stat(path);
  return st.mode === null ? null : st.mode & 0o777;
}

/** True when a path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Check an output path before anything is decrypted or shown: it must not exist, or (with
 * `force`) be a regular file. A directory, a symbolic link, a device, a FIFO or a socket is
 * refused with a message saying what to do instead (replacing such a node would break it:
 * think of `/dev/null` as root).
 *
 * @throws CipherpostError("config") for every refusal
 */
export async function checkOutputTarget(path: string, force: boolean): Promise<void> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      const dir = dirOf(path);
      try {
        if (!(await Deno.stat(dir)).isDirectory) throw new Error("not a directory");
      } catch {
        throw new CipherpostError(
          "config",
          `cannot write ${path}: ${dir} is not a directory`,
        );
      }
      return;
    }
    const cause = localIoCause(e);
    throw new CipherpostError("io", `io error: cannot check ${path}${cause ? `: ${cause}` : ""}`);
  }
  if (st.isDirectory) {
    throw new CipherpostError(
      "config",
      `cannot write ${path}: it is a directory`,
      "give a file name inside it, e.g. -o " + `${path.replace(/\/+$/, "")}/secret`,
    );
  }
  if (st.isSymlink) {
    throw new CipherpostError(
      "config",
      `cannot write ${path}: it is a symbolic link (refusing to write through or over it)`,
      "give the real path of a regular file, or -o - for standard output",
    );
  }
  if (!st.isFile) {
    throw new CipherpostError(
      "config",
      `cannot write ${path}: it is not a regular file (a device, FIFO or socket)`,
      "write to a regular file, or use -o - and redirect standard output",
    );
  }
  if (!force) {
    throw new CipherpostError(
      "config",
      `cannot write ${path}: it already exists (refusing to overwrite it)`,
      "choose another path, or pass --force",
    );
  }
}

/**
 * Write an output file atomically, as {@link writeFileAtomic}, without a gap between the check
 * and the write: without `force` the file appears by `link()` (which fails if anything exists
 * at `path` by then), with `force` only a regular file is replaced (checked just before the
 * rename, which replaces the directory entry and never writes into another node).
 */
export async function writeOutputFile(
  path: string,
  data: Uint8Array,
  force: boolean,
): Promise<void> {
  const dir = dirOf(path);
  await sweepStaleTemps(dir);
  const { f, tmp } = await createTemp(dir, 0o600);
  try {
    let off = 0;
    while (off < data.length) off += await f.write(data.subarray(off));
    await f.sync();
    if (Deno.build.os !== "windows") await Deno.chmod(tmp, 0o600);
    if (force) {
      await checkOutputTarget(path, true);
      await Deno.rename(tmp, path);
    } else {
      try {
        await Deno.link(tmp, path);
      } catch (e) {
        if (e instanceof Deno.errors.AlreadyExists) await checkOutputTarget(path, false);
        throw e;
      }
      await Deno.remove(tmp);
    }
    f.close();
  } catch (e) {
    try {
      f.close();
    } catch { /* already closed */ }
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** File-system error codes that are the local machine's condition, not the data's. */
const LOCAL_IO_CAUSES: Record<string, string> = {
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  EFBIG: "file too large for the file system",
  ENAMETOOLONG: "file name too long",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  EMFILE: "too many open files",
  ENFILE: "too many open files",
  EIO: "input/output error",
};

/**
 * What a file-system error says of this machine (no space, a name too long for its file system,
 * no permission, …), for a message; null for any other error (e.g. a format error, or EEXIST).
 */
export function localIoCause(e: unknown): string | null {
  const code = (e as { code?: unknown } | null)?.code;
  if (e instanceof Deno.errors.PermissionDenied && typeof code !== "string") {
    return LOCAL_IO_CAUSES.EACCES;
  }
  return typeof code === "string" && Object.hasOwn(LOCAL_IO_CAUSES, code)
    ? `${LOCAL_IO_CAUSES[code]} (${code})`
    : null;
}
