/**
 * The file-system side of directory transfers (docs/PROTOCOL.md §5.4): write a tree as a tar
 * stream into a file, and extract a tar stream into a fresh directory, refusing every unsafe
 * entry. The codec is `lib/material/tar.ts`.
 *
 * @module
 */

import {
  encodeTarHeader,
  readTar,
  TAR_END,
  type TarEntry,
  tarPadding,
} from "../../material/tar.ts";
import { MAX_TOP_ENTRIES } from "../../protocol/large_manifest.ts";

/** What a written tree contained. */
export interface TreeSummary {
  /** bytes of tar written */
  size: number;
  fileCount: number;
  topEntries: string[];
}

async function writeAll(f: Deno.FsFile, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await f.write(b.subarray(off));
}

/**
 * Write the tree under `root` as tar into `out` (entries depth-first in byte order of names;
 * symbolic links as links; other special files skipped with a `warn`).
 */
export async function writeTreeTar(
  root: string,
  out: Deno.FsFile,
  warn: (line: string) => void,
): Promise<TreeSummary> {
  const s: TreeSummary = { size: 0, fileCount: 0, topEntries: [] };
  const put = async (b: Uint8Array) => {
    await writeAll(out, b);
    s.size += b.length;
  };
  const walk = async (dir: string, rel: string) => {
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (rel === "") s.topEntries = names.slice(0, MAX_TOP_ENTRIES);
    for (const name of names) {
      const abs = `${dir}/${name}`;
      const path = rel === "" ? name : `${rel}/${name}`;
      const st = await Deno.lstat(abs);
      const mtime = Math.floor((st.mtime?.getTime() ?? 0) / 1000);
      const mode = (st.mode ?? 0o644) & 0o777;
      let e: TarEntry;
      if (st.isSymlink) {
        e = { path, type: "symlink", mode, size: 0, mtime, linkname: await Deno.readLink(abs) };
        await put(encodeTarHeader(e));
      } else if (st.isDirectory) {
        await put(encodeTarHeader({ path, type: "dir", mode, size: 0, mtime }));
        await walk(abs, path);
      } else if (st.isFile) {
        const f = await Deno.open(abs, { read: true });
        try {
          const size = (await f.stat()).size;
          await put(encodeTarHeader({ path, type: "file", mode, size, mtime }));
          let n = 0;
          for await (const c of f.readable) {
            if (n + c.length > size) throw new Error(`${path} grew while being read`);
            await writeAll(out, c);
            n += c.length;
          }
          if (n !== size) throw new Error(`${path} shrank while being read`);
          s.size += n;
          await put(tarPadding(size));
          s.fileCount++;
        } finally {
          try {
            f.close();
          } catch { /* readable closed it */ }
        }
      } else {
        warn(`warning: skipping ${path}: not a file, directory or symbolic link`);
      }
    }
  };
  await walk(root, "");
  await put(TAR_END);
  return s;
}

/**
 * The permission bits the process umask lets through, found by creating a file in `dir` with
 * 0o777 (reading the umask itself needs `--allow-sys`, which cipherpost does not ask for).
 */
async function umaskKeeps(dir: string): Promise<number> {
  const probe = `${dir}/.cipherpost-umask-probe`;
  const f = await Deno.open(probe, { write: true, createNew: true, mode: 0o777 });
  f.close();
  try {
    return (await Deno.stat(probe)).mode ?? 0o777;
  } finally {
    await Deno.remove(probe);
  }
}

/**
 * Extract a tar stream into `dest`, which must not exist (it is created 0700). Refuses (throws
 * a plain Error) duplicate entries, entries below a symbolic link of the archive, and anything
 * the codec refuses; on failure `dest` is removed again. Modes are the entries' permission bits
 * masked by the receiver's umask, as `tar` gives them to a non-root user: files are created
 * with them, directories (0700 while being filled) get them at the end. A directory entry that
 * comes after the entries below it (`a/b`, then `a`) is accepted and only sets its mode.
 */
export async function extractTar(
  stream: ReadableStream<Uint8Array>,
  dest: string,
): Promise<{ fileCount: number }> {
  await Deno.mkdir(dest, { mode: 0o700 });
  try {
    return await extractInto(stream, dest);
  } catch (e) {
    await Deno.remove(dest, { recursive: true }).catch(() => {});
    throw e;
  }
}

async function extractInto(
  stream: ReadableStream<Uint8Array>,
  dest: string,
): Promise<{ fileCount: number }> {
  const mask = (await umaskKeeps(dest)) & 0o777;
  let fileCount = 0;
  const seen = new Set<string>();
  /** folders made for the entries below them, not (yet) named by an entry of their own */
  const implied = new Set<string>();
  const links = new Set<string>();
  const dirModes: [string, number][] = [];
  for await (const { entry, body } of readTar(stream)) {
    const name = JSON.stringify(entry.path);
    if (seen.has(entry.path)) throw new Error(`duplicate entry ${name}`);
    const late = implied.has(entry.path);
    if (late && entry.type !== "dir") {
      throw new Error(`entry ${name} is a folder of earlier entries`);
    }
    seen.add(entry.path);
    implied.delete(entry.path);
    const parts = entry.path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join("/");
      if (links.has(prefix)) throw new Error(`entry below a symbolic link: ${name}`);
      if (!seen.has(prefix) && !implied.has(prefix)) {
        implied.add(prefix);
        await Deno.mkdir(`${dest}/${prefix}`, { mode: 0o700 });
      }
    }
    const abs = `${dest}/${entry.path}`;
    if (entry.type === "dir") {
      if (!late) await Deno.mkdir(abs, { mode: 0o700 });
      dirModes.push([abs, entry.mode]);
    } else if (entry.type === "symlink") {
      await Deno.symlink(entry.linkname ?? "", abs);
      links.add(entry.path);
    } else {
      // created with its mode, so the umask applies (the creating handle can write whatever it is)
      const f = await Deno.open(abs, { write: true, createNew: true, mode: entry.mode & 0o777 });
      try {
        for await (const c of body) await writeAll(f, c);
      } finally {
        f.close();
      }
      fileCount++;
    }
  }
  for (const [abs, mode] of dirModes.reverse()) await Deno.chmod(abs, mode & mask);
  return { fileCount };
}
