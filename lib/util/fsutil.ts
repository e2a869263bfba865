/**
 * Files that hold secrets or state: the cipherpost home, atomic writes (temp file created
 * exclusively with the final mode, fsync, rename), and mode checks.
 *
 * @module
 */

import { CipherpostError } from "./errors.ts";

/** `$CIPHERPOST_HOME` verbatim if set, else `$HOME/.cipherpost`. */
export function cipherpostHome(): string {
  const explicit = Deno.env.get("CIPHERPOST_HOME");
  if (explicit) return explicit;
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  if (!home) {
    throw new CipherpostError(
      "config",
      "configuration error: neither CIPHERPOST_HOME nor HOME is set",
      "set CIPHERPOST_HOME to the folder that holds your identity",
    );
  }
  return `${home}/.cipherpost`;
}

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
 * Write `data` to `path` atomically: a temp file beside it (`.cipherpost-<8 hex>.tmp`, short
 * whatever the target's name, locked while in use) is created exclusively with `mode`, written,
 * fsynced and renamed over `path`. A crash leaves either the old file or the new one, never a
 * partial file; the temp file is removed on failure, and one left by a killed process is
 * removed by the next write into that directory.
 */
export async function writeFileAtomic(path: string, data: Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirOf(path);
  await sweepStaleTemps(dir);
  const { f, tmp } = await createTemp(dir, mode);
  try {
    let off = 0;
    while (off < data.length) off += await f.write(data.subarray(off));
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
