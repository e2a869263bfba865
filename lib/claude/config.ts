/**
 * Where Claude Code keeps its files. The CLI passes the environment in; nothing here reads it.
 *
 * @module
 */

/** The values of the environment that decide Claude Code's config directory. */
export interface ClaudeEnv {
  /** `$CLAUDE_CONFIG_DIR` (empty or unset: not used) */
  configDir?: string;
  /** `$HOME` */
  home?: string;
}

/**
 * Claude Code's config directory: `$CLAUDE_CONFIG_DIR` when set and non-empty, else
 * `~/.claude`.
 * @throws Error when neither is known (the CLI reports it as a configuration error)
 */
export function claudeConfigDir(env: ClaudeEnv): string {
  if (env.configDir) return env.configDir.replace(/\/+$/, "") || "/";
  if (env.home) return `${env.home.replace(/\/+$/, "")}/.claude`;
  throw new Error("neither CLAUDE_CONFIG_DIR nor HOME is set");
}

/** The folder of per-project transcripts, `<config>/projects`. */
export function projectsDir(configDir: string): string {
  return `${configDir}/projects`;
}

/** The live-session registry, `<config>/sessions`. */
export function sessionsDir(configDir: string): string {
  return `${configDir}/sessions`;
}

/** Session IDs are UUIDs; Claude Code refuses anything else. */
export const SESSION_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True when `s` is a session ID (lowercase UUID). */
export function isSessionId(s: string): boolean {
  return SESSION_ID_RE.test(s);
}

/**
 * Claude Code's own state file, `.claude.json` (account, per-project state, user-scope MCP
 * servers): inside `$CLAUDE_CONFIG_DIR` when that is set and non-empty, else `~/.claude.json`
 * (beside `~/.claude`, not in it; observed with Claude Code 2.1.328).
 * @throws Error when neither is known
 */
export function claudeJsonPath(env: ClaudeEnv): string {
  if (env.configDir) return `${claudeConfigDir(env).replace(/\/$/, "")}/.claude.json`;
  if (env.home) return `${env.home.replace(/\/+$/, "")}/.claude.json`;
  throw new Error("neither CLAUDE_CONFIG_DIR nor HOME is set");
}
