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
 * Extract a tar stream into `dest`, which must not exist (it is created 0700). Refuses (throws
 * a plain Error) duplicate entries, entries below a symbolic link of the archive, and anything
 * the codec refuses; on failure `dest` is removed again. Directory modes are applied last.
 */
export async function extractTar(stream: ReadableStream<Uint8Array>, dest: string): Promise<void> {
  await Deno.mkdir(dest, { mode: 0o700 });
  try {
    await extractInto(stream, dest);
  } catch (e) {
    await Deno.remove(dest, { recursive: true }).catch(() => {});
    throw e;
  }
}

async function extractInto(stream: ReadableStream<Uint8Array>, dest: string): Promise<void> {
  const seen = new Set<string>();
  const links = new Set<string>();
  const dirModes: [string, number][] = [];
  for await (const { entry, body } of readTar(stream)) {
    if (seen.has(entry.path)) throw new Error(`duplicate entry ${entry.path}`);
    seen.add(entry.path);
    const parts = entry.path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join("/");
      if (links.has(prefix)) throw new Error(`entry below a symbolic link: ${entry.path}`);
      if (!seen.has(prefix)) {
        seen.add(prefix);
        await Deno.mkdir(`${dest}/${prefix}`, { mode: 0o700 });
      }
    }
    const abs = `${dest}/${entry.path}`;
    if (entry.type === "dir") {
      await Deno.mkdir(abs, { mode: 0o700 });
      dirModes.push([abs, entry.mode]);
    } else if (entry.type === "symlink") {
      await Deno.symlink(entry.linkname ?? "", abs);
      links.add(entry.path);
    } else {
      const f = await Deno.open(abs, { write: true, createNew: true, mode: 0o600 });
      try {
        for await (const c of body) await writeAll(f, c);
      } finally {
        f.close();
      }
      await Deno.chmod(abs, entry.mode & 0o777);
    }
  }
  for (const [abs, mode] of dirModes.reverse()) await Deno.chmod(abs, mode & 0o777);
}
