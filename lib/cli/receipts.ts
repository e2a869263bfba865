/**
 * `cipherpost receipts` (fetch and verify delivery receipts) and `cipherpost receipt verify`
 * (check a saved receipt offline).
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { CipherpostError } from "../util/errors.ts";
import { receiptObject } from "../protocol/record.ts";
import { readReceiptInput } from "../protocol/receipts.ts";
import { collectReceipts } from "../flows/receipts.ts";
import { State } from "../state/state.ts";
import { formatReceiptSummary, formatReceiptTable } from "./format.ts";
import { cipherpostHome } from "./home.ts";
import { type Io, readAllStdin, SMALL_INPUT_CAP } from "./io.ts";
import { readFileCapped } from "../util/bounded_read.ts";
import { NETWORK_HELP, withNetwork, withTransport } from "./options.ts";

/** Register `receipts` and `receipt verify` on the program. */
export function registerReceiptCommands(program: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);

  withNetwork(
    program.command("receipts")
      .description("fetch and verify delivery receipts (no identity needed)")
      .option("--from <key>", "the recipient whose published receipts to read")
      .option("--share-ref <hex>", "only the receipt of this share")
      .option(
        "--json",
        "print the receipts as a JSON array (each one is what `receipt verify` accepts)",
      ),
  )
    .addHelpText(
      "after",
      `
Reads v1 receipts from the recipient's packet (--from) and the receipt slot of every share sent
from this home to that recipient (v2 slots, and the overflow slot of v1 receipts that did not fit
the recipient's packet). Without --from: the slots of every share sent from this home.
Examples:
  cipherpost receipts --from <bob-z32>
  cipherpost receipts --from <bob-z32> --share-ref <ref> --json > receipt.json
${NETWORK_HELP}`,
    )
    .action(async (o) => {
      log("Resolving receipts from DHT...");
      const h = await withTransport(
        o,
        (t) => collectReceipts(t, new State(cipherpostHome()), o.from),
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
        throw new CipherpostError(
          "not_found",
          "no receipts found",
          "a receipt appears once the recipient accepts; DHT nodes forget records within hours, so archive receipts with --json",
        );
      }
      shown.sort((a, b) => a.acceptedAt - b.acceptedAt);
      if (o.json) io.out(JSON.stringify(shown.map(receiptObject), null, 2) + "\n");
      else if (o.shareRef && shown.length === 1) io.out(formatReceiptSummary(shown[0]));
      else io.out(formatReceiptTable(shown));
    });

  const receipt = program.command("receipt").description("work with saved receipts").exitOverride();
  receipt.command("verify")
    .description("verify a saved receipt JSON offline; exit 3 if anything is wrong")
    .argument("<file>", "receipt JSON file, or - for stdin")
    .addHelpText(
      "after",
      "\nExample:\n  cipherpost receipts --from <z32> --json | jq '.[0]' | cipherpost receipt verify -\n",
    )
    .action(async (file) => {
      const r = await readReceiptInput(
        file === "-" ? await readAllStdin() : await readFileCapped(file, SMALL_INPUT_CAP),
      );
      io.out(formatReceiptSummary(r));
    });
}
