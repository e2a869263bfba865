/**
 * `cipherpost claude send`: pick the session (argument, environment, live or recent; a choice
 * at a terminal) and hand it off (lib/flows/handoff/send.ts).
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { CipherpostError, configError } from "../util/errors.ts";
import { State } from "../state/state.ts";
import { discoverSession, type LocalSession } from "../claude/discover.ts";
import { claudeSend } from "../flows/handoff/send.ts";
import { cipherpostHome } from "./home.ts";
import type { Io } from "./io.ts";
import { validatePin } from "./passphrase.ts";
import { readAcceptLine } from "./receive.ts";
import {
  NETWORK_HELP,
  pinOf,
  unlockIdentity,
  withNetwork,
  withPassphrase,
  withPin,
  withTransport,
} from "./options.ts";
import { escapeControl, stripControl } from "../util/encoding.ts";
import { cliUi, partSizeOverride, partWorkers } from "./large.ts";
import { DURATION_FORMS, parseDuration } from "./duration.ts";
import { resolveRecipient } from "./recipient.ts";
import { Contacts } from "../state/contacts.ts";
import { ageOf, configDir, interactive } from "./claude_common.ts";

function describe(s: LocalSession): string {
  return `${s.sessionId}  ${ageOf(s.mtime)}  ${
    escapeControl(s.cwd ?? "(unknown project)", { backslash: true })
  }`;
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

/** Register `claude send` on the `claude` command group. */
export function registerClaudeSend(claude: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
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
        throw configError("choose one of --self or --share <key>");
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
      log(
        `Session ${session.sessionId} (${pick.reason}): ${
          escapeControl(session.cwd ?? "", { backslash: true })
        }`,
      );
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
}
