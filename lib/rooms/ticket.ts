/**
 * Room tickets (docs/PROTOCOL.md §9.7): the ticket string, the values derived from its secret
 * (ticket id, request slots, joiner tags) and the signed join request sealed to the admin. A
 * ticket is a bearer secret; it carries no epoch key. Pure: no I/O.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { ageDecrypt, ageEncrypt } from "../crypto/age.ts";
import { hkdf32 } from "../crypto/kdf.ts";
import { ageIdentityOfSeed, ageRecipientOfEd, type Keypair } from "../crypto/keys.ts";
import { decodeZ32, encodeZ32, isValidPoint } from "../pkarr/public_key.ts";
import { canonicalize } from "../util/canonical_json.ts";
import {
  b64decode,
  b64encode,
  bytesEqual,
  concat,
  fromHex,
  toHex,
  utf8,
} from "../util/encoding.ts";
import { CipherpostError, signatureError } from "../util/errors.ts";
import { isRoomId } from "./names.ts";
import {
  int,
  malformed,
  parseRecord,
  roomOf,
  signRecord,
  str,
  verifyRecord,
  z32,
} from "./records.ts";

/** What a ticket string starts with. */
export const TICKET_PREFIX = "cipherpost-ticket:";
/** The most uses (request slots) a ticket may have. */
export const MAX_TICKET_USES = 16;
/** The record name of a join request in its slot's packet. */
export const JOIN_LABEL = "_cpjoin";
/** Largest record text read from a slot. */
export const MAX_JOIN_TEXT = 1000;

const TICKET_BYTES = 83;
const VERSION = 1;
const FLAG_AUTO_ADMIT = 1;

/** A room ticket (§9.7). `secret` is the bearer secret: never log or print it but as a ticket. */
export interface Ticket {
  /** The room's id. */
  room: string;
  /** z32 of the admin who issued it (the joiner's anchor of trust). */
  admin: string;
  /** 32 random bytes. */
  secret: Uint8Array;
  /** Request slots, = the uses the admin allows (1–16). */
  slots: number;
  /** The ticket says the admin admits its requests without asking (enforced by the admin). */
  autoAdmit: boolean;
}

function badTicket(): CipherpostError {
  return new CipherpostError("usage", "not a room ticket (it starts with cipherpost-ticket:)");
}

/** True when `s` looks like a ticket string (it may still be malformed). */
export function isTicketString(s: string): boolean {
  return s.trim().startsWith(TICKET_PREFIX);
}

/** The ticket string of `t`. */
export function encodeTicket(t: Ticket): string {
  if (t.secret.length !== 32 || !isRoomId(t.room)) throw badTicket();
  if (!Number.isInteger(t.slots) || t.slots < 1 || t.slots > MAX_TICKET_USES) throw badTicket();
  const head = new Uint8Array([VERSION, t.autoAdmit ? FLAG_AUTO_ADMIT : 0, t.slots]);
  return TICKET_PREFIX +
    encodeZ32(concat(head, fromHex(t.room), decodeZ32(t.admin), t.secret));
}

/** Parse a ticket string (`usage` when it is not one). Surrounding whitespace is ignored. */
export function parseTicket(text: string): Ticket {
  const s = text.trim();
  if (!s.startsWith(TICKET_PREFIX)) throw badTicket();
  const body = s.slice(TICKET_PREFIX.length);
  let b: Uint8Array;
  try {
    b = decodeZ32(body);
  } catch {
    throw badTicket();
  }
  if (b.length !== TICKET_BYTES || encodeZ32(b) !== body) throw badTicket();
  if (b[0] !== VERSION || (b[1] & ~FLAG_AUTO_ADMIT) !== 0) throw badTicket();
  if (b[2] < 1 || b[2] > MAX_TICKET_USES) throw badTicket();
  const admin = b.slice(19, 51);
  if (!isValidPoint(admin)) throw badTicket();
  return {
    room: toHex(b.subarray(3, 19)),
    admin: encodeZ32(admin),
    secret: b.slice(51, 83),
    slots: b[2],
    autoAdmit: (b[1] & FLAG_AUTO_ADMIT) !== 0,
  };
}

/** The ticket id (32 hex), a public name of the ticket that does not reveal its secret. */
export function ticketId(secret: Uint8Array): string {
  return toHex(sha256(concat(utf8("cipherpost/room/v1/ticket-id"), secret)).subarray(0, 16));
}

/** The Ed25519 seed of request slot `i` (a PKARR key only ticket holders can sign for). */
export function slotSeed(t: Pick<Ticket, "room" | "secret">, i: number): Uint8Array {
  return hkdf32(fromHex(t.room), t.secret, `cipherpost/room/v1/ticket-slot/${i}`);
}

/** The tag by which a joiner finds its own request (16 bytes). */
export function joinerTag(secret: Uint8Array, joiner: string): Uint8Array {
  return sha256(concat(utf8("cipherpost/room/v1/ticket-who"), secret, decodeZ32(joiner)))
    .subarray(0, 16);
}

/** A join request (§9.7), its signature by `joiner` verified. */
export interface TicketJoinRequest {
  /** The room's id. */
  room: string;
  /** The ticket id. */
  ticket: string;
  /** The slot it was published in. */
  slot: number;
  /** z32 of whoever asks to join (its signature verified). */
  joiner: string;
  /** When the joiner signed it, Unix ms (the joiner's clock). */
  at: number;
}

/** The TXT text of slot `slot` for `joiner` (`seed` is the joiner's), sealed to the admin. */
export async function sealJoinRequest(
  t: Ticket,
  slot: number,
  joiner: Keypair,
  at: number,
): Promise<string> {
  const me = encodeZ32(joiner.publicKey);
  const rec = signRecord("join", {
    at,
    joiner: me,
    room: t.room,
    slot,
    ticket: ticketId(t.secret),
    v: 1,
  }, joiner.seed);
  const file = await ageEncrypt(canonicalize(rec), ageRecipientOfEd(decodeZ32(t.admin)));
  return b64encode(concat(joinerTag(t.secret, me), file));
}

/** Whether slot text is `joiner`'s own request (its tag), without opening it. */
export function isOwnRequest(secret: Uint8Array, joiner: string, text: string): boolean {
  try {
    const b = b64decode(text);
    return b.length > 16 && bytesEqual(b.subarray(0, 16), joinerTag(secret, joiner));
  } catch {
    return false;
  }
}

/**
 * Open slot `slot`'s text as the ticket's admin (`admin`, its keypair) and check it (§9.7).
 * Throws `invalid_material` (malformed, or for another room, ticket or slot), `decrypt` (not
 * sealed to us) or `signature`.
 */
export async function openJoinRequest(
  secret: Uint8Array,
  room: string,
  slot: number,
  admin: Keypair,
  text: string,
): Promise<TicketJoinRequest> {
  if (text.length > MAX_JOIN_TEXT) throw malformed("join request too long");
  let b: Uint8Array;
  try {
    b = b64decode(text);
  } catch {
    throw malformed("join request is not base64");
  }
  if (b.length <= 16) throw malformed("join request too short");
  let plain: Uint8Array;
  try {
    plain = await ageDecrypt(b.subarray(16), ageIdentityOfSeed(admin.seed));
  } catch {
    throw new CipherpostError("decrypt", "a join request could not be opened");
  }
  const o = parseRecord(plain);
  const joiner = z32(o.joiner, "joiner");
  const req: TicketJoinRequest = {
    room: roomOf(o.room),
    ticket: str(o.ticket, "ticket"),
    slot: int(o.slot, "slot"),
    joiner,
    at: int(o.at, "at"),
  };
  if (Object.keys(o).length !== 7) throw malformed("join request has other fields");
  if (!verifyRecord("join", o, joiner)) throw signatureError("join request signature");
  if (req.room !== room || req.ticket !== ticketId(secret) || req.slot !== slot) {
    throw malformed("join request for another room, ticket or slot");
  }
  if (!bytesEqual(b.subarray(0, 16), joinerTag(secret, joiner))) {
    throw malformed("join request with another joiner's tag");
  }
  return req;
}
