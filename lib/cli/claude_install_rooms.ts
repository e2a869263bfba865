/**
 * `cipherpost claude install-rooms [--uninstall]`: register `cipherpost room hook` as a
 * `UserPromptSubmit` hook in Claude Code's `settings.json` and `cipherpost mcp` as a user-scope
 * MCP server (`mcpServers.cipherpost` of `.claude.json`: `$CLAUDE_CONFIG_DIR/.claude.json`, else
 * `~/.claude.json`). Idempotent; every other setting is kept as it was (the files are rewritten
 * atomically, with their modes).
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { CipherpostError } from "../util/errors.ts";
import { writeFileAtomic } from "../util/fsutil.ts";
import type { Io } from "./io.ts";
import { configDir, shellQuote } from "./claude_common.ts";

type Json = Record<string, unknown>;

async function readJson(path: string): Promise<{ value: Json; mode: number }> {
  let text: string;
  let mode = 0o600;
  try {
    text = await Deno.readTextFile(path);
    mode = ((await Deno.stat(path)).mode ?? 0o600) & 0o777;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { value: {}, mode };
    throw e;
  }
  try {
    const v = JSON.parse(text);
    if (v && typeof v === "object" && !Array.isArray(v)) return { value: v as Json, mode };
  } catch { /* below */ }
  throw new CipherpostError(
    "config",
    `configuration error: ${path} is not a JSON object; not touching it`,
  );
}

/** Whether a hook's command is ours (`cipherpost room hook …`). */
export const isRoomHookCommand = (c: unknown): boolean =>
  typeof c === "string" && /^cipherpost room hook(\s|$)/.test(c.trim());

/** Claude Code's `.claude.json`: `$CLAUDE_CONFIG_DIR/.claude.json`, else `~/.claude.json`. */
export function claudeJsonPath(dir: string): string {
  return Deno.env.get("CLAUDE_CONFIG_DIR")
    ? `${dir}/.claude.json`
    : `${Deno.env.get("HOME")}/.claude.json`;
}

/** settings.json with our UserPromptSubmit hook added (once) or removed. */
export function withRoomHook(settings: Json, command: string | null): Json {
  const hooks =
    (settings.hooks && typeof settings.hooks === "object"
      ? { ...(settings.hooks as Json) }
      : {}) as Json;
  const groups = Array.isArray(hooks.UserPromptSubmit) ? [...hooks.UserPromptSubmit] : [];
  const cleaned = groups.map((g) => {
    if (!g || typeof g !== "object" || !Array.isArray((g as Json).hooks)) return g;
    const list = ((g as Json).hooks as unknown[]).filter((h) =>
      !(h && typeof h === "object" && isRoomHookCommand((h as Json).command))
    );
    return { ...(g as Json), hooks: list };
  }).filter((g) =>
    !(g && typeof g === "object" && Array.isArray((g as Json).hooks) &&
      ((g as Json).hooks as unknown[]).length === 0)
  );
  if (command !== null) cleaned.push({ hooks: [{ type: "command", command }] });
  if (cleaned.length > 0) hooks.UserPromptSubmit = cleaned;
  else delete hooks.UserPromptSubmit;
  const out = { ...settings };
  if (Object.keys(hooks).length > 0) out.hooks = hooks;
  else delete out.hooks;
  return out;
}

/** .claude.json with `mcpServers.cipherpost` set or removed. */
export function withMcpServer(config: Json, args: string[] | null): Json {
  const servers =
    (config.mcpServers && typeof config.mcpServers === "object"
      ? { ...(config.mcpServers as Json) }
      : {}) as Json;
  if (args === null) delete servers.cipherpost;
  else servers.cipherpost = { type: "stdio", command: "cipherpost", args, env: {} };
  const out = { ...config };
  if (Object.keys(servers).length > 0) out.mcpServers = servers;
  else delete out.mcpServers;
  return out;
}

/** Register `claude install-rooms` on the `claude` command group. */
export function registerClaudeInstallRooms(claude: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
  claude.command("install-rooms")
    .description("register cipherpost room hook and cipherpost mcp in Claude Code's settings")
    .option("--uninstall", "remove both registrations")
    .option(
      "--passphrase-file <path>",
      "make the hook and the MCP server unlock your identity with this file",
    )
    .action(async (o) => {
      const dir = configDir();
      const settingsPath = `${dir}/settings.json`;
      const globalPath = claudeJsonPath(dir);
      let extra: string[] = [];
      if (o.passphraseFile !== undefined && !o.uninstall) {
        try {
          extra = ["--passphrase-file", await Deno.realPath(o.passphraseFile)];
        } catch {
          throw new CipherpostError("io", `io error: cannot read ${o.passphraseFile}`);
        }
      }
      const command = ["cipherpost", "room", "hook", ...extra].map(shellQuote).join(" ");
      const s = await readJson(settingsPath);
      const g = await readJson(globalPath);
      const settings = withRoomHook(s.value, o.uninstall ? null : command);
      const config = withMcpServer(g.value, o.uninstall ? null : ["mcp", ...extra]);
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      const enc = (v: Json) => new TextEncoder().encode(`${JSON.stringify(v, null, 2)}\n`);
      await writeFileAtomic(settingsPath, enc(settings), s.mode);
      await writeFileAtomic(globalPath, enc(config), g.mode);
      io.out(`${settingsPath}\n${globalPath}\n`);
      log(
        o.uninstall
          ? "Removed the room hook and the cipherpost MCP server."
          : "Registered the UserPromptSubmit hook (cipherpost room hook) and the MCP server " +
            "(cipherpost mcp). Bind a room to a session with: cipherpost room bind ROOM --session ID",
      );
    });
}
