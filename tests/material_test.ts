import assert from "node:assert/strict";
import { sha256 } from "@noble/hashes/sha2.js";
import { base64, hex } from "@scure/base";
import { CipherpostError } from "../lib/util/errors.ts";
import { exitCodeOf } from "../lib/cli/exit_codes.ts";
import {
  armorMaterial,
  ingestMaterial,
  type MaterialType,
  materialTypeFromFlag,
  previewMaterial,
} from "../lib/material/material.ts";
import { crc24 } from "../lib/material/_pgp.ts";

const DIR = new URL("./vectors/cipherpost/", import.meta.url);
const read = (name: string) => Deno.readFileSync(new URL(name, DIR));
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

const CERT = read("x509_cert_fixture.der");
const PGP = read("material_pgp_fixture.pgp");
const PGP_SECRET = read("material_pgp_secret_fixture.pgp");
const PGP_RSA = read("material_pgp_fixture_realistic.pgp");
const SSH = read("material_ssh_fixture.openssh-v1");
const SSH_RSA = read("material_ssh_fixture_rsa1024.openssh-v1");
const NOW = new Date("2026-06-01T00:00:00Z");

/** Asserts a CipherpostError of `kind` whose message equals `message`. */
function throwsCp(fn: () => unknown, kind: string, message: string, hint?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CipherpostError, `not a CipherpostError: ${e}`);
    assert.equal(e.kind, kind);
    assert.equal(e.message, message);
    if (hint !== undefined) assert.equal(e.hint, hint);
    assert.equal(exitCodeOf(e), kind === "usage" ? 2 : 1);
    return true;
  });
}

const invalid = (variant: MaterialType, reason: string) =>
  `invalid material: variant=${variant}, reason=${reason}`;

function pemOf(der: Uint8Array, label = "CERTIFICATE", eol = "\n"): string {
  const b64 = base64.encode(der).match(/.{1,64}/g)!.join(eol);
  return `-----BEGIN ${label}-----${eol}${b64}${eol}-----END ${label}-----${eol}`;
}

// ---------------------------------------------------------------------------- flags

Deno.test("materialTypeFromFlag maps the four CLI values and rejects others", () => {
  assert.equal(materialTypeFromFlag("generic-secret"), "generic_secret");
  assert.equal(materialTypeFromFlag("x509-cert"), "x509_cert");
  assert.equal(materialTypeFromFlag("pgp-key"), "pgp_key");
  assert.equal(materialTypeFromFlag("ssh-key"), "ssh_key");
  for (const bad of ["x509cert", "pgp", "", "toString", "__proto__", "pgp__key"]) {
    assert.throws(() => materialTypeFromFlag(bad), (e: unknown) => {
      assert.ok(e instanceof CipherpostError);
      assert.equal(e.kind, "usage");
      assert.match(e.message, /generic-secret, x509-cert, pgp-key, ssh-key/);
      return true;
    });
  }
});

// ---------------------------------------------------------------------------- generic + cap

Deno.test("generic_secret is stored verbatim; the 64 KiB cap is on stored bytes", () => {
  assert.deepEqual(
    ingestMaterial("generic_secret", new Uint8Array([0, 1, 2, 3])),
    new Uint8Array([0, 1, 2, 3]),
  );
  assert.equal(ingestMaterial("generic_secret", new Uint8Array(65536)).length, 65536);
  throwsCp(
    () => ingestMaterial("generic_secret", new Uint8Array(65537)),
    "too_large",
    "payload exceeds 64 KB limit: actual=65537, cap=65536",
  );
  assert.deepEqual(previewMaterial("generic_secret", new Uint8Array([1]), NOW), []);
});

Deno.test("a valid PGP stream over 64 KiB is too_large", () => {
  const big = 70000;
  // new-format User ID packet (tag 13) with a 5-octet length
  const uid = cat(
    new Uint8Array([0xcd, 0xff, big >>> 24, (big >> 16) & 0xff, (big >> 8) & 0xff, big & 0xff]),
    new Uint8Array(big).fill(0x61),
  );
  const input = cat(PGP, uid);
  throwsCp(
    () => ingestMaterial("pgp_key", input),
    "too_large",
    `payload exceeds 64 KB limit: actual=${input.length}, cap=65536`,
  );
});

// ---------------------------------------------------------------------------- X.509 ingest

Deno.test("x509: DER fixture accepted unchanged; PEM (LF, CRLF, surrounding whitespace) decodes to it", () => {
  assert.deepEqual(ingestMaterial("x509_cert", CERT), CERT);
  assert.deepEqual(ingestMaterial("x509_cert", enc(pemOf(CERT))), CERT);
  assert.deepEqual(ingestMaterial("x509_cert", enc(pemOf(CERT, "CERTIFICATE", "\r\n"))), CERT);
  assert.deepEqual(ingestMaterial("x509_cert", enc(" \n\t" + pemOf(CERT) + "\n \n")), CERT);
});

Deno.test("x509: rejections carry the exact reason literals", () => {
  const r = (reason: string) => invalid("x509_cert", reason);
  // END label differs from CERTIFICATE
  const wrongEnd = pemOf(CERT).replace("-----END CERTIFICATE-----", "-----END X509 CRL-----");
  throwsCp(
    () => ingestMaterial("x509_cert", enc(wrongEnd)),
    "invalid_material",
    r("PEM label is not CERTIFICATE"),
  );
  // a PEM block with another label is not sniffed as a certificate PEM: it is not DER either
  throwsCp(
    () => ingestMaterial("x509_cert", enc(pemOf(CERT, "PRIVATE KEY"))),
    "invalid_material",
    r("malformed DER"),
  );
  const badBody = pemOf(CERT).replace(/\n[A-Za-z0-9+/]{4}/, "\n!!!!");
  throwsCp(
    () => ingestMaterial("x509_cert", enc(badBody)),
    "invalid_material",
    r("PEM body decode failed"),
  );
  const noEnd = pemOf(CERT).replace("-----END CERTIFICATE-----\n", "");
  throwsCp(
    () => ingestMaterial("x509_cert", enc(noEnd)),
    "invalid_material",
    r("PEM body decode failed"),
  );
  throwsCp(
    () => ingestMaterial("x509_cert", enc(pemOf(CERT) + pemOf(CERT))),
    "invalid_material",
    r("trailing bytes after certificate"),
  );
  throwsCp(
    () => ingestMaterial("x509_cert", enc(pemOf(CERT) + "junk")),
    "invalid_material",
    r("trailing bytes after certificate"),
  );
  throwsCp(
    () => ingestMaterial("x509_cert", cat(CERT, new Uint8Array([0]))),
    "invalid_material",
    r("trailing bytes after certificate"),
  );
  throwsCp(
    () => ingestMaterial("x509_cert", CERT.subarray(0, 200)),
    "invalid_material",
    r("malformed DER"),
  );
  throwsCp(
    () => ingestMaterial("x509_cert", enc("this is not a DER cert")),
    "invalid_material",
    r("malformed DER"),
  );
  throwsCp(
    () => ingestMaterial("x509_cert", new Uint8Array()),
    "invalid_material",
    r("malformed DER"),
  );
  // valid DER, wrong structure (an empty SEQUENCE)
  throwsCp(
    () => ingestMaterial("x509_cert", new Uint8Array([0x30, 0])),
    "invalid_material",
    r("malformed DER"),
  );
});

// ---------------------------------------------------------------------------- PGP ingest

Deno.test("pgp: the three fixtures are accepted verbatim", () => {
  for (const f of [PGP, PGP_SECRET, PGP_RSA]) assert.deepEqual(ingestMaterial("pgp_key", f), f);
});

Deno.test("pgp: ASCII armor is accepted and stored as the binary stream; damaged armor is malformed", () => {
  for (const f of [PGP, PGP_SECRET, PGP_RSA]) {
    const armored = armorMaterial("pgp_key", f);
    assert.deepEqual(ingestMaterial("pgp_key", armored), f);
    // CRLF and armor headers, as gpg writes them
    const withHeaders = new TextDecoder().decode(armored).replace(
      "-----\n\n",
      "-----\nVersion: GnuPG v2\nComment: test\n\n",
    ).replace(/\n/g, "\r\n");
    assert.deepEqual(ingestMaterial("pgp_key", enc(withHeaders)), f);
  }
  const text = new TextDecoder().decode(armorMaterial("pgp_key", PGP));
  const lines = text.split("\n");
  const crcAt = lines.findIndex((l) => /^=/.test(l));
  const badCrc = [...lines];
  badCrc[crcAt] = badCrc[crcAt] === "=AAAA" ? "=BBBB" : "=AAAA";
  for (
    const bad of [badCrc.join("\n"), text.replace(/-----END PGP PUBLIC KEY BLOCK-----\n$/, "")]
  ) {
    assert.throws(() => ingestMaterial("pgp_key", enc(bad)), CipherpostError);
  }
});

Deno.test("ssh: a public key line gets a message about public keys; --material takes the screen's spelling", () => {
  throwsCp(
    () => ingestMaterial("ssh_key", enc("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOz user@host\n")),
    "invalid_material",
    "invalid material: this is an SSH public key; --material ssh-key carries a private key",
  );
  assert.equal(materialTypeFromFlag("ssh_key"), "ssh_key");
  assert.equal(materialTypeFromFlag("ssh-key"), "ssh_key");
  assert.equal(materialTypeFromFlag("x509_cert"), "x509_cert");
  assert.throws(() => materialTypeFromFlag("sshkey"), CipherpostError);
});

Deno.test("pgp: rejections carry the exact reason literals", () => {
  const r = (reason: string) => invalid("pgp_key", reason);
  throwsCp(
    () => ingestMaterial("pgp_key", cat(PGP, PGP_RSA)),
    "invalid_material",
    r(
      "PgpKey must contain exactly one primary key; keyrings are not supported in v1.1 (found 2 primary keys)",
    ),
  );
  throwsCp(
    () => ingestMaterial("pgp_key", cat(PGP, PGP_SECRET, PGP_RSA)),
    "invalid_material",
    r(
      "PgpKey must contain exactly one primary key; keyrings are not supported in v1.1 (found 3 primary keys)",
    ),
  );
  // last packet cut short: complete packets end before the input does
  throwsCp(
    () => ingestMaterial("pgp_key", PGP.subarray(0, PGP.length - 1)),
    "invalid_material",
    r("trailing bytes after PGP packet stream"),
  );
  throwsCp(
    () => ingestMaterial("pgp_key", PGP_RSA.subarray(0, 500)),
    "invalid_material",
    r("trailing bytes after PGP packet stream"),
  );
  // the primary itself truncated: no complete primary at all
  throwsCp(
    () => ingestMaterial("pgp_key", PGP.subarray(0, 20)),
    "invalid_material",
    r("malformed PGP packet stream"),
  );
  // a trailing byte that is not a packet header
  throwsCp(
    () => ingestMaterial("pgp_key", cat(PGP, new Uint8Array([0x00]))),
    "invalid_material",
    r("malformed PGP packet stream"),
  );
  throwsCp(
    () => ingestMaterial("pgp_key", new Uint8Array()),
    "invalid_material",
    r("malformed PGP packet stream"),
  );
  throwsCp(
    () => ingestMaterial("pgp_key", enc("garbage")),
    "invalid_material",
    r("malformed PGP packet stream"),
  );
  // a lone User ID packet: no primary key
  throwsCp(
    () => ingestMaterial("pgp_key", new Uint8Array([0xcd, 0x01, 0x61])),
    "invalid_material",
    r("malformed PGP packet stream"),
  );
  // key packet with an unsupported version byte
  const v3 = PGP.slice();
  v3[2] = 3;
  throwsCp(
    () => ingestMaterial("pgp_key", v3),
    "invalid_material",
    r("malformed PGP packet stream"),
  );
});

// ---------------------------------------------------------------------------- SSH ingest

Deno.test("ssh: fixtures re-encode to themselves byte for byte", () => {
  assert.deepEqual(ingestMaterial("ssh_key", SSH), SSH);
  assert.deepEqual(ingestMaterial("ssh_key", SSH_RSA), SSH_RSA);
});

Deno.test("ssh: CRLF, other line widths and surrounding whitespace canonicalize to the fixture", () => {
  const text = dec(SSH);
  const body = text.split("\n").slice(1, -2).join("");
  const rewrapped = "\n  -----BEGIN OPENSSH PRIVATE KEY-----\r\n" +
    body.match(/.{1,64}/g)!.join("\r\n") + "\r\n-----END OPENSSH PRIVATE KEY-----\r\n\n \t";
  assert.deepEqual(ingestMaterial("ssh_key", enc(rewrapped)), SSH);
  const noFinalNewline = text.trimEnd();
  assert.deepEqual(ingestMaterial("ssh_key", enc(noFinalNewline)), SSH);
});

Deno.test("ssh: rejections", () => {
  const notSupported = "SSH key format not supported — convert to OpenSSH v1";
  const hint = "convert with: ssh-keygen -p -o -f <path>";
  for (
    const input of [
      "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
      "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\n",
      "",
    ]
  ) {
    throwsCp(() => ingestMaterial("ssh_key", enc(input)), "invalid_material", notSupported, hint);
  }
  const r = (reason: string) => invalid("ssh_key", reason);
  throwsCp(
    () => ingestMaterial("ssh_key", enc(dec(SSH) + "x")),
    "invalid_material",
    r("trailing bytes after OpenSSH v1 blob"),
  );
  throwsCp(
    () => ingestMaterial("ssh_key", enc(dec(SSH) + dec(SSH))),
    "invalid_material",
    r("trailing bytes after OpenSSH v1 blob"),
  );
  const malformed = r("malformed OpenSSH v1 blob");
  const noEnd = dec(SSH).replace("-----END OPENSSH PRIVATE KEY-----\n", "");
  throwsCp(() => ingestMaterial("ssh_key", enc(noEnd)), "invalid_material", malformed);
  const badB64 = dec(SSH).replace("b3Bl", "b3B!");
  throwsCp(() => ingestMaterial("ssh_key", enc(badB64)), "invalid_material", malformed);

  // edits inside the decoded container
  const body = base64.decode(dec(SSH).split("\n").slice(1, -2).join(""));
  const wrap = (blob: Uint8Array) =>
    enc(
      "-----BEGIN OPENSSH PRIVATE KEY-----\n" + base64.encode(blob).match(/.{1,70}/g)!.join("\n") +
        "\n-----END OPENSSH PRIVATE KEY-----\n",
    );
  assert.deepEqual(wrap(body), SSH); // the helper itself reproduces the fixture
  const badMagic = body.slice();
  badMagic[0] ^= 1;
  throwsCp(() => ingestMaterial("ssh_key", wrap(badMagic)), "invalid_material", malformed);
  throwsCp(
    () => ingestMaterial("ssh_key", wrap(body.subarray(0, body.length - 4))),
    "invalid_material",
    malformed,
  );
  throwsCp(
    () => ingestMaterial("ssh_key", wrap(cat(body, new Uint8Array([0])))),
    "invalid_material",
    malformed,
  );
  // the private section starts right after its length, which follows the 51-byte public blob
  const pubLenAt = 15 + 8 + 8 + 4 + 4;
  const pubLen = new DataView(body.buffer, body.byteOffset).getUint32(pubLenAt);
  const privAt = pubLenAt + 4 + pubLen + 4;
  const badCheck = body.slice();
  badCheck[privAt] ^= 1; // checkint 1 != checkint 2
  throwsCp(() => ingestMaterial("ssh_key", wrap(badCheck)), "invalid_material", malformed);
  const badPad = body.slice();
  badPad[badPad.length - 1] ^= 0xff; // padding must be 1, 2, 3, ...
  throwsCp(() => ingestMaterial("ssh_key", wrap(badPad)), "invalid_material", malformed);
  const badPub = body.slice();
  badPub[pubLenAt + 4 + pubLen - 1] ^= 1; // public blob no longer matches the private section
  throwsCp(() => ingestMaterial("ssh_key", wrap(badPub)), "invalid_material", malformed);
});

// ---------------------------------------------------------------------------- previews

Deno.test("preview: X.509 fixture, valid and expired", () => {
  const expected = [
    "--- X.509 ---------------------------------------------------------",
    "Subject:     CN=cipherpost-fixture, O=cipherpost, C=XX",
    "Issuer:      CN=cipherpost-fixture, O=cipherpost, C=XX",
    "Serial:      0x1",
    "NotBefore:   2026-04-24 19:28 UTC",
    "NotAfter:    2028-04-23 19:28 UTC  [VALID]",
    "Key:         Ed25519",
    `SHA-256:     ${hex.encode(sha256(CERT))}`,
  ];
  const lines = previewMaterial("x509_cert", CERT, NOW);
  assert.deepEqual(lines, expected);
  assert.equal(lines[0].length, 67);
  assert.ok(lines[7].startsWith("SHA-256:     b956e59d") && lines[7].endsWith("a755"));
  const later = previewMaterial("x509_cert", CERT, new Date("2028-04-23T19:28:51Z"));
  assert.equal(later[5], "NotAfter:    2028-04-23 19:28 UTC  [EXPIRED]");
  throwsCp(
    () => previewMaterial("x509_cert", enc("nope"), NOW),
    "invalid_material",
    invalid("x509_cert", "malformed DER"),
  );
});

const PGP_BLOCK = [
  "--- OpenPGP -----------------------------------------------------",
  "Fingerprint: A60024BB3A32A8D05399B817A549819EA5024C58",
  "Primary UID: cp <f@cp.t>",
  "Key:         EdDSA-Legacy",
  "Subkeys:     0",
  "Created:     2026-04-25 02:34 UTC",
];

Deno.test("preview: OpenPGP public and secret fixtures", () => {
  const pub = previewMaterial("pgp_key", PGP, NOW);
  assert.deepEqual(pub, PGP_BLOCK);
  assert.equal(pub[0].length, 65);
  assert.deepEqual(previewMaterial("pgp_key", PGP_SECRET, NOW), [
    "[WARNING: SECRET key — unlocks cryptographic operations]",
    "",
    ...PGP_BLOCK,
  ]);
});

Deno.test("preview: OpenPGP RSA-3072 fixture (old-format headers, UID truncated at 64)", () => {
  const uid = "cipherpost-fixture-realistic <realistic-overflow@cipherpost.test>"; // 65 chars
  assert.equal(uid.length, 65);
  const lines = previewMaterial("pgp_key", PGP_RSA, NOW);
  assert.deepEqual(lines, [
    "--- OpenPGP -----------------------------------------------------",
    "Fingerprint: F57C3A7A08AFA8159699B353A6BF503315CC7D60",
    `Primary UID: ${uid.slice(0, 63)}…`,
    "Key:         RSA-3072",
    "Subkeys:     0",
    "Created:     2026-04-25 02:32 UTC",
  ]);
});

Deno.test("preview: SSH fixtures", () => {
  const ed = previewMaterial("ssh_key", SSH, NOW);
  assert.deepEqual(ed, [
    "--- SSH ---------------------------------------------------------",
    "Key:         ssh-ed25519 256",
    "Fingerprint: SHA256:an+7C7lWl8x1PR+FNER3sr/VCkWlbL1gmEO30sqJR20",
    "Comment:     [sender-attested] (none)",
  ]);
  assert.equal(ed[0].length, 65);
  assert.deepEqual(previewMaterial("ssh_key", SSH_RSA, NOW), [
    "--- SSH ---------------------------------------------------------",
    "Key:         ssh-rsa 1024 [DEPRECATED]",
    "Fingerprint: SHA256:DnEWLe7ObqZHeSPccmep5XECcVQS/s7W6npKQ5c4um0",
    "Comment:     [sender-attested] (none)",
  ]);
});

// ---------------------------------------------------------------------------- keys made by ssh-keygen

async function sshKeygen(args: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command("ssh-keygen", { args, stdout: "null", stderr: "null" })
      .output();
    return out.success;
  } catch {
    return false;
  }
}

/** Whether `ssh-keygen` can be spawned at all (its exit status for `-?` is irrelevant). */
const HAVE_SSH_KEYGEN = await new Deno.Command("ssh-keygen", {
  args: ["-?"],
  stdout: "null",
  stderr: "null",
}).output().then(() => true, () => false);

Deno.test({
  name: "ssh: fresh ssh-keygen keys (comment, RSA-2048, encrypted) agree with ssh-keygen -l",
  ignore: !HAVE_SSH_KEYGEN,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const cases: [string[], string, string][] = [
        [
          ["-t", "ed25519", "-C", "alice@example.org", "-N", ""],
          "ssh-ed25519 256",
          "alice@example.org",
        ],
        [["-t", "rsa", "-b", "2048", "-C", "", "-N", ""], "ssh-rsa 2048", "(none)"],
        [["-t", "ecdsa", "-b", "384", "-C", "c", "-N", ""], "ecdsa-sha2-nistp384 384", "c"],
        // encrypted: comment is not readable without the passphrase
        [["-t", "ed25519", "-C", "hidden", "-N", "pw-for-test"], "ssh-ed25519 256", "(none)"],
      ];
      for (const [i, [args, keyLine, comment]] of cases.entries()) {
        const path = `${dir}/k${i}`;
        assert.ok(await sshKeygen([...args, "-q", "-f", path]));
        const input = await Deno.readFile(path);
        const stored = ingestMaterial("ssh_key", input);
        assert.deepEqual(stored, input); // ssh-keygen already writes the canonical form
        const pubLine = dec(await Deno.readFile(`${path}.pub`)).split(" ");
        const fp = `SHA256:${base64.encode(sha256(base64.decode(pubLine[1]))).replace(/=+$/, "")}`;
        assert.deepEqual(previewMaterial("ssh_key", stored, NOW).slice(1), [
          `Key:         ${keyLine}`,
          `Fingerprint: ${fp}`,
          `Comment:     [sender-attested] ${comment}`,
        ]);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// ---------------------------------------------------------------------------- armor

/** Parses a PEM/armor block: returns label and decoded body; `=crc` lines are returned apart. */
function parseArmor(text: string): { label: string; body: Uint8Array; crc?: string } {
  const lines = text.split("\n");
  assert.equal(lines.at(-1), "", "ends with a newline");
  const label = lines[0].match(/^-----BEGIN (.+)-----$/)![1];
  assert.equal(lines.at(-2), `-----END ${label}-----`);
  let inner = lines.slice(1, -2);
  let crc: string | undefined;
  if (inner.at(-1)?.startsWith("=")) {
    crc = inner.at(-1)!.slice(1);
    inner = inner.slice(0, -1);
  }
  if (inner[0] === "") inner = inner.slice(1); // blank line after (absent) armor headers
  for (const l of inner) assert.ok(l.length <= 64 && l.length > 0, `line length ${l.length}`);
  for (const l of inner.slice(0, -1)) assert.equal(l.length, 64);
  return { label, body: base64.decode(inner.join("")), crc };
}

Deno.test("armor: X.509 PEM round-trips to the DER", () => {
  const pem = dec(armorMaterial("x509_cert", CERT));
  const { label, body, crc } = parseArmor(pem);
  assert.equal(label, "CERTIFICATE");
  assert.equal(crc, undefined);
  assert.deepEqual(body, CERT);
  assert.deepEqual(ingestMaterial("x509_cert", enc(pem)), CERT);
});

Deno.test("armor: PGP public/private blocks with CRC-24", () => {
  assert.equal(crc24(enc("123456789")), 0x21cf02); // CRC-24/OPENPGP check value
  for (
    const [bytes, label] of [[PGP, "PGP PUBLIC KEY BLOCK"], [PGP_RSA, "PGP PUBLIC KEY BLOCK"], [
      PGP_SECRET,
      "PGP PRIVATE KEY BLOCK",
    ]] as const
  ) {
    const text = dec(armorMaterial("pgp_key", bytes));
    assert.ok(text.startsWith(`-----BEGIN ${label}-----\n\n`));
    const parsed = parseArmor(text);
    assert.equal(parsed.label, label);
    assert.deepEqual(parsed.body, bytes);
    const c = crc24(bytes);
    assert.equal(parsed.crc, base64.encode(new Uint8Array([c >> 16, (c >> 8) & 0xff, c & 0xff])));
  }
});

Deno.test("armor: generic_secret and ssh_key are refused with exit 1; bad bytes are invalid", () => {
  throwsCp(
    () => armorMaterial("generic_secret", new Uint8Array([1])),
    "config",
    "--armor requires --material x509-cert or pgp-key",
  );
  throwsCp(
    () => armorMaterial("ssh_key", SSH),
    "config",
    "--armor not applicable to ssh-key — OpenSSH v1 is self-armored",
  );
  throwsCp(
    () => armorMaterial("x509_cert", enc("x")),
    "invalid_material",
    invalid("x509_cert", "malformed DER"),
  );
  throwsCp(
    () => armorMaterial("pgp_key", enc("x")),
    "invalid_material",
    invalid("pgp_key", "malformed PGP packet stream"),
  );
});
