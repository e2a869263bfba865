/**
 * Which session `claude send` means (issue 11, notes §1.3): `CLAUDE_CODE_SESSION_ID` when
 * given; else a live session of the registry `sessions/<pid>.json` whose `cwd` is at or below
 * the current directory; else the newest transcript active in the last 24 h whose first `cwd`
 * is at or below the current directory.
 *
 * @module
 */

import { CipherpostError } from "../util/errors.ts";
import { isSessionId, projectsDir, sessionsDir } from "./config.ts";
import type { SessionFiles } from "./bundle.ts";
import { firstCwdOfFile } from "./transcript.ts";

/** A transcript on this machine. */
export interface LocalSession extends SessionFiles {
  /** first recorded working directory, or null */
  cwd: string | null;
  /** last modification of the transcript */
  mtime: Date;
  /** bytes of the transcript */
  size: number;
}

/** How a session was chosen. */
export type PickReason = "argument" | "CLAUDE_CODE_SESSION_ID" | "live" | "recent";

/** The outcome of discovery. */
export interface Pick {
  /** the candidates, newest first (one for "argument" and the env variable) */
  candidates: LocalSession[];
  /** Why these candidates: named, from the environment, a live process, or recent. */
  reason: PickReason;
}

/** What discovery needs (the CLI passes env values in). */
export interface DiscoverOptions {
  /** Claude Code's config folder. */
  configDir: string;
  /** the current directory (physical) */
  cwd: string;
  /** SESSION_ID given on the command line */
  sessionId?: string;
  /** `$CLAUDE_CODE_SESSION_ID` */
  envSessionId?: string;
  /** The present moment (tests set it). */
  now?: Date;
  /** where process information lives (Linux `/proc`); tests may point elsewhere */
  procRoot?: string;
}

/** Only transcripts touched this recently count as "active" (cclink's rule). */
export const ACTIVE_MS = 24 * 3600 * 1000;

/** Every transcript under `projects/` (one level of project folders). */
export async function listSessions(configDir: string): Promise<LocalSession[]> {
  const root = projectsDir(configDir);
  const out: LocalSession[] = [];
  let folders: Deno.DirEntry[];
  try {
    folders = await Array.fromAsync(Deno.readDir(root));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return out;
    throw e;
  }
  for (const d of folders) {
    if (!d.isDirectory) continue;
    const folder = `${root}/${d.name}`;
    for await (const f of Deno.readDir(folder)) {
      if (!f.isFile || !f.name.endsWith(".jsonl")) continue;
      const id = f.name.slice(0, -6);
      if (!isSessionId(id)) continue;
      const transcript = `${folder}/${f.name}`;
      try {
        const st = await Deno.stat(transcript);
        out.push({
          sessionId: id,
          projectFolder: folder,
          transcript,
          sidecar: `${folder}/${id}`,
          cwd: await firstCwdOfFile(transcript),
          mtime: st.mtime ?? new Date(0),
          size: st.size,
        });
      } catch {
        // vanished or unreadable: not a candidate
      }
    }
  }
  return out.sort((a, b) => b.mtime.getTime() - a.mtime.getTime());
}

/** `child` is `parent` or below it, component-wise. */
export function isAtOrBelow(child: string, parent: string): boolean {
  const p = parent.replace(/\/+$/, "");
  if (p === "") return child.startsWith("/");
  return child === p || child.startsWith(`${p}/`);
}

async function physical(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    return path;
  }
}

/** A live registry entry. */
interface LiveEntry {
  pid: number;
  sessionId: string;
  cwd: string;
  startedAt: number;
}

/**
 * Is the registry entry of a running Claude Code? Where `/proc` is readable (Linux, with
 * broad read access) the process must exist with the recorded start time (field 22 of
 * `/proc/<pid>/stat`). Under cipherpost's permission set Deno refuses `/proc`, so then the
 * entry counts as live when its messaging socket exists (Claude Code removes the entry and the
 * socket when it exits; a crashed claude can leave both behind).
 */
async function alive(o: Record<string, unknown>, procRoot: string): Promise<boolean> {
  try {
    const stat = await Deno.readTextFile(`${procRoot}/${o.pid}/stat`);
    if (typeof o.procStart !== "string" && typeof o.procStart !== "number") return true;
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields after the command: state is field 3, so the start time (field 22) is rest[19]
    return rest[19] === String(o.procStart);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      try {
        await Deno.stat(procRoot);
        return false; // /proc is readable and the process is gone
      } catch {
        return socketExists(o); // no /proc on this system
      }
    }
    return socketExists(o);
  }
}

async function socketExists(o: Record<string, unknown>): Promise<boolean> {
  if (typeof o.messagingSocketPath !== "string") return true;
  try {
    await Deno.lstat(o.messagingSocketPath);
    return true;
  } catch {
    return false;
  }
}

/** Live sessions from `sessions/<pid>.json`, newest first. */
export async function liveSessions(configDir: string, procRoot = "/proc"): Promise<LiveEntry[]> {
  const out: LiveEntry[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(sessionsDir(configDir)));
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!e.isFile || !/^[0-9]+\.json$/.test(e.name)) continue;
    try {
      const o = JSON.parse(await Deno.readTextFile(`${sessionsDir(configDir)}/${e.name}`));
      if (
        typeof o.pid !== "number" || typeof o.sessionId !== "string" || !isSessionId(o.sessionId) ||
        typeof o.cwd !== "string"
      ) continue;
      if (!await alive(o, procRoot)) continue;
      out.push({
        pid: o.pid,
        sessionId: o.sessionId,
        cwd: o.cwd,
        startedAt: typeof o.startedAt === "number" ? o.startedAt : 0,
      });
    } catch {
      // unreadable or half-written entry: skip
    }
  }
  return out.sort((a, b) => b.startedAt - a.startedAt);
}

function noSession(detail: string): CipherpostError {
  return new CipherpostError(
    "not_found",
    `no Claude Code session found: ${detail}`,
    "run it inside the project directory, or name the session: cipherpost claude send SESSION_ID",
  );
}

/**
 * Find the session to send (see the module doc). An explicit or environment ID must exist as
 * a transcript. Several candidates are returned newest first; the caller picks (a TTY picker)
 * or takes the first.
 * @throws CipherpostError("not_found") when there is none
 */
export async function discoverSession(o: DiscoverOptions): Promise<Pick> {
  const all = await listSessions(o.configDir);
  const byId = (id: string, reason: PickReason): Pick => {
    if (!isSessionId(id)) {
      throw new CipherpostError("usage", `not a session ID (a UUID): ${JSON.stringify(id)}`);
    }
    const hits = all.filter((s) => s.sessionId === id);
    if (hits.length === 0) throw noSession(`no transcript for session ${id} in ${o.configDir}`);
    return { candidates: hits, reason };
  };
  if (o.sessionId) return byId(o.sessionId, "argument");
  if (o.envSessionId) return byId(o.envSessionId, "CLAUDE_CODE_SESSION_ID");
  const here = await physical(o.cwd);
  const live: LocalSession[] = [];
  for (const e of await liveSessions(o.configDir, o.procRoot)) {
    if (!isAtOrBelow(await physical(e.cwd), here)) continue;
    const s = all.find((s) => s.sessionId === e.sessionId);
    if (s && !live.includes(s)) live.push(s);
  }
  if (live.length > 0) return { candidates: live, reason: "live" };
  const now = (o.now ?? new Date()).getTime();
  const recent: LocalSession[] = [];
  for (const s of all) {
    if (now - s.mtime.getTime() > ACTIVE_MS || s.cwd === null) continue;
    if (isAtOrBelow(await physical(s.cwd), here)) recent.push(s);
  }
  if (recent.length === 0) {
    throw noSession(`none active in the last 24 h at or below ${here}`);
  }
  return { candidates: recent, reason: "recent" };
}
