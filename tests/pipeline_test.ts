// The one receive pipeline (lib/flows/share/receive.ts): a large share goes through the same
// acceptance, --accept parser, escaping, Envelope rules and pending-receipt path as a DHT share.
// Each step reproduces a defect of the large path's former copy of acceptance and receipts.
import assert from "node:assert/strict";
import {
  cli,
  type CliResult,
  ledgerText,
  makeUserWithSeed,
  PASS,
  readOnlyRelay,
  testTransport,
  tmpDir,
} from "./_helpers.ts";
import { startTestnet, type Testnet } from "../lib/testing/testnet.ts";
import { HAVE_TMUX, runInTty } from "./_tty.ts";
import { type HomeserverStandIn, startHomeserver } from "../lib/testing/homeserver.ts";
import { ageIdentityOf, generateKeypair } from "../lib/crypto/keys.ts";
import {
  ciphertextHashOf,
  encodePointerEnvelope,
  parsePointerEnvelope,
} from "../lib/protocol/large_manifest.ts";
import { encodeEnvelope, parseEnvelope } from "../lib/protocol/record.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";
import { CipherpostError } from "../lib/util/errors.ts";

interface Person {
  home: string;
  z32: string;
  seed: Uint8Array;
}

async function person(base: string, name: string, n: number): Promise<Person> {
  const seed = new Uint8Array(32).fill(n);
  const u = await makeUserWithSeed(base, name, seed);
  return { home: u.home, z32: u.z32, seed };
}

function env(net: Testnet, extra: Record<string, string> = {}): Record<string, string> {
  return {
    CIPHERPOST_PASSPHRASE: PASS,
    CIPHERPOST_BOOTSTRAP: net.bootstrap.join(","),
    CIPHERPOST_RELAYS: net.relayUrl,
    CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK: "1",
    ...extra,
  };
}

async function run(
  p: Person,
  net: Testnet,
  args: string[],
  extra: Record<string, string> = {},
): Promise<CliResult> {
  return await cli(args, { home: p.home, env: env(net, extra) });
}

/** The receipts of `ref` in a `receipts --json` run (none when it found none). */
function receiptsIn(r: CliResult, ref: string): Array<{ recipient_pubkey: string }> {
  if (r.code !== 0 || r.stdout.trim() === "") return [];
  const j = JSON.parse(r.stdout);
  const all: Array<{ share_ref: string; recipient_pubkey: string }> = Array.isArray(j) ? j : [j];
  return all.filter((x) => x.share_ref === ref);
}

/** A 100 KiB file (over the DHT's 64 KiB: it goes as a large share). */
async function payload(path: string, fill: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(100 * 1024).fill(fill);
  await Deno.writeFile(path, bytes);
  return bytes;
}

Deno.test("one receive pipeline: large shares are accepted, escaped and receipted like any share", async (t) => {
  const base = await tmpDir("cp-pipeline-");
  const net = await startTestnet({ nodes: 12 });
  const tr = testTransport(net);
  let hs: HomeserverStandIn | null = null;
  try {
    hs = await startHomeserver({ signupMode: "open", transport: tr });
    const alice = await person(base, "alice", 21);
    const bob = await person(base, "bob", 22);
    const up = await run(alice, net, ["homeserver", "signup", hs.key]);
    assert.equal(up.code, 0, up.stderr);

    await t.step("--accept takes the pk: form and a contact name on a large share", async () => {
      const src = `${base}/report.bin`;
      const bytes = await payload(src, 1);
      for (const [k, accept] of [`pk:${alice.z32}`, "alice"].entries()) {
        if (accept === "alice") {
          const c = await run(bob, net, ["contacts", "add", "alice", alice.z32]);
          assert.equal(c.code, 0, c.stderr);
        }
        const s = await run(alice, net, [
          "send",
          "--share",
          bob.z32,
          "-p",
          "q3",
          "--material-file",
          src,
        ]);
        assert.equal(s.code, 0, s.stderr);
        const out = `${base}/accepted-${k}.bin`;
        const r = await run(bob, net, ["receive", s.stdout.trim(), "--accept", accept, "-o", out]);
        assert.equal(r.code, 0, `--accept ${accept}: ${r.stderr}`);
        assert.deepEqual(await Deno.readFile(out), bytes);
        assert.match(r.stderr, /Type: +large file "report\.bin"/);
        assert.match(r.stderr, /From: +homeserver /, "the screen names the homeserver");
        assert.match(r.stderr, /wrote 102400 bytes \(file\) to /);
        if (accept === "alice") assert.match(r.stderr, /your contact "alice"/);
        else assert.match(r.stderr, /\(not in your contacts\)/);
      }
    });

    await t.step({
      name: "at a terminal, a typo at a large share's prompt is asked again (three tries)",
      ignore: !HAVE_TMUX,
      fn: async () => {
        const src = `${base}/typo.bin`;
        const bytes = await payload(src, 5);
        const s = await run(alice, net, ["send", "--share", bob.z32, "--material-file", src]);
        assert.equal(s.code, 0, s.stderr);
        const typo = alice.z32.slice(0, 10) + (alice.z32[10] === "y" ? "b" : "y") +
          alice.z32.slice(11);
        const out = `${base}/typo.out`;
        const r = await runInTty(["receive", s.stdout.trim(), "-o", out], {
          env: { ...env(net), CIPHERPOST_HOME: bob.home, NO_COLOR: "1" },
          steps: [
            { wait: /press Enter \(an empty line declines\):\n> $/m, type: typo },
            { wait: /that is not the sender's key .*\(2 tries left\):\n> $/m, type: alice.z32 },
          ],
        });
        assert.equal(r.code, 0, r.screen);
        assert.deepEqual(await Deno.readFile(out), bytes);
      },
    });

    await t.step(
      "bidi controls in a large share's name and purpose are shown escaped",
      async () => {
        const name = "invoice\u202Efdp.exe";
        const src = `${base}/${name}`;
        await payload(src, 2);
        const s = await run(alice, net, [
          "send",
          "--share",
          bob.z32,
          "-p",
          "pay \u2067me",
          "--material-file",
          src,
        ]);
        assert.equal(s.code, 0, s.stderr);
        const r = await run(bob, net, [
          "receive",
          s.stdout.trim(),
          "--accept",
          alice.z32,
          "-o",
          `${base}/invoice.out`,
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(!r.stderr.includes("\u202E"), "no raw right-to-left override on the screen");
        assert.ok(!r.stderr.includes("\u2067"), "no raw isolate on the screen");
        assert.match(r.stderr, /Type: +large file "invoice\\u202efdp\.exe"/);
        assert.match(r.stderr, /Purpose: +"pay \\u2067me"/);
      },
    );

    await t.step(
      "two receives of a large share into the same new path: one writes it, the other is refused",
      async () => {
        // two homes of one identity (no shared lock), racing for the same new file
        const twin = await person(base, "bob-twin", 22);
        for (let round = 0; round < 2; round++) {
          const src = `${base}/race-${round}.bin`;
          const bytes = await payload(src, 8 + round);
          const s = await run(alice, net, ["send", "--share", bob.z32, "--material-file", src]);
          assert.equal(s.code, 0, s.stderr);
          const out = `${base}/race-${round}.out`;
          const args = ["receive", s.stdout.trim(), "--accept", alice.z32, "-o", out];
          const [a, b] = await Promise.all([run(bob, net, args), run(twin, net, args)]);
          const codes = [a.code, b.code].sort();
          assert.deepEqual(codes, [0, 1], `${a.stderr}\n---\n${b.stderr}`);
          const loser = a.code === 1 ? a : b;
          assert.match(loser.stderr, /already exists|appeared while/);
          assert.deepEqual(await Deno.readFile(out), bytes, "the winner's file, whole");
        }
      },
    );

    await t.step({
      name: "a target that appears while the acceptance prompt waits is left as it is (no --force)",
      ignore: !HAVE_TMUX,
      fn: async () => {
        // the interleaving of the race above, made certain: the path is free when the receive
        // checks it and taken by someone else before the receive places its result
        const src = `${base}/appears.bin`;
        await payload(src, 11);
        const s = await run(alice, net, ["send", "--share", bob.z32, "--material-file", src]);
        assert.equal(s.code, 0, s.stderr);
        const out = `${base}/appears.out`;
        const theirs = new TextEncoder().encode("written by someone else meanwhile\n");
        const r = await runInTty(["receive", s.stdout.trim(), "-o", out], {
          env: { ...env(net), CIPHERPOST_HOME: bob.home, NO_COLOR: "1" },
          steps: [{
            wait: /press Enter \(an empty line declines\):\n> $/m,
            then: () => Deno.writeFile(out, theirs),
            type: alice.z32,
          }],
        });
        assert.equal(r.code, 1, r.screen);
        assert.match(r.screen, /appeared while this share was being received/);
        assert.deepEqual(await Deno.readFile(out), theirs, "the other file, untouched");
      },
    });

    await t.step(
      "claude pickup of a large share that is no session: refused, not accepted, nothing kept",
      async () => {
        const dir = `${base}/not-a-session`;
        await Deno.mkdir(dir);
        await payload(`${dir}/a.bin`, 6);
        const notGzip = `${base}/not-gzip.tar.gz`;
        await payload(notGzip, 7);
        const cfg = `${base}/claude-config`;
        for (
          const [src, why] of [[dir, /is a folder, not a Claude Code session/], [
            notGzip,
            /not a Claude Code session bundle|invalid material/,
          ]] as const
        ) {
          const s = await run(alice, net, ["send", "--share", bob.z32, "--material-file", src]);
          assert.equal(s.code, 0, s.stderr);
          const before = await ledgerText(bob.home);
          const r = await run(bob, net, [
            "claude",
            "pickup",
            s.stdout.trim(),
            "--accept",
            alice.z32,
            "--no-launch",
          ], { CLAUDE_CONFIG_DIR: cfg, HOME: base });
          assert.equal(r.code, 1, r.stderr);
          assert.match(r.stderr, why);
          assert.equal(await ledgerText(bob.home), before, "not accepted, no receipt");
          const kept: string[] = [];
          try {
            for await (const e of Deno.readDir(`${bob.home}/state/claude`)) kept.push(e.name);
          } catch { /* never made */ }
          assert.deepEqual(kept, [], "nothing kept in the home");
        }
      },
    );

    await t.step(
      "a large share's receipt that could not be published is kept and goes out on re-receive",
      async () => {
        const src = `${base}/kept.bin`;
        const bytes = await payload(src, 4);
        const s = await run(alice, net, [
          "send",
          "--share",
          bob.z32,
          "-p",
          "kept",
          "--json",
          "--material-file",
          src,
        ]);
        assert.equal(s.code, 0, s.stderr);
        const info = JSON.parse(s.stdout);
        // a relay that serves reads but refuses every write (and no DHT): the share delivers,
        // the receipt publish fails
        const ro = readOnlyRelay(net);
        const out = `${base}/kept.out`;
        try {
          const r = await run(bob, net, [
            "receive",
            info.uri,
            "--accept",
            alice.z32,
            "-o",
            out,
            "--no-dht",
          ], { CIPHERPOST_RELAYS: `http://127.0.0.1:${ro.addr.port}` });
          assert.equal(r.code, 0, r.stderr);
          assert.match(r.stderr, /receipt publish failed/);
          assert.deepEqual(await Deno.readFile(out), bytes);
        } finally {
          await ro.shutdown();
        }
        const none = await run(alice, net, [
          "receipts",
          "--from",
          bob.z32,
          "--share-ref",
          info.share_ref,
          "--json",
        ]);
        assert.deepEqual(receiptsIn(none, info.share_ref), [], "no receipt on the network yet");
        const again = await run(bob, net, ["receive", info.uri, "--accept", alice.z32, "-o", out]);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stderr, /receipt was never published: publishing it now/);
        const rc = await run(alice, net, [
          "receipts",
          "--from",
          bob.z32,
          "--share-ref",
          info.share_ref,
          "--json",
        ]);
        assert.equal(rc.code, 0, rc.stderr);
        const got = receiptsIn(rc, info.share_ref);
        assert.equal(got.length, 1, `receipt missing after re-receive: ${rc.stdout}${rc.stderr}`);
        assert.equal(got[0].recipient_pubkey, bob.z32);
      },
    );
  } finally {
    await hs?.close();
    await tr.close();
    await net.close();
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("Envelope rules: a C0 control in the purpose is refused in a pointer Envelope as in a material one", () => {
  // a hostile sender writes the control as a JSON escape (an honest one cannot: canonical JSON
  // refuses it); before the one rule, the pointer Envelope let it through, the payload was
  // written, and signing the receipt failed ("internal error", no receipt)
  const hashes = ["11", "22"].map((x) => x.repeat(32));
  const pointer = encodePointerEnvelope({
    burnAfterRead: false,
    createdAt: 1700000000,
    purpose: "ring BELL",
    pointer: {
      blobId: "ab".repeat(16),
      ciphertextHash: ciphertextHashOf(hashes),
      compression: "none",
      contentIdentity: ageIdentityOf(new Uint8Array(32).fill(9)),
      fileCount: 1,
      homeserver: encodeZ32(generateKeypair().publicKey),
      kind: "file",
      name: "x.bin",
      partHashes: hashes,
      partSize: 1 << 20,
      parts: 2,
      size: (1 << 20) + 5,
      topEntries: [],
      version: 1,
    },
  });
  const material = encodeEnvelope({
    burnAfterRead: false,
    createdAt: 1700000000,
    material: { type: "generic_secret", bytes: new Uint8Array([1, 2, 3]) },
    protocolVersion: 2,
    purpose: "ring BELL",
  });
  const hostile = (b: Uint8Array) =>
    new TextEncoder().encode(new TextDecoder().decode(b).replace("BELL", "\\u0007"));
  const refused = (e: unknown) =>
    e instanceof CipherpostError && e.kind === "signature" &&
    /control character/.test(e.cause as string ?? e.message);
  assert.equal(parsePointerEnvelope(pointer).purpose, "ring BELL", "the clean form parses");
  assert.throws(
    () => parsePointerEnvelope(hostile(pointer)),
    refused,
  );
  assert.throws(
    () => parseEnvelope(hostile(material)),
    refused,
  );
});
