/**
 * `cipherpost revoke` (remove one live share) and `cipherpost republish` (re-put the packet and
 * every live share before DHT nodes forget them).
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { republish } from "../flows/republish.ts";
import { revoke } from "../flows/revoke.ts";
import type { FlowUi } from "../flows/ui.ts";
import { State } from "../state/state.ts";
import { cipherpostHome } from "./home.ts";
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
  const ui: FlowUi = { status: log, note: (text) => log(`note: ${text}`) };

  withNetwork(withPassphrase(
    program.command("revoke")
      .description("remove one of your live shares from the network, leaving the others intact")
      .argument("<share>", "the share_ref or the share URI"),
  ))
    .addHelpText(
      "after",
      `\nExample:\n  cipherpost revoke cipherpost://<you>/<ref>\n${NETWORK_HELP}`,
    )
    .action(async (target, o) => {
      const me = await unlockIdentity(o, io);
      const ref = await withTransport(o, (t) => revoke(t, new State(cipherpostHome()), me, target));
      io.out(`revoked ${ref}\n`);
    });

  withNetwork(
    program.command("republish")
      .description(
        "re-put your packet and every live share (DHT nodes forget records within hours)",
      ),
  )
    .addHelpText(
      "after",
      `
Needs no passphrase: it re-puts the signed packets this home already published (the latest
copy of your own packet), and publishes the receipts of shares you accepted whose receipt a
crash or a network failure kept back (v1 ones to the share's overflow slot). Run it hourly:
  cron:    0 * * * *  CIPHERPOST_HOME=$HOME/.cipherpost cipherpost republish
  systemd: a timer with OnCalendar=hourly running the same command
${NETWORK_HELP}`,
    )
    .action(async (o) => {
      const r = await withTransport(o, (t) => republish(t, new State(cipherpostHome()), ui));
      io.out(
        `identity packet: ${r.identityPacket}; shares: ${r.shares} (${r.packets} packets); expired forgotten: ${r.expiredForgotten}; pending receipts published: ${r.receiptsPublished}\n`,
      );
    });
}
