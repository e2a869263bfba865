/**
 * Roster rules (docs/PROTOCOL.md §9.3): what makes a roster update valid on its own and after
 * the one before it, and how an update is made from the previous one. Pure.
 *
 * @module
 */

import { fromHex } from "../util/encoding.ts";
import { decodeZ32 } from "../pkarr/public_key.ts";
import { CipherpostError } from "../util/errors.ts";
import type { JsonValue } from "../util/canonical_json.ts";
import { MAX_ADMINS, MAX_MEMBERS, roomIdOf } from "./names.ts";
import {
  malformed,
  parseRecord,
  parseRoster,
  recordHash,
  type Roster,
  rosterObject,
  signRecord,
  verifyRecord,
} from "./records.ts";
import { signatureError } from "../util/errors.ts";

/** A roster update with its signed object and record hash. */
export interface SignedRoster {
  roster: Roster;
  /** the signed object (what is encrypted and hashed) */
  record: Record<string, JsonValue>;
  hash: string;
}

const sorted = (keys: Iterable<string>) => [...new Set(keys)].sort();

/** Sign `r` with `seed` (the signer's). */
export function signRoster(r: Roster, seed: Uint8Array): SignedRoster {
  const record = signRecord("roster", rosterObject(r), seed);
  return { roster: r, record, hash: recordHash(record) };
}

/**
 * Parse and check a roster update's bytes on their own: the format, the signature of its
 * `signer`, and, for epoch 1, the `create` rules. Throws `invalid_material` or `signature`.
 */
export function openRoster(bytes: Uint8Array): SignedRoster {
  const record = parseRecord(bytes);
  const roster = parseRoster(record);
  if (!verifyRecord("roster", record, roster.signer)) throw signatureError("roster signature");
  if (roomIdOf(decodeZ32(roster.creator), fromHex(roster.nonce)) !== roster.room) {
    throw malformed("the room id does not derive from creator and nonce");
  }
  if (!roster.members.includes(roster.creator) || !roster.admins.includes(roster.creator)) {
    throw malformed("the creator is not a member and admin");
  }
  if (!roster.admins.every((a) => roster.members.includes(a))) {
    throw malformed("an admin is not a member");
  }
  if (!roster.members.includes(roster.signer)) throw malformed("the signer is not a member");
  if (roster.epoch === 1) {
    const only = [roster.creator];
    if (
      roster.op !== "create" || roster.prev !== "" || roster.signer !== roster.creator ||
      roster.subject.length !== 0 || !same(roster.members, only) || !same(roster.admins, only)
    ) {
      throw malformed("epoch 1 is not a valid create");
    }
  } else if (roster.op === "create" || roster.prev === "") {
    throw malformed("only epoch 1 creates");
  }
  return { roster, record, hash: recordHash(record) };
}

function same(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Check that `next` validly follows `prev` (§9.3). Throws `invalid_material` naming the rule.
 */
export function checkFollows(prev: SignedRoster, next: SignedRoster): void {
  const a = prev.roster, b = next.roster;
  if (b.epoch !== a.epoch + 1 || b.prev !== prev.hash) throw malformed("not the next update");
  if (b.room !== a.room || b.creator !== a.creator || b.nonce !== a.nonce || b.name !== a.name) {
    throw malformed("the room's identity changed");
  }
  if (!a.admins.includes(b.signer)) throw malformed("signed by a non-admin");
  if (b.subject.length === 0) throw malformed("an update without subject");
  const old = new Set(a.members);
  if (b.op === "admin" || b.op === "unadmin") {
    if (b.signer !== a.creator) throw malformed("only the creator changes the admins");
    if (!same(b.members, a.members)) throw malformed("an admin update changes the members");
    const oldAdmins = new Set(a.admins);
    if (b.op === "admin") {
      if (b.subject.some((k) => !old.has(k) || oldAdmins.has(k))) {
        throw malformed("names a non-member or an admin as admin");
      }
      if (!same(b.admins, sorted([...a.admins, ...b.subject]))) {
        throw malformed("admins do not match the update");
      }
    } else {
      if (b.subject.some((k) => !oldAdmins.has(k))) throw malformed("unnames a non-admin");
      if (b.subject.includes(a.creator)) throw malformed("unnames the creator");
      if (!same(b.admins, a.admins.filter((k) => !b.subject.includes(k)))) {
        throw malformed("admins do not match the update");
      }
    }
    return;
  }
  if (b.op === "admit") {
    if (b.subject.some((k) => old.has(k))) throw malformed("admits a member");
    if (!same(b.members, sorted([...a.members, ...b.subject]))) {
      throw malformed("members do not match the admit");
    }
  } else {
    if (b.subject.some((k) => !old.has(k))) throw malformed("removes a non-member");
    if (b.subject.includes(a.creator)) throw malformed("removes the creator");
    if (!same(b.members, a.members.filter((k) => !b.subject.includes(k)))) {
      throw malformed("members do not match the remove");
    }
  }
  const kept = a.admins.filter((k) => b.members.includes(k));
  if (!same(b.admins, kept)) throw malformed("an admit or remove changes the admins");
}

/** The first update of a new room. */
export function createRoster(
  o: { creator: string; nonce: string; name: string; at: number },
): Roster {
  return {
    room: roomIdOf(decodeZ32(o.creator), fromHex(o.nonce)),
    epoch: 1,
    op: "create",
    prev: "",
    creator: o.creator,
    nonce: o.nonce,
    name: o.name,
    signer: o.creator,
    subject: [],
    members: [o.creator],
    admins: [o.creator],
    at: o.at,
  };
}

/**
 * The update after `prev` that admits or removes `subject` (signed by an admin), or names or
 * unnames `subject` as admins (signed by the creator), signed by `signer`.
 */
export function nextRoster(
  prev: SignedRoster,
  op: "admit" | "remove" | "admin" | "unadmin",
  subject: string[],
  signer: string,
  at: number,
): Roster {
  const a = prev.roster;
  if (!a.admins.includes(signer)) {
    throw new CipherpostError(
      "config",
      "configuration error: only an admin of the room can do this",
    );
  }
  const subj = sorted(subject);
  let members: string[];
  if (op === "admin" || op === "unadmin") {
    if (signer !== a.creator) {
      throw new CipherpostError(
        "config",
        "configuration error: only the room's creator names or unnames admins",
      );
    }
    if (subj.some((k) => !a.members.includes(k))) {
      throw new CipherpostError("config", "configuration error: not a member of the room");
    }
    let admins: string[];
    if (op === "admin") {
      if (subj.some((k) => a.admins.includes(k))) {
        throw new CipherpostError("config", "configuration error: already an admin of the room");
      }
      admins = sorted([...a.admins, ...subj]);
      if (admins.length > MAX_ADMINS) {
        throw new CipherpostError("too_large", `a room has at most ${MAX_ADMINS} admins`);
      }
    } else {
      if (subj.some((k) => !a.admins.includes(k))) {
        throw new CipherpostError("config", "configuration error: not an admin of the room");
      }
      if (subj.includes(a.creator)) {
        throw new CipherpostError("config", "configuration error: the creator stays an admin");
      }
      admins = a.admins.filter((k) => !subj.includes(k));
    }
    return { ...a, epoch: a.epoch + 1, op, prev: prev.hash, signer, subject: subj, admins, at };
  }
  if (op === "admit") {
    const fresh = subj.filter((k) => !a.members.includes(k));
    if (fresh.length === 0) {
      throw new CipherpostError("config", "configuration error: already a member of the room");
    }
    members = sorted([...a.members, ...fresh]);
    if (members.length > MAX_MEMBERS) {
      throw new CipherpostError("too_large", `a room has at most ${MAX_MEMBERS} members`);
    }
    return next(fresh, members);
  }
  if (subj.some((k) => !a.members.includes(k))) {
    throw new CipherpostError("config", "configuration error: not a member of the room");
  }
  if (subj.includes(a.creator)) {
    throw new CipherpostError("config", "configuration error: the creator cannot be removed");
  }
  members = a.members.filter((k) => !subj.includes(k));
  return next(subj, members);

  function next(s: string[], m: string[]): Roster {
    const admins = a.admins.filter((k) => m.includes(k)).slice(0, MAX_ADMINS);
    return {
      ...a,
      epoch: a.epoch + 1,
      op,
      prev: prev.hash,
      signer,
      subject: s,
      members: m,
      admins,
      at,
    };
  }
}
