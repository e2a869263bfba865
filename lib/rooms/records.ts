/**
 * The signed records of a room (docs/PROTOCOL.md §9.2–§9.5): roster updates, key records,
 * messages and the invite. Each is canonical JSON (§1.2) with `"v":1`, signed by Ed25519 over a
 * domain string and the canonical bytes of the record without `sig`. Pure: no I/O.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { sign, verifyStrict } from "../crypto/keys.ts";
import { canonicalize, field, type JsonValue, parseJson } from "../util/canonical_json.ts";
import { b64decode, b64encode, concat, fromUtf8, toHex, utf8 } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import { decodeZ32 } from "../pkarr/public_key.ts";
import { isRoomId, MAX_ADMINS, MAX_BODY, MAX_MEMBERS } from "./names.ts";

/** The signature domains (§9.1). */
export const DOMAIN = {
  roster: "cipherpost/room/v1/roster\n",
  key: "cipherpost/room/v1/key\n",
  msg: "cipherpost/room/v1/msg\n",
  join: "cipherpost/room/v1/join\n",
} as const;

type Domain = keyof typeof DOMAIN;

const Z32_RE = /^[ybndrfg8ejkmcpqxot1uwisza345h769]{52}$/;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** A malformed room record (kind `invalid_material`, exit 3). */
export function malformed(what: string): CipherpostError {
  return new CipherpostError("invalid_material", `invalid room record: ${what}`);
}

/** A z32 key field (malformed → `invalid_material`). */
export function z32(v: JsonValue | undefined, what: string): string {
  if (typeof v !== "string" || !Z32_RE.test(v) || decodeZ32(v).length !== 32) {
    throw malformed(`${what} is not a key`);
  }
  return v;
}

/** An integer field ≥ `min` (malformed → `invalid_material`). */
export function int(v: JsonValue | undefined, what: string, min = 0): number {
  try {
    const n = field.int(v);
    if (n < min) throw new Error();
    return n;
  } catch {
    throw malformed(`${what} is not an integer ≥ ${min}`);
  }
}

/** A string field (malformed → `invalid_material`). */
export function str(v: JsonValue | undefined, what: string): string {
  if (typeof v !== "string") throw malformed(`${what} is not a string`);
  return v;
}

function keyList(v: JsonValue | undefined, what: string, max: number): string[] {
  if (!Array.isArray(v) || v.length > max) throw malformed(`${what} is not a list of keys`);
  const out = v.map((x) => z32(x, what));
  for (let i = 1; i < out.length; i++) {
    if (!(out[i - 1] < out[i])) throw malformed(`${what} is not sorted and unique`);
  }
  return out;
}

/** A room id field (malformed → `invalid_material`). */
export function roomOf(v: JsonValue | undefined): string {
  if (typeof v !== "string" || !isRoomId(v)) throw malformed("room is not a room id");
  return v;
}

/** Check a room name: 1–64 characters, no control, line-separator or bidi character. */
export function checkRoomName(name: string): string {
  if (name.length < 1 || [...name].length > 64 || CONTROL.test(name)) {
    throw new CipherpostError(
      "usage",
      "a room name is 1 to 64 characters without control or bidi characters",
    );
  }
  return name;
}

/** The bytes a signature covers: domain ‖ canonical record without `sig`. */
export function signedBytes(domain: Domain, rec: Record<string, JsonValue>): Uint8Array {
  const { sig: _sig, ...rest } = rec;
  return concat(utf8(DOMAIN[domain]), canonicalize(rest));
}

/** `rec` with `sig` by `seed`. */
export function signRecord<T extends Record<string, JsonValue>>(
  domain: Domain,
  rec: T,
  seed: Uint8Array,
): T & { sig: string } {
  return { ...rec, sig: b64encode(sign(seed, signedBytes(domain, rec))) };
}

/** Whether `rec.sig` is `signer`'s (z32) signature of `rec`. */
export function verifyRecord(
  domain: Domain,
  rec: Record<string, JsonValue>,
  signer: string,
): boolean {
  if (typeof rec.sig !== "string") return false;
  let sig: Uint8Array;
  try {
    sig = b64decode(rec.sig);
  } catch {
    return false;
  }
  return verifyStrict(decodeZ32(signer), signedBytes(domain, rec), sig);
}

/** The canonical bytes of a whole record (what is encrypted and hashed). */
export function recordBytes(rec: Record<string, JsonValue>): Uint8Array {
  return canonicalize(rec);
}

/** The record hash (§9.1). */
export function recordHash(rec: Record<string, JsonValue>): string {
  return toHex(sha256(recordBytes(rec)));
}

/** Parse record bytes into an object with `"v":1` (malformed → `invalid_material`). */
export function parseRecord(bytes: Uint8Array): Record<string, JsonValue> {
  let o: JsonValue;
  try {
    o = parseJson(fromUtf8(bytes));
  } catch {
    throw malformed("not JSON");
  }
  if (!field.isObject(o)) throw malformed("not an object");
  if (o.v !== 1) throw malformed("unknown version");
  if (typeof o.sig !== "string") throw malformed("no signature");
  return o;
}

// ---------------------------------------------------------------------------------------------
// Roster updates

/** What a roster update does (§9.3). */
export type RosterOp = "create" | "admit" | "remove" | "admin" | "unadmin";

const ROSTER_OPS: readonly string[] = ["create", "admit", "remove", "admin", "unadmin"];

/** A roster update (§9.3). */
export interface Roster {
  room: string;
  epoch: number;
  op: RosterOp;
  prev: string;
  creator: string;
  nonce: string;
  name: string;
  signer: string;
  subject: string[];
  members: string[];
  admins: string[];
  at: number;
}

/** The JSON object of a roster update (unsigned). */
export function rosterObject(r: Roster): Record<string, JsonValue> {
  return {
    admins: [...r.admins],
    at: r.at,
    creator: r.creator,
    epoch: r.epoch,
    members: [...r.members],
    name: r.name,
    nonce: r.nonce,
    op: r.op,
    prev: r.prev,
    room: r.room,
    signer: r.signer,
    subject: [...r.subject],
    v: 1,
  };
}

/** Parse a signed roster object (signature not checked here: see `roster.ts`). */
export function parseRoster(o: Record<string, JsonValue>): Roster {
  const op = str(o.op, "op");
  if (!ROSTER_OPS.includes(op)) throw malformed("unknown op");
  const prev = str(o.prev, "prev");
  if (prev !== "" && !/^[0-9a-f]{64}$/.test(prev)) throw malformed("prev is not a hash");
  const nonce = str(o.nonce, "nonce");
  if (!/^[0-9a-f]{32}$/.test(nonce)) throw malformed("nonce is not 32 hex");
  const name = str(o.name, "name");
  try {
    checkRoomName(name);
  } catch {
    throw malformed("bad room name");
  }
  return {
    room: roomOf(o.room),
    epoch: int(o.epoch, "epoch", 1),
    op: op as RosterOp,
    prev,
    creator: z32(o.creator, "creator"),
    nonce,
    name,
    signer: z32(o.signer, "signer"),
    subject: keyList(o.subject, "subject", MAX_MEMBERS),
    members: keyList(o.members, "members", MAX_MEMBERS),
    admins: keyList(o.admins, "admins", MAX_ADMINS),
    at: int(o.at, "at"),
  };
}

// ---------------------------------------------------------------------------------------------
// Key records

/** A key record (§9.2). */
export interface KeyRecord {
  room: string;
  epoch: number;
  member: string;
  /** `AGE-SECRET-KEY-1…` of the epoch (a secret) */
  key: string;
  /** record hash of the roster update of this epoch */
  roster: string;
  signer: string;
}

/** The JSON object of a key record (unsigned). */
export function keyObject(k: KeyRecord): Record<string, JsonValue> {
  return {
    epoch: k.epoch,
    key: k.key,
    member: k.member,
    room: k.room,
    roster: k.roster,
    signer: k.signer,
    v: 1,
  };
}

/** Parse a key record object. */
export function parseKeyRecord(o: Record<string, JsonValue>): KeyRecord {
  const key = str(o.key, "key");
  if (!/^AGE-SECRET-KEY-1[0-9A-Z]{58}$/.test(key)) throw malformed("key is not an age identity");
  const roster = str(o.roster, "roster");
  if (!/^[0-9a-f]{64}$/.test(roster)) throw malformed("roster is not a hash");
  return {
    room: roomOf(o.room),
    epoch: int(o.epoch, "epoch", 1),
    member: z32(o.member, "member"),
    key,
    roster,
    signer: z32(o.signer, "signer"),
  };
}

// ---------------------------------------------------------------------------------------------
// Messages

/** What a message is. */
export type MessageKind = "chat" | "file_drop";

/** A message (§9.4). */
export interface Message {
  /** The room's id. */
  room: string;
  /** The epoch whose key encrypted it; its roster made the author a member. */
  epoch: number;
  /** z32 of the author, whose signature was verified. */
  author: string;
  /** The author's sequence number in that epoch (from 1). */
  seq: number;
  /** wall clock part of the HLC, Unix ms */
  hlc: number;
  /** counter part of the HLC */
  hlcC: number;
  /** A chat line or the announcement of a file drop. */
  kind: MessageKind;
  /** the body, UTF-8 (author-controlled: escape it before it reaches a terminal) */
  body: string;
}

/** The body's bytes, refused when over {@link MAX_BODY}. */
export function bodyBytes(body: string): Uint8Array {
  const b = utf8(body);
  if (b.length > MAX_BODY) {
    throw new CipherpostError(
      "too_large",
      `message too large: ${b.length} bytes (at most ${MAX_BODY})`,
    );
  }
  return b;
}

/** The JSON object of a message (unsigned). */
export function messageObject(m: Message): Record<string, JsonValue> {
  return {
    author: m.author,
    body: b64encode(bodyBytes(m.body)),
    epoch: m.epoch,
    hlc: m.hlc,
    hlc_c: m.hlcC,
    kind: m.kind,
    room: m.room,
    seq: m.seq,
    v: 1,
  };
}

/** Parse a message object; `oversized` when the body is over the limit. */
export function parseMessage(o: Record<string, JsonValue>): Message | "oversized" {
  const kind = str(o.kind, "kind");
  if (kind !== "chat" && kind !== "file_drop") throw malformed("unknown kind");
  let raw: Uint8Array;
  try {
    raw = b64decode(str(o.body, "body"));
  } catch {
    throw malformed("body is not base64");
  }
  if (raw.length > MAX_BODY) return "oversized";
  let body: string;
  try {
    body = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    throw malformed("body is not UTF-8");
  }
  return {
    room: roomOf(o.room),
    epoch: int(o.epoch, "epoch", 1),
    author: z32(o.author, "author"),
    seq: int(o.seq, "seq", 1),
    hlc: int(o.hlc, "hlc"),
    hlcC: int(o.hlc_c, "hlc_c"),
    kind,
    body,
  };
}

// ---------------------------------------------------------------------------------------------
// Invites

/** The `room_invite` material (§9.5). */
export interface Invite {
  room: string;
  name: string;
  creator: string;
  nonce: string;
  epoch: number;
  inviter: string;
}

/** The canonical bytes of an invite. */
export function encodeInvite(i: Invite): Uint8Array {
  return canonicalize({
    creator: i.creator,
    epoch: i.epoch,
    inviter: i.inviter,
    name: i.name,
    nonce: i.nonce,
    room: i.room,
    v: 1,
  });
}

/** Parse invite bytes (malformed → `invalid_material`). */
export function parseInvite(bytes: Uint8Array): Invite {
  let o: JsonValue;
  try {
    o = parseJson(fromUtf8(bytes));
  } catch {
    throw malformed("invite is not JSON");
  }
  if (!field.isObject(o) || o.v !== 1) throw malformed("invite of an unknown version");
  const nonce = str(o.nonce, "nonce");
  if (!/^[0-9a-f]{32}$/.test(nonce)) throw malformed("nonce is not 32 hex");
  const name = str(o.name, "name");
  try {
    checkRoomName(name);
  } catch {
    throw malformed("bad room name");
  }
  return {
    room: roomOf(o.room),
    name,
    creator: z32(o.creator, "creator"),
    nonce,
    epoch: int(o.epoch, "epoch", 1),
    inviter: z32(o.inviter, "inviter"),
  };
}
