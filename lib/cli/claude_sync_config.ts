/**
 * `cipherpost claude sync config`: what this machine syncs (docs/PROTOCOL.md §8.4), kept in
 * `$CIPHERPOST_HOME/sync/config.json` and used by every push, pull and status (and their
 * hooks): the scope, optional entries, exclude globs, the path map and the `mcpServers` opt-in.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { claudeJsonPath } from "../claude/config.ts";
import type { SyncEnv } from "../flows/sync/common.ts";
import {
  checkSyncConfig,
  forgetRoots,
  parseMapRule,
  readSyncConfig,
  saveSyncConfig,
  type SyncConfig,
} from "../sync/config.ts";
import { mcpViewPath } from "../sync/mcp_servers.ts";
import { FULL_SCOPE, OPTIONAL_ENTRIES, type ScopeName, SESSIONS_SCOPE } from "../sync/scope.ts";
import { escapeControl } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import { cipherpostHome } from "./home.ts";
import type { Io } from "./io.ts";

/** `env` with this home's sync configuration: scope, excludes, path map, MCP opt-in. */
export function configuredEnv(env: SyncEnv): SyncEnv {
  const home = cipherpostHome();
  const c = readSyncConfig(home);
  const out: SyncEnv = {
    ...env,
    config: { scope: c.scope, include: c.include, exclude: c.exclude, map: c.map },
  };
  if (c.mcpServers) {
    out.mcp = {
      claudeJson: claudeJsonPath({
        configDir: Deno.env.get("CLAUDE_CONFIG_DIR"),
        home: Deno.env.get("HOME"),
      }),
      view: mcpViewPath(home),
    };
  }
  return out;
}

const collect = (v: string, prev: string[] | undefined) => [...prev ?? [], v];

function show(c: SyncConfig, io: Io): void {
  const esc = (s: string) => escapeControl(s, { backslash: true });
  const tops = c.scope === "full" ? FULL_SCOPE : SESSIONS_SCOPE;
  io.out(`scope        ${c.scope} (${tops.join(", ")})\n`);
  io.out(`include      ${c.include.length ? c.include.map(esc).join(", ") : "-"}\n`);
  io.out(`exclude      ${c.exclude.length ? c.exclude.map(esc).join("  ") : "-"}\n`);
  if (c.map.length === 0) io.out(`map          - (\${HOME} only)\n`);
  for (const r of c.map) io.out(`map          ${esc(r.from)} -> ${esc(r.to)}\n`);
  io.out(`mcp servers  ${c.mcpServers ? "on" : "off"}\n`);
}

/** Register `claude sync config` on the `claude sync` command group. */
export function registerSyncConfig(sync: Command, io: Io): void {
  sync.command("config")
    .description("what this machine syncs: scope, excludes, path map, MCP servers (no network)")
    .option("--scope <name>", "sessions (the default) or full")
    .option(
      "--include <entry>",
      `add an optional entry to the scope (${OPTIONAL_ENTRIES.join(", ")}); repeatable`,
      collect,
    )
    .option(
      "--remove-include <entry>",
      "take an included entry out again; repeatable",
      collect,
    )
    .option(
      "--exclude <glob>",
      "never sync paths matching GLOB; repeatable",
      collect,
    )
    .option("--remove-exclude <glob>", "drop an exclude glob; repeatable", collect)
    .option(
      "--map <from=to>",
      "projects other machines keep below FROM live here below TO; repeatable",
      collect,
    )
    .option("--remove-map <from>", "drop the map rule of FROM; repeatable", collect)
    .option("--mcp-servers", "also sync the mcpServers of Claude Code's .claude.json (only them)")
    .option("--no-mcp-servers", "stop syncing the mcpServers")
    .option("--reset", "back to the defaults first (sessions, nothing else)")
    .option("--json", "print the configuration as JSON")
    .addHelpText(
      "after",
      `
Scopes: sessions = ${SESSIONS_SCOPE.join(", ")};
full = sessions + ${
        FULL_SCOPE.filter((s) => !SESSIONS_SCOPE.includes(s)).join(", ")
          .replace("settings.local.json, ", "settings.local.json,\n  ")
      }.
plugins/ is in no scope unless --include plugins. Never synced: .credentials.json, .claude.json
(except --mcp-servers), sessions/, backups/, caches, *.lock, *.tmp, conflict copies.
Globs match paths below Claude Code's folder: * and ? within a name, ** across folders; a glob
without / matches a name at any depth; a folder's glob covers all below it.
Excluding or narrowing stops syncing those files here; it never deletes them elsewhere.
Map: FROM is a path as other machines have it (absolute, or \${HOME}/...), TO a local path;
without a rule, paths below $HOME map to $HOME. The settings are this machine's own.`,
    )
    .action(async (o) => {
      const home = cipherpostHome();
      const c = o.reset
        ? { scope: "sessions" as ScopeName, include: [], exclude: [], map: [], mcpServers: false }
        : readSyncConfig(home);
      const before = JSON.stringify(c.map);
      if (o.scope !== undefined) {
        if (o.scope !== "sessions" && o.scope !== "full") {
          throw new CipherpostError("usage", "--scope is sessions or full");
        }
        c.scope = o.scope;
      }
      c.include = [...new Set([...c.include, ...o.include ?? []])]
        .filter((i) => !(o.removeInclude ?? []).includes(i));
      c.exclude = [...new Set([...c.exclude, ...o.exclude ?? []])]
        .filter((g) => !(o.removeExclude ?? []).includes(g));
      for (const spec of o.map ?? []) {
        const r = parseMapRule(spec);
        c.map = [...c.map.filter((x) => x.from !== r.from), r];
      }
      const dropped = (o.removeMap ?? []).map((f) => f.length > 1 ? f.replace(/\/+$/, "") : f);
      c.map = c.map.filter((x) => !dropped.includes(x.from));
      if (o.mcpServers !== undefined) c.mcpServers = o.mcpServers;
      try {
        checkSyncConfig(c);
      } catch (e) {
        if (!(e instanceof CipherpostError) || e.kind !== "config") throw e;
        throw new CipherpostError("usage", e.message.replace(/^configuration error: /, ""));
      }
      const changed = JSON.stringify(c) !== JSON.stringify(readSyncConfig(home));
      if (changed) {
        await saveSyncConfig(home, c);
        if (JSON.stringify(c.map) !== before || o.reset) await forgetRoots(home);
      }
      if (o.json) {
        io.out(
          JSON.stringify({
            scope: c.scope,
            include: c.include,
            exclude: c.exclude,
            map: c.map,
            mcp_servers: c.mcpServers,
            changed,
          }) + "\n",
        );
        return;
      }
      show(c, io);
    });
}
