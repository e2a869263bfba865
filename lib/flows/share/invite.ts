/**
 * Contact invites (docs/PROTOCOL.md §7, docs/THREAT-MODEL.md "Contact invites"): two people
 * swap public keys through the DHT, protected by a short code one reads to the other
 * (`7-crossover-clockwork`: a number 1–999 and two BIP39 words, about 32 bits), then compare
 * fingerprints aloud.
 *
 * The code never travels. From it and the current 15-minute window, Argon2id (64 MiB, 3 passes)
 * derives two DHT slots (Ed25519 keys): the inviter publishes its key there, the acceptor
 * answers in the second. Each message is age-encrypted to an X25519 key derived from the code by
 * Argon2id with a random salt published beside it, and holds the sender's z32 key, the invite's
 * nonce and its expiry. Whoever finds a slot without the code learns nothing; every guess at a
 * code costs Argon2id; an attacker who wins the race with the right code is caught by the
 * fingerprint comparison.
 *
 * @module
 */

import { wordlist } from "@scure/bip39/wordlists/english.js";
import { ageDecrypt, ageEncrypt } from "../../crypto/age.ts";
import { inviteKey, inviteSlots } from "../../crypto/kdf.ts";
import {
  ageIdentityOf,
  ageRecipientOf,
  keypairFromSeed,
  x25519PublicFromSecret,
} from "../../crypto/keys.ts";
import { txtRecord, txtText } from "../../pkarr/dns.ts";
import { parsePublicKey } from "../../pkarr/public_key.ts";
import { recordsNamed, signPacket } from "../../pkarr/signed_packet.ts";
import type { Transport } from "../../pkarr/transport.ts";
import { canonicalize, field, parseJson } from "../../util/canonical_json.ts";
import { b64decode, b64encode, concat, fromUtf8, toHex } from "../../util/encoding.ts";
import { CipherpostError } from "../../util/errors.ts";

/** The record name of an invite or an answer in its slot's packet. */
export const INVITE_LABEL = "_cpinvite";
/** Length of the time window the slots are derived for, in seconds. */
export const INVITE_WINDOW_SECONDS = 900;
/** The longest an invite may live (one window: an acceptor then finds it in ≤ 2 windows). */
export const MAX_INVITE_TTL_SECONDS = INVITE_WINDOW_SECONDS;
/** Largest record text read from a slot (a message is ~500 bytes of base64). */
const MAX_RECORD_TEXT = 1000;

const WORDS = new Map(wordlist.map((w, i) => [w, i]));

/** A fresh code: `N-word-word`, N uniform in 1..999, words uniform over the 2048 BIP39 words. */
export function newInviteCode(): string {
  const r = new Uint16Array(1);
  do {
    crypto.getRandomValues(r);
  } while (r[0] >= 999 * 65); // rejection sampling: uniform over 0..998
  const n = 1 + (r[0] % 999);
  const w = new Uint16Array(2);
  crypto.getRandomValues(w);
  return `${n}-${wordlist[w[0] & 2047]}-${wordlist[w[1] & 2047]}`;
}

/**
 * A code as typed (any case, spaces or hyphens between its parts), in its one form; throws
 * `usage` when it is not a number 1–999 followed by two BIP39 words. The code is never echoed.
 */
export function normalizeInviteCode(text: string): string {
  const parts = text.trim().toLowerCase().split(/[\s-]+/).filter((p) => p !== "");
  const ok = parts.length === 3 && /^[1-9][0-9]{0,2}$/.test(parts[0]) &&
    WORDS.has(parts[1]) && WORDS.has(parts[2]);
  if (!ok) {
    throw new CipherpostError(
      "usage",
      "not an invite code: it is a number and two words, like 7-crossover-clockwork",
      "type it as the other person reads it from their `contacts invite`",
    );
  }
  return parts.join("-");
}

/** What one side tells the other. */
interface InviteMessage {
  role: "invite" | "answer";
  /** the sender's z32 key */
  key: string;
  /** 16 random bytes (hex) chosen by the inviter; the answer repeats them */
  nonce: string;
  /** Unix seconds: the invite (and any answer to it) is void after this */
  expiresAt: number;
}

async function seal(code: string, m: InviteMessage): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(32));
  const recipient = ageRecipientOf(x25519PublicFromSecret(await inviteKey(code, salt)));
  const plain = canonicalize({
    expires_at: m.expiresAt,
    key: m.key,
    nonce: m.nonce,
    role: m.role,
    v: 1,
  });
  return b64encode(concat(salt, await ageEncrypt(plain, recipient)));
}

async function openMessage(code: string, text: string): Promise<InviteMessage> {
  const bytes = b64decode(text);
  if (bytes.length < 33) throw new CipherpostError("decrypt", "invite could not be opened");
  const secret = await inviteKey(code, bytes.subarray(0, 32));
  let plain: Uint8Array;
  try {
    plain = await ageDecrypt(bytes.subarray(32), ageIdentityOf(secret));
  } catch {
    throw new CipherpostError(
      "decrypt",
      "invite could not be opened with this code",
      "someone else's record is in its slot: ask for a new invite",
    );
  }
  const o = parseJson(fromUtf8(plain));
  const role = field.isObject(o) ? o.role : undefined;
  if (
    !field.isObject(o) || o.v !== 1 || (role !== "invite" && role !== "answer") ||
    typeof o.key !== "string" || typeof o.nonce !== "string" || !/^[0-9a-f]{32}$/.test(o.nonce) ||
    typeof o.expires_at !== "number"
  ) {
    throw new CipherpostError("invalid_uri", "invite message malformed");
  }
  parsePublicKey(o.key); // a valid key, and so safe to print
  return { role, key: o.key, nonce: o.nonce, expiresAt: o.expires_at };
}

/**
 * Publish `text` as the one TXT record `label` (TTL 60) of the slot whose Ed25519 seed is
 * `seed` (a DHT slot that whoever derives the seed can write: contact invites, room tickets).
 */
export async function publishTxtSlot(
  t: Transport,
  seed: Uint8Array,
  text: string,
  label = INVITE_LABEL,
): Promise<void> {
  await t.publish(signPacket(seed, [txtRecord(label, 60, text)], Date.now() * 1000));
}

/** The first TXT record `label` of at most `max` characters in slot `seed`'s packet, or null. */
export async function readTxtSlot(
  t: Transport,
  seed: Uint8Array,
  label = INVITE_LABEL,
  max = MAX_RECORD_TEXT,
): Promise<string | null> {
  const pk = keypairFromSeed(seed).publicKey;
  const found = await t.resolve(pk, (p) => recordsNamed(p, label).length > 0);
  if (!found) return null;
  for (const r of recordsNamed(found.packet, label)) {
    const text = txtText(r);
    if (text !== null && text.length <= max) return text;
  }
  return null;
}

function windowOf(unixSeconds: number): number {
  return Math.floor(unixSeconds / INVITE_WINDOW_SECONDS);
}

/** A published invite, waiting for its answer. */
export interface PendingInvite {
  /** the code to read to the other person */
  code: string;
  expiresAt: number;
  nonce: string;
  inviteSlot: Uint8Array;
  answerSlot: Uint8Array;
}

/** What the invite slot holds once the invite was answered (so a second accept is refused). */
const USED = "used";

/**
 * Publish an invite from `myKey` (z32) that lives `ttlSeconds` (1 s to 15 min).
 *
 * @throws CipherpostError("usage") for a TTL out of range, ("network") when it cannot be stored
 */
export async function publishInvite(
  t: Transport,
  myKey: string,
  ttlSeconds: number,
  code = newInviteCode(),
): Promise<PendingInvite> {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_INVITE_TTL_SECONDS) {
    throw new CipherpostError(
      "usage",
      `an invite lives 1 second to ${MAX_INVITE_TTL_SECONDS / 60} minutes`,
    );
  }
  const now = Math.floor(Date.now() / 1000);
  const slots = await inviteSlots(code, windowOf(now));
  const nonce = toHex(crypto.getRandomValues(new Uint8Array(16)));
  const expiresAt = now + ttlSeconds;
  await publishTxtSlot(
    t,
    slots.invite,
    await seal(code, { role: "invite", key: myKey, nonce, expiresAt }),
  );
  return { code, expiresAt, nonce, inviteSlot: slots.invite, answerSlot: slots.answer };
}

/**
 * Wait for the answer to `inv`, asking the DHT every `pollMs` until the invite expires.
 *
 * @returns the z32 key of whoever answered with the code
 * @throws CipherpostError("expired") when no answer came in time
 */
export async function awaitAnswer(
  t: Transport,
  inv: PendingInvite,
  pollMs = 1000,
): Promise<string> {
  while (Date.now() / 1000 < inv.expiresAt) {
    const text = await readTxtSlot(t, inv.answerSlot).catch(() => null);
    if (text !== null) {
      const m = await openMessage(inv.code, text).catch(() => null);
      // a message that is not the answer to this invite (an old one, a stranger's) is ignored
      if (m && m.role === "answer" && m.nonce === inv.nonce) {
        // the invite is spent: a later accept finds this marker instead of the inviter's key
        await publishTxtSlot(t, inv.inviteSlot, USED).catch(() => {});
        return m.key;
      }
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new CipherpostError(
    "expired",
    "the invite expired without an answer",
    "make a new invite and read the code to the other person",
  );
}

/**
 * Accept an invite: find it with `code` (in the current time window, the one before, or the
 * next), open it, and answer with `myKey`.
 *
 * @returns the inviter's z32 key
 * @throws CipherpostError("not_found") when there is no invite for that code, ("expired") when
 *   it has expired, ("declined") when it was already answered, ("usage") when it is your own,
 *   ("network") when the answer is stored nowhere
 */
export async function acceptInvite(t: Transport, code: string, myKey: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  for (const w of [windowOf(now), windowOf(now) - 1, windowOf(now) + 1]) {
    const slots = await inviteSlots(code, w);
    const text = await readTxtSlot(t, slots.invite);
    if (text === null) continue;
    if (text === USED) {
      throw new CipherpostError(
        "declined",
        "that invite was already answered",
        "ask for a new invite",
      );
    }
    const m = await openMessage(code, text);
    if (m.role !== "invite") continue;
    if (Math.floor(Date.now() / 1000) >= m.expiresAt) {
      throw new CipherpostError(
        "expired",
        "that invite has expired",
        "ask for a new invite (an invite lasts minutes)",
      );
    }
    if (m.key === myKey) {
      throw new CipherpostError("usage", "that invite is your own: the other person accepts it");
    }
    const answer = { role: "answer" as const, key: myKey, nonce: m.nonce, expiresAt: m.expiresAt };
    await publishTxtSlot(t, slots.answer, await seal(code, answer));
    return m.key;
  }
  throw new CipherpostError(
    "not_found",
    "no invite found for that code",
    "check the code with the person who made it: it may be mistyped, expired, or not out yet",
  );
}
