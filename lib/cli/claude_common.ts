/**
 * What the `claude` commands share: Claude Code's config folder, the claude binary, shell
 * quoting, whether a terminal can be asked, the environment of the launched claude, and the
 * `-- CLAUDE_ARGS` split.
 *
 * @module
 */

import { escapeControl, hasUnsafeText } from "../util/encoding.ts";
import { configError } from "../util/errors.ts";
import { claudeConfigDir } from "../claude/config.ts";

/** Thrown to end the CLI with a child's exit code (Claude Code's, passed through). */
export class ChildExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

export function configDir(): string {
  try {
    return claudeConfigDir({
      configDir: Deno.env.get("CLAUDE_CONFIG_DIR"),
      home: Deno.env.get("HOME"),
    });
  } catch {
    throw configError(
      "cannot find Claude Code's config directory",
      "set CLAUDE_CONFIG_DIR or HOME",
    );
  }
}

/** The claude binary: `$CIPHERPOST_CLAUDE`, else `claude` on PATH. */
export function claudeBinary(): string {
  return Deno.env.get("CIPHERPOST_CLAUDE") || "claude";
}

/**
 * Quote a word for a POSIX shell when it needs it (for display: control characters, which
 * a path from a transcript could hold, are escaped rather than sent to the terminal).
 */
export function shellQuote(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  if (hasUnsafeText(s)) return `$'${escapeControl(s, { backslash: true }).replaceAll("'", "\\'")}'`;
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

export function interactive(): boolean {
  return Deno.stdin.isTerminal() && Deno.stderr.isTerminal();
}

/**
 * The environment of the `claude` a pickup launches: ours without any cipherpost secret (the
 * passphrase and the PIN): that child is an agent running tools with a sender's transcript in
 * its context, and one `env` would put them in a transcript that a hand-off can ship.
 */
export function childEnv(
  env: Record<string, string> = Deno.env.toObject(),
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (/^CIPHERPOST_(PASSPHRASE|PIN)/i.test(k)) continue;
    out[k] = v;
  }
  return out;
}

let passThrough: string[] = [];

/** The arguments after `--` of the last {@link splitPassThrough} (Claude Code's). */
export function passThroughArgs(): string[] {
  return passThrough;
}

/**
 * Split `claude pickup … -- CLAUDE_ARGS…` before commander sees it: returns the arguments up to
 * `--` and keeps the rest for Claude Code. Other commands are returned unchanged.
 */
export function splitPassThrough(args: string[]): string[] {
  passThrough = [];
  const i = args.indexOf("--");
  if (args[0] !== "claude" || args[1] !== "pickup" || i < 0) return args;
  passThrough = args.slice(i + 1);
  return args.slice(0, i);
}

/** How long ago `d` was, for people: `3 min ago`, `2 h ago`. */
export function ageOf(d: Date, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}
