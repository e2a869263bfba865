/**
 * `cipherpost receive`: fetch, verify, decrypt and accept a share; publishes a signed receipt.
 * Acceptance is the sender's key typed back on the terminal, or given in advance (`--accept`).
 *
 * @module
 */

import { type Command, Option } from "@commander-js/extra-typings";
import { CipherpostError } from "../util/errors.ts";
import { parseShareUri } from "../protocol/share_uri.ts";
import { checkConsumed, publishPendingReceipt } from "../flows/share/receive.ts";
import { receive } from "../flows/large/receive_any.ts";
import type { AcceptanceSummary } from "../flows/share/ui.ts";
import { Contacts } from "../state/contacts.ts";
import { State } from "../state/state.ts";
import { encodeZ32, parsePublicKey } from "../pkarr/public_key.ts";
import { acceptanceBanner } from "./format.ts";
import { cipherpostHome } from "./home.ts";
import { checkStdout, type Io, writeAllStdout } from "./io.ts";
import { pinIsPrompted } from "./passphrase.ts";
import { resolveRecipient } from "./recipient.ts";
import { startProgress } from "./progress.ts";
import { hasTty, isStderrTty, ttyReadLine } from "./tty.ts";
import { cliUi, partWorkers } from "./large.ts";
import { DURATION_FORMS, parseDuration } from "./duration.ts";
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

/** How many lines a terminal user may type at the acceptance prompt before it counts as declined. */
const ACCEPT_TRIES = 3;

/** Whether a typed acceptance line is the sender's key (z32 or pk: form). */
function typedIsSender(typed: string, sender: string): boolean {
  const t = typed.trim();
  if (t === sender) return true;
  try {
    return encodeZ32(parsePublicKey(t)) === sender;
  } catch {
    return false;
  }
}

/** One line typed after a `> ` prompt on the terminal; null on end of input or Ctrl-C. */
export async function readAcceptLine(): Promise<string | null> {
  try {
    return new TextDecoder().decode(await ttyReadLine("> ", false, "acceptance"));
  } catch (e) {
    if (e instanceof CipherpostError && e.kind === "interrupted") return null;
    throw e;
  }
}

/**
 * The acceptance step of every receive (`receive`, `claude pickup`, …): shows the acceptance
 * screen, then takes `accept` (the `--accept` key, already resolved from a key or a contact
 * name to z32), or the sender's key typed at the terminal (z32 or `pk:`). A line that is not
 * the key is a typo and is asked again (three tries); an empty line, n or no, or the end of
 * input, is the user declining.
 */
export function acceptanceConfirm(
  accept: string | undefined,
  interactive: boolean,
  log: (l: string) => void,
): (s: AcceptanceSummary) => Promise<boolean> {
  return async (s: AcceptanceSummary): Promise<boolean> => {
    for (const line of acceptanceBanner(s)) log(line);
    if (accept !== undefined) {
      if (typedIsSender(accept, s.sender)) return true;
      throw new CipherpostError(
        "declined",
        "user declined acceptance: --accept does not name this share's sender",
        "compare it with the Sender line above",
      );
    }
    if (!interactive) {
      throw new CipherpostError(
        "declined",
        "user declined acceptance: no terminal to confirm on",
        `to accept without a terminal, pass --accept ${s.sender}`,
      );
    }
    log("To accept, paste the sender's z32 pubkey and press Enter (an empty line declines):");
    for (let i = 1;; i++) {
      const typed = await readAcceptLine();
      const t = typed?.trim().toLowerCase() ?? "";
      if (typed === null || t === "" || t === "n" || t === "no") return false;
      if (typedIsSender(typed, s.sender)) return true;
      if (i >= ACCEPT_TRIES) {
        throw new CipherpostError(
          "declined",
          "user declined acceptance: the key typed is not the sender's",
          "compare it with the Sender line of the screen",
        );
      }
      const left = ACCEPT_TRIES - i;
      log(
        `that is not the sender's key (compare it with the Sender line); try again, or press Enter to decline (${left} ${
          left === 1 ? "try" : "tries"
        } left):`,
      );
    }
  };
}

/** Register `receive` on the program. */
export function registerReceiveCommand(program: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);

  withNetwork(withPin(withPassphrase(
    program.command("receive")
      .description("fetch, verify, decrypt and accept a share; publishes a signed receipt")
      .argument("<uri>", "the cipherpost:// URI the sender gave you")
      .option(
        "-o, --output <path>",
        "write the material here, mode 0600 ('-' = stdout; the default, except binary material " +
          "on a terminal); never through a symlink or onto a directory or device (checked before " +
          "anything is shown)",
      )
      .option("--force", "replace an existing regular output file")
      .option("--armor", "PEM/ASCII-armor output for x509-cert and pgp-key material")
      .option(
        "--accept <key>",
        "accept non-interactively: the sender's key (z-base-32 or pk: form) or contact name",
      )
      .option(
        "--wait <duration>",
        "large share: how long to wait for parts the sender is still uploading, without a new " +
          `one arriving (${DURATION_FORMS}; 0 = do not wait)`,
        "10m",
      )
      .addOption(
        new Option("--dht-timeout <s>", "accepted for v1.1 compatibility; use --timeout")
          .hideHelp(),
      ),
  )))
    .addHelpText(
      "after",
      `
Without a terminal, receive refuses unless --accept names the sender (exit 7). At a terminal, a
line that is not the sender's key is asked again (three tries); an empty line declines.
Receiving a share you already accepted writes it again (no prompt, no new receipt) while the
sender's share is still on the network and unexpired; a burned share is never shown twice.
Binary material (a DER certificate, a binary PGP key, …) is not written to a terminal: use -o.
A large share needs -o PATH (a file or a new folder); a re-run after an interruption resumes.
A large file sent by a streaming sender may also go to -o - as it arrives (not resumable). An
accepted large share is fetched and written again like any other, while it is on the homeserver.
Examples:
  cipherpost receive cipherpost://<sender>/<ref> -o secret.txt
  cipherpost receive "$URI" --accept <sender-z32> -o - | some-tool
${NETWORK_HELP}`,
    )
    .action(async (uriText, o) => {
      const uri = parseShareUri(uriText);
      const home = cipherpostHome();
      const accept = o.accept === undefined
        ? undefined
        : (await resolveRecipient(o.accept, new Contacts(home), "--accept")).z32;
      const partWaitMs = waitMs(o.wait);
      const state = new State(home);
      const ui = cliUi(log);
      const consumed = await checkConsumed(state, uri, ui);
      if (consumed?.kind === "pending") {
        const me = await unlockIdentity(o, io);
        await withTransport(o, (t) => publishPendingReceipt(t, state, me, consumed.ref, ui));
        return;
      }
      const acceptedBefore = consumed?.kind === "accepted";
      if (o.output === undefined || o.output === "-") checkStdout();
      const me = await unlockIdentity(o, io);
      let stdoutTty = false;
      try {
        stdoutTty = Deno.stdout.isTerminal();
      } catch { /* not a terminal */ }
      const flowUi = cliUi(log, {
        confirm: acceptanceConfirm(accept, hasTty(), log),
        fetchBar: startProgress("Fetching", { enabled: isStderrTty() }),
      });
      try {
        await withTransport(o, (t) =>
          receive({ transport: t, state, me }, {
            uri,
            output: o.output,
            force: o.force === true,
            armor: o.armor === true,
            pin: () => pinOf(o, false),
            pinTries: pinIsPrompted(pinSources(o)) ? 3 : 1,
            refuseBinaryOnStdout: o.output === undefined && stdoutTty,
            writeStdout: writeAllStdout,
            workers: partWorkers(),
            waitMs: partWaitMs,
          }, flowUi));
      } catch (e) {
        if (
          acceptedBefore && e instanceof CipherpostError &&
          ["not_found", "expired", "network"].includes(e.kind)
        ) {
          throw new CipherpostError(
            e.kind,
            `cannot write it again: ${e.message}`,
            "an accepted share can be written again only while the sender's share is on the network and unexpired",
          );
        }
        if (e instanceof CipherpostError && e.kind === "not_found" && !e.hint) {
          // what to do when the share is not out there (a typo, or gone)
          throw new CipherpostError(
            e.kind,
            e.message,
            "check the URI for a typo; else the share expired, was revoked, or the DHT forgot " +
              "it: the sender can run `cipherpost republish` (while it lives) or send it again",
          );
        }
        throw e;
      } finally {
        flowUi.end();
      }
    });
}

/** `--wait`: `0` or a duration, in milliseconds. */
function waitMs(text: string): number {
  return text.trim() === "0" ? 0 : parseDuration(text, "--wait") * 1000;
}
