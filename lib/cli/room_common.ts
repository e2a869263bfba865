/**
 * What the `room` commands share: the context they run in and how messages are shown.
 *
 * @module
 */

import { escapeControl } from "../util/encoding.ts";
import { State } from "../state/state.ts";
import { Contacts } from "../state/contacts.ts";
import type { Keypair } from "../crypto/keys.ts";
import type { Transport } from "../pkarr/transport.ts";
import type { Placed } from "../rooms/order.ts";
import { dropOf, messageText } from "../rooms/drops.ts";
import { cipherpostHome } from "./home.ts";
import type { Io } from "./io.ts";
import { unlockIdentity, withTransport } from "./options.ts";

/** What a room command runs against. */
export type Ctx = { transport: Transport; state: State; me: Keypair };

/** Names for keys: the contact name, "you", or the first 8 characters of the key. */
export async function namer(home: string, me: string): Promise<(z32: string) => string> {
  const names = new Map<string, string>();
  try {
    for (const c of await new Contacts(home).list()) names.set(c.key, c.name);
  } catch { /* no contacts */ }
  return (z) => (z === me ? "you" : names.get(z) ?? `${z.slice(0, 8)}…`);
}

export function hhmmss(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19) + "Z";
}

export function line(p: Placed, name: (z: string) => string): string {
  const m = p.message;
  const flag = p.future ? " [clock ahead]" : "";
  return `[${hhmmss(m.hlc)}] ${name(m.author)}: ${escapeControl(messageText(m))}${flag}`;
}

export function json(room: string, p: Placed): string {
  const m = p.message;
  const drop = dropOf(m);
  return JSON.stringify({
    room,
    author: m.author,
    // a drop's body holds its content key: shown as its name, size and id instead
    body: messageText(m),
    time: new Date(m.hlc).toISOString(),
    epoch: m.epoch,
    seq: m.seq,
    kind: m.kind,
    future: p.future,
    ...(drop ? { drop: { id: drop.id, name: drop.name, size: drop.size } } : {}),
  });
}

/** Run `f` with the identity unlocked and a transport open (closed on every path). */
export async function runRoom<T>(
  o: Parameters<typeof unlockIdentity>[0] & Parameters<typeof withTransport>[0],
  io: Io,
  f: (ctx: Ctx, home: string) => Promise<T>,
): Promise<T> {
  const home = cipherpostHome();
  const me = await unlockIdentity(o, io);
  const state = new State(home);
  return await withTransport(o, (transport) => f({ transport, state, me }, home));
}
