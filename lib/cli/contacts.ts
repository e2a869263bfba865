/**
 * `cipherpost contacts add|list|remove`, and the check `send` runs before publishing: a
 * recipient that is neither a contact, nor someone this home already sent to or received from,
 * nor a key that has ever published a packet on the DHT, gets a warning (a typo in a key is
 * otherwise a share nobody can open).
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { sshFingerprint } from "../crypto/keys.ts";
import { checkContactName, Contacts } from "../state/contacts.ts";
import { readPublicKey } from "../state/identity.ts";
import type { State } from "../state/state.ts";
import type { Transport } from "../pkarr/transport.ts";
import { encodeZ32, parsePublicKey } from "../pkarr/public_key.ts";
import { CipherpostError } from "../util/errors.ts";
import { fromUtf8 } from "../util/encoding.ts";
import {
  acceptInvite,
  awaitAnswer,
  MAX_INVITE_TTL_SECONDS,
  normalizeInviteCode,
  publishInvite,
} from "../flows/share/invite.ts";
import { cipherpostHome } from "./home.ts";
import { parseKeyArg, type ResolvedKey } from "./recipient.ts";
import {
  NETWORK_HELP,
  unlockIdentity,
  withNetwork,
  withPassphrase,
  withTransport,
} from "./options.ts";
import { formatDuration, parseDuration } from "./duration.ts";
import { readAllStdin } from "./io.ts";
import { ttyReadLine } from "./tty.ts";
import { stripOneNewline } from "./passphrase.ts";

/** This home's z32 key: the public_key file, else the identity unlocked. */
async function myKey(o: Parameters<typeof unlockIdentity>[0]): Promise<string> {
  return await readPublicKey(cipherpostHome()) ??
    encodeZ32((await unlockIdentity(o)).publicKey);
}

/** The invite code: typed at the terminal, or the first line of standard input (never argv). */
async function readInviteCode(): Promise<string> {
  let bytes: Uint8Array;
  if (Deno.stdin.isTerminal()) bytes = await ttyReadLine("Invite code: ", false, "invite code");
  else {
    try {
      bytes = await readAllStdin(256);
    } catch {
      throw new CipherpostError("usage", "an invite code is one short line");
    }
    const nl = bytes.indexOf(10);
    if (nl >= 0) bytes = bytes.subarray(0, nl + 1);
  }
  let text: string;
  try {
    text = fromUtf8(stripOneNewline(bytes));
  } catch {
    throw new CipherpostError("usage", "an invite code is text");
  }
  return normalizeInviteCode(text);
}

/** Refuse a name that is already a contact before anything goes out. */
async function freeName(name: string): Promise<string> {
  const n = checkContactName(name);
  const old = await new Contacts(cipherpostHome()).get(n);
  if (old) {
    throw new CipherpostError(
      "usage",
      `contact '${n}' already exists (${old.key})`,
      "choose another name, or remove it first: cipherpost contacts remove " + n,
    );
  }
  return n;
}

/** The lines both sides print once keys are swapped: the fingerprints to compare aloud. */
function compareLines(name: string, theirs: string, mine: string): string {
  return `added contact ${name}:\n  ${sshFingerprint(parsePublicKey(theirs))}\n  ${theirs}\n` +
    `Now compare fingerprints aloud (or over a channel you trust):\n` +
    `  ${name}'s should read: ${sshFingerprint(parsePublicKey(theirs))}\n` +
    `  yours, which they should read: ${sshFingerprint(parsePublicKey(mine))}\n` +
    `If they differ, someone else answered: cipherpost contacts remove ${name}\n`;
}

/** Where the contacts commands write. */
export interface ContactsIo {
  out(text: string): void;
  err(text: string): void;
}

/** Register `contacts add|invite|accept|list|remove` on the program. */
export function registerContactsCommands(program: Command, io: ContactsIo): void {
  const contacts = program.command("contacts")
    .description("names for the public keys you send to (then: send --share NAME)")
    .exitOverride();

  contacts.command("add")
    .description("remember a public key under a name")
    .argument("<name>", "1-32 characters: a-z 0-9 . _ - @, starting with a letter or digit")
    .argument("<key>", "their z-base-32 key (the first line of `identity show`) or pk:")
    .option("--force", "replace the key of an existing name")
    .addHelpText(
      "after",
      "\nCompare the fingerprint it prints with the one the other person sees in\n" +
        "`cipherpost identity show`, over a channel you trust.\n" +
        "Example:\n  cipherpost contacts add bob pk:3bgnde4djfq1c4tj46pxpz6ezfgt9hieos8x31r3du1q7uaj8m3y\n",
    )
    .action(async (name: string, key: string, o) => {
      const pk = parseKeyArg(key, "contacts add");
      const c = await new Contacts(cipherpostHome()).add(name, key, o.force === true);
      io.err(`added contact ${c.name}:\n  ${sshFingerprint(pk)}\n  ${c.key}\n`);
    });

  withNetwork(withPassphrase(
    contacts.command("invite")
      .description("swap keys with someone through the DHT: prints a code to read to them")
      .argument("<name>", "the name to keep their key under")
      .option(
        "--ttl <duration>",
        `how long the code works: 30s, 10m (default), at most ${MAX_INVITE_TTL_SECONDS / 60}m`,
        "10m",
      ),
  ))
    .addHelpText(
      "after",
      `
Prints a code like 7-crossover-clockwork (stdout) and waits. The other person runs
\`cipherpost contacts accept NAME\` and types the code; then both sides hold each other's key
and print both fingerprints: compare them aloud. The code is the only secret: read it to them
(a call, in person), never post it. Needs no passphrase when the home has its public_key file.
${NETWORK_HELP}`,
    )
    .action(async (name: string, o) => {
      const n = await freeName(name);
      const ttl = parseDuration(o.ttl, "--ttl");
      const me = await myKey(o);
      await withTransport(o, async (t) => {
        io.err(`Publishing invite to DHT...\n`);
        const inv = await publishInvite(t, me, ttl);
        io.out(`${inv.code}\n`);
        io.err(
          `Read this code to ${n}; it works once, for ${formatDuration(ttl)}:\n  ${inv.code}\n` +
            `They run: cipherpost contacts accept NAME   (and type the code)\n` +
            `Waiting for their answer...\n`,
        );
        const theirs = await awaitAnswer(t, inv);
        if (theirs === me) {
          throw new CipherpostError("usage", "the answer came from your own key; nothing added");
        }
        await new Contacts(cipherpostHome()).add(n, theirs);
        io.err(compareLines(n, theirs, me));
      });
    });

  withNetwork(withPassphrase(
    contacts.command("accept")
      .description("answer a contact invite: type the code you were read")
      .argument("<name>", "the name to keep the inviter's key under"),
  ))
    .addHelpText(
      "after",
      `
Asks for the code on the terminal (or reads the first line of standard input: never from
the command line, where other users of this machine could read it). Then both sides hold each
other's key and print both fingerprints: compare them aloud.
Example:
  cipherpost contacts accept alice
${NETWORK_HELP}`,
    )
    .action(async (name: string, o) => {
      const n = await freeName(name);
      const code = await readInviteCode();
      const me = await myKey(o);
      await withTransport(o, async (t) => {
        io.err("Looking up the invite on the DHT...\n");
        const theirs = await acceptInvite(t, code, me);
        await new Contacts(cipherpostHome()).add(n, theirs);
        io.out(`${theirs}\n`);
        io.err(compareLines(n, theirs, me));
      });
    });

  contacts.command("list")
    .description("list your contacts (name, key)")
    .option("--json", "print [{name, key, added_at}] as JSON")
    .action(async (o) => {
      const list = await new Contacts(cipherpostHome()).list();
      if (o.json) {
        io.out(
          JSON.stringify(list.map((c) => ({ name: c.name, key: c.key, added_at: c.addedAt }))) +
            "\n",
        );
        return;
      }
      if (list.length === 0) {
        io.err("no contacts yet; add one with: cipherpost contacts add NAME KEY\n");
        return;
      }
      const w = Math.max(...list.map((c) => c.name.length));
      for (const c of list) io.out(`${c.name.padEnd(w)}  ${c.key}\n`);
    });

  contacts.command("remove")
    .description("forget a contact")
    .argument("<name>", "the contact's name")
    .action(async (name: string) => {
      const c = await new Contacts(cipherpostHome()).remove(name);
      io.err(`removed contact ${c.name} (${c.key})\n`);
    });
}

/** How a recipient key is known, or null when it is not. */
export type KnownAs = "contact" | "sent-before" | "received-from" | "on-dht";

/**
 * Decide whether a recipient key is known: a contact, a recipient of an earlier share of this
 * home, a sender this home received from, or a key with a packet on the DHT (one resolve).
 * Returns null when none holds; a network failure of the resolve counts as unknown.
 */
export async function recipientKnownAs(
  r: ResolvedKey,
  state: State,
  t: Transport,
): Promise<KnownAs | null> {
  if (r.contact) return "contact";
  if ((await state.listSent()).some((s) => s.recipient === r.z32)) return "sent-before";
  if ((await state.rows()).some((row) => row.sender === r.z32)) return "received-from";
  const seen = await t.resolve(r.publicKey).catch(() => null);
  return seen ? "on-dht" : null;
}

/** The warning printed before sending to an unknown key. */
export function unknownRecipientWarning(z32: string): string[] {
  return [
    `warning: ${z32} is not one of your contacts and has never been seen on the DHT;`,
    "  check it for typos: a share to a key nobody holds cannot be opened by anyone.",
    "  (a brand-new identity is not on the DHT yet; after checking the key with its owner:",
    `  cipherpost contacts add NAME ${z32})`,
  ];
}
