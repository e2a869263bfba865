/**
 * Commands that touch the network: send, receive, receipts, revoke, republish, dht resolve and
 * testnet. Each opens one Transport and closes it on every path.
 *
 * @module
 */

import { type Command, Option } from "commander";
import { CipherpostError } from "../util/errors.ts";
import { txtText } from "../pkarr/dns.ts";
import { cipherpostHome, ensurePrivateDir, exists, writeFileAtomic } from "../util/fsutil.ts";
import { type Io, parseIntArg, passphraseOptions, unlockIdentity } from "./program.ts";
import { materialTypeFromFlag } from "../material/material.ts";
import { getPin, pinIsPrompted, validatePin } from "./passphrase.ts";
import { encodeZ32 } from "../pkarr/public_key.ts";
import { receiptObject } from "../protocol/record.ts";
import { formatReceiptSummary, formatReceiptTable, utcMinute } from "../protocol/receipts.ts";
import { checkConsumed, receive } from "../flows/receive.ts";
import { send, type SendResult } from "../flows/send.ts";
import { collectReceipts, republish, revoke } from "../flows/shares.ts";
import { Contacts } from "../state/contacts.ts";
import { parseKeyArg, type ResolvedKey, resolveRecipient } from "./recipient.ts";
import { recipientKnownAs, unknownRecipientWarning } from "./contacts.ts";
import { DURATION_FORMS, formatDuration, parseDuration } from "./duration.ts";
import { startProgress } from "./progress.ts";
import { renderQr } from "./qr.ts";
import { hasTty, ttyReadLine } from "./tty.ts";
import { parseShareUri } from "../protocol/share_uri.ts";
import { State } from "../state/state.ts";
import { startTestnet } from "../testing/testnet.ts";
import { Transport, transportOptions } from "../pkarr/transport.ts";
import { stripControl } from "../util/encoding.ts";

const NETWORK_HELP = `
Network options (every network command):
  --bootstrap host:port,...   Mainline DHT bootstrap nodes   (env CIPHERPOST_BOOTSTRAP)
  --relay URL,...             pkarr HTTP relays              (env CIPHERPOST_RELAYS)
  --no-dht / --no-relay       switch one path off
  --timeout MS                per-request timeout (default 2000; env CIPHERPOST_TIMEOUT)`;

function networkOptions(cmd: Command): Command {
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

async function withTransport<T>(
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

function pinOptions(cmd: Command): Command {
  return cmd
    .option("--pin-file <path>", "read the PIN from a file (mode 0600 or 0400)")
    .option("--pin-fd <n>", "read the PIN from an inherited pipe descriptor (not 0)", parseIntArg)
    .addOption(new Option("--pin-value <value>", "refused: a PIN in argv leaks").hideHelp());
}

function pinOpts(o: Record<string, unknown>) {
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
  const st = await Deno.stat(src).catch(() => null);
  if (st?.isDirectory) {
    throw new CipherpostError(
      "config",
      `configuration error: ${src} is a directory; send takes one file (up to 64 KiB)`,
      `pack it first (tar -czf ${
        src.replace(/\/+$/, "")
      }.tgz ${src}); anything over 64 KiB needs large-payload sending (README, "What fits where")`,
    );
  }
  try {
    return await Deno.readFile(src);
  } catch {
    throw new CipherpostError("io", `io error: cannot read ${src}`);
  }
}

async function readLineFromTty(): Promise<string | null> {
  try {
    return new TextDecoder().decode(await ttyReadLine("> ", false, "acceptance"));
  } catch (e) {
    if (e instanceof CipherpostError && e.kind === "interrupted") return null;
    throw e;
  }
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

function isStderrTty(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

/** Show the v1→v2 fallback note the first time it happens in this home. */
async function fallbackNoteOnce(
  home: string,
  reason: NonNullable<SendResult["fallback"]>,
  log: (l: string) => void,
): Promise<void> {
  const marker = `${home}/state/notes/v2-fallback`;
  if (await exists(marker)) return;
  const why = reason === "too_large"
    ? "it is larger than one v1 packet holds (about 100 bytes of secret)"
    : reason === "packet_full"
    ? "your identity packet has no room left for a v1 share"
    : "your one v1 slot already holds another live share";
  log(
    `note: sent as protocol v2 because ${why}. The recipient needs this cipherpost to open it;\n` +
      "      the Rust cipherpost v1.1 cannot read v2 shares (--protocol 1 forces v1 and says when\n" +
      "      a share does not fit). This note is shown once.",
  );
  try {
    await ensurePrivateDir(`${home}/state/notes`);
    await writeFileAtomic(marker, new Uint8Array(), 0o600);
  } catch { /* a read-only home shows the note again: harmless */ }
}

/** The lines a person at a terminal sees after `send`: what the recipient runs, and until when. */
function nextSteps(
  sent: Array<{ to: ResolvedKey | null; result: SendResult }>,
  now: number,
): string[] {
  const lines: string[] = [];
  for (const { to, result } of sent) {
    const exp = `${utcMinute(result.expiresAt)}, in ${formatDuration(result.expiresAt - now)}`;
    const who = to === null
      ? "On your other machine (same identity), run"
      : `${to.contact ? to.contact.name : "The recipient"} runs`;
    lines.push(`${who} (before ${exp}):`, `  cipherpost receive ${result.uri}`);
  }
  return lines;
}

/** Live shares of this home (to `from`, when given) with no receipt among `receipts`. */
async function pendingShares(
  state: State,
  receipts: Array<{ shareRef: string }>,
  from: string | undefined,
): Promise<string[]> {
  const now = Math.floor(Date.now() / 1000);
  const got = new Set(receipts.map((r) => r.shareRef));
  const fromZ32 = from === undefined ? undefined : encodeZ32(parseKeyArg(from, "--from"));
  const names = new Map((await new Contacts(cipherpostHome()).list()).map((c) => [c.key, c.name]));
  return (await state.listSent())
    .filter((s) => Number(s.expires_at) > now && !got.has(String(s.share_ref)))
    .filter((s) => fromZ32 === undefined || (s.recipient ?? s.sender) === fromZ32)
    .map((s) => {
      const to = s.recipient === null ? "(self)" : String(s.recipient);
      return `  ${String(s.share_ref).slice(0, 16)}  ${names.get(to) ?? to}  (expires ${
        utcMinute(Number(s.expires_at))
      })\n`;
    });
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
      .option(
        "--share <key>",
        "recipient: a z-base-32 key, pk:<key>, or a contact name (repeat for several recipients)",
        collect,
        [] as string[],
      )
      .option("-p, --purpose <text>", "what this is for (shown to the recipient; not secret)", "")
      .option("--material-file <path>", "read the material from a file ('-' = stdin)")
      .option(
        "--material <type>",
        "generic-secret | x509-cert | pgp-key (binary or ASCII armor) | ssh-key (OpenSSH private key)",
        "generic-secret",
      )
      .option("--ttl <duration>", `lifetime of the share: ${DURATION_FORMS}`, "24h")
      .option("--pin", "also require a PIN (Argon2id) to open the share")
      .option("--burn", "burn after read: the recipient's tool shows it once")
      .option(
        "--json",
        "print {uri, share_ref, expires_at, size, protocol, packets} as JSON (an array of them, with recipient, for several --share)",
      )
      .option(
        "--qr",
        "also draw the receive command as a QR code on stderr (terminal only; NO_COLOR respected)",
      )
      .addOption(
        new Option("--protocol <n>", "force protocol 1 (v1.1-compatible) or 2").choices(["1", "2"]),
      ),
  )))
    .addHelpText(
      "after",
      `
Sending to a key that is neither a contact nor known here (sent to or received from before), and
that has never published anything on the DHT, prints a warning first (a typo in a key is a share
nobody can open); at a terminal it asks before sending. With several --share, each recipient gets
their own share and URI (one line each), and their own receipt.
Examples:
  cipherpost send --self -p "db password" --material-file secret.txt
  printf 's3cret' | cipherpost send --share bob -p "API token" --burn --ttl 1h -
  cipherpost send --share bob --share carol -p "wifi" --material-file wifi.txt
  cipherpost send --share <bob-z32> --material ssh-key --material-file id_ed25519 --pin --pin-file pin.txt
${NETWORK_HELP}`,
    )
    .action(async (positional: string | undefined, o) => {
      const shares = o.share as string[];
      if (!!o.self === (shares.length > 0)) {
        throw new CipherpostError(
          "usage",
          o.self
            ? "choose --self or --share, not both"
            : "say who it is for: --self (yourself) or --share KEY|NAME (someone else)",
          "e.g. cipherpost send --share bob --material-file secret.txt",
        );
      }
      const ttl = parseDuration(String(o.ttl));
      const material = materialTypeFromFlag(o.material);
      const home = cipherpostHome();
      const contacts = new Contacts(home);
      const recipients: Array<ResolvedKey | null> = o.self ? [null] : [];
      for (const text of shares) {
        const r = await resolveRecipient(text, contacts);
        if (!recipients.some((x) => x?.z32 === r.z32)) recipients.push(r);
      }
      const input = await readInput(o.materialFile, positional);
      const me = await unlockIdentity(o, io);
      const pin = o.pin ? await getPin(pinOpts(o), true) : null;
      if (pin !== null) validatePin(pin);
      const state = new State(home);
      const tty = isStderrTty();
      const now = Math.floor(Date.now() / 1000);
      const sent = await withTransport(o, async (t) => {
        // a key nobody is known to hold: warn (and at a terminal, ask) before anything is sent
        for (const r of recipients) {
          if (r === null || r.z32 === encodeZ32(me.publicKey)) continue;
          if (await recipientKnownAs(r, state, t) !== null) continue;
          for (const line of unknownRecipientWarning(r.z32)) log(line);
          if (hasTty()) {
            const answer = new TextDecoder().decode(
              await ttyReadLine("Send anyway? [y/N] ", false, "answer"),
            ).trim().toLowerCase();
            if (answer !== "y" && answer !== "yes") {
              throw new CipherpostError(
                "declined",
                "not sent: the recipient key was not confirmed",
              );
            }
          }
        }
        const out: Array<{ to: ResolvedKey | null; result: SendResult }> = [];
        for (const to of recipients) {
          const label = to?.contact ? ` for ${to.contact.name}` : "";
          const bar = startProgress(`Publishing${label}`, { enabled: tty });
          try {
            const result = await send(t, state, me, {
              recipient: to === null ? null : to.z32,
              purpose: stripControl(o.purpose ?? ""),
              material,
              input,
              ttlSeconds: BigInt(ttl),
              pin,
              burn: o.burn === true,
              protocol: o.protocol ? (Number(o.protocol) as 1 | 2) : undefined,
              progress: (d, n) => bar.update(d, n),
            }, log);
            out.push({ to, result });
          } finally {
            bar.end();
          }
        }
        return out;
      });
      const fallback = sent.find((x) => x.result.fallback)?.result.fallback;
      if (fallback) await fallbackNoteOnce(home, fallback, log);
      if (o.burn) {
        log("note: burn-after-read is enforced by the recipient's tool, not by the network");
      }
      const jsonOf = (x: { to: ResolvedKey | null; result: SendResult }, withTo: boolean) => ({
        uri: x.result.uri,
        share_ref: x.result.shareRef,
        expires_at: x.result.expiresAt,
        size: x.result.size,
        protocol: x.result.protocol,
        packets: x.result.packets,
        ...(withTo ? { recipient: x.to === null ? encodeZ32(me.publicKey) : x.to.z32 } : {}),
      });
      if (o.json) {
        io.out(
          JSON.stringify(
            sent.length === 1 ? jsonOf(sent[0], false) : sent.map((x) => jsonOf(x, true)),
          ) +
            "\n",
        );
      } else io.out(sent.map((x) => `${x.result.uri}\n`).join(""));
      if (tty && !o.json) { for (const line of nextSteps(sent, now)) log(line); }
      if (o.qr) {
        const noColor = (Deno.env.get("NO_COLOR") ?? "") !== "";
        for (const x of sent) io.err(await renderQr(x.result.uri, { tty, noColor }));
      }
    });

  networkOptions(pinOptions(passphraseOptions(
    program.command("receive")
      .description("fetch, verify, decrypt and accept a share; publishes a signed receipt")
      .argument("<uri>", "the cipherpost:// URI the sender gave you")
      .option(
        "-o, --output <path>",
        "write the material here, mode 0600 ('-' = stdout; the default, except binary material on a terminal)",
      )
      .option("--force", "overwrite an existing output file")
      .option("--armor", "PEM/ASCII-armor output for x509-cert and pgp-key material")
      .option(
        "--accept <key>",
        "accept non-interactively: the sender's z-base-32 key (or pk: form), typed in advance",
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
Examples:
  cipherpost receive cipherpost://<sender>/<ref> -o secret.txt
  cipherpost receive "$URI" --accept <sender-z32> -o - | some-tool
${NETWORK_HELP}`,
    )
    .action(async (uriText: string, o) => {
      const uri = parseShareUri(uriText);
      if (o.accept !== undefined) parseKeyArg(o.accept, "--accept");
      const state = new State(cipherpostHome());
      const acceptedBefore = await checkConsumed(state, uri, log);
      const me = await unlockIdentity(o, io);
      const interactive = hasTty();
      let stdoutTty = false;
      try {
        stdoutTty = Deno.stdout.isTerminal();
      } catch { /* not a terminal */ }
      const bar = startProgress("Fetching", { enabled: isStderrTty() });
      try {
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
              pinTries: pinIsPrompted(pinOpts(o)) ? 3 : 1,
              promptLine: interactive ? readLineFromTty : null,
              acceptTries: interactive ? 3 : 1,
              refuseBinaryOnStdout: o.output === undefined && stdoutTty,
              progress: (d, n) => bar.update(d, n),
            },
            log,
            async (b) => {
              let off = 0;
              while (off < b.length) off += await Deno.stdout.write(b.subarray(off));
            },
          ));
      } catch (e) {
        const gone = e instanceof CipherpostError &&
          ["not_found", "expired", "network"].includes(e.kind);
        if (acceptedBefore && gone) {
          throw new CipherpostError(
            (e as CipherpostError).kind,
            `cannot write it again: ${(e as CipherpostError).message}`,
            "an accepted share can be written again only while the sender's share is on the network and unexpired",
          );
        }
        throw e;
      } finally {
        bar.end();
      }
    });

  networkOptions(
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
the recipient's packet). Without --from: every share sent from this home, followed by the
live shares nobody has received yet.
Examples:
  cipherpost receipts --from <bob-z32>
  cipherpost receipts --from <bob-z32> --share-ref <ref> --json > receipt.json
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
        if (h.invalid > 0) throw new CipherpostError("signature", "signature verification failed");
        if (h.malformed > 0) {
          throw new CipherpostError("config", "configuration error: all receipts malformed");
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

  networkOptions(passphraseOptions(
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
    .action(async (target: string, o) => {
      const me = await unlockIdentity(o, io);
      const ref = await withTransport(o, (t) => revoke(t, new State(cipherpostHome()), me, target));
      io.out(`revoked ${ref}\n`);
    });

  networkOptions(
    program.command("republish")
      .description(
        "re-put your packet and every live share not yet received (DHT nodes forget records within hours)",
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
      const bar = startProgress("Republishing", { enabled: isStderrTty() });
      let r;
      try {
        r = await withTransport(
          o,
          (t) => republish(t, new State(cipherpostHome()), log, (d, n) => bar.update(d, n)),
        );
      } finally {
        bar.end();
      }
      io.out(
        `identity packet: ${r.identityPacket}; shares: ${r.shares} (${r.packets} packets); skipped (already received): ${r.skippedReceived}; expired forgotten: ${r.expiredForgotten}\n`,
      );
    });

  networkOptions(
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
      const live = (await state.listSent()).filter((s) => Number(s.expires_at) > now)
        .sort((a, b) => Number(a.created_at) - Number(b.created_at));
      const receipts = live.length === 0
        ? []
        : (await withTransport(o, (t) => collectReceipts(t, state, undefined))).valid;
      const names = new Map(
        (await new Contacts(cipherpostHome()).list()).map((c) => [c.key, c.name]),
      );
      const rows = live.map((s) => {
        const ref = String(s.share_ref);
        const rs = receipts.filter((r) => r.shareRef === ref);
        const to = s.recipient === null ? "(self)" : String(s.recipient);
        return {
          share_ref: ref,
          recipient: s.recipient === null ? null : to,
          recipient_name: names.get(to) ?? null,
          purpose: typeof s.purpose === "string" ? s.purpose : null,
          expires_at: Number(s.expires_at),
          protocol: Number(s.version),
          received_at: rs.length ? Math.min(...rs.map((r) => r.acceptedAt)) : null,
          uri: String(s.uri),
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
        let purpose = stripControl(r.purpose ?? "");
        if ([...purpose].length > 24) purpose = [...purpose].slice(0, 23).join("") + "…";
        io.out(
          `${r.share_ref.slice(0, 12)}  ${who.padEnd(20)}  ${purpose.padEnd(24)}  ${
            utcMinute(r.expires_at).padEnd(20)
          }  ${r.received_at === null ? "no" : `yes, ${utcMinute(r.received_at)}`}\n`,
        );
      }
    });

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
      const pk = parseKeyArg(key, "dht resolve");
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
    .addHelpText(
      "after",
      `
Prints the environment lines other shells use to reach it, e.g.:
  CIPHERPOST_BOOTSTRAP=127.0.0.1:40001,127.0.0.1:40002,...
  CIPHERPOST_RELAYS=http://127.0.0.1:40100`,
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
      io.out(
        `CIPHERPOST_BOOTSTRAP=${net.bootstrap.join(",")}\nCIPHERPOST_RELAYS=${net.relayUrl}\n`,
      );
      log(
        `testnet: ${o.nodes} nodes on 127.0.0.1, relay ${net.relayUrl}; Ctrl-C or SIGTERM to stop`,
      );
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        Deno.addSignalListener("SIGINT", stop);
        if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", stop);
      });
      await net.close();
      log("testnet stopped");
    });
}
