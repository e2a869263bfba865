/**
 * The `mcpServers` opt-in of Claude sync (docs/PROTOCOL.md §8.4): of Claude Code's
 * `.claude.json` (which also holds the account, per-project state and more) only the
 * user-scope `mcpServers` object travels, as the virtual file {@link MCP_PATH}. Its canonical
 * content is that object as JSON with the home folder written `${HOME}`; this home keeps it in
 * a view file (`sync/mcp-servers.json`) so the stat cache and the merge rules treat it as any
 * other file. A pull merges it back into `.claude.json`, keeping every other key.
 *
 * @module
 */

import { fromUtf8, utf8 } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import { ensurePrivateDir, fileMode, writeFileAtomic } from "../util/fsutil.ts";
import { HOME_TOKEN } from "./canonical.ts";
import { syncDir } from "./state.ts";

/** The path of the virtual file in snapshots (never a real file of Claude Code's). */
export const MCP_PATH = ".claude.json#mcpServers";

/** Largest `.claude.json` read. */
const MAX_CLAUDE_JSON = 64 << 20;
/** Largest canonical `mcpServers` accepted from a snapshot. */
export const MAX_MCP_VIEW = 4 << 20;

/** The view file of a home. */
export function mcpViewPath(home: string): string {
  return `${syncDir(home)}/mcp-servers.json`;
}

/** Where the opt-in reads and writes: Claude Code's `.claude.json` and this home's view. */
export interface McpPaths {
  /** Claude Code's `.claude.json` */
  claudeJson: string;
  /** the view file ({@link mcpViewPath}) */
  view: string;
}

function mapStrings(v: unknown, f: (s: string) => string, depth = 0): unknown {
  if (depth > 64) return v;
  if (typeof v === "string") return f(v);
  if (Array.isArray(v)) return v.map((x) => mapStrings(x, f, depth + 1));
  if (typeof v === "object" && v !== null) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = mapStrings(x, f, depth + 1);
    return o;
  }
  return v;
}

/** Replace the home folder in every string by `${HOME}` (`toLocal` false) or back. */
function tokenise(v: unknown, home: string | undefined, toLocal: boolean): unknown {
  const h = home?.replace(/\/+$/, "");
  if (!h) return v;
  const [from, to] = toLocal ? [HOME_TOKEN, h] : [h, HOME_TOKEN];
  return mapStrings(v, (s) => (s === from ? to : s.replaceAll(`${from}/`, `${to}/`)));
}

async function readClaudeJson(path: string): Promise<Record<string, unknown> | null> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const bad = () =>
    new CipherpostError(
      "config",
      `configuration error: ${path} is not a JSON object; its MCP servers were not synced`,
    );
  if (bytes.length > MAX_CLAUDE_JSON) throw bad();
  try {
    const o = JSON.parse(fromUtf8(bytes));
    if (typeof o === "object" && o !== null && !Array.isArray(o)) return o;
  } catch { /* below */ }
  throw bad();
}

/**
 * The canonical content of the `mcpServers` object of `claudeJson` (`{}` when the file or the
 * key is missing): JSON, two-space indented, the home folder as `${HOME}`.
 * @throws CipherpostError `config` when the file is not a JSON object
 */
export async function mcpCanonical(claudeJson: string, home: string | undefined): Promise<string> {
  const o = await readClaudeJson(claudeJson);
  const servers = o?.mcpServers;
  const obj = typeof servers === "object" && servers !== null && !Array.isArray(servers)
    ? servers
    : {};
  return JSON.stringify(tokenise(obj, home, false), null, 2) + "\n";
}

/**
 * Bring the view file up to date with `.claude.json` (written only when its content differs,
 * so an unchanged view keeps its stat and is not read again).
 */
export async function refreshMcpView(p: McpPaths, home: string | undefined): Promise<void> {
  const text = await mcpCanonical(p.claudeJson, home);
  let old: string | null = null;
  try {
    old = await Deno.readTextFile(p.view);
  } catch { /* none yet */ }
  if (old === text) return;
  await ensurePrivateDir(p.view.slice(0, p.view.lastIndexOf("/")) || "/");
  await writeFileAtomic(p.view, utf8(text), 0o600);
}

/**
 * Set the `mcpServers` of `.claude.json` to a canonical content (the home token replaced by
 * this machine's home), keeping every other key as it is; one atomic write that keeps the
 * file's mode (0600 for a new file). Nothing is written when the content is not a JSON object.
 * @throws CipherpostError `config` when `.claude.json` or the content is not a JSON object
 */
export async function mergeMcpServers(
  claudeJson: string,
  canonical: Uint8Array,
  home: string | undefined,
): Promise<void> {
  let servers: unknown;
  try {
    if (canonical.length > MAX_MCP_VIEW) throw new Error();
    servers = JSON.parse(fromUtf8(canonical));
  } catch {
    servers = null;
  }
  if (typeof servers !== "object" || servers === null || Array.isArray(servers)) {
    throw new CipherpostError(
      "config",
      "configuration error: the synced MCP servers are not a JSON object; .claude.json unchanged",
    );
  }
  const o = (await readClaudeJson(claudeJson)) ?? {};
  o.mcpServers = tokenise(servers, home, true);
  const mode = (await fileMode(claudeJson).catch(() => null)) ?? 0o600;
  await writeFileAtomic(claudeJson, utf8(JSON.stringify(o, null, 2) + "\n"), mode);
}

/** Read a view (or staged copy of one), at most {@link MAX_MCP_VIEW} bytes. */
export async function readMcpView(path: string): Promise<Uint8Array> {
  const b = await Deno.readFile(path);
  if (b.length > MAX_MCP_VIEW) {
    throw new CipherpostError(
      "config",
      "configuration error: the synced MCP servers are too large",
    );
  }
  return b;
}

/**
 * Two canonical `mcpServers` contents changed on both sides, merged by server name: every
 * server of either side; a name on both sides takes the `remoteWins` side's definition. Null
 * when either is not a JSON object (the caller falls back to last-writer-wins).
 */
export function unionMcpServers(
  local: Uint8Array,
  remote: Uint8Array,
  remoteWins: boolean,
): Uint8Array | null {
  const parse = (b: Uint8Array) => {
    try {
      const o = JSON.parse(fromUtf8(b));
      return typeof o === "object" && o !== null && !Array.isArray(o) ? o : null;
    } catch {
      return null;
    }
  };
  const l = parse(local), r = parse(remote);
  if (!l || !r) return null;
  const out = remoteWins ? { ...l, ...r } : { ...r, ...l };
  return utf8(JSON.stringify(out, null, 2) + "\n");
}
