/**
 * The paths a file drop refuses (docs/PROTOCOL.md §9.8): key folders, credential files and
 * secret-looking names, as cc-connect's drop blocklist, plus the cipherpost home. One table, one
 * pure function; the caller checks the path as given and after resolving symbolic links.
 *
 * @module
 */

/** A folder whose contents are refused, matched as a run of path components anywhere. */
const FOLDERS: readonly (readonly string[])[] = [
  [".ssh"],
  [".aws"],
  [".gnupg"],
  [".kube"],
  [".docker"],
  [".azure"],
  [".password-store"],
  [".config", "gcloud"],
  [".config", "gh"],
  [".git"],
];

/** Whole file names refused. */
const NAMES: readonly string[] = [
  ".netrc",
  ".npmrc",
  ".pypirc",
  ".git-credentials",
  ".credentials.json",
  "credentials",
];

/** File name endings refused. */
const ENDINGS: readonly string[] = [".pem", ".key", ".p12", ".pfx", ".kdbx", ".gpg"];

function components(p: string): string[] {
  return p.split("/").filter((c) => c !== "" && c !== ".");
}

function startsWithRun(parts: string[], run: readonly string[], at: number): boolean {
  return run.every((c, k) => parts[at + k] === c);
}

/**
 * Why `path` must not be dropped, or null when it may. `path` is absolute; `protectedDirs` are
 * further absolute folders whose contents are refused (the cipherpost home). Checks the path as
 * written: call it for the path given and for its real path (symbolic links resolved).
 *
 * Refused: anything inside a folder of the table (a component `.ssh`, `.aws`, `.gnupg`, `.kube`,
 * `.docker`, `.azure`, `.password-store`, `.git`, or `.config/gcloud`, `.config/gh`, anywhere in
 * the path) or inside a protected folder; a file named `.env*`, `id_*`, `.netrc`,
 * `.npmrc`, `.pypirc`, `.git-credentials`, `.credentials.json` or `credentials`; a name ending
 * in `.pem`, `.key`, `.p12`, `.pfx`, `.kdbx` or `.gpg`.
 *
 * @param path an absolute path
 * @param protectedDirs absolute folders refused as a whole
 * @returns a short reason naming the rule (no secret), or null
 */
export function sensitivePathReason(
  path: string,
  protectedDirs: readonly string[] = [],
): string | null {
  const parts = components(path);
  for (const dir of protectedDirs) {
    const d = components(dir);
    if (d.length > 0 && startsWithRun(parts, d, 0)) return "it is inside the cipherpost home";
  }
  for (const run of FOLDERS) {
    for (let i = 0; i + run.length <= parts.length; i++) {
      if (startsWithRun(parts, run, i)) return `it is inside a ${run.join("/")} folder`;
    }
  }
  const name = parts.at(-1) ?? "";
  const lower = name.toLowerCase();
  if (lower.startsWith(".env")) return "its name is that of an env file (.env*)";
  if (lower.startsWith("id_")) return "its name is that of a private key (id_*)";
  if (NAMES.includes(lower)) return `its name is that of a credentials file (${lower})`;
  for (const end of ENDINGS) {
    if (lower.endsWith(end)) return `its name ends in ${end} (keys and certificates)`;
  }
  return null;
}
