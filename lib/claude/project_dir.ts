/**
 * The name of a project's transcript folder under `projects/`, as Claude Code derives it from
 * the physical working directory (PROTOCOL.md §6, notes §2.2).
 *
 * @module
 */

/** Claude Code keeps this many characters of an encoded path before it appends a hash. */
export const MAX_ENCODED = 200;

/** Every UTF-16 code unit outside `[A-Za-z0-9]` becomes `-` (no collapsing, case kept). */
export function encodePath(path: string): string {
  return path.replace(/[^A-Za-z0-9]/g, "-");
}

/**
 * The 32-bit string hash Claude Code's standalone build uses for long names (Java's
 * `String.hashCode`), absolute value in base 36. Verified against Claude Code 2.1.328.
 */
export function longNameHash(path: string): string {
  let h = 0;
  for (let i = 0; i < path.length; i++) h = ((h << 5) - h + path.charCodeAt(i)) | 0;
  return Math.abs(h).toString(36);
}

/**
 * The folder name Claude Code would create for `path` (an absolute, physical path): the
 * encoding, or for encodings over 200 characters the first 200, `-` and {@link longNameHash}.
 */
export function projectDirName(path: string): string {
  const enc = encodePath(path);
  if (enc.length <= MAX_ENCODED) return enc;
  return `${enc.slice(0, MAX_ENCODED)}-${longNameHash(path)}`;
}

/**
 * The folder to use for `path` in `projectsRoot`: for long names, an existing folder that
 * starts with the same 200 characters wins (builds differ in their hash), else the computed
 * name. Returns the folder name, not the full path.
 */
export async function findProjectDirName(projectsRoot: string, path: string): Promise<string> {
  const computed = projectDirName(path);
  const enc = encodePath(path);
  if (enc.length <= MAX_ENCODED) return computed;
  const prefix = `${enc.slice(0, MAX_ENCODED)}-`;
  const matches: string[] = [];
  try {
    for await (const e of Deno.readDir(projectsRoot)) {
      if (e.isDirectory && e.name.startsWith(prefix)) matches.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (matches.includes(computed) || matches.length === 0) return computed;
  return matches.sort()[0];
}
