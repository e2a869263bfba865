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
import { Contacts } from "../state/contacts.ts";
import type { State } from "../state/state.ts";
import type { Transport } from "../pkarr/transport.ts";
import { cipherpostHome } from "./home.ts";
import { parseKeyArg, type ResolvedKey } from "./recipient.ts";

/** Where the contacts commands write. */
export interface ContactsIo {
  out(text: string): void;
  err(text: string): void;
}

/** Register `contacts add|list|remove` on the program. */
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
