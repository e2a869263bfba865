// Conformance: every file in tests/vectors/cipherpost (copied from the reference repository), byte for byte, plus the KDF, share_ref
// and fingerprint vectors quoted in the cipherpost v1.1 protocol notes.
import assert from "node:assert/strict";
import { canonicalize, parseJson } from "../lib/util/canonical_json.ts";
import { b64encode, fromHex, toHex, utf8 } from "../lib/util/encoding.ts";
import { argon2, hkdf32, HKDF_INFO, identityKek, pinKey } from "../lib/crypto/kdf.ts";
import { ageDecrypt } from "../lib/crypto/age.ts";
import {
  newPinLayer,
  openPinLayer,
  PIN_SALT_BYTES,
  sealShare,
  splitPinBlob,
} from "../lib/crypto/pin.ts";
import {
  ageIdentityOfSeed,
  ageRecipientOf,
  ageRecipientOfEd,
  keypairFromSeed,
  sign,
  sshFingerprint,
  verifyStrict,
  verifyStrictNative,
  x25519PublicFromEd,
  x25519PublicFromSecret,
  x25519SecretFromSeed,
} from "../lib/crypto/keys.ts";
import { ingestMaterial, type MaterialType } from "../lib/material/material.ts";
import { encodeZ32, parsePublicKey } from "../lib/pkarr/public_key.ts";
import {
  encodeEnvelope,
  type Envelope,
  outerSignable,
  parseEnvelope,
  receiptSignable,
  shareRef,
} from "../lib/protocol/record.ts";
import { phcString } from "../lib/state/identity.ts";

const dir = new URL("./vectors/cipherpost/", import.meta.url);
const read = (name: string) => Deno.readFile(new URL(name, dir));
const SEED00 = new Uint8Array(32);
const PLACEHOLDER_REF = "0123456789abcdef0123456789abcdef";

function envelope(type: MaterialType, bytes: Uint8Array, burn = false): Envelope {
  return {
    burnAfterRead: burn,
    createdAt: 1700000000,
    material: { type, bytes },
    protocolVersion: 1,
    purpose: "test",
  };
}

Deno.test("outer_record_signable.bin: canonical bytes and seed00 signature", async () => {
  const want = await read("outer_record_signable.bin");
  const got = outerSignable({
    blob: "AAAA",
    createdAt: 1700000000,
    pinRequired: false,
    protocolVersion: 1,
    pubkey: "pk-placeholder-z32",
    recipient: "rcpt-placeholder-z32",
    shareRef: PLACEHOLDER_REF,
    ttlSeconds: 86400n,
  });
  assert.deepEqual(got, want);
  assert.equal(
    b64encode(sign(SEED00, got)),
    "B1KQKUwXEHBLlXNekjU23LM+hkwz2w1XGjYg/X27tZSbX9opQozRgxKoVaAFbxmvfP2+HbOssOJ4DblpgcPdDw==",
  );
});

Deno.test("outer_record_pin_required_signable.bin: pin_required sorts after created_at", async () => {
  const want = await read("outer_record_pin_required_signable.bin");
  const got = outerSignable({
    blob: "AAAA",
    createdAt: 1700000000,
    pinRequired: true,
    protocolVersion: 1,
    pubkey: "pk-placeholder-z32",
    recipient: "rcpt-placeholder-z32",
    shareRef: PLACEHOLDER_REF,
    ttlSeconds: 86400n,
  });
  assert.deepEqual(got, want);
  assert.equal(got.length, 212);
});

Deno.test("receipt_signable.bin: canonical bytes and seed00 signature", async () => {
  const want = await read("receipt_signable.bin");
  const got = receiptSignable({
    acceptedAt: 1700000000,
    ciphertextHash: "a".repeat(64),
    cleartextHash: "b".repeat(64),
    nonce: PLACEHOLDER_REF,
    protocolVersion: 1,
    purpose: "canonical form fixture",
    recipientPubkey: "rcpt-placeholder-z32",
    senderPubkey: "sender-placeholder-z32",
    shareRef: PLACEHOLDER_REF,
  });
  assert.deepEqual(got, want);
  assert.equal(
    b64encode(sign(SEED00, got)),
    "L8UWu/lYccsfB3pwZD6hoPu39ZWuNYt0/SRqDtI+xMpL7Z91Lof8vnFjFY2WtlQDDlZOH4H0srwf4LlmT6w7Aw==",
  );
});

Deno.test("envelope_jcs_generic_secret.bin: envelope bytes and parse round trip", async () => {
  const want = await read("envelope_jcs_generic_secret.bin");
  const e = envelope("generic_secret", new Uint8Array([0, 1, 2, 3]));
  assert.deepEqual(encodeEnvelope(e), want);
  assert.deepEqual(parseEnvelope(want), e);
});

Deno.test("envelope_burn_signable.bin: burn_after_read sorts first", async () => {
  const want = await read("envelope_burn_signable.bin");
  const e = envelope("generic_secret", new Uint8Array([0, 1, 2, 3]), true);
  assert.deepEqual(encodeEnvelope(e), want);
  assert.ok(new TextDecoder().decode(want).startsWith('{"burn_after_read":true,'));
  assert.equal(parseEnvelope(want).burnAfterRead, true);
});

for (
  const [vector, fixture, type] of [
    ["material_x509_signable.bin", "x509_cert_fixture.der", "x509_cert"],
    ["material_pgp_signable.bin", "material_pgp_fixture.pgp", "pgp_key"],
    ["material_ssh_signable.bin", "material_ssh_fixture.openssh-v1", "ssh_key"],
  ] as const
) {
  Deno.test(`${vector}: ingest(${fixture}) then envelope bytes`, async () => {
    const stored = ingestMaterial(type, await read(fixture));
    assert.deepEqual(encodeEnvelope(envelope(type, stored)), await read(vector));
  });
}

Deno.test("material_ssh_fixture.openssh-v1: canonical re-encode equals the file", async () => {
  const file = await read("material_ssh_fixture.openssh-v1");
  assert.deepEqual(ingestMaterial("ssh_key", file), file);
});

Deno.test("jcs_signing_bytes.bin: canonicalizer with null and key sorting", async () => {
  const want = await read("jcs_signing_bytes.bin");
  const got = canonicalize({
    ttl: 86400,
    share_ref: PLACEHOLDER_REF,
    recipient: null,
    pubkey: "test_pubkey_z32",
    created_at: 1700000000,
    blob: "AAAA",
  });
  assert.deepEqual(got, want);
  // re-parse and re-canonicalize: a fixed point
  assert.deepEqual(canonicalize(parseJson(new TextDecoder().decode(want))), want);
});

Deno.test("canonical JSON: only quote and backslash escaped, controls and floats refused", () => {
  assert.equal(new TextDecoder().decode(canonicalize({ a: 'q"b\\/é' })), '{"a":"q\\"b\\\\/é"}');
  assert.throws(() => canonicalize({ a: "x\ny" }));
  assert.throws(() => canonicalize({ a: 1.5 }));
  assert.equal(
    new TextDecoder().decode(canonicalize({ n: 18446744073709551615n })),
    '{"n":18446744073709551615}',
  );
  assert.throws(() => parseJson('{"a":1,"a":2}'), /duplicate/);
  assert.equal(parseJson('{"n":18446744073709551615}') instanceof Object, true);
  assert.equal((parseJson('{"n":18446744073709551615}') as { n: bigint }).n, 18446744073709551615n);
});

Deno.test("ed25519_x25519_vectors.json: Ed25519 → X25519 for every seed", async () => {
  const vectors = JSON.parse(new TextDecoder().decode(await read("ed25519_x25519_vectors.json")));
  assert.equal(vectors.length, 3);
  for (const v of vectors) {
    const kp = keypairFromSeed(fromHex(v.seed_hex));
    assert.equal(toHex(kp.publicKey), v.ed25519_pub_hex);
    assert.equal(toHex(x25519PublicFromEd(kp.publicKey)), v.x25519_pub_hex);
    const xs = x25519SecretFromSeed(kp.seed);
    assert.equal(toHex(xs), v.x25519_secret_hex);
    assert.equal(toHex(x25519PublicFromSecret(xs)), v.x25519_pub_hex);
  }
});

Deno.test("fingerprints: seed00 z32 and the real v1.1.0 OpenSSH-style fingerprint", () => {
  const kp = keypairFromSeed(SEED00);
  assert.equal(encodeZ32(kp.publicKey), "8pinxxgqs41n4aididenw5apqp1urfmzdztr8jt4abrkdn435ewo");
  const real = parsePublicKey("dg83egpuesschrjo4j6snj3hk8njrr3sg8dj9ons4sq9dck6cm9o");
  assert.equal(sshFingerprint(real), "ed25519:SHA256:HMsIH337/hZpsO04UpIKCLHREs2J4Ae/HqUL9ku+MHo");
});

Deno.test("identity KEK vector: passphrase 'pass', salt 00..0f, m=65536 t=3 p=1", async () => {
  const salt = Uint8Array.from({ length: 16 }, (_, i) => i);
  const params = { m: 65536, t: 3, p: 1 };
  const a = await argon2(utf8("pass"), salt, params);
  assert.equal(
    `${phcString(params, salt)}$${b64encode(a).replace(/=+$/, "")}`,
    "$argon2id$v=19$m=65536,t=3,p=1$AAECAwQFBgcICQoLDA0ODw$vSH0cBdjFqQdURcPRkXsv/qK4D4xw6906CnfBMUFOLE",
  );
  assert.equal(
    toHex(hkdf32(salt, a, HKDF_INFO.identityKek)),
    "1bfa4f5d9a8e08c7f18ca56d4dad9bc67b8957f1220467cf2e68e470673d4aae",
  );
  assert.equal(
    toHex(await identityKek(utf8("pass"), salt, params)),
    "1bfa4f5d9a8e08c7f18ca56d4dad9bc67b8957f1220467cf2e68e470673d4aae",
  );
});

Deno.test("PIN KDF vector: 'validpin1', salt 00..1f", async () => {
  const salt = Uint8Array.from({ length: 32 }, (_, i) => i);
  const a = toHex(await argon2(utf8("validpin1"), salt, { m: 65536, t: 3, p: 1 }));
  assert.ok(a.startsWith("33a7eb25") && a.endsWith("2292"), a);
  const k = await pinKey("validpin1", salt);
  const kh = toHex(k);
  assert.ok(kh.startsWith("c1838657") && kh.endsWith("46b1"), kh);
  assert.equal(
    ageRecipientOf(x25519PublicFromSecret(k)),
    "age1uzuswnl9csjwmum9jxrl8ul8c0aw0kamc9ekq64fvzq50xx8d4qqy4v4ak",
  );
});

Deno.test("PIN layer: salt ‖ outer; the outer file opens with the recipient key, the inner with the PIN only", async () => {
  const me = keypairFromSeed(new Uint8Array(32).fill(9));
  const pin = await newPinLayer("validpin1");
  const sealed = await sealShare(utf8("envelope"), ageRecipientOfEd(me.publicKey), pin);
  assert.equal(toHex(sealed.blob.subarray(0, PIN_SALT_BYTES)), toHex(pin.salt));
  const { salt, outer } = splitPinBlob(sealed.blob, true);
  assert.equal(toHex(outer), toHex(sealed.outer));
  const inner = await ageDecrypt(outer, ageIdentityOfSeed(me.seed));
  assert.equal(new TextDecoder().decode(await openPinLayer(inner, salt!, "validpin1")), "envelope");
  await assert.rejects(() => openPinLayer(inner, salt!, "wrongpin1"), { kind: "decrypt" });
  assert.throws(() => splitPinBlob(new Uint8Array(31), true), { kind: "signature" });
  // no PIN: the blob is the outer file
  const plain = await sealShare(utf8("envelope"), ageRecipientOfEd(me.publicKey), null);
  assert.equal(plain.blob, plain.outer);
  assert.deepEqual(splitPinBlob(plain.blob, false), { salt: null, outer: plain.blob });
});

Deno.test("share_ref vector: sha256('hello' ‖ be(1700000000))[..16]", () => {
  assert.equal(shareRef(utf8("hello"), 1700000000), "a91c9a695cdc721ba62fcd0e522f421b");
});

Deno.test("strict Ed25519 verify rejects small-order keys and a flipped bit", () => {
  const kp = keypairFromSeed(SEED00);
  const msg = utf8("m");
  const sig = sign(SEED00, msg);
  assert.equal(verifyStrict(kp.publicKey, msg, sig), true);
  const bad = sig.slice();
  bad[10] ^= 1;
  assert.equal(verifyStrict(kp.publicKey, msg, bad), false);
  const identityPoint = new Uint8Array(32);
  identityPoint[0] = 1; // the neutral element: small order
  assert.equal(verifyStrict(identityPoint, msg, sig), false);
});

Deno.test("the native strict verify agrees with verifyStrict: valid, flipped, S + L, small-order or non-canonical key and R", () => {
  const L = (1n << 252n) + 27742317777372353535851937790883648493n;
  const le = (n: bigint) => {
    const b = new Uint8Array(32);
    for (let i = 0; i < 32; i++) b[i] = Number((n >> BigInt(8 * i)) & 0xffn);
    return b;
  };
  const fromLe = (b: Uint8Array) => b.reduceRight((n, x) => (n << 8n) | BigInt(x), 0n);
  const kp = keypairFromSeed(SEED00);
  const msg = utf8("a part");
  const sig = sign(SEED00, msg);
  const cases: [string, Uint8Array, Uint8Array][] = [["valid", kp.publicKey, sig]];
  for (const bit of [0, 100, 300, 511]) {
    const f = sig.slice();
    f[bit >> 3] ^= 1 << (bit & 7);
    cases.push([`bit ${bit} flipped`, kp.publicKey, f]);
  }
  const sPlusL = sig.slice();
  sPlusL.set(le(fromLe(sig.subarray(32)) + L), 32); // the same S, not canonical
  cases.push(["S + L", kp.publicKey, sPlusL]);
  const identity = new Uint8Array(32);
  identity[0] = 1;
  cases.push(["small-order key", identity, sig]);
  const smallR = sig.slice();
  smallR.set(identity, 0);
  cases.push(["small-order R", kp.publicKey, smallR]);
  const nonCanonical = new Uint8Array(32).fill(0xff);
  nonCanonical[31] = 0x7f; // y = 2^255 - 1 ≥ p
  cases.push(["non-canonical key", nonCanonical, sig]);
  const badR = sig.slice();
  badR.set(nonCanonical, 0);
  cases.push(["non-canonical R", kp.publicKey, badR]);
  cases.push(["short signature", kp.publicKey, sig.subarray(0, 63)]);
  for (const [name, pk, s] of cases) {
    assert.equal(verifyStrictNative(pk, msg, s), verifyStrict(pk, msg, s), name);
  }
  assert.equal(verifyStrictNative(kp.publicKey, msg, sig), true);
  assert.equal(cases.filter(([, pk, s]) => verifyStrictNative(pk, msg, s)).length, 1);
});
