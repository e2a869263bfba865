/**
 * `cipherpost receipts` (fetch and verify delivery receipts) and `cipherpost receipt verify`
 * (check a saved receipt offline).
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { CipherpostError } from "../util/errors.ts";
import { receiptObject } from "../protocol/record.ts";
import { readReceiptsInput } from "../protocol/receipts.ts";
import { collectReceipts } from "../flows/share/receipts.ts";
import { State } from "../state/state.ts";
import { Contacts } from "../state/contacts.ts";
import { formatReceiptSummary, formatReceiptTable } from "./format.ts";
import { utcMinute } from "../util/human.ts";
import { cipherpostHome } from "./home.ts";
import { resolveRecipient } from "./recipient.ts";
import { type Io, readAllStdin, SMALL_INPUT_CAP } from "./io.ts";
import { readFileCapped } from "../util/bounded_read.ts";
import { NETWORK_HELP, withNetwork, withTransport } from "./options.ts";

/** Live shares of this home (to `fromZ32`, when given) with no receipt among `receipts`. */
async function pendingShares(
  state: State,
  receipts: Array<{ shareRef: string }>,
  fromZ32: string | undefined,
): Promise<string[]> {
  const now = Math.floor(Date.now() / 1000);
  const got = new Set(receipts.map((r) => r.shareRef));
  const names = new Map((await new Contacts(cipherpostHome()).list()).map((c) => [c.key, c.name]));
  return (await state.listSent())
    .filter((s) => s.expiresAt > now && !got.has(s.shareRef))
    .filter((s) => fromZ32 === undefined || (s.recipient ?? s.sender) === fromZ32)
    .map((s) => {
      const to = s.recipient === null ? "(self)" : s.recipient;
      return `  ${s.shareRef.slice(0, 16)}  ${names.get(to) ?? to}  (expires ${
        utcMinute(s.expiresAt)
      })\n`;
    });
}

/** Register `receipts` and `receipt verify` on the program. */
export function registerReceiptCommands(program: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);

  withNetwork(
    program.command("receipts")
      .description("fetch and verify delivery receipts (no identity needed)")
      .option(
        "--from <key>",
        "the recipient whose published receipts to read (key or contact name)",
      )
      .option("--share-ref <hex>", "only the receipt of this share")
      .option(
        "--json",
        "print the receipts as a JSON array ([] when none); with --share-ref, the one receipt as an object (what `receipt verify` accepts)",
      ),
  )
    .addHelpText(
      "after",
      `
Reads v1 receipts from the recipient's packet (--from) and the receipt slot of every share sent
from this home to that recipient (v2 slots, and the overflow slot of v1 receipts that did not fit
the recipient's packet). Without --from: every share sent from this home. Without --json, the
live shares nobody has received yet are listed after the receipts.
Examples:
  cipherpost receipts --from bob
  cipherpost receipts --from bob --share-ref <ref> --json > receipt.json
${NETWORK_HELP}`,
    )
    .action(async (o) => {
      log("Resolving receipts from DHT...");
      const from = o.from === undefined
        ? undefined
        : (await resolveRecipient(o.from, new Contacts(cipherpostHome()), "--from")).z32;
      const h = await withTransport(
        o,
        (t) => collectReceipts(t, new State(cipherpostHome()), from),
      );
      const extra = [
        h.malformed ? `${h.malformed} malformed` : "",
        h.invalid ? `${h.invalid} invalid-signature` : "",
      ]
        .filter((x) => x);
      log(
        `fetched ${h.fetched} receipt(s); ${h.valid.length} valid${
          extra.length ? ", " + extra.join(", ") : ""
        }`,
      );
      const shown = o.shareRef ? h.valid.filter((r) => r.shareRef === o.shareRef) : h.valid;
      if (shown.length === 0 && o.json) {
        io.out("[]\n"); // nothing to archive: an empty list, exit 0
        return;
      }
      if (shown.length === 0) {
        if (h.invalid > 0 || h.malformed > 0) {
          throw new CipherpostError(
            "signature",
            "signature verification failed",
            `${
              h.invalid + h.malformed
            } receipt(s) found, none valid for your shares (forged, for another share, or malformed); ask the recipient to receive again`,
          );
        }
        if (!o.shareRef) {
          const pending = await pendingShares(new State(cipherpostHome()), [], from);
          if (pending.length) io.out(`not received yet:\n${pending.join("")}`);
        }
        throw new CipherpostError(
          "not_found",
          "no receipts found",
          "a receipt appears once the recipient accepts; DHT nodes forget records within hours, so archive receipts with --json",
        );
      }
      shown.sort((a, b) => a.acceptedAt - b.acceptedAt);
      if (o.json) {
        // --share-ref names one share: its receipt is one object, what `receipt verify` takes
        io.out(
          JSON.stringify(
            o.shareRef && shown.length === 1 ? receiptObject(shown[0]) : shown.map(receiptObject),
            null,
            2,
          ) + "\n",
        );
      } else if (o.shareRef && shown.length === 1) io.out(formatReceiptSummary(shown[0]));
      else io.out(formatReceiptTable(shown));
      if (!o.json && !o.shareRef) {
        const pending = await pendingShares(new State(cipherpostHome()), h.valid, from);
        if (pending.length) io.out(`\nnot received yet:\n${pending.join("")}`);
      }
    });

  const receipt = program.command("receipt").description("work with saved receipts").exitOverride();
  receipt.command("verify")
    .description(
      "verify a saved receipt (or an array of them) offline; exit 3 if a check fails, 1 if it is not a receipt",
    )
    .argument("<file>", "receipt JSON file, or - for stdin")
    .addHelpText(
      "after",
      "\nExamples:\n  cipherpost receipts --from bob --share-ref <ref> --json > receipt.json\n" +
        "  cipherpost receipt verify receipt.json\n" +
        "  cipherpost receipts --from bob --json | cipherpost receipt verify -\n",
    )
    .action(async (file) => {
      const bytes = file === "-"
        ? await readAllStdin(SMALL_INPUT_CAP)
        : await readFileCapped(file, SMALL_INPUT_CAP);
      io.out(readReceiptsInput(bytes).map(formatReceiptSummary).join("\n"));
    });
}
