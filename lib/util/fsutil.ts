/**
 * Files that hold secrets or state: private folders, atomic writes (temp file created
 * exclusively with the final mode, fsync, rename), and mode checks.
 *
 * @module
 */

/** Create a directory (and parents) and set it to 0700. */
export async function ensurePrivateDir(path: string): Promise<void> {
  await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  if (Deno.build.os !== "windows") await Deno.chmod(path, 0o700);
}

/**
 * Write `data` to `path` atomically: a sibling temp file is created exclusively with `mode`,
 * written, fsynced and renamed over `path`. A crash leaves either the old file or the new one,
 * never a partial file. The temp file is removed on failure.
 */
export async function writeFileAtomic(path: string, data: Uint8Array, mode = 0o600): Promise<void> {
  const suffix = Array.from(
    crypto.getRandomValues(new Uint8Array(6)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const tmp = `${path}.tmp-${suffix}`;
  const f = await Deno.open(tmp, { write: true, createNew: true, mode });
  try {
    let off = 0;
    while (off < data.length) off += await f.write(data.subarray(off));
    await f.sync();
    f.close();
    if (Deno.build.os !== "windows") await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, path);
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
