/**
 * `cipherpost claude …`: hand a Claude Code session to another machine (or person) and pick it
 * up there (issue 11, PROTOCOL.md §6). This file knows the environment (`CLAUDE_CONFIG_DIR`,
 * `HOME`, `CLAUDE_CODE_SESSION_ID`, `CIPHERPOST_CLAUDE`), the terminal and the one program the
 * CLI may run: the claude binary.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { CipherpostError } from "../util/errors.ts";
import { writeFileAtomic } from "../util/fsutil.ts";
import { State } from "../state/state.ts";
import { claudeConfigDir } from "../claude/config.ts";
import { discoverSession, listSessions, type LocalSession } from "../claude/discover.ts";
import { escapeText, formatSize, shorten } from "../claude/summary.ts";
import { transcriptFacts } from "../claude/transcript.ts";
import { claudeSend } from "../flows/handoff/send.ts";
import { claudePickup } from "../flows/handoff/pickup.ts";
import { cipherpostHome } from "./home.ts";
import type { Io } from "./io.ts";
import { pinIsPrompted, validatePin } from "./passphrase.ts";
import { acceptanceConfirm, readAcceptLine } from "./receive.ts";
import {
  NETWORK_HELP,
  pinOf,
  pinSources,
  unlockIdentity,
  withNetwork,
  withPassphrase,
  withPin,
  withTransport,
} from "./options.ts";
import { stripControl } from "../util/encoding.ts";
import { cliUi, partSizeOverride, partWorkers } from "./large.ts";
import { DURATION_FORMS, parseDuration } from "./duration.ts";
import { resolveRecipient } from "./recipient.ts";
import { Contacts } from "../state/contacts.ts";

/** Thrown to end the CLI with a child's exit code (Claude Code's, passed through). */
export class ChildExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

function configDir(): string {
  try {
    return claudeConfigDir({
      configDir: Deno.env.get("CLAUDE_CONFIG_DIR"),
      home: Deno.env.get("HOME"),
    });
  } catch {
    throw new CipherpostError(
      "config",
      "configuration error: cannot find Claude Code's config directory",
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
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(s)) return `$'${escapeText(s).replaceAll("'", "\\'")}'`;
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function interactive(): boolean {
  return Deno.stdin.isTerminal() && Deno.stderr.isTerminal();
}

function ageOf(d: Date, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

function describe(s: LocalSession): string {
  return `${s.sessionId}  ${ageOf(s.mtime)}  ${escapeText(s.cwd ?? "(unknown project)")}`;
}

async function choose(cands: LocalSession[], log: (l: string) => void): Promise<LocalSession> {
  if (cands.length === 1) return cands[0];
  if (!interactive()) {
    log(`${cands.length} sessions match; taking the newest: ${describe(cands[0])}`);
    return cands[0];
  }
  log("Several sessions match; which one? (a number; Enter takes 1, the newest)");
  cands.forEach((s, i) => log(`  ${i + 1}) ${describe(s)}`));
  for (let tries = 3; tries > 0; tries--) {
    const line = await readAcceptLine();
    // the end of input (Ctrl-D) or Ctrl-C at the prompt: nothing is sent
    if (line === null) throw new CipherpostError("declined", "user declined: no session chosen");
    const t = line.trim();
    const n = t === "" ? 1 : /^[0-9]{1,4}$/.test(t) ? Number(t) : NaN;
    if (n >= 1 && n <= cands.length) return cands[n - 1];
    if (tries > 1) log(`type a number from 1 to ${cands.length} (${tries - 1} tries left):`);
  }
  throw new CipherpostError("declined", "user declined: no session chosen");
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

function handoffCommand(extra: string): string {
  return HANDOFF_COMMAND.replace(
    "cipherpost claude send $ARGUMENTS",
    `cipherpost claude send ${extra}$ARGUMENTS`,
  );
}

const HANDOFF_COMMAND = `---
description: Hand this session off with cipherpost (end-to-end encrypted; pick it up elsewhere with cipherpost claude pickup)
argument-hint: "[--share KEY] [-p PURPOSE] [--pin] [--burn]"
allowed-tools: Bash(cipherpost claude send:*)
---
!\`cipherpost claude send $ARGUMENTS\`

The command above handed off this Claude Code session (its own transcript, found through
CLAUDE_CODE_SESSION_ID). Tell the user, in one or two lines, the cipherpost:// URI it printed and
that \`cipherpost claude pickup URI\` on the other machine continues the session (with --self,
\`cipherpost claude pickup\` alone finds it). If it failed, show its error line and stop.
`;

/** Register `claude send|pickup|list|install-command`. */
export function registerClaudeCommands(program: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
  const claude = program.command("claude")
    .description("hand a Claude Code session (transcript and all) to another machine")
    .exitOverride();

  withNetwork(withPin(withPassphrase(
    claude.command("send")
      .description(
        "send the current (or the named) Claude Code session; prints the share URI",
      )
      .argument("[session_id]", "the session's UUID (default: discovered, see below)")
      .option("--self", "send to your own identity (the default)")
      .option("--share <key>", "send to this recipient: a public key or a contact name")
      .option("-p, --purpose <text>", "what this is for (shown to the recipient; not secret)", "")
      .option("--ttl <duration>", `lifetime of the share: ${DURATION_FORMS}`, "24h")
      .option("--pin", "also require a PIN (Argon2id) to open the share")
      .option("--burn", "burn after read: the recipient's tool shows it once")
      .option("--json", "print {uri, share_ref, session_id, …} as JSON"),
  )))
    .addHelpText(
      "after",
      `
Which session: CLAUDE_CODE_SESSION_ID when set (inside Claude Code); else a running claude
whose directory is at or below this one (sessions/<pid>.json); else the newest transcript
active in the last 24 h whose first directory is at or below this one. Several on a terminal:
you choose; otherwise the newest, and it says which. Config dir: $CLAUDE_CONFIG_DIR or ~/.claude.
What travels: projects/<folder>/<id>.jsonl and its <id>/ sidecar folder, compressed; never
credentials, settings or ~/.claude.json.
Examples:
  cipherpost claude send                      # to yourself, pick up on your other machine
  cipherpost claude send --share <bob-z32> -p "the refactor"
${NETWORK_HELP}`,
    )
    .action(async (sessionId: string | undefined, o) => {
      if (o.self && o.share !== undefined) {
        throw new CipherpostError(
          "config",
          "configuration error: choose one of --self or --share <key>",
        );
      }
      const ttl = BigInt(parseDuration(o.ttl));
      const home = cipherpostHome();
      const recipient = o.share === undefined
        ? null
        : (await resolveRecipient(o.share, new Contacts(home), "--share")).z32;
      const dir = configDir();
      const pick = await discoverSession({
        configDir: dir,
        cwd: Deno.cwd(),
        sessionId,
        envSessionId: Deno.env.get("CLAUDE_CODE_SESSION_ID") || undefined,
      });
      const session = await choose(pick.candidates, log);
      log(`Session ${session.sessionId} (${pick.reason}): ${escapeText(session.cwd ?? "")}`);
      const me = await unlockIdentity(o, io);
      const pin = o.pin ? await pinOf(o, true) : null;
      if (pin !== null) validatePin(pin);
      const state = new State(home);
      const purpose = stripControl(o.purpose ?? "");
      const ui = cliUi(log);
      let r;
      try {
        r = await withTransport(o, (t) =>
          claudeSend({ transport: t, state, me }, {
            session,
            recipient,
            purpose,
            ttlSeconds: ttl,
            pin,
            burn: o.burn === true,
            workers: partWorkers(),
            partSize: partSizeOverride(),
          }, ui));
      } finally {
        ui.end();
      }
      if (o.json) {
        io.out(
          JSON.stringify({
            uri: r.uri,
            share_ref: r.shareRef,
            session_id: r.summary.sessionId,
            project: r.summary.project,
            messages: r.summary.messages,
            bundle_bytes: r.bundleBytes,
            session_bytes: r.summary.size,
            expires_at: r.expiresAt,
            packets: r.packets,
            pointer: r.pointer,
            via: r.via,
          }) + "\n",
        );
      } else io.out(`${r.uri}\n`);
      log(
        o.share
          ? `Pick it up there with: cipherpost claude pickup ${r.uri}`
          : "Pick it up on your other machine with: cipherpost claude pickup",
      );
    });

  withNetwork(withPin(withPassphrase(
    claude.command("pickup")
      .description(
        "fetch, verify and accept a session hand-off, place it, and run claude --resume there",
      )
      .argument("[uri]", "the cipherpost:// URI (default: the newest hand-off to you)")
      .option(
        "--from <key>",
        "without a URI: the newest hand-off from this key or contact (default: you)",
      )
      .option(
        "--accept <key>",
        "accept non-interactively: the sender's key (z-base-32 or pk: form) or contact name",
      )
      .option("--project <dir>", "place the session for this directory")
      .option("--no-launch", "place it and print the claude command instead of running it")
      .option("--fork", "if a local copy has diverged, place the received one under a new ID"),
  )))
    .usage("[options] [uri] [-- claude_args...]")
    .addHelpText(
      "after",
      `
Everything after -- goes to claude (e.g. -- -p "go on").
Target directory: --project DIR; else where this session already lives here (a hand-back);
else the session's original directory if it exists here; else the current directory. Paths
recorded in the transcript are rewritten when the directory differs. A local copy with the same
ID: the longer one wins when one extends the other; diverged copies are refused (--fork keeps
both). Then runs \`claude --resume <id> CLAUDE_ARGS…\` in that directory and exits with its
code. The claude binary: $CIPHERPOST_CLAUDE, else claude on PATH.
Examples:
  cipherpost claude pickup
  cipherpost claude pickup "$URI" --accept <sender-z32> -- -p "carry on"
${NETWORK_HELP}`,
    )
    .action(async (uri: string | undefined, o) => {
      const args = passThrough;
      const home = cipherpostHome();
      const contacts = new Contacts(home);
      const from = o.from === undefined
        ? undefined
        : (await resolveRecipient(o.from, contacts, "--from")).z32;
      const accept = o.accept === undefined
        ? undefined
        : (await resolveRecipient(o.accept, contacts, "--accept")).z32;
      const me = await unlockIdentity(o, io);
      const state = new State(home);
      const ui = cliUi(log, { confirm: acceptanceConfirm(accept, interactive(), log) });
      let r;
      try {
        r = await withTransport(o, (t) =>
          claudePickup({ transport: t, state, me }, {
            uri,
            from,
            configDir: configDir(),
            cwd: Deno.cwd(),
            project: o.project,
            fork: o.fork === true,
            pin: () => pinOf(o, false),
            pinTries: pinIsPrompted(pinSources(o)) ? 3 : 1,
            workers: partWorkers(),
          }, ui));
      } finally {
        ui.end();
      }
      if (r.status === "already_accepted" || !r.placement) {
        log("nothing placed (this hand-off was already picked up here)");
        return;
      }
      const p = r.placement;
      const verb = {
        new: "placed",
        replace: "updated (the received copy extends the local one)",
        keep: "kept the local copy (it already extends the received one)",
        same: "already here (identical)",
        fork: `forked: the local copy diverged, so it was placed as ${p.sessionId}`,
      }[p.action];
      log(`Session ${p.sessionId} ${verb} in ${escapeText(p.folder)}`);
      const bin = claudeBinary();
      const argv = ["--resume", p.sessionId, ...args];
      if (o.launch === false) {
        io.out(`cd ${shellQuote(p.targetDir)} && ${[bin, ...argv].map(shellQuote).join(" ")}\n`);
        return;
      }
      log(`Running: ${[bin, ...argv].map(shellQuote).join(" ")}  (in ${escapeText(p.targetDir)})`);
      let child;
      try {
        child = new Deno.Command(bin, {
          args: argv,
          cwd: p.targetDir,
          clearEnv: true,
          env: childEnv(),
          stdin: "inherit",
          stdout: "inherit",
          stderr: "inherit",
        }).spawn();
      } catch (e) {
        const denied = e instanceof Deno.errors.NotCapable ||
          e instanceof Deno.errors.PermissionDenied;
        throw new CipherpostError(
          "config",
          denied
            ? `configuration error: not allowed to run ${bin} (the run permission names the claude binary)`
            : `configuration error: cannot run ${bin}`,
          denied
            ? `grant it: deno run -P=cipherpost --allow-run=${bin} …, or run: ${
              [bin, ...argv].map(shellQuote).join(" ")
            } in ${p.targetDir}`
            : "install Claude Code, or set CIPHERPOST_CLAUDE to its path",
        );
      }
      const st = await child.status;
      throw new ChildExit(st.code);
    });

  claude.command("list")
    .description("list local Claude Code sessions; * marks the one `claude send` would pick")
    .option("--json", "machine-readable output")
    .action(async (o) => {
      const dir = configDir();
      const all = await listSessions(dir);
      let picked: string | null = null;
      let reason: string | null = null;
      try {
        const pick = await discoverSession({
          configDir: dir,
          cwd: Deno.cwd(),
          envSessionId: Deno.env.get("CLAUDE_CODE_SESSION_ID") || undefined,
        });
        picked = pick.candidates[0].sessionId;
        reason = pick.reason;
      } catch {
        // none would be picked here
      }
      const rows = [];
      for (const s of all) {
        let messages = 0;
        let lastPrompt: string | null = null;
        try {
          const f = transcriptFacts(await Deno.readTextFile(s.transcript));
          messages = f.messages;
          lastPrompt = f.lastPrompt;
        } catch {
          // unreadable: shown with 0 messages
        }
        rows.push({ s, messages, lastPrompt });
      }
      if (o.json) {
        io.out(
          JSON.stringify(
            rows.map(({ s, messages, lastPrompt }) => ({
              session_id: s.sessionId,
              project: s.cwd,
              last_activity: s.mtime.toISOString(),
              messages,
              bytes: s.size,
              last_prompt: lastPrompt,
              picked: s.sessionId === picked,
              ...(s.sessionId === picked ? { picked_because: reason } : {}),
            })),
            null,
            2,
          ) + "\n",
        );
        return;
      }
      if (rows.length === 0) {
        log(`no Claude Code sessions in ${dir}/projects`);
        return;
      }
      io.out(
        "  SESSION                               LAST ACTIVITY  MESSAGES  SIZE       PROJECT\n",
      );
      for (const { s, messages } of rows) {
        io.out(
          `${s.sessionId === picked ? "*" : " "} ${s.sessionId}  ${ageOf(s.mtime).padEnd(13)}  ${
            String(messages).padStart(8)
          }  ${formatSize(s.size).padEnd(9)}  ${escapeText(shorten(s.cwd ?? "(unknown)", 60))}\n`,
        );
      }
    });

  claude.command("install-command")
    .description("write the Claude Code custom command /handoff (runs cipherpost claude send)")
    .option("--force", "replace an existing handoff.md")
    .option(
      "--passphrase-file <path>",
      "make /handoff unlock your identity with this file (Claude Code has no prompt for it)",
    )
    .action(async (o) => {
      const dir = `${configDir()}/commands`;
      const path = `${dir}/handoff.md`;
      if (!o.force) {
        try {
          await Deno.lstat(path);
          throw new CipherpostError(
            "config",
            `cannot write ${path}: it already exists`,
            "pass --force to replace it",
          );
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
      }
      await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
      let extra = "";
      if (o.passphraseFile !== undefined) {
        let abs: string;
        try {
          abs = await Deno.realPath(o.passphraseFile);
        } catch {
          throw new CipherpostError("io", `io error: cannot read ${o.passphraseFile}`);
        }
        extra = `--passphrase-file ${shellQuote(abs)} `;
      }
      await writeFileAtomic(path, new TextEncoder().encode(handoffCommand(extra)), 0o644);
      io.out(`${path}\n`);
      log(
        "In Claude Code, /handoff [--share KEY] sends the current session. cipherpost must be on\n" +
          "Claude Code's PATH and unlock your identity without a prompt: " +
          (extra
            ? "it reads the passphrase file."
            : "pass --passphrase-file here, or set CIPHERPOST_PASSPHRASE."),
      );
    });
}

let passThrough: string[] = [];

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
