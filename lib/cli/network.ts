/**
 * Commands that touch the network: send, receive, receipts, revoke, republish, dht resolve and
 * testnet. Each opens one Transport and closes it on every path.
 *
 * @module
 */

import { type Command, Option } from "commander";
import QRCode from "qrcode";
import { CipherpostError } from "../util/errors.ts";
import { txtText } from "../pkarr/dns.ts";
import { cipherpostHome } from "../util/fsutil.ts";
import { type Io, parseIntArg, passphraseOptions, unlockIdentity } from "./program.ts";
import { materialTypeFromFlag } from "../material/material.ts";
import { getPin, validatePin } from "./passphrase.ts";
import { encodeZ32, parsePublicKey } from "../pkarr/public_key.ts";
import { receiptObject } from "../protocol/record.ts";
import { formatReceiptSummary, formatReceiptTable } from "../protocol/receipts.ts";
import { checkConsumed, receive } from "../flows/receive.ts";
import { send } from "../flows/send.ts";
import { collectReceipts, republish, revoke } from "../flows/shares.ts";
import { parseShareUri } from "../protocol/share_uri.ts";
import { State } from "../state/state.ts";
import { startTestnet } from "../testing/testnet.ts";
import { startHomeserverOnTestnet } from "../testing/homeserver.ts";
import { Transport, transportOptions } from "../pkarr/transport.ts";
import { stripControl } from "../util/encoding.ts";
import {
  largeReceiveHook,
  partSizeOverride,
  partWorkers,
  planInput,
  runGc,
  runLargeSend,
} from "./large.ts";

/** The network options' help text. */
export const NETWORK_HELP = `
Network options (every network command):
  --bootstrap host:port,...   Mainline DHT bootstrap nodes   (env CIPHERPOST_BOOTSTRAP)
  --relay URL,...             pkarr HTTP relays              (env CIPHERPOST_RELAYS)
  --no-dht / --no-relay       switch one path off
  --timeout MS                per-request timeout (default 2000; env CIPHERPOST_TIMEOUT)`;

/** Add the network options to a command. */
export function networkOptions(cmd: Command): Command {
  return cmd
    .option("--bootstrap <hosts>", "comma-separated DHT bootstrap host:port list")
    .option("--relay <urls>", "comma-separated pkarr relay URLs")
    .option("--no-dht", "do not use the Mainline DHT")
    .option("--no-relay", "do not use pkarr relays")
    .option("--timeout <ms>", "per-request timeout in milliseconds", parseIntArg);
}

function openTransport(o: Record<string, unknown>): Transport {
  return new Transport(transportOptions({
    bootstrap: o.bootstrap as string | undefined,
    relay: typeof o.relay === "string" ? o.relay : undefined,
    dht: o.dht as boolean | undefined,
    relays: o.relay === false ? false : undefined,
    timeout: o.timeout as number | undefined,
  }));
}

/** Run `f` with a Transport from the command's options; closed on every path. */
export async function withTransport<T>(
  o: Record<string, unknown>,
  f: (t: Transport) => Promise<T>,
): Promise<T> {
  const t = openTransport(o);
  try {
    return await f(t);
  } finally {
    await t.close();
  }
}

/** Add the PIN input options to a command. */
export function pinOptions(cmd: Command): Command {
  return cmd
    .option("--pin-file <path>", "read the PIN from a file (mode 0600 or 0400)")
    .option("--pin-fd <n>", "read the PIN from an inherited pipe descriptor (not 0)", parseIntArg)
    .addOption(new Option("--pin-value <value>", "refused: a PIN in argv leaks").hideHelp());
}

/** The PIN input options of a parsed command. */
export function pinOpts(o: Record<string, unknown>) {
  return {
    pin: o.pinValue as string | undefined,
    pinFd: o.pinFd as number | undefined,
    pinFile: o.pinFile as string | undefined,
  };
}

async function readInput(
  file: string | undefined,
  positional: string | undefined,
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
  if (src === "-") return new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
  try {
    return await Deno.readFile(src);
  } catch {
    throw new CipherpostError("io", `io error: cannot read ${src}`);
  }
}

/** Read one line from the terminal after a `> ` prompt on stderr. */
export async function readLineFromTty(): Promise<string | null> {
  await Deno.stderr.write(new TextEncoder().encode("> "));
  const buf = new Uint8Array(1);
  const bytes: number[] = [];
  while (true) {
    const n = await Deno.stdin.read(buf);
    if (n === null) return bytes.length ? new TextDecoder().decode(new Uint8Array(bytes)) : null;
    if (buf[0] === 10) break;
    bytes.push(buf[0]);
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** Register the network commands on the program. */
export function registerNetworkCommands(program: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);

  networkOptions(pinOptions(passphraseOptions(
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
      .option(
        "--via <where>",
        "dht | homeserver: where the ciphertext goes (default: the DHT when it fits, else your homeserver)",
      )
      .option("--qr", "also draw the URI as a QR code on stderr")
      .addOption(
        new Option("--protocol <n>", "force protocol 1 (v1.1-compatible) or 2").choices(["1", "2"]),
      ),
  )))
    .addHelpText(
      "after",
      `
Examples:
  cipherpost send --self -p "db password" --material-file secret.txt
  printf 's3cret' | cipherpost send --share <bob-z32> -p "API token" --burn -
  cipherpost send --share <bob-z32> --material ssh-key --material-file id_ed25519 --pin --pin-file pin.txt
  cipherpost send --share <bob-z32> -p "photos" --material-file ./photos/   # large: via your homeserver
A directory, more than 64 KiB, or --via homeserver makes a large share: the ciphertext goes to your
homeserver (cipherpost homeserver signup first) and a re-run after an interruption resumes.
${NETWORK_HELP}`,
    )
    .action(async (positional: string | undefined, o) => {
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
      const plan = await planInput(o.materialFile, positional, o.via, o.material);
      if (plan.kind === "large") {
        if (o.protocol === "1") {
          throw new CipherpostError(
            "too_large",
            "a large share (homeserver) cannot be sent as protocol 1",
            "drop --protocol 1",
          );
        }
        const me = await unlockIdentity(o, io);
        const pin = o.pin ? await getPin(pinOpts(o), true) : null;
        if (pin !== null) validatePin(pin);
        const home = cipherpostHome();
        const r = await withTransport(o, (t) =>
          runLargeSend(t, home, new State(home), me, {
            recipient: o.self ? null : o.share,
            purpose: stripControl(o.purpose ?? ""),
            source: plan.source,
            ttlSeconds: BigInt(o.ttl),
            pin,
            burn: o.burn === true,
            workers: partWorkers(),
            partSize: partSizeOverride(),
          }, log));
        log(
          `sent ${r.size} bytes in ${r.parts} parts (${r.uploaded} uploaded, ${r.reused} already there)`,
        );
        if (o.json) {
          io.out(
            JSON.stringify({
              uri: r.uri,
              share_ref: r.shareRef,
              expires_at: r.expiresAt,
              size: r.size,
              protocol: 2,
              packets: r.packets,
              via: "homeserver",
              parts: r.parts,
              uploaded: r.uploaded,
              reused: r.reused,
            }) + "\n",
          );
        } else io.out(`${r.uri}\n`);
        if (o.qr) io.err(await QRCode.toString(r.uri, { type: "terminal", small: true }));
        return;
      }
      const input = plan.bytes ?? await readInput(o.materialFile, positional);
      const me = await unlockIdentity(o, io);
      const pin = o.pin ? await getPin(pinOpts(o), true) : null;
      if (pin !== null) validatePin(pin);
      const result = await withTransport(o, (t) =>
        send(t, new State(cipherpostHome()), me, {
          recipient: o.self ? null : o.share,
          purpose: stripControl(o.purpose ?? ""),
          material,
          input,
          ttlSeconds: BigInt(o.ttl),
          pin,
          burn: o.burn === true,
          protocol: o.protocol ? (Number(o.protocol) as 1 | 2) : undefined,
        }, log));
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

  networkOptions(pinOptions(passphraseOptions(
    program.command("receive")
      .description("fetch, verify, decrypt and accept a share; publishes a signed receipt")
      .argument("<uri>", "the cipherpost:// URI the sender gave you")
      .option(
        "-o, --output <path>",
        "write the material here ('-' = stdout, the default); mode 0600",
      )
      .option("--force", "overwrite an existing output file")
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
A large share needs -o PATH (a file or a new folder); a re-run after an interruption resumes.
${NETWORK_HELP}`,
    )
    .action(async (uriText: string, o) => {
      const uri = parseShareUri(uriText);
      const state = new State(cipherpostHome());
      if (await checkConsumed(state, uri, log)) return;
      const me = await unlockIdentity(o, io);
      const interactive = Deno.stdin.isTerminal() && Deno.stderr.isTerminal();
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
            accept: o.accept,
            pin: () => getPin(pinOpts(o), false),
            promptLine: interactive ? readLineFromTty : null,
            large: largeReceiveHook(t, state, me, {
              output: o.output,
              force: o.force === true,
              accept: o.accept,
              promptLine: interactive ? readLineFromTty : null,
              workers: partWorkers(),
            }, log),
          },
          log,
          async (b) => {
            let off = 0;
            while (off < b.length) off += await Deno.stdout.write(b.subarray(off));
          },
        ));
    });

  networkOptions(
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
        if (h.invalid > 0) throw new CipherpostError("signature", "signature verification failed");
        if (h.malformed > 0) {
          throw new CipherpostError("config", "configuration error: all receipts malformed");
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

  networkOptions(passphraseOptions(
    program.command("revoke")
      .description("remove one of your live shares from the network, leaving the others intact")
      .argument("<share>", "the share_ref or the share URI"),
  ))
    .addHelpText(
      "after",
      `\nExample:\n  cipherpost revoke cipherpost://<you>/<ref>\n${NETWORK_HELP}`,
    )
    .action(async (target: string, o) => {
      const me = await unlockIdentity(o, io);
      const ref = await withTransport(o, (t) => revoke(t, new State(cipherpostHome()), me, target));
      io.out(`revoked ${ref}\n`);
    });

  networkOptions(
    program.command("republish")
      .description(
        "re-put your packet and every live share (DHT nodes forget records within hours)",
      ),
  )
    .addHelpText(
      "after",
      `
Needs no passphrase: it re-puts the signed packets this home already published. Run it hourly:
  cron:    0 * * * *  CIPHERPOST_HOME=$HOME/.cipherpost cipherpost republish
  systemd: a timer with OnCalendar=hourly running the same command
${NETWORK_HELP}`,
    )
    .action(async (o) => {
      const r = await withTransport(o, (t) => republish(t, new State(cipherpostHome()), log));
      io.out(
        `identity packet: ${r.identityPacket}; shares: ${r.shares} (${r.packets} packets); expired forgotten: ${r.expiredForgotten}\n`,
      );
    });

  const hsGroup = program.commands.find((c) => c.name() === "homeserver") ??
    program.command("homeserver").description("your Pubky homeserver (large shares)")
      .exitOverride();
  if (!hsGroup.commands.some((c) => c.name() === "gc")) {
    networkOptions(passphraseOptions(
      hsGroup.command("gc")
        .description(
          "delete your large-share blobs that expired, were revoked, or were burned and receipted",
        ),
    ))
      .addHelpText(
        "after",
        `
Uses the stored homeserver session (no passphrase) when there is one. Blobs of sends still in
progress are kept. Run it now and then, e.g. after republish.
${NETWORK_HELP}`,
      )
      .action(async (o) => {
        const home = cipherpostHome();
        const r = await withTransport(
          o,
          (t) => runGc(t, home, new State(home), () => unlockIdentity(o, io), log),
        );
        io.out(`deleted ${r.deletedFolders} blob(s) (${r.deletedFiles} files); kept ${r.kept}\n`);
      });
  }

  const dht = program.command("dht").description("debugging aids for the PKARR layer")
    .exitOverride();
  networkOptions(
    dht.command("resolve")
      .description(
        "show any key's PKARR records, which nodes/relays answered, and the packet's age",
      )
      .argument("<key>", "z-base-32 key, pk:<key>, or a URL containing it")
      .option("--json", "machine-readable output"),
  )
    .addHelpText("after", `\nExample:\n  cipherpost dht resolve pk:<z32> --json\n${NETWORK_HELP}`)
    .action(async (key: string, o) => {
      let pk: Uint8Array;
      try {
        pk = parsePublicKey(key);
      } catch {
        throw new CipherpostError(
          "config",
          "configuration error: not a public key",
          "pass a 52-character z-base-32 key",
        );
      }
      const rep = await withTransport(o, (t) => t.resolveReport(pk));
      if (!rep.result) {
        throw new CipherpostError(
          "not_found",
          `no packet for ${
            encodeZ32(pk)
          } (DHT: ${rep.dhtResponded}/${rep.dhtQueried} nodes answered; relays answered: ${rep.relaysAnswered}${
            rep.errors.length ? "; " + rep.errors.join("; ") : ""
          })`,
        );
      }
      const p = rep.result.packet;
      const ageS = Math.max(0, Math.round((Date.now() * 1000 - p.timestamp) / 1e6));
      const records = p.records.map((r) => ({
        name: r.name,
        type: r.data.type,
        ttl: r.ttl,
        text: txtText(r) ?? undefined,
      }));
      if (o.json) {
        io.out(
          JSON.stringify(
            {
              key: encodeZ32(pk),
              timestamp_us: p.timestamp,
              age_seconds: ageS,
              bytes: p.v.length,
              sources: rep.result.sources,
              dht: { queried: rep.dhtQueried, responded: rep.dhtResponded },
              relays_answered: rep.relaysAnswered,
              invalid_dropped: rep.invalid,
              records,
            },
            null,
            2,
          ) + "\n",
        );
        return;
      }
      io.out(
        `key:       ${
          encodeZ32(pk)
        }\nseq:       ${p.timestamp} (${ageS}s old), ${p.v.length} bytes\n`,
      );
      io.out(`answered:  ${rep.result.sources.join(", ")}\n`);
      io.out(
        `dht:       ${rep.dhtResponded}/${rep.dhtQueried} nodes answered; relays answered: ${rep.relaysAnswered}\n`,
      );
      for (const r of records) io.out(`${r.name}  ${r.ttl}  ${r.type}  ${r.text ?? ""}\n`);
    });

  program.command("testnet")
    .description("run a local Mainline DHT testnet and pkarr relay on 127.0.0.1 (Ctrl-C to stop)")
    .option("--nodes <n>", "number of DHT nodes", parseIntArg, 20)
    .option(
      "--port <p>",
      "UDP port of the first node (the others follow); 0 = random",
      parseIntArg,
      0,
    )
    .option("--relay-port <p>", "relay HTTP port; 0 = random", parseIntArg, 0)
    .option("--latency <ms>", "each node delays its replies by this much", parseIntArg, 0)
    .option("--loss <pct>", "each node drops this percentage of queries", parseIntArg, 0)
    .option("--homeserver", "also run the stand-in Pubky homeserver (its packet on the testnet)")
    .addOption(
      new Option("--signup-mode <mode>", "homeserver signup mode")
        .choices(["open", "token_required"]).default("token_required"),
    )
    .option("--quota-mb <n>", "homeserver per-user quota in MiB (default unlimited)", parseIntArg)
    .option("--homeserver-port <p>", "homeserver HTTP port; 0 = random", parseIntArg, 0)
    .addHelpText(
      "after",
      `
Prints the environment lines other shells use to reach it, e.g.:
  CIPHERPOST_BOOTSTRAP=127.0.0.1:40001,127.0.0.1:40002,...
  CIPHERPOST_RELAYS=http://127.0.0.1:40100
With --homeserver also (the token only in token_required mode; it is single-use):
  CIPHERPOST_HOMESERVER=<homeserver z32>
  CIPHERPOST_SIGNUP_TOKEN=XXXX-XXXX-XXXX`,
    )
    .action(async (o) => {
      if (o.loss > 100) throw new CipherpostError("usage", "--loss is a percentage (0 to 100)");
      const net = await startTestnet({
        nodes: o.nodes,
        port: o.port,
        relayPort: o.relayPort,
        latencyMs: o.latency,
        lossPct: o.loss,
      });
      const hs = o.homeserver
        ? await startHomeserverOnTestnet(net, {
          signupMode: o.signupMode,
          quotaBytes: o.quotaMb === undefined ? undefined : o.quotaMb * 1024 * 1024,
          port: o.homeserverPort,
        }).catch(async (e) => {
          await net.close();
          throw e;
        })
        : null;
      io.out(
        `CIPHERPOST_BOOTSTRAP=${net.bootstrap.join(",")}\nCIPHERPOST_RELAYS=${net.relayUrl}\n`,
      );
      if (hs) {
        io.out(`CIPHERPOST_HOMESERVER=${hs.key}\n`);
        if (hs.signupMode === "token_required") {
          io.out(`CIPHERPOST_SIGNUP_TOKEN=${hs.mintSignupToken()}\n`);
        }
        log(`homeserver (stand-in): ${hs.key} at ${hs.baseUrl}, signup ${hs.signupMode}`);
      }
      log(
        `testnet: ${o.nodes} nodes on 127.0.0.1, relay ${net.relayUrl}; Ctrl-C or SIGTERM to stop`,
      );
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        Deno.addSignalListener("SIGINT", stop);
        if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", stop);
      });
      await hs?.close();
      await net.close();
      log("testnet stopped");
    });
}
