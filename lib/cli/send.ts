/**
 * `cipherpost send`: encrypt a secret to yourself or to a public key, publish it, print the
 * share URI.
 *
 * @module
 */

import { type Command, Option } from "@commander-js/extra-typings";
import QRCode from "qrcode";
import { CipherpostError } from "../util/errors.ts";
import { stripControl } from "../util/encoding.ts";
import { MATERIAL_CAP, type MaterialType, materialTypeFromFlag } from "../material/material.ts";
import { readFileCapped } from "../util/bounded_read.ts";
import { send } from "../flows/send.ts";
import type { FlowUi } from "../flows/ui.ts";
import { State } from "../state/state.ts";
import { validatePin } from "./passphrase.ts";
import { cipherpostHome } from "./home.ts";
import { type Io, readAllStdin } from "./io.ts";
import {
  NETWORK_HELP,
  pinOf,
  unlockIdentity,
  withNetwork,
  withPassphrase,
  withPin,
  withTransport,
} from "./options.ts";

/** The material to send: `--material-file PATH`, or `-` for standard input. */
/** How much input a material may have before ingest (PEM text is longer than its DER). */
function inputCap(material: MaterialType): number {
  return material === "x509_cert" || material === "ssh_key" ? 4 * MATERIAL_CAP : MATERIAL_CAP;
}

async function readInput(
  file: string | undefined,
  positional: string | undefined,
  cap: number,
): Promise<Uint8Array> {
  if (file !== undefined && positional !== undefined) {
    throw new CipherpostError(
      "config",
      "configuration error: give --material-file or '-', not both",
    );
  }
  if (positional !== undefined && positional !== "-") {
    throw new CipherpostError(
      "config",
      `configuration error: unexpected argument '${positional}'`,
      `to send a file use --material-file ${positional}`,
    );
  }
  const src = file ?? positional;
  if (src === undefined) {
    throw new CipherpostError(
      "config",
      "configuration error: nothing to send",
      "use --material-file PATH, or '-' to read standard input",
    );
  }
  // at most cap + 1 bytes are read: /dev/zero or an endless pipe cost nothing more
  if (src === "-") return await readAllStdin(cap);
  return await readFileCapped(src, cap, src);
}

/** Register `send` on the program. */
export function registerSendCommand(program: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
  const ui: FlowUi = { status: log, note: (text) => log(`note: ${text}`) };

  withNetwork(withPin(withPassphrase(
    program.command("send")
      .description(
        "encrypt a secret to yourself or to a public key and publish it; prints the share URI",
      )
      .argument("[input]", "'-' to read the material from standard input")
      .option("--self", "send to your own identity (another machine of yours)")
      .option("--share <key>", "send to this recipient's z-base-32 public key")
      .option("-p, --purpose <text>", "what this is for (shown to the recipient; not secret)", "")
      .option("--material-file <path>", "read the material from a file ('-' = stdin)")
      .option(
        "--material <type>",
        "generic-secret | x509-cert | pgp-key | ssh-key",
        "generic-secret",
      )
      .option("--ttl <seconds>", "lifetime of the share", "86400")
      .option("--pin", "also require a PIN (Argon2id) to open the share")
      .option("--burn", "burn after read: the recipient's tool shows it once")
      .option("--json", "print {uri, share_ref, expires_at, size, protocol} as JSON")
      .option("--qr", "also draw the URI as a QR code on stderr")
      .addOption(
        new Option("--protocol <n>", "force protocol 1 (v1.1-compatible) or 2").choices(
          ["1", "2"] as const,
        ),
      ),
  )))
    .addHelpText(
      "after",
      `
Examples:
  cipherpost send --self -p "db password" --material-file secret.txt
  printf 's3cret' | cipherpost send --share <bob-z32> -p "API token" --burn -
  cipherpost send --share <bob-z32> --material ssh-key --material-file id_ed25519 --pin --pin-file pin.txt
${NETWORK_HELP}`,
    )
    .action(async (positional, o) => {
      if (!!o.self === (o.share !== undefined)) {
        throw new CipherpostError(
          "config",
          "configuration error: choose exactly one of --self or --share <key>",
          "e.g. cipherpost send --self --material-file secret.txt",
        );
      }
      if (!/^[0-9]{1,12}$/.test(o.ttl) || Number(o.ttl) < 1) {
        throw new CipherpostError("usage", "--ttl takes a number of seconds (1 to 999999999999)");
      }
      const material = materialTypeFromFlag(o.material);
      const input = await readInput(o.materialFile, positional, inputCap(material));
      const me = await unlockIdentity(o, io);
      const pin = o.pin ? await pinOf(o, true) : null;
      if (pin !== null) validatePin(pin);
      const result = await withTransport(o, (t) =>
        send(t, new State(cipherpostHome()), me, {
          recipient: o.self ? null : (o.share ?? null),
          purpose: stripControl(o.purpose),
          material,
          input,
          ttlSeconds: BigInt(o.ttl),
          pin,
          burn: o.burn === true,
          protocol: o.protocol === undefined ? undefined : o.protocol === "1" ? 1 : 2,
        }, ui));
      if (o.burn) {
        log("note: burn-after-read is enforced by the recipient's tool, not by the network");
      }
      if (o.json) {
        io.out(
          JSON.stringify({
            uri: result.uri,
            share_ref: result.shareRef,
            expires_at: result.expiresAt,
            size: result.size,
            protocol: result.protocol,
            packets: result.packets,
          }) + "\n",
        );
      } else io.out(`${result.uri}\n`);
      if (o.qr) io.err(await QRCode.toString(result.uri, { type: "terminal", small: true }));
    });
}
