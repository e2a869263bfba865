/**
 * `identity import` of cclink's passphrase-wrapped key file (`CCLINKEK`, cclink v1.3, notes
 * §1.9), with files built WITHOUT our code: python `cryptography` Argon2id + stdlib HKDF and
 * bech32 (tests/fixtures/make_cclink_key.py) and Debian's `age`. Skipped with a message when
 * `age` or python's Argon2id is missing.
 *
 * @module
 */

import assert from "node:assert/strict";
import { cli, runProgram, tmpDir } from "./_helpers.ts";
import { decodeCclinkKeyFile } from "../lib/state/identity.ts";
import { CipherpostError } from "../lib/util/errors.ts";
import { utf8 } from "../lib/util/encoding.ts";

const SCRIPT = new URL("./fixtures/make_cclink_key.py", import.meta.url).pathname;
const RUST = new URL("./fixtures/make_rust_identity.py", import.meta.url).pathname;

const run = runProgram;

const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

const ready = (await run("sh", ["-c", "command -v age && command -v age-keygen"])).code === 0 &&
  (await run("python3", [RUST, "probe"]).catch(() => ({ code: 1 }))).code === 0;
if (!ready) {
  console.warn("cclink_identity_test: SKIPPED: needs Debian age and python cryptography >= 44");
}

/** A CCLINKEK file for `seed` under `pass`, cclink's default parameters (or `params`). */
async function buildCclinkKey(
  dir: string,
  seed: Uint8Array,
  pass: string,
  params = [65536, 3, 1],
): Promise<string> {
  const salt = toHex(crypto.getRandomValues(new Uint8Array(32)));
  const kek = await run("python3", [SCRIPT, "kek", pass, salt, ...params.map(String)]);
  assert.equal(kek.code, 0, kek.stderr);
  assert.match(kek.text, /^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
  await Deno.writeTextFile(`${dir}/kek.txt`, `${kek.text}\n`, { mode: 0o600 });
  const y = await run("age-keygen", ["-y", `${dir}/kek.txt`]);
  assert.equal(y.code, 0, y.stderr);
  const enc = await run("age", ["-r", y.text, "-o", `${dir}/seed.age`], seed);
  assert.equal(enc.code, 0, enc.stderr);
  const out = `${dir}/secret_key`;
  const a = await run("python3", [
    SCRIPT,
    "assemble",
    salt,
    ...params.map(String),
    `${dir}/seed.age`,
    out,
  ]);
  assert.equal(a.code, 0, a.stderr);
  return out;
}

Deno.test({
  name:
    "identity import reads cclink's CCLINKEK key file: right passphrase → same key; wrong → exit 4; damaged → exit 1",
  ignore: !ready,
  async fn() {
    const base = await tmpDir();
    const seed = crypto.getRandomValues(new Uint8Array(32));
    const pass = "cclink pass phrase";
    const file = await buildCclinkKey(base, seed, pass);
    const bytes = await Deno.readFile(file);
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), "CCLINKEK");
    const z32 = (await run("python3", [RUST, "seed-z32", toHex(seed)])).text;
    assert.match(z32, /^[a-z0-9]{52}$/);

    const home = `${base}/home`;
    const env = { CIPHERPOST_PASSPHRASE: pass };
    const imp = await cli(["identity", "import", file], { home, env });
    assert.equal(imp.code, 0, imp.stderr);
    assert.ok(imp.stderr.includes(z32), "the imported identity is cclink's key");
    const show = await cli(["identity", "show", "--json"], { home, env });
    assert.equal(JSON.parse(show.stdout).z32, z32);

    const wrong = await cli(["identity", "import", file], {
      home: `${base}/h2`,
      env: { CIPHERPOST_PASSPHRASE: "not the passphrase" },
    });
    assert.equal(wrong.code, 4, wrong.stderr);
    assert.ok(!wrong.stderr.includes(z32));

    await Deno.writeFile(`${base}/cut`, bytes.subarray(0, 40));
    const cut = await cli(["identity", "import", `${base}/cut`], { home: `${base}/h3`, env });
    assert.equal(cut.code, 1, cut.stderr);
    const v2 = bytes.slice();
    v2[8] = 2;
    await Deno.writeFile(`${base}/v2`, v2);
    const ver = await cli(["identity", "import", `${base}/v2`], { home: `${base}/h4`, env });
    assert.equal(ver.code, 1, ver.stderr);
    assert.match(ver.stderr, /identity file corrupted/);
  },
});

Deno.test({
  name: "CCLINKEK Argon2 parameters come from the file header",
  ignore: !ready,
  async fn() {
    const base = await tmpDir();
    const seed = crypto.getRandomValues(new Uint8Array(32));
    const file = await buildCclinkKey(base, seed, "another passphrase", [8192, 2, 1]);
    const z32 = (await run("python3", [RUST, "seed-z32", toHex(seed)])).text;
    const r = await cli(["identity", "import", file], {
      home: `${base}/home`,
      env: { CIPHERPOST_PASSPHRASE: "another passphrase" },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stderr.includes(z32));
  },
});

Deno.test("CCLINKEK: m = 2^21 (over what Argon2 can compute here) is refused before any Argon2 work", async () => {
  const head = new Uint8Array(53 + 100);
  head.set(utf8("CCLINKEK"), 0);
  head[8] = 1;
  const dv = new DataView(head.buffer);
  dv.setUint32(9, 1 << 21);
  dv.setUint32(13, 1);
  dv.setUint32(17, 1);
  await assert.rejects(
    () => decodeCclinkKeyFile(head, "passphrase"),
    (e) =>
      e instanceof CipherpostError && e.kind === "identity_corrupt" &&
      /Argon2 parameters exceed the supported maximum/.test(e.message),
  );
});
