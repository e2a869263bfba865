/**
 * The tickets an admin issued (docs/PROTOCOL.md §9.7): `<home>/rooms/tickets.age`, 0600,
 * age-encrypted to the identity's own recipient (it holds the tickets' secrets). Uses, lifetime
 * and auto-admit live here, on the admitting side: a ticket in other hands cannot change them.
 * Not on the wire.
 *
 * @module
 */

import { ageDecrypt, ageEncrypt } from "../crypto/age.ts";
import { ageIdentityOfSeed, ageRecipientOfEd, type Keypair } from "../crypto/keys.ts";
import { fromHex, fromUtf8, toHex, utf8 } from "../util/encoding.ts";
import { ensurePrivateDir, writeFileAtomic } from "../util/fsutil.ts";

/** Tickets kept at most (the expired, then the oldest, go first). */
export const MAX_TICKETS = 256;

/** A ticket as its issuer keeps it. */
export interface IssuedTicket {
  /** The room's id. */
  room: string;
  /** The ticket id (§9.7). */
  id: string;
  /** The bearer secret. */
  secret: Uint8Array;
  /** Uses allowed (= request slots). */
  uses: number;
  /** Unix ms after which nothing is admitted with it. */
  expiresAt: number;
  /** Requests are admitted without asking (by `room requests`). */
  autoAdmit: boolean;
  /** z32 of the keys admitted with it (one use each). */
  admitted: string[];
  /** When it was issued, Unix ms. */
  at: number;
}

interface Stored {
  v: 1;
  tickets: (Omit<IssuedTicket, "secret"> & { secret: string })[];
}

const fileOf = (home: string) => `${home}/rooms/tickets.age`;

/** The tickets this home issued (none when there is no file). */
export async function loadTickets(home: string, me: Keypair): Promise<IssuedTicket[]> {
  let file: Uint8Array;
  try {
    file = await Deno.readFile(fileOf(home));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const s = JSON.parse(fromUtf8(await ageDecrypt(file, ageIdentityOfSeed(me.seed)))) as Stored;
  return s.tickets.map((t) => ({ ...t, secret: fromHex(t.secret) }));
}

/** Write the tickets (atomically, 0600), keeping at most {@link MAX_TICKETS}. */
export async function saveTickets(
  home: string,
  me: Keypair,
  tickets: IssuedTicket[],
  now = Date.now(),
): Promise<void> {
  const keep = [...tickets].sort((a, b) =>
    Number(a.expiresAt > now) - Number(b.expiresAt > now) || a.at - b.at
  ).slice(Math.max(0, tickets.length - MAX_TICKETS));
  const stored: Stored = {
    v: 1,
    tickets: keep.map((t) => ({ ...t, secret: toHex(t.secret) })),
  };
  await ensurePrivateDir(`${home}/rooms`);
  const sealed = await ageEncrypt(utf8(JSON.stringify(stored)), ageRecipientOfEd(me.publicKey));
  await writeFileAtomic(fileOf(home), sealed);
}
