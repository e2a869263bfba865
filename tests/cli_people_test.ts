/**
 * Built for people: contacts, key parsing that names the right line, --ttl
 * durations, progress bars, the QR code, identity backup/restore, `generate --force` keeping the
 * old file, prompts on /dev/tty with three tries, shell completion and the man page. CLI cases
 * run the real program as a subprocess with its own home; terminal cases run it under tmux.
 *
 * @module
 */

import assert from "node:assert/strict";
import { decodeQR } from "qr/decode.js";
import { encodeIdentityFile } from "../lib/state/identity.ts";
import { CipherpostError } from "../lib/util/errors.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";
import { keypairFromSeed, sshFingerprint } from "../lib/crypto/keys.ts";
import { formatDuration, parseDuration } from "../lib/cli/duration.ts";
import { formatEta, formatProgress, startProgress } from "../lib/cli/progress.ts";
import { qrModules, qrPayload, renderQr } from "../lib/cli/qr.ts";
import { formatBytes, localMinute, truncate, ttlRemaining, utcMinute } from "../lib/util/human.ts";

import { misplacedKeyMessage, parseKeyArg, resolveRecipient } from "../lib/cli/recipient.ts";
import { Contacts } from "../lib/state/contacts.ts";
import { cli, type CliResult, tmpDir } from "./_helpers.ts";
import { HAVE_TMUX, runInTty } from "./_tty.ts";

const CHEAP = { m: 256, t: 1, p: 1 };
const SEED = new Uint8Array(32).fill(0x42);
const KP = keypairFromSeed(SEED);
const Z32 = encodeZ32(KP.publicKey);

function assertExit(r: CliResult, code: number, what: string) {
  assert.equal(r.code, code, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

async function modeOf(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

/** A home with a cheap identity of SEED under `pass` and no public_key file. */
async function cheapHome(home: string, pass = "pw"): Promise<void> {
  await Deno.mkdir(home, { recursive: true, mode: 0o700 });
  await Deno.writeFile(`${home}/secret_key`, await encodeIdentityFile(SEED, pass, CHEAP), {
    mode: 0o600,
  });
  await Deno.chmod(`${home}/secret_key`, 0o600);
}

// ---------------------------------------------------------------------------------------------
// --ttl
// ---------------------------------------------------------------------------------------------

Deno.test("--ttl: seconds, s/m/h/d/w suffixes; zero, junk and overflow are usage errors", () => {
  const ok: Array<[string, number]> = [
    ["30m", 1800],
    ["1h", 3600],
    ["1d", 86400],
    ["7d", 604800],
    ["90s", 90],
    ["2w", 1209600],
    ["86400", 86400],
    [" 1H ", 3600],
    ["1", 1],
  ];
  for (const [text, secs] of ok) assert.equal(parseDuration(text), secs, text);
  for (const bad of ["0", "0m", "", "1.5h", "-1", "1y", "h", "1 h", "1e3", "9999999999999"]) {
    assert.throws(() => parseDuration(bad), (e: unknown) => {
      assert.ok(e instanceof CipherpostError && e.kind === "usage", bad);
      assert.match((e as Error).message, /--ttl takes seconds, or a number with s, m, h, d or w/);
      return true;
    }, bad);
  }
  // another flag's error names that flag and says nothing about a share's lifetime
  assert.throws(() => parseDuration("soon", "--wait"), (e: unknown) => {
    assert.match((e as Error).message, /^--wait takes /);
    assert.doesNotMatch((e as CipherpostError).hint ?? "", /share/);
    return true;
  });
  assert.equal(formatDuration(86400), "1d");
  assert.equal(formatDuration(86400 + 7200), "1d 2h");
  assert.equal(formatDuration(3599), "59m");
  assert.equal(formatDuration(42), "42s");
});

Deno.test("sizes, minutes and the TTL line: one form each (lib/util/human.ts)", () => {
  assert.deepEqual(
    [0, 1023, 1024, 1536, 5 << 20, 3 * 2 ** 30, 2 ** 50].map(formatBytes),
    ["0 B", "1023 B", "1.0 KiB", "1.5 KiB", "5.0 MiB", "3.0 GiB", "1024.0 TiB"],
  );
  const t = Date.UTC(2026, 0, 2, 3, 4, 59) / 1000;
  assert.equal(utcMinute(t), "2026-01-02 03:04 UTC");
  assert.match(localMinute(t), /^\d{4}-\d\d-\d\d \d\d:\d\d local$/);
  const now = new Date((t - 2 * 3600 - 5 * 60 - 30) * 1000);
  assert.equal(
    ttlRemaining(t, now),
    `2h 05m remaining (expires 2026-01-02 03:04 UTC / ${localMinute(t)})`,
  );
  assert.match(ttlRemaining(t, new Date((t + 60) * 1000)), /^0h 00m remaining/);
  assert.equal(truncate("abc", 3), "abc");
  assert.equal(truncate("é".repeat(5), 3), "éé…");
});

// ---------------------------------------------------------------------------------------------
// progress
// ---------------------------------------------------------------------------------------------

Deno.test("progress: count and ETA; throttled redraws; silent when disabled; end keeps the last line", () => {
  assert.equal(formatProgress("Publishing", 0, 4, 0, { width: 8 }), "Publishing [--------] 0/4");
  // 1 of 4 done after 2 s: 3 left at 2 s each
  assert.equal(
    formatProgress("Publishing", 1, 4, 2000, { width: 8 }),
    "Publishing [##------] 1/4 ETA 6s",
  );
  assert.equal(formatProgress("Fetching", 4, 4, 9000, { width: 8 }), "Fetching [########] 4/4");
  // bytes: percentage, sizes and the average rate; the finished bar keeps the rate, no ETA
  const MiB = 1 << 20;
  assert.equal(
    formatProgress("upload", 2 * MiB, 8 * MiB, 2000, { width: 8, bytes: true }),
    "upload [##------] 25% 2.0 MiB/8.0 MiB 1.0 MiB/s ETA 6s",
  );
  assert.equal(
    formatProgress("download", 5 * MiB, 5 * MiB, 2000, { width: 4, bytes: true }),
    "download [####] 100% 5.0 MiB/5.0 MiB 2.5 MiB/s",
  );
  assert.equal(formatEta(65), "1m05s");
  assert.equal(formatEta(7260), "2h01m");

  let t = 0;
  const out: string[] = [];
  const p = startProgress("Up", {
    enabled: true,
    write: (s) => out.push(s),
    now: () => t,
    width: 4,
  });
  p.update(0, 2);
  t = 10;
  p.update(1, 2); // within the interval: skipped
  t = 1000;
  p.update(1, 2);
  p.update(2, 2); // the final state is always drawn
  p.end();
  p.update(2, 2); // after end: nothing
  assert.deepEqual(out, [
    "\r\x1b[2KUp [----] 0/2",
    "\r\x1b[2KUp [##--] 1/2 ETA 1s",
    "\r\x1b[2KUp [####] 2/2\n",
  ]);
  // a bar at time 0 of 3 units, and what it wrote
  const recorded = () => {
    const written: string[] = [];
    const bar = startProgress("Up", { enabled: true, write: (s) => written.push(s), now: () => 0 });
    bar.update(1, 3);
    return { bar, written };
  };
  const third = "\r\x1b[2KUp [########----------------] 1/3 ETA 0s";
  // clear() erases an unfinished bar for a log line; the next update draws it again at once
  const l = recorded();
  l.bar.clear();
  l.bar.update(2, 3);
  l.bar.update(3, 3);
  l.bar.clear(); // finished: nothing to erase
  assert.deepEqual(l.written, [
    third,
    "\r\x1b[2K",
    "\r\x1b[2KUp [################--------] 2/3 ETA 0s",
    "\r\x1b[2KUp [########################] 3/3\n",
  ]);
  // a bar that never finishes (a failure) still ends its line
  const c = recorded();
  c.bar.end();
  assert.deepEqual(c.written, [third, "\n"]);

  const quiet: string[] = [];
  const q = startProgress("Up", { enabled: false, write: (s) => quiet.push(s) });
  q.update(1, 2);
  q.end();
  assert.deepEqual(quiet, []);
});

// ---------------------------------------------------------------------------------------------
// QR
// ---------------------------------------------------------------------------------------------

/** Read the module matrix back from the NO_COLOR half-block drawing (drawn = light). */
function modulesOfDrawing(text: string, size: number): boolean[][] {
  const rows = text.split("\n").filter((l) =>
    /[\u2588\u2580\u2584 ]/.test(l) && !l.startsWith("(")
  );
  const dark: boolean[][] = [];
  for (let y = 0; y < size + 4; y++) {
    const line = [...(rows[Math.floor(y / 2)] ?? "")];
    const row: boolean[] = [];
    for (let x = 0; x < size + 4; x++) {
      const c = line[x] ?? " ";
      const top = c === "\u2588" || c === "\u2580";
      const bottom = c === "\u2588" || c === "\u2584";
      row.push(!(y % 2 === 0 ? top : bottom));
    }
    dark.push(row);
  }
  return dark.slice(2, size + 2).map((r) => r.slice(2, size + 2));
}

/** A greyscale picture of a module matrix: 4 pixels a module, a 4-module quiet zone. */
function imageOf(dark: boolean[][]): { width: number; height: number; data: Uint8Array } {
  const scale = 4, border = 4, side = (dark.length + 2 * border) * scale;
  const data = new Uint8Array(side * side * 4).fill(255);
  for (let y = 0; y < dark.length; y++) {
    for (let x = 0; x < dark.length; x++) {
      if (!dark[y][x]) continue;
      for (let dy = 0; dy < scale; dy++) {
        for (let dx = 0; dx < scale; dx++) {
          const px = (x + border) * scale + dx, py = (y + border) * scale + dy;
          data.fill(0, (py * side + px) * 4, (py * side + px) * 4 + 3);
        }
      }
    }
  }
  return { width: side, height: side, data };
}

Deno.test("QR: holds the receive command line; NO_COLOR has no escapes and encodes it exactly; no terminal, no code", async () => {
  const uri = `cipherpost://${Z32}/0123456789abcdef0123456789abcdef`;
  assert.equal(qrPayload(uri), `cipherpost receive ${uri}`);

  const plain = await renderQr(uri, { tty: true, noColor: true });
  assert.ok(!plain.includes("\x1b"), "no escape codes under NO_COLOR");
  assert.ok(plain.endsWith(`(QR: the command line "cipherpost receive ${uri}")\n`));
  const want = await qrModules(qrPayload(uri));
  const size = want.length;
  const drawn = modulesOfDrawing(plain, size);
  assert.deepEqual(drawn, want, "the drawing is the code of the payload");
  // and a QR reader (the encoder's own package) reads the drawing back as the payload
  assert.equal(decodeQR(imageOf(drawn)), qrPayload(uri), "the drawing decodes to the payload");

  const colour = await renderQr(uri, { tty: true, noColor: false });
  assert.ok(colour.includes("\x1b["), "colour cells on a terminal without NO_COLOR");

  const piped = await renderQr(uri, { tty: false, noColor: false });
  assert.equal(piped, "note: --qr draws only on a terminal (stderr is not one)\n");
});

// ---------------------------------------------------------------------------------------------
// keys as people paste them
// ---------------------------------------------------------------------------------------------

Deno.test("keys: pk: and z32 accepted; fingerprint, age1, secret and SSH keys name the right line", async () => {
  assert.deepEqual(parseKeyArg(`pk:${Z32}`, "--accept"), KP.publicKey);
  assert.deepEqual(parseKeyArg(` ${Z32}\n`, "--accept"), KP.publicKey);
  const cases: Array<[string, RegExp]> = [
    [sshFingerprint(KP.publicKey), /got a fingerprint \(the fingerprint: line/],
    ["SHA256:abc", /got a fingerprint/],
    ["age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq", /got an age recipient/],
    ["AGE-SECRET-KEY-1QQQQ", /got a SECRET key/],
    ["ssh-ed25519 AAAAC3Nza", /got an SSH public key/],
  ];
  for (const [text, re] of cases) {
    const e = misplacedKeyMessage(text, "--share");
    assert.ok(e, text);
    assert.match(e.message, re);
    assert.match(
      e.hint ?? "",
      /use the first line of `cipherpost identity show` \(52 characters\), or its pk: form$/,
    );
    assert.throws(() => parseKeyArg(text, "--share"), re);
  }
  // a one-character typo: either not a key at all, or a valid key (that send then warns about)
  const typo = (Z32[0] === "y" ? "b" : "y") + Z32.slice(1);
  try {
    parseKeyArg(typo, "--share");
  } catch (e) {
    assert.match((e as Error).message, /^--share needs a public key/);
  }

  const home = await tmpDir();
  const book = new Contacts(home);
  await book.add("Bob", `pk:${Z32}`);
  const byName = await resolveRecipient("bob", book);
  assert.equal(byName.z32, Z32);
  assert.equal(byName.contact?.name, "bob");
  const byKey = await resolveRecipient(Z32, book);
  assert.equal(byKey.contact?.name, "bob", "a key that is a contact is recognised as one");
  await assert.rejects(resolveRecipient("carol", book), /--share: no contact named 'carol'/);
});

// ---------------------------------------------------------------------------------------------
// contacts
// ---------------------------------------------------------------------------------------------

Deno.test("contacts: add/list/remove through the CLI; 0600 file; bad names and keys refused", async () => {
  const home = `${await tmpDir()}/home`;
  const other = encodeZ32(keypairFromSeed(new Uint8Array(32).fill(7)).publicKey);
  const add = await cli(["contacts", "add", "Bob", `pk:${Z32}`], { home });
  assertExit(add, 0, "contacts add");
  assert.equal(add.stderr, `added contact bob:\n  ${sshFingerprint(KP.publicKey)}\n  ${Z32}\n`);
  assert.equal(await modeOf(`${home}/contacts.json`), 0o600);
  assertExit(await cli(["contacts", "add", "alice", other], { home }), 0, "second contact");

  const list = await cli(["contacts", "list"], { home });
  assertExit(list, 0, "list");
  assert.equal(list.stdout, `alice  ${other}\nbob    ${Z32}\n`);
  const json = await cli(["contacts", "list", "--json"], { home });
  assert.deepEqual(JSON.parse(json.stdout).map((c: { name: string }) => c.name), ["alice", "bob"]);

  const taken = await cli(["contacts", "add", "bob", other], { home });
  assertExit(taken, 1, "a taken name");
  assert.match(taken.stderr, /contact 'bob' already exists with another key/);
  assertExit(await cli(["contacts", "add", "--force", "bob", other], { home }), 0, "--force");

  const before = await Deno.readFile(`${home}/contacts.json`);
  const bad: Array<[string[], RegExp, number]> = [
    [["contacts", "add", "-bob", Z32], /unknown option|invalid contact name/, 2],
    [["contacts", "add", "bob smith", Z32], /invalid contact name 'bob smith'/, 2],
    [["contacts", "add", "x".repeat(33), Z32], /invalid contact name/, 2],
    [["contacts", "add", "carol", sshFingerprint(KP.publicKey)], /got a fingerprint/, 2],
    [["contacts", "add", "carol", Z32.slice(0, 51)], /contacts add needs a public key/, 2],
    [["contacts", "remove", "dave"], /no contact named 'dave'/, 5],
  ];
  for (const [args, re, code] of bad) {
    const r = await cli(args, { home });
    assertExit(r, code, args.join(" "));
    assert.match(r.stderr, re, args.join(" "));
  }
  assert.deepEqual(await Deno.readFile(`${home}/contacts.json`), before, "nothing changed");

  const rm = await cli(["contacts", "remove", "alice"], { home });
  assertExit(rm, 0, "remove");
  const after = await cli(["contacts", "list"], { home });
  assert.equal(after.stdout, `bob  ${other}\n`);

  await Deno.writeTextFile(`${home}/contacts.json`, "{not json");
  const damaged = await cli(["contacts", "list"], { home });
  assertExit(damaged, 1, "damaged file");
  assert.match(damaged.stderr, /contacts\.json is damaged/);
});

// ---------------------------------------------------------------------------------------------
// identity: public key without passphrase, backup and restore, --force keeps the old file
// ---------------------------------------------------------------------------------------------

Deno.test("identity show needs no passphrase once public_key exists; an old home unlocks once and heals", async () => {
  const home = `${await tmpDir()}/home`;
  await cheapHome(home);
  // no public_key yet: show must unlock (no passphrase source → it says so)
  const locked = await cli(["identity", "show"], { home });
  assertExit(locked, 1, "show without public_key and without passphrase");
  assert.match(locked.stderr, /no terminal to ask for the passphrase on/);
  const first = await cli(["identity", "show"], { home, env: { CIPHERPOST_PASSPHRASE: "pw" } });
  assertExit(first, 0, "show unlocking");
  assert.equal(await Deno.readTextFile(`${home}/public_key`), `${Z32}\n`);
  const free = await cli(["identity", "show"], { home });
  assertExit(free, 0, "show without any passphrase source");
  assert.equal(
    free.stdout,
    `${Z32}\nfingerprint: ${sshFingerprint(KP.publicKey)}\npk:          pk:${Z32}\n` +
      `age:         ${
        JSON.parse((await cli(["identity", "show", "--json"], { home })).stdout).age_recipient
      }\n`,
  );
  // a damaged public_key is not trusted: show falls back to unlocking
  await Deno.writeTextFile(`${home}/public_key`, "garbage\n");
  assertExit(await cli(["identity", "show"], { home }), 1, "damaged public_key → must unlock");
});

Deno.test("identity export writes a passphrase-protected backup that import reads back; --age is refused by import", async () => {
  const base = await tmpDir();
  const home = `${base}/home`;
  await cheapHome(home, "old pass phrase");
  const env = { CIPHERPOST_PASSPHRASE: "old pass phrase" };
  const out = `${base}/backup.txt`;
  const ex = await cli(["identity", "export", "-o", out], { home, env });
  assertExit(ex, 0, "export -o");
  assert.equal(ex.stderr, `wrote a passphrase-protected backup of your identity to ${out}\n`);
  assert.equal(await modeOf(out), 0o600);
  const text = await Deno.readTextFile(out);
  assert.match(
    text,
    /^-----BEGIN CIPHERPOST IDENTITY BACKUP-----\n[A-Za-z0-9+/=\n]+-----END CIPHERPOST IDENTITY BACKUP-----\n$/,
  );
  assert.ok(!text.includes("old pass phrase"));
  const again = await cli(["identity", "export", "-o", out], { home, env });
  assertExit(again, 1, "export over an existing file");
  assert.match(again.stderr, /^cannot write .*: it already exists \(refusing to overwrite it\)$/m);

  const restored = `${base}/restored`;
  const wrong = await cli(["identity", "import", out], {
    home: restored,
    env: { CIPHERPOST_PASSPHRASE: "not it" },
  });
  assertExit(wrong, 4, "import with the wrong passphrase");
  const im = await cli(["identity", "import", out], { home: restored, env });
  assertExit(im, 0, "import the backup");
  assert.match(im.stderr, new RegExp(`^Imported identity:\\n  ${Z32}\\n`));
  assertExit(await cli(["identity", "check"], { home: restored, env }), 0, "unlocks with it");

  const age = await cli(["identity", "export", "--age"], { home, env });
  assertExit(age, 0, "export --age");
  const ai = await cli(["identity", "import", "-"], { home: `${base}/x`, env, stdin: age.stdout });
  assertExit(ai, 1, "import of an age key");
  assert.match(ai.stderr, /an age secret key cannot be imported: it holds only the X25519 half/);
  assert.match(ai.stderr, /hint: back up with `cipherpost identity export` \(without --age\)/);
});

Deno.test("generate --force keeps the old identity beside the new one and says where", async () => {
  const home = `${await tmpDir()}/home`;
  await cheapHome(home);
  const before = await Deno.readFile(`${home}/secret_key`);
  const env = { CIPHERPOST_PASSPHRASE: "pw" };
  const g = await cli(["identity", "generate", "--force"], { home, env });
  assertExit(g, 0, "generate --force");
  const m =
    /The identity it replaced was kept at (\S+)\n\(to go back: cipherpost identity import --force (\S+)\)\n$/
      .exec(g.stderr);
  assert.ok(m, g.stderr);
  assert.equal(m[1], m[2]);
  assert.ok(m[1].startsWith(`${home}/secret_key.replaced-`));
  assert.deepEqual(await Deno.readFile(m[1]), before, "the old file, byte for byte");
  assert.equal(await modeOf(m[1]), 0o600);
  const now = JSON.parse((await cli(["identity", "show", "--json"], { home })).stdout).z32;
  assert.notEqual(now, Z32);
  const back = await cli(["identity", "import", "--force", m[1]], { home, env });
  assertExit(back, 0, "going back");
  assert.equal(JSON.parse((await cli(["identity", "show", "--json"], { home })).stdout).z32, Z32);
});

// ---------------------------------------------------------------------------------------------
// completion and man page
// ---------------------------------------------------------------------------------------------

async function bashComplete(script: string, line: string[]): Promise<string[]> {
  const words = line.map((w) => `'${w}'`).join(" ");
  const prog = `${script}\nCOMP_WORDS=(${words}); COMP_CWORD=${line.length - 1}\n` +
    `_cipherpost_complete; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const out = await new Deno.Command("bash", { args: ["--norc", "-c", prog], stdout: "piped" })
    .output();
  return new TextDecoder().decode(out.stdout).split("\n").filter((x) => x);
}

Deno.test("completions: bash completes commands, subcommands and options from the real tree; zsh and fish list them", async () => {
  const bash = await cli(["completions", "bash"]);
  assertExit(bash, 0, "completions bash");
  const syntax = await new Deno.Command("bash", { args: ["-n", "-c", bash.stdout] }).output();
  assert.ok(syntax.success, "bash -n");
  assert.deepEqual(await bashComplete(bash.stdout, ["cipherpost", "ide"]), ["identity"]);
  assert.deepEqual(
    (await bashComplete(bash.stdout, ["cipherpost", "identity", ""])).filter((w) =>
      !w.startsWith("-")
    ),
    ["generate", "show", "check", "export", "import"],
  );
  assert.deepEqual(await bashComplete(bash.stdout, ["cipherpost", "contacts", "ad"]), ["add"]);
  assert.deepEqual(await bashComplete(bash.stdout, ["cipherpost", "contacts", "in"]), ["invite"]);
  const sendOpts = await bashComplete(bash.stdout, ["cipherpost", "send", "--sh"]);
  assert.deepEqual(sendOpts, ["--share"]);
  for (const shell of ["zsh", "fish"]) {
    const r = await cli(["completions", shell]);
    assertExit(r, 0, shell);
    for (
      const word of ["identity", "contacts", "receipts", "completions", "share", "passphrase-file"]
    ) {
      assert.ok(r.stdout.includes(word), `${shell} script mentions ${word}`);
    }
  }
});

Deno.test("man page: docs/cipherpost.1 is what the help generates (deno task man)", async () => {
  const root = new URL("..", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-P=cipherpost", "--no-prompt", "--quiet", "scripts/gen_man.ts", "--check"],
    cwd: root,
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const page = await Deno.readTextFile(`${root}docs/cipherpost.1`);
  for (const cmd of ["identity export", "contacts add", "completions", "send"]) {
    assert.ok(page.includes(`.SS ${cmd}`), cmd);
  }
});

// ---------------------------------------------------------------------------------------------
// at a terminal
// ---------------------------------------------------------------------------------------------

Deno.test({
  name:
    "TTY: the passphrase is asked on the terminal while stdin is a pipe; wrong twice, right the third time",
  ignore: !HAVE_TMUX,
  async fn() {
    const home = `${await tmpDir()}/home`;
    await cheapHome(home, "right");
    const r = await runInTty(["identity", "check"], {
      env: { CIPHERPOST_HOME: home, NO_COLOR: "1" },
      stdinText: "this is stdin, not the passphrase",
      steps: [
        { wait: /Cipherpost passphrase: $/m, type: "wrong1" },
        {
          wait: /wrong passphrase; try again \(2 tries left\)\nCipherpost passphrase: $/m,
          type: "wrong2",
        },
        { wait: /\(1 try left\)\nCipherpost passphrase: $/m, type: "right" },
      ],
    });
    assert.equal(r.code, 0, r.screen);
    assert.match(r.screen, new RegExp(`passphrase OK: it unlocks ${Z32}`));
    assert.ok(!r.screen.includes("wrong1") && !r.screen.includes("right\n"), "no echo");

    const three = await runInTty(["identity", "check"], {
      env: { CIPHERPOST_HOME: home },
      steps: [
        { wait: /passphrase: $/m, type: "a" },
        { wait: /2 tries left/, type: "b" },
        { wait: /1 try left/, type: "c" },
      ],
    });
    assert.equal(three.code, 4, three.screen);
    assert.match(three.screen, /wrong passphrase or identity decryption failed/);
  },
});

Deno.test("PIN: the error that rejects a PIN states the rules; at a terminal the PIN is asked again", async () => {
  const home = `${await tmpDir()}/home`;
  await cheapHome(home);
  const env = { CIPHERPOST_PASSPHRASE: "pw", CIPHERPOST_PIN: "1234" };
  const r = await cli(["send", "--self", "--pin", "--no-dht", "--no-relay", "-"], {
    home,
    env,
    stdin: "s3cret",
  });
  assertExit(r, 1, "weak PIN from the environment");
  assert.equal(
    r.stderr,
    "configuration error: PIN does not meet entropy requirements\n" +
      "hint: a PIN needs at least 8 characters, not all the same character, not a run such as " +
      "12345678 or abcdefgh (or the reverse), and not a common word such as password or qwerty\n",
  );
  if (!HAVE_TMUX) return;
  const t = await runInTty(["send", "--self", "--pin", "--no-dht", "--no-relay", "-"], {
    env: { CIPHERPOST_HOME: home, CIPHERPOST_PASSPHRASE: "pw", NO_COLOR: "1" },
    stdinText: "s3cret",
    steps: [
      { wait: /Share PIN: $/m, type: "1234" },
      { wait: /Confirm PIN: $/m, type: "1234" },
      {
        wait:
          /PIN rejected: a PIN needs at least 8 characters.*; try again \(2 tries left\)\nShare PIN: $/m,
        type: "correct-pin-42",
      },
      { wait: /Confirm PIN: $/m, type: "correct-pin-42" },
    ],
  });
  // the PIN was accepted: what follows is the (switched-off) network's doing
  assert.equal((t.screen.match(/PIN rejected/g) ?? []).length, 1, t.screen);
  assert.ok(!/PIN does not meet/.test(t.screen), t.screen);
  assert.ok(!t.screen.includes("correct-pin-42"), "the PIN is not echoed");
});
