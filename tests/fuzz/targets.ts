/**
 * Fuzz targets: every parser that takes bytes from outside, with fast-check generators that mix
 * random bytes, mutations of valid inputs and validly signed hostile values.
 *
 * A target's `run` feeds one input to the parser (and to what the program does next with a
 * parsed value: re-encoding, verification, the acceptance-screen preview). It passes when the
 * parser returns, or throws a `CipherpostError` of one of the target's documented kinds; any
 * other throw (a `TypeError`, a `RangeError`, a plain `Error`) is a finding. Some targets also
 * check a property of what was accepted (canonical JSON round-trips, a verified record re-encodes
 * to what was signed).
 *
 * Used by tests/fuzz_test.ts (small counts, in `deno task test`) and scripts/fuzz.ts (≥ 100,000
 * inputs per target).
 *
 * @module
 */

import fc from "fast-check";
import {
  canonicalize,
  compactJson,
  type JsonValue,
  parseJson,
} from "../../lib/util/canonical_json.ts";
import { b64decode, b64encode, concat, hasUnsafeText, utf8 } from "../../lib/util/encoding.ts";
import { CipherpostError, type ErrorKind } from "../../lib/util/errors.ts";
import { keypairFromSeed, sign } from "../../lib/crypto/keys.ts";
import { decodeDnsPacket, type DnsRecord, encodeDnsPacket } from "../../lib/pkarr/dns.ts";
import { encodeZ32 } from "../../lib/pkarr/public_key.ts";
import { packetFromBytes, packetToBytes, signPacket } from "../../lib/pkarr/signed_packet.ts";
import { parseShareUri } from "../../lib/protocol/share_uri.ts";
import {
  checkShareTimes,
  expiresAt,
  outerRecordJson,
  parseAndVerifyOuterRecord,
  parseAndVerifyReceipt,
  parseEnvelope,
  receiptJson,
  receiptSignable,
} from "../../lib/protocol/record.ts";
import { formatReceiptSummary, formatReceiptTable } from "../../lib/cli/format.ts";
import { utcMinute } from "../../lib/util/human.ts";
import { AsnParser, AsnSerializer } from "@peculiar/asn1-schema";
import {
  AttributeTypeAndValue,
  AttributeValue,
  Certificate,
  Name,
  RelativeDistinguishedName,
} from "@peculiar/asn1-x509";
import { parseAndVerifyManifest } from "../../lib/protocol/v2.ts";
import { ingestMaterial, type MaterialType, previewMaterial } from "../../lib/material/material.ts";
import { encodeTarHeader, readTar, TAR_END, tarPadding } from "../../lib/material/tar.ts";
import { parseBundle } from "../../lib/claude/bundle.ts";
import { summarizeBundle, summaryLines } from "../../lib/claude/summary.ts";

/** One fuzz target. */
export interface Target<T = unknown> {
  name: string;
  /** inputs: random, mutated-valid and signed-hostile */
  arbitrary: fc.Arbitrary<T>;
  /** the CipherpostError kinds the parser documents */
  allowed: readonly ErrorKind[];
  /** feed one input; throw only documented errors (or a `PropertyFailure`) */
  run(input: T): void | Promise<void>;
}

/** A broken property of an accepted input (always a finding). */
export class PropertyFailure extends Error {
  override name = "PropertyFailure";
}

/** True when `e` is an error the target documents. */
export function isDocumented(t: Target<never>, e: unknown): boolean {
  return e instanceof CipherpostError && t.allowed.includes(e.kind);
}

/** Run one input; returns null (fine) or a description of the finding. */
export async function check<T>(t: Target<T>, input: T): Promise<string | null> {
  try {
    await t.run(input);
    return null;
  } catch (e) {
    if (isDocumented(t as Target<never>, e)) return null;
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    // one finding per kind of failure: positions and lengths vary from input to input
    return `${t.name}: ${what.replace(/\d+/g, "N").slice(0, 200)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Shared generators

/** The fuzzer's signing key (a fixed seed: findings reproduce). */
export const FUZZ_KEY = keypairFromSeed(new Uint8Array(32).fill(7));
const FUZZ_Z32 = encodeZ32(FUZZ_KEY.publicKey);

/** Byte-level mutations of a seed: flips, truncation, insertion, splice, repetition. */
export function mutated(seeds: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const seed = fc.constantFrom(...seeds);
  const op = fc.oneof(
    fc.record({ k: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
    fc.record({ k: fc.constant("set" as const), at: fc.nat(), v: fc.nat(255) }),
    fc.record({ k: fc.constant("cut" as const), at: fc.nat() }),
    fc.record({ k: fc.constant("del" as const), at: fc.nat(), n: fc.nat(16) }),
    fc.record({
      k: fc.constant("ins" as const),
      at: fc.nat(),
      b: fc.uint8Array({ maxLength: 16 }),
    }),
    fc.record({ k: fc.constant("dup" as const), at: fc.nat(), n: fc.nat(64) }),
  );
  return fc.tuple(seed, fc.array(op, { minLength: 1, maxLength: 6 })).map(([s, ops]) => {
    let b = s.slice();
    for (const o of ops) {
      const at = b.length === 0 ? 0 : o.at % (b.length + 1);
      switch (o.k) {
        case "flip":
          if (at < b.length) b[at] ^= 1 << o.bit;
          break;
        case "set":
          if (at < b.length) b[at] = o.v;
          break;
        case "cut":
          b = b.slice(0, at);
          break;
        case "del":
          b = new Uint8Array([...b.subarray(0, at), ...b.subarray(at + o.n)]);
          break;
        case "ins":
          b = new Uint8Array([...b.subarray(0, at), ...o.b, ...b.subarray(at)]);
          break;
        case "dup":
          b = new Uint8Array([...b.subarray(0, at + o.n), ...b.subarray(at)]);
          break;
      }
    }
    return b;
  });
}

/** Random bytes, mutations of the seeds, and the seeds themselves. */
function bytesFrom(seeds: Uint8Array[], maxLength = 2048): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength }) },
    { weight: 4, arbitrary: mutated(seeds) },
    { weight: 1, arbitrary: fc.constantFrom(...seeds) },
  );
}

/** Strings that break parsers: controls, escapes, surrogates, keys of Object.prototype. */
const nastyString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "",
    "__proto__",
    "constructor",
    "toString",
    "hasOwnProperty",
    "\u0000",
    "\u0007",
    "\u001b]0;pwned\u0007",
    "\u001b[2J",
    "\u007f",
    "\u009b",
    "\ud800",
    "\udfff",
    "../../x",
    "zz",
    "NaN",
    "-0",
    "\u202e",
  ),
);

/** Integers that break arithmetic: edges of the safe range, u64, negative, zero. */
const nastyInt: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.integer(),
  fc.constantFrom<JsonValue>(
    0,
    -1,
    1,
    2 ** 31,
    2 ** 32,
    Number.MAX_SAFE_INTEGER,
    Number.MIN_SAFE_INTEGER,
    (1n << 63n) - 1n,
    1n << 63n,
    (1n << 64n) - 1n,
    1n << 64n,
    -(1n << 63n),
    Math.floor(Date.now() / 1000),
    Math.floor(Date.now() / 1000) + 10 * 365 * 86400,
  ),
  fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }),
);

/** Any JSON value, small. */
const anyJson: fc.Arbitrary<JsonValue> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    nastyInt,
    nastyString,
    fc.array(tie("v"), { maxLength: 4 }),
    fc.dictionary(nastyString, tie("v"), { maxKeys: 4 }),
  ),
})).v as fc.Arbitrary<JsonValue>;

/**
 * An object with the given fields, each either a plausible value, a hostile value or absent,
 * plus a few extra keys (including `__proto__`).
 */
function hostileObject(
  fields: Record<string, fc.Arbitrary<JsonValue>>,
): fc.Arbitrary<Record<string, JsonValue>> {
  const entries = Object.entries(fields).map(([k, plausible]) =>
    fc.oneof(
      { weight: 6, arbitrary: plausible.map((v) => [k, v] as const) },
      { weight: 1, arbitrary: anyJson.map((v) => [k, v] as const) },
      { weight: 1, arbitrary: fc.constant(null) },
    )
  );
  return fc.tuple(fc.tuple(...entries), fc.dictionary(nastyString, anyJson, { maxKeys: 2 })).map(
    ([kv, extra]) => {
      const o: Record<string, JsonValue> = {};
      for (const [k, v] of Object.entries(extra)) {
        Object.defineProperty(o, k, { value: v, enumerable: true, writable: true });
      }
      for (const e of kv) if (e) o[e[0]] = e[1];
      return o;
    },
  );
}

/** Sign `o` (minus `signature`) canonically with the fuzz key, when it can be canonicalized. */
function signedText(o: Record<string, JsonValue>, signatureKey = "signature"): string {
  const unsigned = Object.fromEntries(Object.entries(o).filter(([k]) => k !== signatureKey));
  try {
    o[signatureKey] = b64encode(sign(FUZZ_KEY.seed, canonicalize(unsigned)));
  } catch {
    o[signatureKey] = b64encode(new Uint8Array(64));
  }
  return compactJson(o);
}

const hex = (n: number) =>
  fc.uint8Array({ minLength: n, maxLength: n }).map((b) =>
    Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")
  );
const z32 = fc.constantFrom(FUZZ_Z32, encodeZ32(new Uint8Array(32)), "y".repeat(52));
const timeNow = fc.integer({ min: 0, max: 4_000_000_000 });

/** Text inputs: signed hostile objects, their mutations, and random text. */
function textFrom(signed: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const dec = new TextDecoder();
  return fc.oneof(
    { weight: 4, arbitrary: signed },
    {
      weight: 2,
      arbitrary: signed.chain((s) => mutated([utf8(s)]).map((b) => dec.decode(b))),
    },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
    { weight: 1, arbitrary: anyJson.map((v) => compactJson(v)) },
  );
}

// ---------------------------------------------------------------------------------------------
// Targets

const dnsSeeds: Uint8Array[] = [
  encodeDnsPacket([
    {
      name: `_cipherpost.${FUZZ_Z32}`,
      ttl: 300,
      class: 1,
      data: { type: "TXT", strings: [utf8("x")] },
    },
    { name: `a.${FUZZ_Z32}`, ttl: 60, class: 1, data: { type: "A", address: "127.0.0.1" } },
    { name: `b.${FUZZ_Z32}`, ttl: 60, class: 1, data: { type: "CNAME", target: `a.${FUZZ_Z32}` } },
    {
      name: `c.${FUZZ_Z32}`,
      ttl: 60,
      class: 1,
      data: { type: "HTTPS", priority: 1, target: ".", params: [[1, utf8("h2")]] },
    },
  ]),
  encodeDnsPacket([
    {
      name: FUZZ_Z32,
      ttl: 60,
      class: 1,
      data: {
        type: "SOA",
        mname: `ns.${FUZZ_Z32}`,
        rname: `host.${FUZZ_Z32}`,
        serial: 1,
        refresh: 2,
        retry: 3,
        expire: 4,
        minimum: 5,
      },
    },
    { name: `mx.${FUZZ_Z32}`, ttl: 1, data: { type: "MX", preference: 10, exchange: FUZZ_Z32 } },
    { name: `v6.${FUZZ_Z32}`, ttl: 1, data: { type: "AAAA", address: "::1" } },
    { name: `u.${FUZZ_Z32}`, ttl: 1, data: { type: "UNKNOWN", code: 99, data: utf8("raw") } },
  ]),
  // a pointer loop and a header announcing 65,535 answers
  new Uint8Array([0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 1, 0, 0]),
  new Uint8Array([0, 0, 0x84, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0]),
];

/** DNS packets (the `v` of every signed packet): decode, then re-encode what decoded. */
export const dnsTarget: Target<Uint8Array> = {
  name: "dns",
  arbitrary: bytesFrom(dnsSeeds, 1200),
  allowed: ["invalid_material"],
  run(v) {
    const records: DnsRecord[] = decodeDnsPacket(v);
    // what the program does next with our own packet's records: re-encode them
    encodeDnsPacket(records);
  },
};

const packetSeeds = [
  packetToBytes(
    signPacket(FUZZ_KEY.seed, [{
      name: "_x",
      ttl: 300,
      data: { type: "TXT", strings: [utf8("y")] },
    }], 1_700_000_000_000_000),
  ),
];

/** Signed packets (canonical bytes, as relays and the saved-packet file hold them). */
export const packetTarget: Target<Uint8Array> = {
  name: "signed-packet",
  arbitrary: bytesFrom(packetSeeds, 1200),
  allowed: ["signature"],
  run(b) {
    packetFromBytes(b);
  },
};

function hasControl(v: JsonValue): boolean {
  // deno-lint-ignore no-control-regex
  if (typeof v === "string") return /[\u0000-\u001f]/.test(v);
  if (Array.isArray(v)) return v.some(hasControl);
  if (v !== null && typeof v === "object") {
    return Object.entries(v).some(([k, x]) => hasControl(k) || hasControl(x));
  }
  return false;
}

function keyCount(text: string, v: JsonValue): void {
  // every object member of the text is an own property of the parsed value
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Object.prototype && Object.getPrototypeOf(v) !== null) {
      throw new PropertyFailure(`parsed object has a foreign prototype (${text.slice(0, 60)})`);
    }
    for (const x of Object.values(v)) keyCount(text, x);
  } else if (Array.isArray(v)) { for (const x of v) keyCount(text, x); }
}

/**
 * Canonical JSON: the strict parser, then (for values without C0 controls) canonicalize and
 * re-parse: the value must survive unchanged, and every parsed object has the plain prototype.
 */
export const jsonTarget: Target<string> = {
  name: "canonical-json",
  arbitrary: fc.oneof(
    fc.string({ unit: "binary", maxLength: 120 }),
    anyJson.map((v) => compactJson(v)),
    anyJson.chain((v) => mutated([utf8(compactJson(v))]).map((b) => new TextDecoder().decode(b))),
    fc.constantFrom(
      '{"__proto__":{"a":1}}',
      '{"__proto__":1,"__proto__":2}',
      '{"a":1,"a":2}',
      "[".repeat(70) + "]".repeat(70),
      '"\\ud800"',
      "-0",
      "1e5",
      '{"a":1}x',
    ),
  ),
  allowed: ["invalid_material"],
  run(text) {
    const v = parseJson(text);
    keyCount(text, v);
    if (hasControl(v)) return;
    const again = parseJson(new TextDecoder().decode(canonicalize(v)));
    const a = new TextDecoder().decode(canonicalize(again));
    const b = new TextDecoder().decode(canonicalize(v));
    if (a !== b) throw new PropertyFailure(`canonical form not stable: ${b.slice(0, 80)}`);
  },
};

const Z32_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769";
const z32Chars = (n: number) =>
  fc.array(fc.constantFrom(...Z32_ALPHABET), { minLength: n, maxLength: n }).map((a) => a.join(""));

/** Share URIs (pasted by users, or read from files and chats). */
export const uriTarget: Target<string> = {
  name: "share-uri",
  arbitrary: fc.oneof(
    fc.string({ unit: "binary", maxLength: 140 }),
    fc.tuple(fc.oneof(z32, z32Chars(52), fc.string()), hex(16)).map(([s, r]) =>
      `cipherpost://${s}/${r}`
    ),
    fc.tuple(fc.oneof(z32, z32Chars(52)), z32Chars(52)).map(([s, l]) => `cipherpost://${s}/2.${l}`),
    fc.tuple(z32, z32Chars(52)).chain(([s, l]) =>
      mutated([utf8(`cipherpost://${s}/2.${l}`), utf8(`cipherpost://${s}/${"a".repeat(32)}`)])
        .map((b) => new TextDecoder().decode(b))
    ),
  ),
  allowed: ["invalid_uri"],
  run(text) {
    const u = parseShareUri(text);
    if (u.version === 2 && u.locator.length !== 32) {
      throw new PropertyFailure(`v2 locator of ${u.locator.length} bytes accepted`);
    }
  },
};

const outerRecord = hostileObject({
  blob: fc.uint8Array({ maxLength: 80 }).map((b) => b64encode(b)),
  created_at: fc.oneof(timeNow, nastyInt),
  pin_required: fc.boolean(),
  protocol_version: fc.constantFrom<JsonValue>(1, 2, 99),
  pubkey: fc.constant(FUZZ_Z32),
  recipient: fc.oneof(fc.constant(null), z32),
  share_ref: hex(16),
  ttl_seconds: nastyInt,
}).map((o) => signedText(o));

/** v1 `_cipherpost` records: parse, verify, and re-encode what verified. */
export const recordTarget: Target<string> = {
  name: "record",
  arbitrary: textFrom(outerRecord),
  allowed: ["signature", "expired"],
  run(text) {
    const r = parseAndVerifyOuterRecord(text);
    const again = parseAndVerifyOuterRecord(outerRecordJson(r));
    if (again.signature !== r.signature) throw new PropertyFailure("record does not re-encode");
    b64decode(r.blob);
    // a share inside its validity window shows a real expiry date
    const now = Math.floor(Date.now() / 1000);
    checkShareTimes(r.createdAt, r.ttlSeconds, now);
    const shown = utcMinute(Number(expiresAt(r.createdAt, r.ttlSeconds)));
    if (/NaN/.test(shown)) throw new PropertyFailure(`expiry shows as ${shown}`);
  },
};

const receiptObj = hostileObject({
  accepted_at: fc.oneof(timeNow, nastyInt),
  ciphertext_hash: hex(32),
  cleartext_hash: hex(32),
  nonce: hex(16),
  protocol_version: fc.constantFrom<JsonValue>(1, 2, 99),
  purpose: nastyString,
  recipient_pubkey: fc.constant(FUZZ_Z32),
  sender_pubkey: z32,
  share_ref: hex(16),
}).map((o) => signedText(o));

/** Receipts (from the network, or a saved file given to `receipt verify`), then their views. */
export const receiptTarget: Target<string> = {
  name: "receipt",
  arbitrary: textFrom(receiptObj),
  allowed: ["signature"],
  run(text) {
    const r = parseAndVerifyReceipt(text);
    parseAndVerifyReceipt(receiptJson(r));
    if (/NaN/.test(utcMinute(r.acceptedAt))) throw new PropertyFailure("accepted_at shows NaN");
    for (const view of [formatReceiptSummary(r), formatReceiptTable([r])]) {
      if (hasUnsafeText(view.replace(/\n/g, ""))) {
        throw new PropertyFailure("receipt view has a control character");
      }
    }
  },
};

const envelopeObj = hostileObject({
  burn_after_read: fc.boolean(),
  created_at: fc.oneof(timeNow, nastyInt),
  material: hostileObject({
    bytes: fc.uint8Array({ maxLength: 64 }).map((b) => b64encode(b)),
    type: fc.constantFrom<JsonValue>("generic_secret", "x509_cert", "pgp_key", "ssh_key", "x"),
  }),
  protocol_version: fc.constantFrom<JsonValue>(1, 2),
  purpose: nastyString,
}).map((o) => compactJson(o));

/** Envelopes (the decrypted plaintext, written by the sender). */
export const envelopeTarget: Target<string> = {
  name: "envelope",
  arbitrary: textFrom(envelopeObj),
  allowed: ["signature"],
  run(text) {
    const e = parseEnvelope(utf8(text));
    // what receive does after the output is written: sign a receipt over the purpose
    receiptSignable({
      acceptedAt: 1,
      ciphertextHash: "0".repeat(64),
      cleartextHash: "0".repeat(64),
      nonce: "0".repeat(32),
      protocolVersion: e.protocolVersion,
      purpose: e.purpose,
      recipientPubkey: FUZZ_Z32,
      senderPubkey: FUZZ_Z32,
      shareRef: "0".repeat(32),
    });
  },
};

const manifestObj = hostileObject({
  ciphertext_len: fc.oneof(fc.integer({ min: 1, max: 98_304 }), nastyInt),
  ciphertext_sha256: hex(32),
  created_at: fc.oneof(timeNow, nastyInt),
  manifest_key: z32,
  part_size: fc.constantFrom<JsonValue>(900, 1, 0, -1),
  parts: fc.integer({ min: 0, max: 200 }),
  pin_required: fc.boolean(),
  protocol_version: fc.constantFrom<JsonValue>(2, 1),
  pubkey: fc.constant(FUZZ_Z32),
  recipient: fc.oneof(fc.constant(null), z32),
  share_ref: hex(16),
  ttl_seconds: nastyInt,
}).map((o) => signedText(o));

/** v2 manifests (unsealed with the locator-derived key, so written by anyone holding the URI). */
export const manifestTarget: Target<string> = {
  name: "v2-manifest",
  arbitrary: textFrom(manifestObj),
  allowed: ["signature"],
  run(text) {
    parseAndVerifyManifest(text);
  },
};

const VECTORS = new URL("../vectors/cipherpost/", import.meta.url);
function vector(name: string): Uint8Array {
  return Deno.readFileSync(new URL(name, VECTORS));
}

function materialTarget(
  name: string,
  type: MaterialType,
  seeds: Uint8Array[],
): Target<Uint8Array> {
  return {
    name,
    arbitrary: bytesFrom(seeds, 4096),
    allowed: ["invalid_material", "too_large"],
    run(input) {
      // send side: ingest; receive side: the preview of bytes a hostile sender stored, which
      // goes to the terminal
      const preview = (b: Uint8Array) => {
        for (const line of previewMaterial(type, b, new Date())) {
          if (hasUnsafeText(line)) {
            throw new PropertyFailure(`preview line with a control: ${JSON.stringify(line)}`);
          }
        }
      };
      try {
        preview(ingestMaterial(type, input));
      } finally {
        preview(input);
      }
    },
  };
}

const u32 = (n: number) => new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
const sshStr = (b: Uint8Array) => concat(u32(b.length), b);

/** An unencrypted OpenSSH v1 ed25519 key whose comment is `comment` (the key bytes are junk). */
export function sshKeyWithComment(comment: Uint8Array): Uint8Array {
  const type = sshStr(utf8("ssh-ed25519"));
  const pub = sshStr(new Uint8Array(32).fill(1));
  const pubBlob = concat(type, pub);
  let priv = concat(u32(7), u32(7), type, pub, sshStr(new Uint8Array(64).fill(2)), sshStr(comment));
  const pad = (8 - (priv.length % 8)) % 8;
  priv = concat(priv, Uint8Array.from({ length: pad }, (_, i) => i + 1));
  const blob = concat(
    utf8("openssh-key-v1\0"),
    sshStr(utf8("none")),
    sshStr(utf8("none")),
    sshStr(new Uint8Array(0)),
    u32(1),
    sshStr(pubBlob),
    sshStr(priv),
  );
  const b64 = b64encode(blob).replace(/.{70}/g, "$&\n").replace(/\n$/, "");
  return utf8(
    `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`,
  );
}

/** The fixture certificate with its subject and issuer CN replaced by `cn`. */
export function certWithName(der: Uint8Array, cn: string): Uint8Array {
  const cert = AsnParser.parse(der, Certificate);
  const name = new Name([
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({ type: "2.5.4.3", value: new AttributeValue({ utf8String: cn }) }),
    ]),
  ]);
  cert.tbsCertificate.subject = name;
  cert.tbsCertificate.issuer = name;
  return new Uint8Array(AsnSerializer.serialize(cert));
}

const HOSTILE_TEXT = [
  "\u001b]0;pwned\u0007",
  "\u001b[2J\u001b[H",
  "a\u0000b",
  "\u202etxt.exe",
  "\u009b31m",
];

/** Material ingest and preview, one target per typed material. */
export function materialTargets(): Target<Uint8Array>[] {
  const der = vector("x509_cert_fixture.der");
  const pem = utf8(
    `-----BEGIN CERTIFICATE-----\n${
      b64encode(der).replace(/.{64}/g, "$&\n")
    }\n-----END CERTIFICATE-----\n`,
  );
  return [
    materialTarget("ssh", "ssh_key", [
      vector("material_ssh_fixture.openssh-v1"),
      vector("material_ssh_fixture_rsa1024.openssh-v1"),
      ...HOSTILE_TEXT.map((t) => sshKeyWithComment(utf8(t))),
    ]),
    materialTarget("pgp", "pgp_key", [
      vector("material_pgp_fixture.pgp"),
      vector("material_pgp_fixture_realistic.pgp"),
      vector("material_pgp_secret_fixture.pgp"),
    ]),
    materialTarget("x509", "x509_cert", [
      der,
      pem,
      ...HOSTILE_TEXT.map((t) => certWithName(der, t)),
    ]),
  ];
}

// ---------------------------------------------------------------------------------------------
// Tar (directory shares, §5.4) and Claude Code bundles (§6.1)

const FUZZ_SESSION = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d";

function tarBytes(
  entries: { path: string; type?: "file" | "dir" | "symlink"; body?: string; link?: string }[],
  ustarOnly = false,
): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    const body = utf8(e.body ?? "");
    const type = e.type ?? "file";
    const size = type === "file" ? body.length : 0;
    parts.push(
      encodeTarHeader({ path: e.path, type, mode: 0o644, size, mtime: 1, linkname: e.link }, {
        ustarOnly,
      }),
    );
    if (size) parts.push(body, tarPadding(size));
  }
  return concat(...parts, TAR_END);
}

/** Readable stream of `b` in uneven chunks (the codec must not depend on chunking). */
function chunks(b: Uint8Array): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= b.length) return c.close();
      const n = 1 + ((off * 7919) % 700);
      c.enqueue(b.slice(off, off + n));
      off += n;
    },
  });
}

/** The tar reader: a refusal is a plain `Error` by contract (documented here as invalid_material). */
export const tarTarget: Target<Uint8Array> = {
  name: "tar",
  arbitrary: fc.oneof(
    mutated([
      tarBytes([
        { path: "d", type: "dir" },
        { path: `d/${"long-".repeat(30)}é.txt`, body: "hello" },
        { path: "l", type: "symlink", link: "d/x".repeat(40) },
        { path: "d/e", body: "x".repeat(600) },
      ]),
      tarBytes([{ path: "a/b", body: "b" }, { path: "a", type: "dir" }]),
    ]),
    fc.uint8Array({ maxLength: 2048 }),
  ),
  allowed: ["invalid_material"],
  async run(input) {
    try {
      for await (const { entry, body } of readTar(chunks(input))) {
        let n = 0;
        for await (const c of body) n += c.length;
        if (n !== entry.size) {
          throw new PropertyFailure(`body ${n} bytes, header says ${entry.size}`);
        }
      }
    } catch (e) {
      if (e instanceof Error && e.constructor === Error) {
        throw new CipherpostError("invalid_material", `tar: ${e.message}`);
      }
      throw e;
    }
  },
};

async function gzipBytes(b: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([b as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** A Claude Code bundle: the tar is mutated, then gzip'd, then parsed and summarized. */
export const bundleTarget: Target<Uint8Array> = {
  name: "claude-bundle",
  arbitrary: mutated([
    tarBytes([
      {
        path: "cipherpost-session.json",
        body: JSON.stringify({
          claude_version: "2",
          cwd: "/p",
          format: 1,
          session_id: FUZZ_SESSION,
        }),
      },
      {
        path: `${FUZZ_SESSION}.jsonl`,
        body: `${
          JSON.stringify({ type: "user", cwd: "/p", message: { content: "hi" } })
        }\n\n{"x":\n`,
      },
      { path: `${FUZZ_SESSION}/subagents/a.jsonl`, body: "{}\n" },
      { path: `${FUZZ_SESSION}/t/${"n".repeat(90)}/f`, body: "x" },
    ], true),
  ]),
  allowed: ["invalid_material"],
  async run(input) {
    const b = await parseBundle(await gzipBytes(input));
    for (const line of summaryLines(summarizeBundle(b), input.length)) {
      if (hasUnsafeText(line)) throw new PropertyFailure(`screen line with a control: ${line}`);
    }
  },
};

/** Every target. */
export function allTargets(): Target<never>[] {
  return [
    dnsTarget,
    packetTarget,
    jsonTarget,
    uriTarget,
    recordTarget,
    receiptTarget,
    envelopeTarget,
    manifestTarget,
    ...materialTargets(),
    tarTarget,
    bundleTarget,
  ] as Target<never>[];
}
