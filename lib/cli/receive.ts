/**
 * `cipherpost receive`: fetch, verify, decrypt and accept a share; publishes a signed receipt.
 * Acceptance is the sender's key typed back on the terminal, or given in advance (`--accept`).
 *
 * @module
 */

import { type Command, Option } from "@commander-js/extra-typings";
import { CipherpostError } from "../util/errors.ts";
import { parseShareUri } from "../protocol/share_uri.ts";
import { checkConsumed, publishPendingReceipt, receive } from "../flows/receive.ts";
import type { AcceptanceSummary, FlowUi } from "../flows/ui.ts";
import { State } from "../state/state.ts";
import { acceptanceBanner } from "./format.ts";
import { cipherpostHome } from "./home.ts";
import { checkStdout, type Io, readLineFromTty, writeAllStdout } from "./io.ts";
import {
  NETWORK_HELP,
  pinOf,
  unlockIdentity,
  withNetwork,
  withPassphrase,
  withPin,
  withTransport,
} from "./options.ts";

/** Register `receive` on the program. */
export function registerReceiveCommand(program: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
  const ui: FlowUi = { status: log, note: (text) => log(`note: ${text}`) };

  withNetwork(withPin(withPassphrase(
    program.command("receive")
      .description("fetch, verify, decrypt and accept a share; publishes a signed receipt")
      .argument("<uri>", "the cipherpost:// URI the sender gave you")
      .option(
        "-o, --output <path>",
        "write the material to this new file, mode 0600 ('-' = stdout, the default); never " +
          "through a symlink or onto a directory or device (checked before anything is shown)",
      )
      .option("--force", "replace an existing regular output file")
      .option("--armor", "PEM/ASCII-armor output for x509-cert and pgp-key material")
      .option(
        "--accept <key>",
        "accept non-interactively: the sender's z-base-32 key, typed in advance",
      )
      .addOption(
        new Option("--dht-timeout <s>", "accepted for v1.1 compatibility; use --timeout")
          .hideHelp(),
      ),
  )))
    .addHelpText(
      "after",
      `
Without a terminal, receive refuses unless --accept names the sender (exit 7).
Examples:
  cipherpost receive cipherpost://<sender>/<ref> -o secret.txt
  cipherpost receive "$URI" --accept <sender-z32> -o - | some-tool
${NETWORK_HELP}`,
    )
    .action(async (uriText, o) => {
      const uri = parseShareUri(uriText);
      const state = new State(cipherpostHome());
      const consumed = await checkConsumed(state, uri, ui);
      if (consumed?.kind === "done") return;
      if (consumed?.kind === "pending") {
        const me = await unlockIdentity(o, io);
        await withTransport(o, (t) => publishPendingReceipt(t, state, me, consumed.ref, ui));
        return;
      }
      if (o.output === undefined || o.output === "-") checkStdout();
      const me = await unlockIdentity(o, io);
      const interactive = Deno.stdin.isTerminal() && Deno.stderr.isTerminal();
      const confirm = async (s: AcceptanceSummary): Promise<boolean> => {
        for (const line of acceptanceBanner(s)) log(line);
        let typed: string | null;
        if (o.accept !== undefined) {
          typed = o.accept;
        } else if (interactive) {
          log("To accept, paste the sender's z32 pubkey and press Enter:");
          typed = await readLineFromTty();
        } else {
          throw new CipherpostError(
            "declined",
            "user declined acceptance: no terminal to confirm on",
            `to accept without a terminal, pass --accept ${s.sender}`,
          );
        }
        return typed !== null && typed.trim() === s.sender;
      };
      await withTransport(o, (t) =>
        receive(
          t,
          state,
          me,
          {
            uri,
            output: o.output,
            force: o.force === true,
            armor: o.armor === true,
            pin: () => pinOf(o, false),
          },
          { ...ui, confirm },
          writeAllStdout,
        ));
    });
}
