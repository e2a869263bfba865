/**
 * `cipherpost shares` (list the live shares), `cipherpost revoke` (remove one live share) and
 * `cipherpost republish` (re-put the packet and every live share not yet received before DHT
 * nodes forget them).
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { displayText } from "../util/encoding.ts";
import { collectReceipts } from "../flows/share/receipts.ts";
import { republishAll } from "../flows/large/republish.ts";
import { revoke } from "../flows/share/revoke.ts";
import { State } from "../state/state.ts";
import { Contacts } from "../state/contacts.ts";
import { truncate, utcMinute } from "../util/human.ts";
import { cipherpostHome } from "./home.ts";
import { startProgress } from "./progress.ts";
import { isStderrTty } from "./tty.ts";
import { cliUi, gcSummary } from "./large.ts";
import type { Io } from "./io.ts";
import {
  NETWORK_HELP,
  unlockIdentity,
  withNetwork,
  withPassphrase,
  withTransport,
} from "./options.ts";

/** Register `revoke` and `republish` on the program. */
export function registerShareCommands(program: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);

  withNetwork(withPassphrase(
    program.command("revoke")
      .description("remove one of your live shares from the network, leaving the others intact")
      .argument(
        "<share>",
        "the share URI, its share_ref, or a unique prefix of it (4+ characters)",
      ),
  ))
    .addHelpText(
      "after",
      `\nExamples:\n  cipherpost revoke cipherpost://<you>/<ref>\n  cipherpost revoke 1faa92   # as cipherpost shares lists it\n${NETWORK_HELP}`,
    )
    .action(async (target, o) => {
      const me = await unlockIdentity(o, io);
      const ref = await withTransport(o, (t) => revoke(t, new State(cipherpostHome()), me, target));
      io.out(`revoked ${ref}\n`);
    });

  withNetwork(
    program.command("republish")
      .description(
        "re-put your packet and every live share not yet received (DHT nodes forget records within hours)",
      ),
  )
    .addHelpText(
      "after",
      `
Needs no passphrase: it re-puts the signed packets this home already published (the latest
copy of your own packet), and publishes the receipts of shares you accepted whose receipt a
crash or a network failure kept back (v1 ones to the share's overflow slot). With a stored
homeserver session it also deletes the large-share blobs homeserver gc would. Run it hourly:
  cron:    0 * * * *  CIPHERPOST_HOME=$HOME/.cipherpost cipherpost republish
  systemd: a timer with OnCalendar=hourly running the same command
${NETWORK_HELP}`,
    )
    .action(async (o) => {
      const state = new State(cipherpostHome());
      const ui = cliUi(log, {
        fetchBar: startProgress("Republishing", { enabled: isStderrTty() }),
      });
      let r;
      try {
        r = await withTransport(o, (t) =>
          republishAll(t, state, {
            ...ui,
            // the packets re-put are the bar's count
            progress: (_phase, d, n) => ui.progress?.("fetch", d, n),
          }));
      } finally {
        ui.end();
      }
      if (r.gcSkipped) log(`warning: homeserver gc skipped: ${r.gcSkipped}`);
      const gc = r.gc;
      const blobs = gc === null ? "" : `; homeserver: ${gcSummary(gc)}`;
      io.out(
        `identity packet: ${r.identityPacket}; shares: ${r.shares} (${r.packets} packets); skipped (already received): ${r.skippedReceived}; expired forgotten: ${r.expiredForgotten}; pending receipts published: ${r.receiptsPublished}${blobs}\n`,
      );
    });

  withNetwork(
    program.command("shares")
      .description("list your live shares: ref, recipient, purpose, expiry, received or not")
      .option("--json", "print them as a JSON array"),
  )
    .addHelpText(
      "after",
      `
Reads this home's records of sent shares (expired ones are not listed) and fetches their receipts
to say which were received. The ref column is what revoke takes (any unique prefix).
Example:
  cipherpost shares
${NETWORK_HELP}`,
    )
    .action(async (o) => {
      const state = new State(cipherpostHome());
      const now = Math.floor(Date.now() / 1000);
      const live = (await state.listSent()).filter((s) => s.expiresAt > now)
        .sort((a, b) => a.createdAt - b.createdAt);
      const receipts = live.length === 0
        ? []
        : (await withTransport(o, (t) => collectReceipts(t, state, undefined))).valid;
      const names = new Map(
        (await new Contacts(cipherpostHome()).list()).map((c) => [c.key, c.name]),
      );
      const rows = live.map((s) => {
        const rs = receipts.filter((r) => r.shareRef === s.shareRef);
        return {
          share_ref: s.shareRef,
          recipient: s.recipient,
          recipient_name: s.recipient === null ? null : names.get(s.recipient) ?? null,
          purpose: s.purpose ?? null,
          expires_at: s.expiresAt,
          protocol: s.version,
          received_at: rs.length ? Math.min(...rs.map((r) => r.acceptedAt)) : null,
          uri: s.uri,
        };
      });
      if (o.json) {
        io.out(JSON.stringify(rows, null, 2) + "\n");
        return;
      }
      if (rows.length === 0) {
        log("no live shares (sent from this home and not expired)");
        return;
      }
      io.out(
        `${"ref".padEnd(12)}  ${"recipient".padEnd(20)}  ${"purpose".padEnd(24)}  ${
          "expires (UTC)".padEnd(20)
        }  received\n`,
      );
      for (const r of rows) {
        const who = r.recipient_name ??
          (r.recipient === null ? "(self)" : `${r.recipient.slice(0, 16)}…`);
        const purpose = truncate(displayText(r.purpose ?? ""), 24);
        io.out(
          `${r.share_ref.slice(0, 12)}  ${who.padEnd(20)}  ${purpose.padEnd(24)}  ${
            utcMinute(r.expires_at).padEnd(20)
          }  ${r.received_at === null ? "no" : `yes, ${utcMinute(r.received_at)}`}\n`,
        );
      }
    });
}
