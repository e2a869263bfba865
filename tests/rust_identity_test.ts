/**
 * Identity-file compatibility with cipherpost v1.1 (the Rust tool), checked with files built
 * and taken apart WITHOUT our code: python3 (tests/fixtures/make_rust_identity.py: BIP-173
 * bech32, z-base-32, HKDF from the stdlib) plus Debian's `age` / `age-keygen`, starting from
 * the KDF vector of docs/PROTOCOL.md §1.4.
 *
 * Skipped (with a message) only when `age`/`age-keygen` are not installed. The test that
 * decrypts a file we wrote also needs Argon2id outside our code: python `cryptography` >= 44;
 * it is skipped with a message when that is missing.
 *
 * @module
 */

import assert from "node:assert/strict";
import { cli, runProgram, tmpDir } from "./_helpers.ts";

const SCRIPT = new URL("./fixtures/make_rust_identity.py", import.meta.url).pathname;
const VECTORS = new URL("./vectors/cipherpost/", import.meta.url);

/** docs/PROTOCOL.md §1.4: passphrase `pass`, salt 00..0f, m=65536,t=3,p=1. */
const PASS = "pass";
const VECTOR_PHC =
  "$argon2id$v=19$m=65536,t=3,p=1$AAECAwQFBgcICQoLDA0ODw$vSH0cBdjFqQdURcPRkXsv/qK4D4xw6906CnfBMUFOLE";
const VECTOR_KEK = "1bfa4f5d9a8e08c7f18ca56d4dad9bc67b8957f1220467cf2e68e470673d4aae";
const SEED_BYTE = 0x2a;
const WRONG_PASS = "wrong passphrase or identity decryption failed\n";

const run = runProgram;

/** Run the fixture script and return its trimmed stdout; fails the test on a non-zero exit. */
async function py(...args: string[]): Promise<string> {
  const r = await run("python3", [SCRIPT, ...args]);
  assert.equal(r.code, 0, `make_rust_identity.py ${args[0]}: ${r.stderr}`);
  return r.text;
}

const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** Write a file with an exact mode. */
async function writeWithMode(path: string, data: Uint8Array | string, mode: number) {
  await Deno.writeFile(path, typeof data === "string" ? new TextEncoder().encode(data) : data, {
    mode,
  });
  await Deno.chmod(path, mode);
}

/** The CIPHPOSK envelope fields of identity-file bytes (parsed here, not by lib/state/identity.ts). */
function envelope(
  bytes: Uint8Array,
): { magic: string; version: number; phc: string; ct: Uint8Array } {
  const len = (bytes[9] << 8) | bytes[10];
  return {
    magic: new TextDecoder().decode(bytes.subarray(0, 8)),
    version: bytes[8],
    phc: new TextDecoder().decode(bytes.subarray(11, 11 + len)),
    ct: bytes.subarray(11 + len),
  };
}

const hasAge = (await run("sh", ["-c", "command -v age && command -v age-keygen"])).code === 0;
if (!hasAge) {
  console.warn("rust_identity_test: SKIPPED: Debian `age` / `age-keygen` are not installed");
}
const hasPyArgon2 = (await run("python3", [SCRIPT, "probe"]).catch(() => ({ code: 1 }))).code ===
  0;
if (hasAge && !hasPyArgon2) {
  console.warn(
    "rust_identity_test: 'independent decrypt of our file' SKIPPED: python3 has no " +
      "cryptography.hazmat.primitives.kdf.argon2 (cryptography >= 44); Argon2id is not in the stdlib",
  );
}

/** Seed 2a×32 and its z32, from the Rust fixture's public key, via the script's z-base-32. */
async function expectedSeed(): Promise<{ seed: Uint8Array; z32: string }> {
  const vectors = JSON.parse(
    await Deno.readTextFile(new URL("ed25519_x25519_vectors.json", VECTORS)),
  ) as Array<{ seed_hex: string; ed25519_pub_hex: string }>;
  const seed = new Uint8Array(32).fill(SEED_BYTE);
  const v = vectors.find((x) => x.seed_hex === toHex(seed));
  assert.ok(v, "seed 2a×32 is in ed25519_x25519_vectors.json");
  // the script's z-base-32 reproduces the digest's seed-00 example first
  assert.equal(
    await py("z32", "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"),
    "8pinxxgqs41n4aididenw5apqp1urfmzdztr8jt4abrkdn435ewo",
  );
  return { seed, z32: await py("z32", v.ed25519_pub_hex) };
}

/**
 * Build a v1.1 identity file for seed 2a×32 under passphrase `pass` with python + age only:
 * KEK (vector) → AGE-SECRET-KEY-1 → `age-keygen -y` → `age -r` → CIPHPOSK envelope (mode 0600).
 */
async function buildRustIdentity(dir: string, home: string, seed: Uint8Array) {
  const ageKey = await py("age-identity", VECTOR_KEK);
  assert.match(ageKey, /^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
  const keyFile = `${dir}/kek.txt`;
  await writeWithMode(keyFile, `${ageKey}\n`, 0o600);
  const y = await run("age-keygen", ["-y", keyFile]);
  assert.equal(y.code, 0, y.stderr);
  const recipient = y.text;
  assert.match(recipient, /^age1[0-9a-z]{58}$/);

  const ctFile = `${dir}/seed.age`;
  const enc = await run("age", ["-r", recipient, "-o", ctFile], seed);
  assert.equal(enc.code, 0, enc.stderr);
  await Deno.mkdir(home, { recursive: true, mode: 0o700 });
  await py("assemble", VECTOR_PHC, ctFile, `${home}/secret_key`);
  return { keyFile, ctFile };
}

Deno.test({
  name:
    "v1.1 identity built with python + age unlocks: `pass` shows the seed's z32, wrong → exit 4",
  ignore: !hasAge,
  fn: async () => {
    const dir = await tmpDir();
    const home = `${dir}/rust-home`;
    const { seed, z32 } = await expectedSeed();
    await buildRustIdentity(dir, home, seed);

    const bytes = await Deno.readFile(`${home}/secret_key`);
    const env = envelope(bytes);
    assert.equal(env.magic, "CIPHPOSK");
    assert.equal(env.version, 1);
    assert.equal((bytes[9] << 8) | bytes[10], 97, "PHC_LEN of a v1.1 file with default params");
    assert.equal(env.phc, VECTOR_PHC);
    assert.equal(new TextDecoder().decode(env.ct.subarray(0, 22)), "age-encryption.org/v1\n");
    assert.equal((await Deno.stat(`${home}/secret_key`)).mode! & 0o777, 0o600);

    const ok = await cli(["identity", "check"], { home, env: { CIPHERPOST_PASSPHRASE: PASS } });
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(ok.stderr.includes(`passphrase OK: it unlocks ${z32}\n`), ok.stderr);
    // the v1.1 flaw is announced, with the command that fixes it
    assert.match(
      ok.stderr,
      /stores its KDF output: anyone\nwith the file can decrypt it without the passphrase/,
    );
    assert.match(ok.stderr, /cipherpost identity import --force .*secret_key/);

    const bad = await cli(["identity", "check"], { home, env: { CIPHERPOST_PASSPHRASE: "pas" } });
    assert.equal(bad.code, 4, bad.stderr);
    assert.equal(
      bad.stderr,
      WRONG_PASS +
        "hint: the passphrase came from CIPHERPOST_PASSPHRASE (check it, or unset it to be asked on the terminal)\n",
    );
    assert.equal(bad.stdout, "");
  },
});

Deno.test({
  name:
    "v1.1 flaw, shown independently: the PHC hash field alone (no passphrase) decrypts the seed",
  ignore: !hasAge,
  fn: async () => {
    const dir = await tmpDir();
    const home = `${dir}/rust-home`;
    const { seed } = await expectedSeed();
    const { ctFile } = await buildRustIdentity(dir, home, seed);
    // HKDF(salt, stored hash) is the KEK: the vector's KEK, without knowing `pass`
    const fromHash = await py("kek-from-hash", VECTOR_PHC);
    assert.equal(fromHash, await py("age-identity", VECTOR_KEK));
    const keyFile = `${dir}/from-hash.txt`;
    await writeWithMode(keyFile, `${fromHash}\n`, 0o600);
    const dec = await run("age", ["-d", "-i", keyFile, ctFile]);
    assert.equal(dec.code, 0, dec.stderr);
    assert.deepEqual(dec.stdout, seed);
  },
});

Deno.test({
  name: "import of a v1.1 file keeps the key and re-wraps it without the hash field",
  ignore: !hasAge,
  fn: async () => {
    const dir = await tmpDir();
    const rustHome = `${dir}/rust-home`;
    const { seed, z32 } = await expectedSeed();
    await buildRustIdentity(dir, rustHome, seed);
    const home = `${dir}/ours`;
    const env = { CIPHERPOST_PASSPHRASE: PASS };
    const imp = await cli(["identity", "import", `${rustHome}/secret_key`], { home, env });
    assert.equal(imp.code, 0, imp.stderr);
    assert.ok(imp.stderr.startsWith(`Imported identity:\n  ${z32}\n`), imp.stderr);

    const ours = envelope(await Deno.readFile(`${home}/secret_key`));
    assert.match(ours.phc, /^\$argon2id\$v=19\$m=65536,t=3,p=1\$[A-Za-z0-9+/]{22}$/);
    const s = await cli(["identity", "show", "--json"], { home, env });
    assert.equal(s.code, 0, s.stderr);
    assert.equal(JSON.parse(s.stdout).z32, z32);
    const c = await cli(["identity", "check"], { home, env });
    assert.equal(c.code, 0, c.stderr);
    assert.doesNotMatch(c.stderr, /KDF output/, "the re-wrapped file is no longer flagged");
  },
});

Deno.test({
  name: "a file WE write: CIPHPOSK v1, PHC without the hash field, binary age payload",
  ignore: !hasAge,
  fn: async () => {
    const dir = await tmpDir();
    const home = `${dir}/home`;
    const g = await cli(["identity", "generate"], { home, env: { CIPHERPOST_PASSPHRASE: PASS } });
    assert.equal(g.code, 0, g.stderr);
    const bytes = await Deno.readFile(`${home}/secret_key`);
    const env = envelope(bytes);
    assert.equal(env.magic, "CIPHPOSK");
    assert.equal(env.version, 1);
    const fields = env.phc.split("$");
    assert.deepEqual(fields.slice(0, 4), ["", "argon2id", "v=19", "m=65536,t=3,p=1"]);
    assert.equal(fields.length, 5, `no hash field: ${env.phc}`);
    assert.match(fields[4], /^[A-Za-z0-9+/]{22}$/, "16-byte salt, B64 without padding");
    assert.equal((bytes[9] << 8) | bytes[10], 53);
    assert.equal(new TextDecoder().decode(env.ct.subarray(0, 22)), "age-encryption.org/v1\n");
    // nothing in the file lets the independent tool skip the passphrase
    const r = await run("python3", [SCRIPT, "kek-from-hash", env.phc]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no hash field/);
  },
});

Deno.test({
  name: "a file WE write decrypts with python Argon2id + stdlib HKDF + Debian age (independent)",
  ignore: !hasAge || !hasPyArgon2,
  fn: async () => {
    const dir = await tmpDir();
    const home = `${dir}/home`;
    const pass = "pässword with ünïcode";
    const env = { CIPHERPOST_PASSPHRASE: pass };
    assert.equal((await cli(["identity", "generate"], { home, env })).code, 0);
    const show = await cli(["identity", "show", "--json"], { home, env });
    assert.equal(show.code, 0, show.stderr);
    const z32: string = JSON.parse(show.stdout).z32;

    const ctFile = `${dir}/ours.age`;
    const phc = await py("split", `${home}/secret_key`, ctFile);
    const keyFile = `${dir}/kek.txt`;
    await writeWithMode(keyFile, `${await py("kek-argon2", phc, pass)}\n`, 0o600);
    const dec = await run("age", ["-d", "-i", keyFile, ctFile]);
    assert.equal(dec.code, 0, dec.stderr);
    assert.equal(dec.stdout.length, 32);
    assert.equal(await py("seed-z32", toHex(dec.stdout)), z32);

    // and the wrong passphrase does not
    await writeWithMode(keyFile, `${await py("kek-argon2", phc, "pass")}\n`, 0o600);
    assert.notEqual((await run("age", ["-d", "-i", keyFile, ctFile])).code, 0);
  },
});
