/**
 * `cipherpost doctor`: one line per check, OK / WARN / FAIL, each problem with its fix. The
 * checks of files and the homeserver are the library's ({@link checkLocalFiles},
 * {@link checkHomeserver}: findings as data); the Claude Code registrations (what `claude
 * install-rooms` and `claude sync auto enable` write) are read here, where the commands are
 * known; the fixes are worded here. Exit 0 when nothing failed (warnings allowed), 1 when a
 * check failed.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { escapeControl } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import { decodeZ32 } from "../pkarr/public_key.ts";
import { readPublicKey } from "../state/identity.ts";
import { AUTO_EVENTS, type AutoRecord, autoState } from "../sync/hooks.ts";
import { autoRecordPath } from "../sync/state.ts";
import {
  checkHomeserver,
  checkLocalFiles,
  type DoctorFinding,
  type DoctorFix,
} from "../flows/rooms/doctor.ts";
import { ChildExit, configDir, shellQuote } from "./claude_common.ts";
import { claudeJsonPath, isRoomHookCommand } from "./claude_install_rooms.ts";
import { cipherpostHome } from "./home.ts";
import type { Io } from "./io.ts";
import { Exit } from "./exit_codes.ts";
import {
  NETWORK_HELP,
  unlockIdentity,
  withNetwork,
  withPassphrase,
  withTransport,
} from "./options.ts";

/** The words of each fix. */
export function fixText(f: DoctorFix): string {
  switch (f.step) {
    case "chmod":
      return `chmod ${f.mode.toString(8)} ${shellQuote(f.path)}`;
    case "identity_generate":
      return "create an identity with: cipherpost identity generate";
    case "homeserver_signup":
      return "sign up with: cipherpost homeserver signup <homeserver-key>";
    case "check_network":
      return "check the network (and --bootstrap/--relay); run cipherpost doctor again";
    case "unlock":
      return "give the passphrase (--passphrase-file, CIPHERPOST_PASSPHRASE or the prompt)";
    case "sync_clock":
      return "set the system clock from the network (e.g. timedatectl set-ntp true)";
    case "install_rooms":
      return "register it with: cipherpost claude install-rooms";
    case "sync_auto_enable":
      return "to sync Claude Code sessions: cipherpost claude sync auto enable";
  }
}

async function readJson(path: string): Promise<Record<string, unknown> | null> {
  try {
    const v = JSON.parse(await Deno.readTextFile(path));
    return v && typeof v === "object" && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

/** What `claude install-rooms` and `claude sync auto enable` registered, as findings. */
async function claudeFindings(home: string): Promise<DoctorFinding[]> {
  let dir: string;
  try {
    dir = configDir();
  } catch {
    return [{
      check: "room_hook",
      status: "warn",
      detail: "cannot find Claude Code's config folder (set CLAUDE_CONFIG_DIR or HOME)",
    }];
  }
  const settingsPath = `${dir}/settings.json`;
  const settings = await readJson(settingsPath) ?? {};
  const out: DoctorFinding[] = [];
  const groups = (settings.hooks as Record<string, unknown> | undefined)?.UserPromptSubmit;
  const hook = Array.isArray(groups) && groups.some((g) =>
    Array.isArray(g?.hooks) &&
    (g.hooks as { command?: unknown }[]).some((h) => isRoomHookCommand(h?.command))
  );
  out.push(
    hook
      ? { check: "room_hook", status: "ok", detail: `UserPromptSubmit hook in ${settingsPath}` }
      : {
        check: "room_hook",
        status: "warn",
        detail: `no room hook in ${settingsPath}`,
        fix: { step: "install_rooms" },
      },
  );
  const cfgPath = claudeJsonPath(dir);
  const cfg = await readJson(cfgPath);
  const server = (cfg?.mcpServers as Record<string, { command?: unknown; args?: unknown }>)
    ?.cipherpost;
  const mcp = server?.command === "cipherpost" && Array.isArray(server.args) &&
    server.args[0] === "mcp";
  out.push(
    mcp ? { check: "mcp_server", status: "ok", detail: `MCP server cipherpost in ${cfgPath}` } : {
      check: "mcp_server",
      status: "warn",
      detail: `no cipherpost MCP server in ${cfgPath}`,
      fix: { step: "install_rooms" },
    },
  );
  let record: AutoRecord | null = null;
  try {
    record = JSON.parse(await Deno.readTextFile(autoRecordPath(home)));
  } catch { /* not enabled */ }
  if (record?.commands) {
    const st = autoState(settings, record.commands);
    const missing = AUTO_EVENTS.filter((ev) => !st[ev]);
    out.push(
      missing.length === 0
        ? { check: "sync_hooks", status: "ok", detail: `SessionStart and Stop hooks in place` }
        : {
          check: "sync_hooks",
          status: "warn",
          detail: `enabled, but ${missing.join(" and ")} missing from ${settingsPath}`,
          fix: { step: "sync_auto_enable" },
        },
    );
  } else {
    out.push({
      check: "sync_hooks",
      status: "warn",
      detail: "session sync hooks not enabled",
      fix: { step: "sync_auto_enable" },
    });
  }
  return out;
}

/** Register `doctor`. */
export function registerDoctorCommand(program: Command, io: Io): void {
  withNetwork(withPassphrase(
    program.command("doctor")
      .description("check this home: file modes, homeserver, clock, Claude Code registrations")
      .option("--json", "print {ok, findings: [{check, status, detail, fix?}]}"),
  )).addHelpText(
    "after",
    `
Checks, each printed as OK, WARN or FAIL with the fix:
  home, identity, private_file  modes of the home (0700), the identity file and other private
                                files (0600)
  homeserver, session           your homeserver answers (10 s at most); the stored session
                                works, or a new sign-in does (when the identity is unlocked)
  clock                         your clock against the homeserver's Date header (WARN over
                                10 s, FAIL over 45 s: sign-in fails)
  room_hook, mcp_server         what cipherpost claude install-rooms registers
  sync_hooks                    what cipherpost claude sync auto enable registers
Exit status: 0 when no check failed (warnings allowed), 1 when one did.
${NETWORK_HELP}`,
  ).action(async (o) => {
    const home = cipherpostHome();
    const findings = await checkLocalFiles(home);
    let user: Uint8Array | null = null;
    const z = await readPublicKey(home).catch(() => null);
    if (z) user = decodeZ32(z);
    let seed: Uint8Array | undefined;
    const hasIdentity = !findings.some((f) => f.fix?.step === "identity_generate");
    if (hasIdentity) {
      try {
        const id = await unlockIdentity(o, io);
        seed = id.seed;
        user = id.publicKey;
      } catch (e) {
        if (!(e instanceof CipherpostError)) throw e;
        if (e.kind !== "permissions") {
          findings.push({
            check: "identity",
            status: e.kind === "decrypt" ? "fail" : "warn",
            detail: `not unlocked: ${e.message}`,
            fix: { step: "unlock" },
          });
        }
      }
    }
    if (user) {
      const u = user;
      findings.push(
        ...await withTransport(
          o,
          (t) => checkHomeserver(t, { home, user: u, seed }),
        ),
      );
    } else {
      for (const check of ["homeserver", "clock"] as const) {
        findings.push({ check, status: "warn", detail: "not checked: no identity in this home" });
      }
    }
    findings.push(...await claudeFindings(home));
    const failed = findings.some((f) => f.status === "fail");
    if (o.json) {
      io.out(`${
        JSON.stringify({
          ok: !failed,
          findings: findings.map((f) => ({ ...f, fix: f.fix ? fixText(f.fix) : undefined })),
        })
      }\n`);
    } else {
      for (const f of findings) {
        io.out(
          `${f.status.toUpperCase().padEnd(4)}  ${f.check.padEnd(12)}  ${
            escapeControl(f.detail)
          }\n`,
        );
        if (f.fix && f.status !== "ok") io.out(`      fix: ${escapeControl(fixText(f.fix))}\n`);
      }
    }
    if (failed) throw new ChildExit(Exit.general);
  });
}
