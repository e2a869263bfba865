/**
 * The identity commands (`identity generate|show|export|import`), the passphrase contract
 * (docs/cli.md, "Secrets"), bad identity files, usage errors and `receipt verify`, each run
 * against the real CLI as a subprocess (tests/_helpers.ts `cli`).
 *
 * Identity files that only serve as a starting point for an error path are written in-process
 * with cheap Argon2 parameters (the reader takes m, t, p from the file) so the suite stays fast;
 * everything that is about `generate` itself goes through the CLI with the 64 MiB default.
 *
 * @module
 */

import assert from "node:assert/strict";
import { encodeIdentityFile } from "../lib/state/identity.ts";
import { ageEncrypt } from "../lib/crypto/age.ts";
import { concat, utf8 } from "../lib/util/encoding.ts";
import { CipherpostError } from "../lib/util/errors.ts";
import { exitCodeOf } from "../lib/cli/exit_codes.ts";
import { identityKek } from "../lib/crypto/kdf.ts";
import { ageRecipientOf, keypairFromSeed, x25519PublicFromSecret } from "../lib/crypto/keys.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";
import { readReceiptInput } from "../lib/protocol/receipts.ts";
import { parseReceipt, type Receipt, receiptJson, signReceipt } from "../lib/protocol/record.ts";
import { cli, type CliResult, runProgram, tmpDir } from "./_helpers.ts";
import { seededRandom, testSeed, withSeed } from "./_seed.ts";

/** Argon2 parameters for fixtures that are not about the KDF (the file carries them). */
const CHEAP = { m: 256, t: 1, p: 1 };
/** Seed 00×32 and its z-base-32 public key (tests/vectors/cipherpost/). */
const SEED00_HEX = "00".repeat(32);
const SEED00_Z32 = "8pinxxgqs41n4aididenw5apqp1urfmzdztr8jt4abrkdn435ewo";
const CORRUPT = "identity file corrupted or unreadable\n";
const WRONG_PASS = "wrong passphrase or identity decryption failed\n";
/** The same line, and where the passphrase came from: the environment. */
const WRONG_PASS_ENV = WRONG_PASS +
  "hint: the passphrase came from CIPHERPOST_PASSPHRASE (check it, or unset it to be asked on the terminal)\n";
const SIG_FAILED = "signature verification failed\n";

/** Permission bits of a path. */
async function modeOf(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

/** Write a file and force its mode (umask-proof). */
async function writeWithMode(path: string, data: Uint8Array | string, mode: number) {
  await Deno.writeFile(path, typeof data === "string" ? utf8(data) : data, { mode });
  await Deno.chmod(path, mode);
}

/** A home with a cheap identity of `seed` under `pass`; returns the identity path. */
async function cheapHome(home: string, seed: Uint8Array, pass: string): Promise<string> {
  await Deno.mkdir(home, { recursive: true, mode: 0o700 });
  const path = `${home}/secret_key`;
  await writeWithMode(path, await encodeIdentityFile(seed, pass, CHEAP), 0o600);
  return path;
}

/** True when a path exists. */
async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Recursive listing (name, type, size, mode, mtime) of a directory, or "absent". */
async function listing(dir: string): Promise<string> {
  if (!(await exists(dir))) return "absent";
  const rows: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      const st = await Deno.lstat(p);
      rows.push(`${p} ${e.isDirectory ? "d" : "f"} ${st.size} ${st.mode} ${st.mtime?.getTime()}`);
      if (e.isDirectory) await walk(p);
    }
  };
  await walk(dir);
  return rows.sort().join("\n");
}

const run = runProgram;

/** Assert a CLI result's exit code, showing its output when it differs. */
function assertExit(r: CliResult, code: number, what: string) {
  assert.equal(r.code, code, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

const hasAge = (await run("sh", ["-c", "command -v age && command -v age-keygen"]).catch(() => ({
  code: 1,
}))).code === 0;

// ---------------------------------------------------------------------------------------------
// generate / show
// ---------------------------------------------------------------------------------------------

Deno.test("generate: 0600 file in a 0700 dir, fingerprint + z32 on stderr; show agrees", async () => {
  const base = await tmpDir();
  const home = `${base}/home`; // does not exist yet: generate creates it
  const env = { CIPHERPOST_PASSPHRASE: "pw" };
  const g = await cli(["identity", "generate"], { home, env });
  assertExit(g, 0, "generate");
  assert.equal(g.stdout, "", "generate prints nothing on stdout");
  const m =
    /^Generated identity:\n {2}([ybndrfg8ejkmcpqxot1uwisza345h769]{52})\n {2}(ed25519:SHA256:[A-Za-z0-9+/]{43})\n$/
      .exec(g.stderr);
  assert.ok(m, `generate stderr: ${JSON.stringify(g.stderr)}`);
  const [, z32, fingerprint] = m;

  assert.equal(await modeOf(`${home}/secret_key`), 0o600);
  assert.equal(await modeOf(home), 0o700);
  const names = [];
  for await (const e of Deno.readDir(home)) names.push(e.name);
  assert.deepEqual(names.sort(), ["public_key", "secret_key"], "no temp file left behind");
  assert.equal(await Deno.readTextFile(`${home}/public_key`), `${z32}\n`);

  const s = await cli(["identity", "show"], { home, env });
  assertExit(s, 0, "show");
  const lines = s.stdout.split("\n");
  assert.equal(lines[0], z32, "z32 first");
  assert.equal(lines[1], `fingerprint: ${fingerprint}`);

  const j = await cli(["identity", "show", "--json"], { home, env });
  assertExit(j, 0, "show --json");
  const info = JSON.parse(j.stdout);
  assert.deepEqual(Object.keys(info).sort(), ["age_recipient", "fingerprint", "pk", "z32"]);
  assert.equal(info.z32, z32);
  assert.equal(info.pk, `pk:${z32}`);
  assert.equal(info.fingerprint, fingerprint);
  assert.match(info.age_recipient, /^age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$/);
});

Deno.test("generate: an existing identity is kept without --force, replaced with it", async () => {
  const base = await tmpDir();
  const home = `${base}/home`;
  const env = { CIPHERPOST_PASSPHRASE: "pw" };
  assertExit(await cli(["identity", "generate"], { home, env }), 0, "first generate");
  const before = await Deno.readFile(`${home}/secret_key`);

  const again = await cli(["identity", "generate"], { home, env });
  assertExit(again, 1, "second generate without --force");
  assert.match(again.stderr, /already exists at .*secret_key/);
  assert.match(again.stderr, /--force/);
  assert.deepEqual(await Deno.readFile(`${home}/secret_key`), before, "file byte-identical");

  // a home dir with loose permissions is tightened by generate
  await Deno.chmod(home, 0o755);
  const forced = await cli(["identity", "generate", "--force"], { home, env });
  assertExit(forced, 0, "generate --force");
  const after = await Deno.readFile(`${home}/secret_key`);
  assert.notDeepEqual(after, before, "--force replaces the identity");
  assert.equal(await modeOf(`${home}/secret_key`), 0o600);
  assert.equal(await modeOf(home), 0o700);
});

Deno.test("generate: without CIPHERPOST_HOME the identity goes to $HOME/.cipherpost", async () => {
  const base = await tmpDir();
  const g = await cli(["identity", "generate"], {
    env: { HOME: base, CIPHERPOST_PASSPHRASE: "pw" },
  });
  assertExit(g, 0, "generate");
  assert.equal(await modeOf(`${base}/.cipherpost/secret_key`), 0o600);
  assert.equal(await modeOf(`${base}/.cipherpost`), 0o700);
});

Deno.test("no CIPHERPOST_HOME and no HOME: clear error, nothing written anywhere", async () => {
  const cwd = await tmpDir();
  const envs: Array<Record<string, string>> = [{ HOME: "" }, { HOME: "", CIPHERPOST_HOME: "" }];
  for (const env of envs) {
    for (const args of [["identity", "generate"], ["identity", "show"]]) {
      const r = await cli(args, { env: { ...env, CIPHERPOST_PASSPHRASE: "pw" }, cwd });
      assertExit(r, 1, `${args.join(" ")} with ${JSON.stringify(env)}`);
      assert.equal(
        r.stderr,
        "configuration error: neither CIPHERPOST_HOME nor HOME is set\n" +
          "hint: set CIPHERPOST_HOME to the folder that holds your identity\n",
      );
      assert.equal(await listing(cwd), "", "nothing written in the working directory");
    }
  }
});

// ---------------------------------------------------------------------------------------------
// export --age: the escape hatch works with plain Debian `age`
// ---------------------------------------------------------------------------------------------

Deno.test({
  name:
    "export --age: the exported key decrypts with Debian age what age encrypted to show's recipient",
  ignore: !hasAge,
  fn: async () => {
    const base = await tmpDir();
    const home = `${base}/home`;
    const env = { CIPHERPOST_PASSPHRASE: "pw" };
    assertExit(await cli(["identity", "generate"], { home, env }), 0, "generate");
    const show = await cli(["identity", "show", "--json"], { home, env });
    assertExit(show, 0, "show --json");
    const recipient: string = JSON.parse(show.stdout).age_recipient;

    const ex = await cli(["identity", "export", "--age"], { home, env });
    assertExit(ex, 0, "export --age");
    assert.match(ex.stdout, /^AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}\n$/);
    assert.match(ex.stderr, /^warning: .*SECRET key/);
    assert.ok(!ex.stderr.includes("AGE-SECRET-KEY"), "the key itself is not on stderr");

    const keyFile = `${base}/key.txt`;
    await writeWithMode(keyFile, ex.stdout, 0o600);
    // the exported key's public half is the recipient that `show` advertises
    const y = await run("age-keygen", ["-y", keyFile]);
    assert.equal(y.code, 0, y.stderr);
    assert.equal(new TextDecoder().decode(y.stdout).trim(), recipient);

    const message = utf8("escape hatch: decrypt without cipherpost\n");
    const enc = await run("age", ["-r", recipient, "-o", `${base}/msg.age`], message);
    assert.equal(enc.code, 0, enc.stderr);
    const dec = await run("age", ["-d", "-i", keyFile, `${base}/msg.age`]);
    assert.equal(dec.code, 0, dec.stderr);
    assert.deepEqual(dec.stdout, message);
  },
});

// ---------------------------------------------------------------------------------------------
// import
// ---------------------------------------------------------------------------------------------

Deno.test("import: a 64-hex seed from a file and from stdin gives the expected z32", async () => {
  const base = await tmpDir();
  const env = { CIPHERPOST_PASSPHRASE: "pw" };
  const seedFile = `${base}/seed.hex`;
  await writeWithMode(seedFile, `${SEED00_HEX}\n`, 0o600);

  const homeA = `${base}/a`;
  const a = await cli(["identity", "import", seedFile], { home: homeA, env });
  assertExit(a, 0, "import <file>");
  assert.match(a.stderr, new RegExp(`^Imported identity:\\n  ${SEED00_Z32}\\n.*\\n$`));
  assert.equal(await modeOf(`${homeA}/secret_key`), 0o600);
  assert.equal(await modeOf(homeA), 0o700);

  const homeB = `${base}/b`;
  const b = await cli(["identity", "import", "-"], { home: homeB, env, stdin: SEED00_HEX });
  assertExit(b, 0, "import -");

  for (const home of [homeA, homeB]) {
    const s = await cli(["identity", "show", "--json"], { home, env });
    assertExit(s, 0, `show in ${home}`);
    assert.equal(JSON.parse(s.stdout).z32, SEED00_Z32);
  }
});

Deno.test("import: refuses to overwrite without --force; garbage is refused and writes nothing", async () => {
  const base = await tmpDir();
  const env = { CIPHERPOST_PASSPHRASE: "pw" };
  const home = `${base}/home`;
  await cheapHome(home, new Uint8Array(32).fill(0x63), "pw");
  const before = await Deno.readFile(`${home}/secret_key`);

  const r = await cli(["identity", "import", "-"], { home, env, stdin: SEED00_HEX });
  assertExit(r, 1, "import over an existing identity");
  assert.match(r.stderr, /already exists/);
  assert.deepEqual(await Deno.readFile(`${home}/secret_key`), before);

  const f = await cli(["identity", "import", "--force", "-"], { home, env, stdin: SEED00_HEX });
  assertExit(f, 0, "import --force");
  const s = await cli(["identity", "show", "--json"], { home, env });
  assert.equal(JSON.parse(s.stdout).z32, SEED00_Z32);

  const garbage: Array<[string, string | Uint8Array]> = [
    ["63 hex", "0".repeat(63)],
    ["65 hex", "0".repeat(65)],
    ["non-hex", "g".repeat(64)],
    ["two seeds", `${SEED00_HEX}\n${SEED00_HEX}\n`],
    ["binary", new Uint8Array([0xff, 0xfe, 0, 1, 2])],
    ["empty", ""],
  ];
  for (const [what, input] of garbage) {
    const fresh = `${base}/fresh-${what.replace(/ /g, "_")}`;
    const g = await cli(["identity", "import", "-"], { home: fresh, env, stdin: input });
    assertExit(g, 1, `import ${what}`);
    assert.equal(
      g.stderr,
      "unrecognised identity format: expected an `identity export` backup, a CIPHPOSK file, a cclink CCLINKEK key file or 64 hex characters\n",
      what,
    );
    assert.equal(await exists(fresh), false, `${what}: no home, no file written`);
  }
  const missing = await cli(["identity", "import", `${base}/nope`], { home: `${base}/x`, env });
  assertExit(missing, 1, "import of a missing file");
  assert.equal(missing.stderr, `cannot read ${base}/nope\n`);
});

// ---------------------------------------------------------------------------------------------
// passphrase contract (§1.4)
// ---------------------------------------------------------------------------------------------

Deno.test("passphrase: inline --passphrase is refused (exit 4, hint), value never echoed", async () => {
  const base = await tmpDir();
  const secret = "Inline-Secret-7c1e";
  const home = `${base}/home`;
  await cheapHome(home, new Uint8Array(32).fill(7), secret);
  const seedFile = `${base}/seed.hex`;
  await writeWithMode(seedFile, SEED00_HEX, 0o600);
  const cases = [
    { args: ["identity", "generate", "--passphrase", secret], home: `${base}/fresh` },
    { args: ["identity", "generate", `--passphrase=${secret}`], home: `${base}/fresh` },
    { args: ["identity", "check", "--passphrase", secret], home },
    { args: ["identity", "export", "--age", "--passphrase", secret], home },
    { args: ["identity", "import", seedFile, "--passphrase", secret], home: `${base}/fresh` },
  ];
  for (const c of cases) {
    const r = await cli(c.args, { home: c.home, env: { CIPHERPOST_DEBUG: "1" } });
    assertExit(r, 4, c.args.join(" "));
    assert.equal(
      r.stderr,
      "invalid passphrase input: inline argv rejected\n" +
        "hint: use --passphrase-file, --passphrase-fd or CIPHERPOST_PASSPHRASE\n",
    );
    assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret), "value not echoed");
    assert.equal(r.stdout, "");
  }
  assert.equal(await exists(`${base}/fresh`), false, "nothing generated or imported");
});

Deno.test("passphrase file: 0644 refused naming chmod 600; 0600 and 0400 accepted", async () => {
  const base = await tmpDir();
  const home = `${base}/home`;
  await cheapHome(home, new Uint8Array(32).fill(7), "pw");
  const pf = `${base}/pass`;
  for (const mode of [0o644, 0o640, 0o604, 0o700, 0o601]) {
    await writeWithMode(pf, "pw\n", mode);
    const runs: Array<[string, string]> = [["show", home], ["generate", `${base}/g`]];
    for (const [sub, h] of runs) {
      const r = await cli(["identity", sub, "--passphrase-file", pf], { home: h });
      assertExit(r, 4, `identity ${sub} with mode ${mode.toString(8)}`);
      assert.match(r.stderr, /^passphrase file permissions too permissive/);
      assert.ok(r.stderr.includes(`chmod 600 ${pf}`), r.stderr);
    }
  }
  assert.equal(await exists(`${base}/g`), false, "generate wrote nothing");
  for (const mode of [0o600, 0o400]) {
    await writeWithMode(pf, "pw\n", mode);
    const r = await cli(["identity", "check", "--passphrase-file", pf], { home });
    assertExit(r, 0, `show with a ${mode.toString(8)} passphrase file`);
  }
  const missing = await cli(["identity", "check", "--passphrase-file", `${base}/none`], { home });
  assertExit(missing, 1, "missing passphrase file");
  assert.match(missing.stderr, /^configuration error: cannot read passphrase file/);
});

Deno.test("passphrase file: generate with 'pw\\n' unlocks with CIPHERPOST_PASSPHRASE=pw", async () => {
  const base = await tmpDir();
  const home = `${base}/home`;
  const pf = `${base}/pass`;
  await writeWithMode(pf, "pw\n", 0o600);
  assertExit(
    await cli(["identity", "generate", "--passphrase-file", pf], { home }),
    0,
    "generate --passphrase-file",
  );
  const ok = await cli(["identity", "check"], { home, env: { CIPHERPOST_PASSPHRASE: "pw" } });
  assertExit(ok, 0, "show with env pw");
  const nl = await cli(["identity", "check"], { home, env: { CIPHERPOST_PASSPHRASE: "pw\n" } });
  assertExit(nl, 4, "env is used verbatim: 'pw\\n' is another passphrase");
});

Deno.test("passphrase file: strip exactly one trailing \\r\\n or \\n, nothing else", async () => {
  const base = await tmpDir();
  const pf = `${base}/pass`;
  // [identity passphrase, file content, expected exit]
  const cases: Array<[string, string, number]> = [
    ["pw", "pw", 0],
    ["pw", "pw\n", 0],
    ["pw", "pw\r\n", 0],
    ["pw", "pw\n\n", 4],
    ["pw\n", "pw\n\n", 0],
    ["pw", "pw\r", 4],
    ["pw\r", "pw\r", 0],
    ["pw", "pw\r\n\r\n", 4],
    ["pw\r\n", "pw\r\n\r\n", 0],
    ["pw", "pw \n", 4],
    ["pw ", "pw \n", 0],
    ["pw", "\npw", 4],
  ];
  const homes = new Map<string, string>();
  for (const [pass] of cases) {
    if (homes.has(pass)) continue;
    const home = `${base}/h${homes.size}`;
    await cheapHome(home, new Uint8Array(32).fill(9), pass);
    homes.set(pass, home);
  }
  for (const [pass, content, code] of cases) {
    await writeWithMode(pf, content, 0o600);
    const r = await cli(["identity", "check", "--passphrase-file", pf], { home: homes.get(pass) });
    assertExit(r, code, `identity ${JSON.stringify(pass)}, file ${JSON.stringify(content)}`);
    if (code === 4) {
      assert.equal(
        r.stderr,
        `${WRONG_PASS}hint: the passphrase came from --passphrase-file ${pf}\n`,
      );
    }
  }
});

Deno.test("passphrase: wrong → exit 4 one line; non-UTF-8 file → exit 4; none and no TTY → exit 1", async () => {
  const base = await tmpDir();
  const home = `${base}/home`;
  await cheapHome(home, new Uint8Array(32).fill(7), "right");
  const pf = `${base}/pass`;

  for (const debug of ["0", "1"]) {
    const wrong = await cli(["identity", "check"], {
      home,
      env: { CIPHERPOST_PASSPHRASE: "wrong-pass-3f9a", CIPHERPOST_DEBUG: debug },
    });
    assertExit(wrong, 4, "wrong passphrase");
    assert.equal(wrong.stderr, WRONG_PASS_ENV);
    assert.equal(wrong.stdout, "");
  }

  await writeWithMode(pf, new Uint8Array([0x70, 0x77, 0xff, 0xfe, 0x0a]), 0o600);
  const bad = await cli(["identity", "check", "--passphrase-file", pf], { home });
  assertExit(bad, 4, "non-UTF-8 passphrase file");
  assert.equal(bad.stderr, "invalid passphrase input: passphrase is not valid UTF-8\n");

  // the helper gives the child stdin = /dev/null: not a terminal
  for (const args of [["identity", "check"], ["identity", "generate"]]) {
    const h = args[1] === "show" ? home : `${base}/fresh`;
    const none = await cli(args, { home: h });
    assertExit(none, 1, `${args.join(" ")} without passphrase source`);
    assert.equal(
      none.stderr,
      "configuration error: no terminal to ask for the passphrase on\n" +
        "hint: give it with --passphrase-file, --passphrase-fd or CIPHERPOST_PASSPHRASE\n",
    );
  }
  assert.equal(await exists(`${base}/fresh`), false);
});

Deno.test("passphrase-fd: 0, 1 and 2 are refused (exit 1), nothing generated", async () => {
  const base = await tmpDir();
  const home = `${base}/home`;
  await cheapHome(home, new Uint8Array(32).fill(7), "pw");
  const r = await cli(["identity", "check", "--passphrase-fd", "0"], { home, stdin: "pw\n" });
  assertExit(r, 1, "--passphrase-fd 0");
  assert.match(r.stderr, /^configuration error: --passphrase-fd 0 is not allowed/);
  const g = await cli(["identity", "generate", "--passphrase-fd", "0"], {
    home: `${base}/g`,
    stdin: "pw\n",
  });
  assertExit(g, 1, "generate --passphrase-fd 0");
  assert.equal(await exists(`${base}/g`), false);
  // 1 and 2 are where we write: refused before anything is read from them (a read of a
  // terminal's fd 1 would wait for typing with echo on)
  for (const [fd, what] of [["1", "stdout is for output"], ["2", "stderr is for messages"]]) {
    const o = await cli(["identity", "check", "--passphrase-fd", fd], { home });
    assertExit(o, 1, `--passphrase-fd ${fd}`);
    assert.equal(
      o.stderr.split("\n")[0],
      `configuration error: --passphrase-fd ${fd} is not allowed (${what})`,
    );
    assert.equal(o.stdout, "");
  }
});

/**
 * Run `identity show --passphrase-fd 3` with fd 3 opened by sh (Deno.Command cannot pass extra
 * fds) on the file `passFile`, either directly (`3<file`) or through a pipe (`cat file |`).
 */
async function showViaFd3(
  home: string,
  passFile: string,
  how: "file" | "pipe",
): Promise<{ code: number; stderr: string }> {
  const root = new URL("..", import.meta.url).pathname;
  const cfg = JSON.parse(await Deno.readTextFile(`${root}deno.json`));
  const flags = Object.entries(cfg.permissions.cipherpost as Record<string, boolean>)
    .filter(([, v]) => v).map(([k]) => `--allow-${k}`);
  const script = how === "file"
    ? 'exec "$@" 3<"$PASSFILE"'
    : 'cat "$PASSFILE" | { exec "$@" 3<&0 0</dev/null; }';
  const out = await new Deno.Command("sh", {
    args: ["-c", script, "sh", Deno.execPath(), "run", ...flags, "--no-prompt"]
      .concat([`${root}main.ts`, "identity", "check", "--passphrase-fd", "3"]),
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: "/nonexistent",
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
      CIPHERPOST_HOME: home,
      PASSFILE: passFile,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("passphrase-fd 3 on a pipe: first line only, one \\r\\n stripped", async () => {
  const base = await tmpDir();
  const home = `${base}/home`;
  await cheapHome(home, new Uint8Array(32).fill(7), "pw");
  const pf = `${base}/pass`;
  const cases: Array<[string, number]> = [["pw\nsecond line\n", 0], ["pw\r\n", 0], ["nope\n", 4]];
  for (const [content, code] of cases) {
    await writeWithMode(pf, content, 0o600);
    const r = await showViaFd3(home, pf, "pipe");
    assert.equal(r.code, code, `${JSON.stringify(content)}: ${r.stderr}`);
  }
});

Deno.test("passphrase-fd 3 redirected from a regular file: a precise error pointing to --passphrase-file", async () => {
  // Deno's sandbox opens /dev/fd/N only for pipes unless run with --allow-all (never granted):
  // a regular file behind the descriptor cannot be read by number. The error says what to use.
  const base = await tmpDir();
  const home = `${base}/home`;
  await cheapHome(home, new Uint8Array(32).fill(7), "pw");
  const pf = `${base}/pass`;
  await writeWithMode(pf, "pw\nsecond line\n", 0o600);
  const r = await showViaFd3(home, pf, "file");
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /file descriptor 3 is a regular file/);
  assert.match(r.stderr, /hint: use --passphrase-file <path>/);
  assert.ok(!r.stderr.includes("second line"));
});

// ---------------------------------------------------------------------------------------------
// bad identity files
// ---------------------------------------------------------------------------------------------

/** Bytes of a cheap valid identity file and the offset where its age ciphertext starts. */
async function validFile(pass: string): Promise<{ bytes: Uint8Array; ctStart: number }> {
  const bytes = await encodeIdentityFile(new Uint8Array(32).fill(5), pass, CHEAP);
  return { bytes, ctStart: 11 + ((bytes[9] << 8) | bytes[10]) };
}

/** A CIPHPOSK file with a handmade PHC string and the ciphertext of `valid`. */
function withPhc(phc: string, ct: Uint8Array): Uint8Array {
  const p = utf8(phc);
  return concat(utf8("CIPHPOSK"), new Uint8Array([1, p.length >> 8, p.length & 255]), p, ct);
}

Deno.test("bad identity files: corrupt, truncated, foreign, wrong magic/version → exit 1", async () => {
  const base = await tmpDir();
  const pass = "pw";
  const { bytes, ctStart } = await validFile(pass);
  const ct = bytes.subarray(ctStart);
  const salt = new TextDecoder().decode(bytes.subarray(11, ctStart)).split("$")[4];
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
  const cases: Array<[string, Uint8Array]> = [
    ["empty file", new Uint8Array(0)],
    ["truncated to 5 bytes", bytes.slice(0, 5)],
    ["truncated to 10 bytes", bytes.slice(0, 10)],
    ["truncated to the header", bytes.slice(0, 11)],
    ["truncated inside the PHC string", bytes.slice(0, ctStart - 1)],
    ["PNG file", concat(png, new Uint8Array(300))],
    ["random bytes", crypto.getRandomValues(new Uint8Array(296))],
    ["wrong magic", concat(utf8("CIPHPOSX"), bytes.slice(8))],
    ["lower-case magic", concat(utf8("ciphposk"), bytes.slice(8))],
    ["version 2", concat(bytes.slice(0, 8), new Uint8Array([2]), bytes.slice(9))],
    ["version 0", concat(bytes.slice(0, 8), new Uint8Array([0]), bytes.slice(9))],
    [
      "PHC length overrun",
      concat(bytes.slice(0, 9), new Uint8Array([0xff, 0xff]), bytes.slice(11)),
    ],
    ["non-UTF-8 PHC", concat(bytes.slice(0, 12), new Uint8Array([0xff]), bytes.slice(13))],
    ["argon2i, not argon2id", withPhc(`$argon2i$v=19$m=256,t=1,p=1$${salt}`, ct)],
    ["missing t", withPhc(`$argon2id$v=19$m=256,p=1$${salt}`, ct)],
    ["non-decimal m", withPhc(`$argon2id$v=19$m=0x100,t=1,p=1$${salt}`, ct)],
    ["t=0", withPhc(`$argon2id$v=19$m=256,t=0,p=1$${salt}`, ct)],
    ["hostile m=4 GiB", withPhc(`$argon2id$v=19$m=4194304,t=1,p=1$${salt}`, ct)],
    ["bad salt base64", withPhc(`$argon2id$v=19$m=256,t=1,p=1$!!!!${salt}`, ct)],
    ["no salt", withPhc(`$argon2id$v=19$m=256,t=1,p=1`, ct)],
  ];
  for (const [what, content] of cases) {
    const home = `${base}/${what.replace(/[^a-z0-9]+/gi, "_")}`;
    await Deno.mkdir(home, { mode: 0o700 });
    await writeWithMode(`${home}/secret_key`, content, 0o600);
    const r = await cli(["identity", "check"], { home, env: { CIPHERPOST_PASSPHRASE: pass } });
    assertExit(r, 1, what);
    if (what === "hostile m=4 GiB") {
      // parameters over the supported maximum are named (before any Argon2 work is tried)
      assert.match(
        r.stderr,
        /^identity file corrupted or unreadable: its Argon2 parameters exceed/,
      );
    } else assert.equal(r.stderr, CORRUPT, what);
    assert.equal(r.stdout, "", what);
  }
});

Deno.test("bad identity files: age-layer damage is the credential lane (exit 4), as in v1.1", async () => {
  // v1.1 maps every age_decrypt failure to DecryptFailed (exit 4); only a wrong plaintext length
  // after a successful decryption is IdentityCorrupt (exit 1).
  const base = await tmpDir();
  const pass = "pw";
  const { bytes, ctStart } = await validFile(pass);
  const flip = (i: number) => {
    const b = bytes.slice();
    b[i] ^= 0x01;
    return b;
  };
  const cases: Array<[string, Uint8Array]> = [
    ["flipped byte in the age header", flip(ctStart + 30)],
    ["flipped last byte (payload tag)", flip(bytes.length - 1)],
    ["truncated inside the age payload", bytes.slice(0, bytes.length - 10)],
    ["age ciphertext removed", bytes.slice(0, ctStart)],
  ];
  for (const [what, content] of cases) {
    const home = `${base}/${what.replace(/[^a-z0-9]+/gi, "_")}`;
    await Deno.mkdir(home, { mode: 0o700 });
    await writeWithMode(`${home}/secret_key`, content, 0o600);
    const r = await cli(["identity", "check"], { home, env: { CIPHERPOST_PASSPHRASE: pass } });
    assertExit(r, 4, what);
    assert.equal(r.stderr, WRONG_PASS_ENV, what);
  }
  // a file that decrypts fine but holds 31 bytes instead of a 32-byte seed → corrupt (exit 1)
  const salt = new Uint8Array(16).fill(1);
  const kek = await identityKek(utf8(pass), salt, CHEAP);
  const ct = await ageEncrypt(new Uint8Array(31), ageRecipientOf(x25519PublicFromSecret(kek)));
  const phc = `$argon2id$v=19$m=256,t=1,p=1$AQEBAQEBAQEBAQEBAQEBAQ`;
  const home = `${base}/short_seed`;
  await Deno.mkdir(home, { mode: 0o700 });
  await writeWithMode(`${home}/secret_key`, withPhc(phc, ct), 0o600);
  const r = await cli(["identity", "check"], { home, env: { CIPHERPOST_PASSPHRASE: pass } });
  assertExit(r, 1, "31-byte plaintext");
  assert.equal(r.stderr, CORRUPT);
});

Deno.test("identity file mode other than 0600 → exit 4 naming chmod 600 <path>; missing → exit 1", async () => {
  const base = await tmpDir();
  const home = `${base}/home`;
  const path = await cheapHome(home, new Uint8Array(32).fill(7), "pw");
  const env = { CIPHERPOST_PASSPHRASE: "pw" };
  for (const mode of [0o644, 0o640, 0o400, 0o700]) {
    await Deno.chmod(path, mode);
    const r = await cli(["identity", "check"], { home, env });
    assertExit(r, 4, `identity mode ${mode.toString(8)}`);
    assert.match(r.stderr, /^identity file permissions too permissive \(refuses to open\)/);
    assert.ok(r.stderr.includes(`hint: chmod 600 ${path}\n`), r.stderr);
  }
  await Deno.chmod(path, 0o600);
  assertExit(await cli(["identity", "check"], { home, env }), 0, "back at 0600");

  const empty = `${base}/empty`;
  await Deno.mkdir(empty);
  for (const h of [empty, `${base}/does-not-exist`]) {
    const r = await cli(["identity", "check"], { home: h, env });
    assertExit(r, 1, `missing identity in ${h}`);
    assert.equal(
      r.stderr,
      `identity file not found at ${h}/secret_key\n` +
        "hint: create one with: cipherpost identity generate\n",
    );
  }
});

// ---------------------------------------------------------------------------------------------
// usage errors
// ---------------------------------------------------------------------------------------------

Deno.test("unknown command / flag → exit 2 with a suggestion or the help hint, home untouched", async () => {
  const base = await tmpDir();
  const home = `${base}/home`;
  await cheapHome(home, new Uint8Array(32).fill(7), "pw");
  const fresh = `${base}/fresh`;
  const cases: Array<[string[], RegExp]> = [
    [["identiy", "generate"], /unknown command 'identiy'\n\(Did you mean identity\?\)/],
    [["identity", "genrate"], /unknown command 'genrate'\n\(Did you mean generate\?\)/],
    [["identity", "generate", "--forse"], /unknown option '--forse'\n\(Did you mean --force\?\)/],
    [["identity", "generate", "--frobnicate"], /unknown option '--frobnicate'/],
    [["identity", "show", "--bogus"], /unknown option '--bogus'/],
    [["identity", "import"], /missing required argument 'file'/],
    [["identity", "export", "--agee"], /unknown option '--agee'\n\(Did you mean --age\?\)/],
    [["completions", "tcsh"], /'tcsh' is invalid for argument 'shell'/],
    [["receipt", "verfy", "x"], /unknown command 'verfy'/],
    [["--nope"], /unknown option '--nope'/],
  ];
  const before = await listing(base);
  for (const [args, re] of cases) {
    for (const h of [home, fresh]) {
      const r = await cli(args, { home: h, env: { CIPHERPOST_PASSPHRASE: "pw" } });
      assertExit(r, 2, args.join(" "));
      assert.match(r.stderr, re, args.join(" "));
      assert.match(r.stderr, /\(Did you mean .*\?\)|\(run with --help for usage\)/);
      assert.equal(r.stdout, "");
    }
  }
  assert.equal(await listing(base), before, "nothing written to either home");
  assert.equal(await exists(fresh), false);
});

// ---------------------------------------------------------------------------------------------
// no secret on stderr
// ---------------------------------------------------------------------------------------------

Deno.test("secrets never reach stderr: generate/show/export/import with a passphrase file", async () => {
  const base = await tmpDir();
  const home = `${base}/home`;
  const secret = "Tr0ub4dor&3-unique-4b7d";
  const pf = `${base}/pass`;
  await writeWithMode(pf, `${secret}\n`, 0o600);
  const seedFile = `${base}/seed.hex`;
  await writeWithMode(seedFile, SEED00_HEX, 0o600);
  const runs: CliResult[] = [];
  const p = ["--passphrase-file", pf];
  runs.push(await cli(["identity", "generate", ...p], { home }));
  runs.push(await cli(["identity", "show", ...p], { home }));
  runs.push(await cli(["identity", "show", "--json", ...p], { home }));
  const ex = await cli(["identity", "export", "--age", ...p], { home });
  runs.push(ex);
  runs.push(await cli(["identity", "import", "--force", seedFile, ...p], { home }));
  for (const r of runs) assertExit(r, 0, r.stderr);
  // failure paths with debug output on
  const dbg = { CIPHERPOST_DEBUG: "1" };
  await writeWithMode(pf, `${secret}-wrong\n`, 0o600);
  runs.push(await cli(["identity", "check", ...p], { home, env: dbg }));
  await writeWithMode(pf, `${secret}\n`, 0o644);
  runs.push(await cli(["identity", "check", ...p], { home, env: dbg }));
  assert.deepEqual(runs.slice(-2).map((r) => r.code), [4, 4]);

  const exportedKey = ex.stdout.trim();
  for (const r of runs) {
    assert.ok(!r.stderr.includes(secret), `passphrase on stderr: ${r.stderr}`);
    assert.ok(!r.stdout.includes(secret), `passphrase on stdout: ${r.stdout}`);
    assert.ok(!r.stderr.includes(exportedKey), "age secret key on stderr");
    assert.ok(!r.stderr.includes(SEED00_HEX), "seed hex on stderr");
  }
});

// ---------------------------------------------------------------------------------------------
// receipt verify
// ---------------------------------------------------------------------------------------------

/** A signed receipt (recipient = a fresh keypair) and its compact JSON file bytes. */
function makeReceipt(): { receipt: Receipt; json: Uint8Array } {
  // fixed keys: the mutations below are the same bytes on every run
  const recipient = keypairFromSeed(new Uint8Array(32).fill(0x11));
  const sender = keypairFromSeed(new Uint8Array(32).fill(0x22));
  const receipt = signReceipt({
    acceptedAt: 1700000000,
    ciphertextHash: "a1".repeat(32),
    cleartextHash: "b2".repeat(32),
    nonce: "0123456789abcdef".repeat(2),
    protocolVersion: 1,
    purpose: 'db "prod" creds \\ café',
    recipientPubkey: encodeZ32(recipient.publicKey),
    senderPubkey: encodeZ32(sender.publicKey),
    shareRef: "fedcba9876543210".repeat(2),
  }, recipient.seed);
  return { receipt, json: utf8(receiptJson(receipt)) };
}

/** Change one byte to a different printable ASCII byte (low bit flipped where possible). */
function flipPrintable(b: Uint8Array, i: number): Uint8Array {
  const out = b.slice();
  let v = b[i] ^ 0x01;
  if (v < 0x20 || v > 0x7e) v = b[i] === 0x41 ? 0x42 : 0x41;
  out[i] = v;
  return out;
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Change one base64 character to the next one of the alphabet (still a canonical encoding). */
function flipBase64(b: Uint8Array, i: number): Uint8Array {
  const at = B64.indexOf(String.fromCharCode(b[i]));
  if (at < 0) throw new Error(`byte ${i} is not a base64 character`);
  const out = b.slice();
  out[i] = B64.charCodeAt((at + 1) % 64);
  return out;
}

/** Run `f` over `items` with at most `n` in flight. */
async function pool<T>(items: T[], n: number, f: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await f(items[next++]);
  };
  await Promise.all(Array.from({ length: n }, worker));
}

Deno.test("receipt verify: a valid receipt (file and stdin) exits 0 with its fields", async () => {
  const base = await tmpDir();
  const { receipt, json } = makeReceipt();
  const file = `${base}/receipt.json`;
  await Deno.writeFile(file, json);
  for (
    const r of [
      await cli(["receipt", "verify", file]),
      await cli(["receipt", "verify", "-"], { stdin: json }),
    ]
  ) {
    assertExit(r, 0, "receipt verify");
    assert.equal(r.stderr, "");
    const lines = r.stdout.split("\n");
    assert.ok(lines.includes(`${"share_ref:".padEnd(20)}${receipt.shareRef}`), r.stdout);
    assert.ok(lines.includes(`${"sender_pubkey:".padEnd(20)}${receipt.senderPubkey}`));
    assert.ok(lines.includes(`${"recipient_pubkey:".padEnd(20)}${receipt.recipientPubkey}`));
    assert.ok(
      lines.some((l) => l.startsWith(`${"accepted_at:".padEnd(20)}2023-11-14 22:13 UTC (`)),
    );
    assert.ok(lines.includes(`${"purpose:".padEnd(20)}"db "prod" creds \\ café"`), r.stdout);
  }
  // a trailing newline (as `jq` or an editor leaves it) is fine
  const nl = await cli(["receipt", "verify", "-"], { stdin: concat(json, utf8("\n")) });
  assertExit(nl, 0, "receipt with a trailing newline");
});

/** How many byte positions the CLI test below changes (the in-process sweep covers all). */
const CLI_SAMPLE = 24;

/** The first and last positions of `n` and `k - 2` others drawn with `seed`, ascending. */
function samplePositions(n: number, k: number, seed: number): number[] {
  const random = seededRandom(seed, "receipt byte positions");
  const picked = new Set([0, n - 1]);
  while (picked.size < Math.min(k, n)) picked.add(Math.floor(random() * n));
  return [...picked].sort((a, b) => a - b);
}

Deno.test(`receipt verify: single-byte changes of the file (${CLI_SAMPLE} positions, seeded) → exit 3 (or exit 1 'not a receipt' when it no longer parses), never 0`, async () => {
  const seed = testSeed("CIPHERPOST_SAMPLE_SEED");
  await withSeed("CIPHERPOST_SAMPLE_SEED", seed, () => receiptVerifyChanges(seed));
});

async function receiptVerifyChanges(seed: number): Promise<void> {
  const base = await tmpDir();
  const { receipt, json } = makeReceipt();
  // The CLI is run on a sample; the in-process test below tries every value at every byte
  // through the same verifier.
  const positions = samplePositions(json.length, CLI_SAMPLE, seed);
  const accepted: number[] = [];
  await pool(positions, Math.max(2, navigator.hardwareConcurrency), async (i) => {
    const mutated = flipPrintable(json, i);
    const file = `${base}/r${i}.json`;
    await Deno.writeFile(file, mutated);
    const r = await cli(["receipt", "verify", file]);
    const label = `byte ${i} ${JSON.stringify(String.fromCharCode(json[i]))} → ${
      JSON.stringify(String.fromCharCode(mutated[i]))
    }`;
    if (r.code === 0) {
      // only acceptable if the change cannot alter the receipt at all
      accepted.push(i);
      assert.deepEqual(parseReceipt(new TextDecoder().decode(mutated)), receipt, label);
      return;
    }
    assert.equal(r.stdout, "", label);
    if (r.code === 1) {
      assert.match(r.stderr, /^not a receipt: [^\n]+\nhint: [^\n]+\n$/, label);
      return;
    }
    assertExit(r, 3, label);
    assert.equal(r.stderr, SIG_FAILED, label);
  });
  // compact JSON has no byte whose change keeps the receipt: nothing may have passed
  assert.deepEqual(accepted, [], "positions that verified after a change");

  // the stdin form too (a value, then signature characters changed within the base64
  // alphabet, so the input still parses and only the signature check can refuse it; the
  // last data character is left out: its low bits are padding, and a change there is a
  // non-canonical encoding, which the file loop above already covers as exit 1)
  // a byte offset (the purpose holds a two-byte "é", so a string index would be one short)
  const text = new TextDecoder().decode(json);
  const sig = utf8(text.slice(0, text.indexOf(receipt.signature))).length;
  const stdinCases: Array<[number, Uint8Array]> = [
    [20, flipPrintable(json, 20)],
    ...[sig, sig + 40, sig + 84].map((i): [number, Uint8Array] => [i, flipBase64(json, i)]),
  ];
  for (const [i, mutated] of stdinCases) {
    const r = await cli(["receipt", "verify", "-"], { stdin: mutated });
    assertExit(r, 3, `stdin, byte ${i}`);
    assert.equal(r.stderr, SIG_FAILED);
  }
  // not receipts at all: said so (exit 1), not called a forgery
  const notReceipts: Array<[string | Uint8Array, RegExp]> = [
    [flipPrintable(json, 0), /^not a receipt: the file is not JSON\n/],
    [new Uint8Array([0xff, 0xfe]), /^not a receipt: the file is not UTF-8 text\n/],
    ['{"hello":"world"}', /^not a receipt: receipt fields missing or of the wrong type\n/],
    ["[]", /^not a receipt: an empty array\n/],
    ["42", /^not a receipt: expected a JSON object\n/],
  ];
  for (const [input, re] of notReceipts) {
    const r = await cli(["receipt", "verify", "-"], { stdin: input });
    assertExit(r, 1, String(re));
    assert.match(r.stderr, re);
  }
  // the array `receipts --json` prints verifies as a whole (every element)
  const arr = await cli(["receipt", "verify", "-"], {
    stdin: `[${new TextDecoder().decode(json)}]`,
  });
  assertExit(arr, 0, "an array of one receipt");
  const two = await cli(["receipt", "verify", "-"], {
    stdin: `[${new TextDecoder().decode(json)}, ${
      new TextDecoder().decode(flipPrintable(json, sig))
    }]`,
  });
  assertExit(two, 3, "an array with one forged receipt");
}

Deno.test("receipt verify (in-process): all 255 alternatives at every byte fail, or keep the receipt", () => {
  // The CLI test above tries one replacement at a sample of positions; this sweeps every byte value
  // through the same verifier the CLI uses (lib/protocol/receipts.ts readReceiptInput).
  const { receipt, json } = makeReceipt();
  let tried = 0;
  const passed: string[] = [];
  for (let i = 0; i < json.length; i++) {
    const mutated = json.slice();
    for (let v = 0; v < 256; v++) {
      if (v === json[i]) continue;
      mutated[i] = v;
      tried++;
      let r: Receipt;
      try {
        r = readReceiptInput(mutated);
      } catch (e) {
        assert.ok(e instanceof CipherpostError, `byte ${i}=${v}: ${e}`);
        if (exitCodeOf(e) === 1) {
          assert.match(e.message, /^not a receipt: /, `byte ${i}=${v}`);
          continue;
        }
        assert.ok(e.kind === "signature", `byte ${i}=${v}: ${e}`);
        assert.equal(exitCodeOf(e), 3);
        assert.equal(e.message, SIG_FAILED.trim());
        continue;
      }
      passed.push(`${i}:${v}`);
      assert.deepEqual(r, receipt, `byte ${i} = ${v} verified with different content`);
    }
  }
  assert.equal(tried, json.length * 255);
  // readReceiptInput trims surrounding whitespace, but the first and last bytes are `{`/`}`,
  // so no single-byte change can be absorbed: expect none at all.
  assert.deepEqual(passed, []);
});
