/**
 * `cipherpost send`: encrypt a secret to yourself or to a public key, publish it, print the
 * share URI.
 *
 * @module
 */

import { type Command, Option } from "@commander-js/extra-typings";
import { CipherpostError, configError } from "../util/errors.ts";
import { stripControl } from "../util/encoding.ts";
import { ensurePrivateDir, exists, writeFileAtomic } from "../util/fsutil.ts";
import { MATERIAL_CAP, type MaterialType, materialTypeFromFlag } from "../material/material.ts";
import { readFileCapped } from "../util/bounded_read.ts";
import { encodeZ32 } from "../pkarr/public_key.ts";
import { send, type SendResult } from "../flows/share/send.ts";
import type { FlowUi } from "../flows/share/ui.ts";
import { State } from "../state/state.ts";
import { Contacts } from "../state/contacts.ts";
import { validatePin } from "./passphrase.ts";
import { cipherpostHome } from "./home.ts";
import { type Io, readAllStdin } from "./io.ts";
import { utcMinute } from "../util/human.ts";
import { type ResolvedKey, resolveRecipient } from "./recipient.ts";
import { recipientKnownAs, unknownRecipientWarning } from "./contacts.ts";
import { DURATION_FORMS, formatDuration, parseDuration } from "./duration.ts";
import { startProgress } from "./progress.ts";
import { renderQr } from "./qr.ts";
import { hasTty, isStderrTty, ttyReadLine } from "./tty.ts";
import {
  cliUi,
  interruptibleSend,
  partSizeOverride,
  partWorkers,
  planInput,
  streamingPointers,
} from "./large.ts";
import { Exit } from "./exit_codes.ts";
import { sendLarge } from "../flows/large/send.ts";
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
    throw configError(
      "give --material-file or '-', not both",
    );
  }
  if (positional !== undefined && positional !== "-") {
    throw configError(
      `unexpected argument '${positional}'`,
      `to send a file use --material-file ${positional}`,
    );
  }
  const src = file ?? positional;
  if (src === undefined) {
    throw configError(
      "nothing to send",
      "use --material-file PATH, or '-' to read standard input",
    );
  }
  // at most cap + 1 bytes are read: /dev/zero or an endless pipe cost nothing more
  if (src === "-") return await readAllStdin(cap);
  const st = await Deno.stat(src).catch(() => null);
  if (st?.isDirectory) {
    throw new CipherpostError(
      "config",
      `cannot send ${src}: it is a directory; send takes one file (up to 64 KiB)`,
      `pack it first (tar -czf ${
        src.replace(/\/+$/, "")
      }.tgz ${src}); anything over 64 KiB needs large-payload sending (docs/network.md, "What fits where")`,
    );
  }
  return await readFileCapped(src, cap, src);
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
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
    ? "your identity packet has no room left for a v1 share (it keeps room for the _pubky\n" +
      "      record that points at your homeserver)"
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
        "--via <where>",
        "dht | homeserver: where the ciphertext goes (default: the DHT when it fits, else your homeserver)",
      )
      .option(
        "--qr",
        "also draw the receive command as a QR code on stderr (terminal only; NO_COLOR respected)",
      )
      .addOption(
        new Option("--protocol <n>", "force protocol 1 (v1.1-compatible) or 2").choices(
          ["1", "2"] as const,
        ),
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
  cipherpost send --share <bob-z32> -p "photos" --material-file ./photos/   # large: via your homeserver
A directory, more than 64 KiB, or --via homeserver makes a large share (one recipient, or --self):
the ciphertext goes to your homeserver (cipherpost homeserver signup first). The URI is printed
once every part is encrypted, while parts still upload (the receiver can start then; keep send
running until it says sent), and a re-run after an interruption resumes.
${NETWORK_HELP}`,
    )
    .action(async (positional, o) => {
      const shares = o.share;
      if (!!o.self === (shares.length > 0)) {
        throw new CipherpostError(
          "usage",
          o.self
            ? "choose --self or --share, not both"
            : "say who it is for: --self (yourself) or --share KEY|NAME (someone else)",
          "e.g. cipherpost send --share bob --material-file secret.txt",
        );
      }
      const ttl = parseDuration(o.ttl);
      const material = materialTypeFromFlag(o.material);
      const home = cipherpostHome();
      const contacts = new Contacts(home);
      const recipients: Array<ResolvedKey | null> = o.self ? [null] : [];
      for (const text of shares) {
        const r = await resolveRecipient(text, contacts);
        if (!recipients.some((x) => x?.z32 === r.z32)) recipients.push(r);
      }
      const plan = await planInput(o.materialFile, positional, o.via, o.material);
      if (plan.kind === "large") {
        if (o.protocol === "1") {
          throw new CipherpostError(
            "too_large",
            "a large share (homeserver) cannot be sent as protocol 1",
            "drop --protocol 1",
          );
        }
        if (recipients.length !== 1) {
          throw new CipherpostError(
            "usage",
            "a large share (homeserver) goes to one recipient: give one --share (or --self)",
            "send it once per recipient",
          );
        }
        const me = await unlockIdentity(o, io);
        const pin = o.pin ? await pinOf(o, true) : null;
        if (pin !== null) validatePin(pin);
        const to = recipients[0];
        const tty = isStderrTty();
        const noColor = (Deno.env.get("NO_COLOR") ?? "") !== "";
        // the URI is printed as soon as the pointer is out; the upload goes on (§5.3)
        const onPublished = async (share: { uri: string }, say: (l: string) => void) => {
          if (o.json) return;
          io.out(`${share.uri}\n`);
          say("The share is published: the receiver can start now. Parts are still uploading;");
          say("keep this running until it says sent.");
          if (o.qr) say((await renderQr(share.uri, { tty, noColor })).replace(/\n$/, ""));
        };
        const largeUi = cliUi(log);
        const release = interruptibleSend(largeUi, log, Deno.exit, Exit.interrupted);
        const r = await withTransport(
          o,
          (t) =>
            sendLarge({ transport: t, state: new State(home), me }, {
              recipient: to === null ? null : to.z32,
              purpose: stripControl(o.purpose),
              source: plan.source,
              ttlSeconds: BigInt(ttl),
              pin,
              burn: o.burn === true,
              workers: partWorkers(),
              partSize: partSizeOverride(),
              streaming: streamingPointers(),
              onPublished,
            }, largeUi),
        ).catch(async (e) => {
          // no homeserver and none asked for: the DHT-only refusal, with the way to go large
          if (o.via === undefined && e instanceof CipherpostError && e.kind === "no_homeserver") {
            const src = plan.source.kind === "path" ? plan.source.path : "standard input";
            const isDir = plan.source.kind === "path" &&
              (await Deno.stat(plan.source.path).catch(() => null))?.isDirectory === true;
            throw new CipherpostError(
              isDir ? "config" : "too_large",
              isDir
                ? `cannot send ${src}: it is a directory; send takes one file (up to 64 KiB)`
                : `${src} exceeds the ${MATERIAL_CAP}-byte DHT material cap (too large)`,
              "anything over 64 KiB, or a directory, needs large-payload sending: run " +
                '`cipherpost homeserver signup <homeserver-key>` first (docs/network.md, "What fits where")',
            );
          }
          throw e;
        }).finally(() => {
          release();
          largeUi.end();
        });
        log(
          `sent ${r.size} bytes in ${r.parts} parts (${r.uploaded} uploaded, ${r.reused} already there)`,
        );
        if (o.burn) {
          log("note: burn-after-read is enforced by the recipient's tool, not by the network");
        }
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
          if (o.qr) io.err(await renderQr(r.uri, { tty, noColor }));
        }
        return;
      }
      const input = plan.bytes ?? await readInput(o.materialFile, positional, inputCap(material));
      const me = await unlockIdentity(o, io);
      const pin = o.pin ? await pinOf(o, true) : null;
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
            const result = await send({ transport: t, state, me }, {
              recipient: to === null ? null : to.z32,
              purpose: stripControl(o.purpose),
              material,
              input,
              ttlSeconds: BigInt(ttl),
              pin,
              burn: o.burn === true,
              protocol: o.protocol === undefined ? undefined : o.protocol === "1" ? 1 : 2,
              progress: (d, n) => bar.update(d, n),
            }, ui);
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
          ) + "\n",
        );
      } else io.out(sent.map((x) => `${x.result.uri}\n`).join(""));
      if (tty && !o.json) { for (const line of nextSteps(sent, now)) log(line); }
      if (o.qr) {
        const noColor = (Deno.env.get("NO_COLOR") ?? "") !== "";
        for (const x of sent) io.err(await renderQr(x.result.uri, { tty, noColor }));
      }
    });
}
