// Attacks with the real CLI on a local testnet: forged receipts, republish after revoke, hostile
// text, hostile times, echoed option values, -o onto filesystem nodes, lost receipts, size caps,
// an unreachable DHT, bad local input, the ledger consulted before the URI is checked, a closed
// stdout, and edge cases under one's own key. Each test failed before its fix.
import assert from "node:assert/strict";
import { ageEncrypt } from "../lib/crypto/age.ts";
import { compactJson } from "../lib/util/canonical_json.ts";
import { b64decode, b64encode, utf8 } from "../lib/util/encoding.ts";
import {
  ageRecipientOfEd,
  generateKeypair,
  type Keypair,
  keypairFromSeed,
  sign,
} from "../lib/crypto/keys.ts";
import {
  decodeDnsPacket,
  type DnsRecord,
  encodeDnsPacket,
  txtRecord,
  txtText,
} from "../lib/pkarr/dns.ts";
import { encodeZ32, parsePublicKey } from "../lib/pkarr/public_key.ts";
import {
  outerRecordJson,
  parseAndVerifyOuterRecord,
  receiptJson,
  sha256Hex,
  shareRef,
  signOuterRecord,
  signReceipt,
} from "../lib/protocol/record.ts";
import { overflowSlotOf } from "../lib/protocol/receipt_slot.ts";
import { publishToSlot } from "../lib/flows/share/receipt_slot_io.ts";
import { parseShareUri } from "../lib/protocol/share_uri.ts";
import { publishV2Receipt } from "../lib/flows/share/v2_transfer.ts";
import { signable, signPacket } from "../lib/pkarr/signed_packet.ts";
import { startTestnet, type Testnet } from "../lib/testing/testnet.ts";
import {
  cli,
  ledgerText,
  makeUser,
  makeUserWithSeed,
  readOnlyRelay,
  receiveAs,
  sendAs,
  testTransport,
  tmpDir,
  type User,
  withTestnet,
} from "./_helpers.ts";

const NOW = () => Math.floor(Date.now() / 1000);
// deno-lint-ignore no-control-regex
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/** Publish `records` as the whole packet of `seed`'s key (newer than what is there). */
async function publishRecords(net: Testnet, seed: Uint8Array, records: DnsRecord[], ts?: number) {
  const kp = keypairFromSeed(seed);
  const t = testTransport(net);
  try {
    const cur = await t.resolve(kp.publicKey);
    const stamp = ts ?? Math.max(Date.now() * 1000, (cur?.packet.timestamp ?? 0) + 1);
    await t.publish(signPacket(seed, records, stamp));
  } finally {
    await t.close();
  }
}

/** A validly signed v1 share from `sender` (known seed) to `to`, with hostile fields. */
async function craftV1(
  net: Testnet,
  senderSeed: Uint8Array,
  to: User,
  o: { purpose?: string; createdAt?: number; ttl?: bigint } = {},
): Promise<string> {
  const sender = keypairFromSeed(senderSeed);
  const createdAt = o.createdAt ?? NOW();
  const env = utf8(compactJson({
    created_at: createdAt,
    material: { bytes: b64encode(utf8("crafted secret")), type: "generic_secret" },
    protocol_version: 1,
    purpose: o.purpose ?? "crafted",
  }));
  const outer = await ageEncrypt(env, ageRecipientOfEd(parsePublicKey(to.z32)));
  const ref = shareRef(outer, createdAt);
  const record = signOuterRecord({
    blob: b64encode(outer),
    createdAt,
    pinRequired: false,
    protocolVersion: 1,
    pubkey: encodeZ32(sender.publicKey),
    recipient: to.z32,
    shareRef: ref,
    ttlSeconds: o.ttl ?? 86400n,
  }, senderSeed);
  await publishRecords(net, senderSeed, [txtRecord("_cipherpost", 300, outerRecordJson(record))]);
  return `cipherpost://${encodeZ32(sender.publicKey)}/${ref}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** The v1 share record currently in `sender`'s packet. */
async function v1RecordOf(net: Testnet, z32: string) {
  const t = testTransport(net);
  try {
    const r = await t.resolve(parsePublicKey(z32));
    const rec = r?.packet.records.find((x) => x.name.startsWith("_cipherpost."));
    return rec ? parseAndVerifyOuterRecord(txtText(rec)!) : null;
  } finally {
    await t.close();
  }
}

Deno.test("attacks with the CLI: forged receipts, hostile input, bad output paths, lost receipts", async (t) => {
  const base = await tmpDir("cp-attacks-");
  await withTestnet(async (net) => {
    const aliceSeed = crypto.getRandomValues(new Uint8Array(32));
    const alice = await makeUserWithSeed(base, "alice", aliceSeed);
    const bob = await makeUser(base, "bob");
    const mallory: Keypair = generateKeypair();

    await t.step(
      "a receipt signed by a third key is not counted (v1 overflow slot)",
      async () => {
        const s = await sendAs(alice, net, ["--share", bob.z32, "-p", "s1", "--json", "-"], "s1");
        assert.equal(s.code, 0, s.stderr);
        const { share_ref: ref } = JSON.parse(s.stdout);
        const rec = (await v1RecordOf(net, alice.z32))!;
        const outer = b64decode(rec.blob);
        const forged = signReceipt({
          acceptedAt: NOW(),
          ciphertextHash: sha256Hex(outer),
          cleartextHash: "0".repeat(64),
          nonce: "1".repeat(32),
          protocolVersion: 1,
          purpose: "s1",
          recipientPubkey: encodeZ32(mallory.publicKey),
          senderPubkey: alice.z32,
          shareRef: ref,
        }, mallory.seed);
        const tr = testTransport(net);
        try {
          await publishToSlot(tr, overflowSlotOf(outer), receiptJson(forged));
        } finally {
          await tr.close();
        }
        const r = await cli(["receipts", "--from", bob.z32, "--json"], {
          home: alice.home,
          env: alice.env,
          net,
        });
        // no valid receipt: `receipts --json` prints [] (exit 0) — the forged one is not listed
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(JSON.parse(r.stdout), [], `forged receipt listed: ${r.stdout}`);
        assert.ok(!r.stdout.includes(encodeZ32(mallory.publicKey)), r.stdout);
        // bob's real receipt counts
        const rb = await receiveAs(bob, net, JSON.parse(s.stdout).uri, [
          "--accept",
          alice.z32,
          "-o",
          `${base}/s1.out`,
        ]);
        assert.equal(rb.code, 0, rb.stderr);
        const r2 = await cli(["receipts", "--from", bob.z32, "--json"], {
          home: alice.home,
          env: alice.env,
          net,
        });
        assert.equal(r2.code, 0, r2.stderr);
        const listed = JSON.parse(r2.stdout) as Array<Record<string, string>>;
        assert.ok(listed.every((x) => x.recipient_pubkey === bob.z32), r2.stdout);
        assert.ok(listed.some((x) => x.share_ref === ref), r2.stdout);
      },
    );

    await t.step(
      "a v2 receipt slot written by a third key, or for another share, is not counted",
      async () => {
        const big = crypto.getRandomValues(new Uint8Array(3000));
        await Deno.writeFile(`${base}/s1v2.bin`, big);
        const s = await sendAs(alice, net, [
          "--share",
          bob.z32,
          "--material-file",
          `${base}/s1v2.bin`,
          "--json",
        ]);
        assert.equal(s.code, 0, s.stderr);
        const info = JSON.parse(s.stdout);
        const uri = parseShareUri(info.uri);
        assert.equal(uri.version, 2);
        const forged = (signer: Keypair, over: Partial<{ shareRef: string; hash: string }>) =>
          signReceipt({
            acceptedAt: NOW(),
            ciphertextHash: over.hash ?? "a".repeat(64),
            cleartextHash: "0".repeat(64),
            nonce: "2".repeat(32),
            protocolVersion: 2,
            purpose: "",
            recipientPubkey: encodeZ32(signer.publicKey),
            senderPubkey: alice.z32,
            shareRef: over.shareRef ?? info.share_ref,
          }, signer.seed);
        const tr = testTransport(net);
        try {
          if (uri.version !== 2) throw new Error("v2 expected");
          await publishV2Receipt(tr, uri.locator, receiptJson(forged(mallory, {})));
        } finally {
          await tr.close();
        }
        const r = await cli(["receipts", "--from", bob.z32, "--share-ref", info.share_ref], {
          home: alice.home,
          env: alice.env,
          net,
        });
        assert.notEqual(r.code, 0, `forged v2 receipt listed: ${r.stdout}`);
        assert.ok(!r.stdout.includes(encodeZ32(mallory.publicKey)), r.stdout);
      },
    );

    await t.step(
      "republish after revoke does not bring the share back; receipts survive",
      async () => {
        const carol = await makeUser(base, "carol");
        const s = await sendAs(carol, net, ["--share", bob.z32, "-p", "s2", "--json", "-"], "s2");
        assert.equal(s.code, 0, s.stderr);
        const ref = JSON.parse(s.stdout).share_ref;
        const rv = await cli(["revoke", ref], { home: carol.home, env: carol.env, net });
        assert.equal(rv.code, 0, rv.stderr);
        const fresh = await startTestnet({ nodes: 6 });
        try {
          const rp = await cli(["republish"], { home: carol.home, env: carol.env, net: fresh });
          assert.equal(rp.code, 0, rp.stderr);
          assert.equal(await v1RecordOf(fresh, carol.z32), null, "revoked share republished");
        } finally {
          await fresh.close();
        }
        // a receipt write updates the saved copy too: the recipient's republish keeps it
        const dave = await makeUser(base, "dave");
        const s2 = await sendAs(carol, net, ["--share", dave.z32, "-p", "s2b", "--json", "-"], "x");
        assert.equal(s2.code, 0, s2.stderr);
        const ref2 = JSON.parse(s2.stdout).share_ref;
        const rr = await receiveAs(dave, net, JSON.parse(s2.stdout).uri, [
          "--accept",
          carol.z32,
          "-o",
          `${base}/s2.out`,
        ]);
        assert.equal(rr.code, 0, rr.stderr);
        const fresh2 = await startTestnet({ nodes: 6 });
        try {
          const rp = await cli(["republish"], { home: dave.home, env: dave.env, net: fresh2 });
          assert.equal(rp.code, 0, rp.stderr);
          const tr = testTransport(fresh2);
          try {
            const p = await tr.resolve(parsePublicKey(dave.z32));
            assert.ok(
              p?.packet.records.some((x) => x.name.startsWith(`_cprcpt-${ref2}`)),
              "receipt missing after the recipient's republish",
            );
          } finally {
            await tr.close();
          }
        } finally {
          await fresh2.close();
        }
      },
    );

    await t.step(
      "a control character in a signed purpose is refused before anything is written",
      async () => {
        const uri = await craftV1(net, aliceSeed, bob, { purpose: "ring\u0007bell" });
        const out = `${base}/s3.out`;
        const r = await receiveAs(bob, net, uri, ["--accept", alice.z32, "-o", out]);
        assert.equal(r.code, 3, r.stderr);
        assert.doesNotMatch(r.stderr, /internal error|ACCEPTANCE/);
        assert.equal(await exists(out), false, "nothing written");
      },
    );

    await t.step("bidi controls in a purpose reach the acceptance screen escaped", async () => {
      const s = await sendAs(alice, net, ["--self", "-p", "pay \u202eoot", "-"], "x");
      assert.equal(s.code, 0, s.stderr);
      const r = await receiveAs(alice, net, s.uri, ["--accept", alice.z32, "-o", `${base}/s3b`]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!RAW_CONTROL.test(r.stderr), JSON.stringify(r.stderr));
      assert.match(r.stderr, /pay \\u202eoot/);
    });

    await t.step("dht resolve prints names and TXT text escaped", async () => {
      const kp = generateKeypair();
      await publishRecords(net, kp.seed, [
        txtRecord("_evil", 300, "\u001b]0;owned\u0007\u001b[2J\u0000end"),
      ]);
      for (const json of [false, true]) {
        const r = await cli([
          "dht",
          "resolve",
          encodeZ32(kp.publicKey),
          ...(json ? ["--json"] : []),
        ], {
          net,
        });
        assert.equal(r.code, 0, r.stderr);
        assert.ok(!RAW_CONTROL.test(r.stdout), JSON.stringify(r.stdout));
        if (!json) assert.match(r.stdout, /\\x1b\]0;owned\\x07/);
      }
    });

    await t.step(
      "a share dated ten years ahead is refused (not valid yet), nothing shown",
      async () => {
        const uri = await craftV1(net, aliceSeed, bob, { createdAt: NOW() + 10 * 365 * 86400 });
        const r = await receiveAs(bob, net, uri, ["--accept", alice.z32, "-o", `${base}/s4.out`]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /not valid yet/);
        assert.doesNotMatch(r.stderr, /ACCEPTANCE/);
      },
    );

    await t.step("ttl 2^64-1 is refused, never shown as NaN", async () => {
      const uri = await craftV1(net, aliceSeed, bob, { ttl: (1n << 64n) - 1n });
      const r = await receiveAs(bob, net, uri, ["--accept", alice.z32, "-o", `${base}/s4b.out`]);
      assert.notEqual(r.code, 0);
      assert.doesNotMatch(r.stderr, /NaN/);
    });

    await t.step("a mistyped option never echoes its value", async () => {
      for (
        const args of [["--pasphrase=Hunter2"], ["--pasphrase", "Hunter2"], [
          "--passphrase-fil=Hunter2",
        ]]
      ) {
        const r = await cli(["identity", "show", ...args], { home: bob.home, env: bob.env });
        assert.equal(r.code, 2, r.stderr);
        assert.ok(!(r.stderr + r.stdout).includes("Hunter2"), r.stderr);
      }
    });

    await t.step(
      "-o onto a directory, a symlink or a device is refused before the acceptance screen",
      async () => {
        const dir = `${base}/s7dir`;
        await Deno.mkdir(dir);
        const target = `${base}/s7target`;
        await Deno.writeTextFile(target, "keep me");
        const link = `${base}/s7link`;
        await Deno.symlink(target, link);
        const outs: Array<[string, string[]]> = [[dir, []], [dir, ["--force"]], [link, [
          "--force",
        ]]];
        const id = await new Deno.Command("id", { args: ["-u"], stdout: "piped" }).output();
        const isRoot = new TextDecoder().decode(id.stdout).trim() === "0";
        const dev = `${base}/s7null`;
        if (isRoot) {
          const mk = await new Deno.Command("mknod", { args: [dev, "c", "1", "3"] }).output();
          if (mk.code === 0) outs.push([dev, ["--force"]]);
        }
        for (const [k, [out, extra]] of outs.entries()) {
          const s = await sendAs(alice, net, ["--self", "-p", "s7", "-"], "s7 secret");
          assert.equal(s.code, 0, s.stderr);
          const r = await receiveAs(alice, net, s.uri, [
            "--accept",
            alice.z32,
            "-o",
            out,
            ...extra,
          ]);
          assert.equal(r.code, 1, `${out} ${extra}: ${r.stderr}`);
          assert.doesNotMatch(r.stderr, /ACCEPTANCE/, `${out}: checked before the screen`);
          assert.doesNotMatch(r.stderr, /--force/, `${out}: no useless --force hint`);
          // not consumed: a receive to a proper path still works
          const ok = await receiveAs(alice, net, s.uri, [
            "--accept",
            alice.z32,
            "-o",
            `${base}/s7ok${k}`,
          ]);
          assert.equal(ok.code, 0, ok.stderr);
        }
        assert.ok((await Deno.lstat(dir)).isDirectory);
        assert.ok((await Deno.lstat(link)).isSymlink);
        assert.equal(await Deno.readTextFile(target), "keep me");
        if (isRoot && await exists(dev)) {
          const st = await Deno.lstat(dev);
          assert.ok(st.isCharDevice, "the device node is still a device");
        }
      },
    );

    await t.step(
      "an existing file without --force is refused before the acceptance screen",
      async () => {
        const s = await sendAs(alice, net, ["--self", "-p", "s7b", "-"], "s7b");
        const out = `${base}/s7b.out`;
        await Deno.writeTextFile(out, "old");
        const r = await receiveAs(alice, net, s.uri, ["--accept", alice.z32, "-o", out]);
        assert.equal(r.code, 1, r.stderr);
        assert.doesNotMatch(r.stderr, /ACCEPTANCE/);
        assert.equal(await Deno.readTextFile(out), "old");
      },
    );

    await t.step(
      "a receipt the ledger says was never published goes out on re-receive",
      async () => {
        const s = await sendAs(alice, net, ["--share", bob.z32, "-p", "r2", "--json", "-"], "r2");
        assert.equal(s.code, 0, s.stderr);
        const info = JSON.parse(s.stdout);
        // receive through a relay that serves reads but refuses every write (and no DHT): the
        // share delivers, the receipt publish fails (the warning path)
        const ro = readOnlyRelay(net);
        try {
          const r = await cli(
            ["receive", info.uri, "--accept", alice.z32, "-o", `${base}/r2.out`, "--no-dht"],
            {
              home: bob.home,
              env: { ...bob.env, CIPHERPOST_RELAYS: `http://127.0.0.1:${ro.addr.port}` },
            },
          );
          assert.equal(r.code, 0, r.stderr);
          assert.match(r.stderr, /receipt publish failed/);
        } finally {
          await ro.shutdown();
        }
        const again = await receiveAs(bob, net, info.uri, [
          "--accept",
          alice.z32,
          "-o",
          `${base}/r2.out`,
        ]);
        assert.equal(again.code, 0, again.stderr);
        const rc = await cli([
          "receipts",
          "--from",
          bob.z32,
          "--share-ref",
          info.share_ref,
          "--json",
        ], {
          home: alice.home,
          env: alice.env,
          net,
        });
        assert.equal(rc.code, 0, `receipt still missing after re-receive: ${rc.stderr}`);
      },
    );

    await t.step("material larger than the cap is refused without reading it all", async () => {
      const r = await sendAs(alice, net, ["--self", "--material-file", "/dev/zero"]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /exceeds|too large/);
      const big = new Uint8Array(3 * 1024 * 1024);
      const r2 = await sendAs(alice, net, ["--self", "-"], big);
      assert.equal(r2.code, 1, r2.stderr);
      assert.match(r2.stderr, /exceeds|too large/);
    });

    await t.step(
      "an unreachable DHT is a network error (exit 6), not 'not found'",
      async () => {
        // a port nobody listens on (a free TCP port; the UDP port of that number is free too)
        const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const port = (l.addr as Deno.NetAddr).port;
        l.close();
        const env = { CIPHERPOST_BOOTSTRAP: `127.0.0.1:${port}` };
        const r = await cli(["dht", "resolve", alice.z32, "--no-relay", "--timeout", "300"], {
          env,
        });
        assert.equal(r.code, 6, r.stderr);
        const rc = await cli(["receipts", "--from", bob.z32, "--no-relay", "--timeout", "300"], {
          home: alice.home,
          env: { ...alice.env, ...env },
        });
        assert.equal(rc.code, 6, rc.stderr);
      },
    );

    await t.step(
      "bad local input gets a clear message and a documented exit code",
      async () => {
        const cases: Array<[string, string[], Record<string, string>, number]> = [
          ["empty passphrase", ["identity", "check"], { CIPHERPOST_PASSPHRASE: "" }, 4],
          [
            "passphrase file is a directory",
            ["identity", "check", "--passphrase-file", base],
            {},
            1,
          ],
          ["receipt verify of a missing file", ["receipt", "verify", `${base}/nope.json`], {}, 1],
        ];
        for (const [label, args, env, code] of cases) {
          const r = await cli(args, { home: bob.home, env: { ...bob.env, ...env } });
          assert.equal(r.code, code, `${label}: ${r.stderr}`);
          assert.doesNotMatch(r.stderr, /internal error/, label);
        }
        const g = await cli(["identity", "generate"], {
          home: `${base}/r5empty`,
          env: { CIPHERPOST_PASSPHRASE: "" },
        });
        assert.notEqual(g.code, 0, "an empty passphrase is refused at generate time");
        assert.doesNotMatch(g.stderr, /internal error/);
        assert.equal(await exists(`${base}/r5empty/secret_key`), false);
      },
    );

    await t.step(
      "a closed, full or reader-less (`| true`) stdout: nothing marked accepted, no receipt",
      async () => {
        // the last: a pipe whose read end is closed before cipherpost starts, as `| true`
        // leaves it once `true` has exited (made deterministic: no race with the reader)
        const readerGone = `exec python3 -c 'import os,sys; r,w=os.pipe(); os.close(r); ` +
          `os.dup2(w,1); os.execvp(sys.argv[1], sys.argv[1:])' "$@"`;
        for (const shell of ['exec "$@" >&-', 'exec "$@" > /dev/full', readerGone]) {
          const s = await sendAs(alice, net, ["--self", "-p", "r7", "--burn", "-"], "burn me");
          assert.equal(s.code, 0, s.stderr);
          const r = await cli(["receive", s.uri, "--accept", alice.z32, "-o", "-"], {
            home: alice.home,
            env: alice.env,
            net,
            shell,
          });
          assert.equal(r.code, 1, `${shell}: ${r.stderr}`);
          assert.doesNotMatch(r.stderr, /internal error/);
          const again = await receiveAs(alice, net, s.uri, ["--accept", alice.z32, "-o", "-"]);
          assert.equal(again.code, 0, `${shell}: the burn share was consumed: ${again.stderr}`);
          assert.equal(again.stdout, "burn me");
        }
      },
    );

    await t.step("the URI is validated before the ledger is consulted", async () => {
      const s = await sendAs(alice, net, ["--share", bob.z32, "-p", "r6", "--json", "-"], "r6");
      const info = JSON.parse(s.stdout);
      const ok = await receiveAs(bob, net, info.uri, ["--accept", alice.z32, "-o", `${base}/r6`]);
      assert.equal(ok.code, 0, ok.stderr);
      const ref = info.share_ref;
      for (const sender of [alice.z32.toUpperCase(), "y".repeat(52), "9".repeat(52)]) {
        const r = await receiveAs(bob, net, `cipherpost://${sender}/${ref}`, [
          "--accept",
          alice.z32,
        ]);
        assert.notEqual(r.code, 0, `${sender}: ${r.stderr}`);
        assert.doesNotMatch(r.stderr, /already accepted/, sender);
      }
    });

    await t.step("a foreign 255-byte name in your packet does not block v1 sends", async () => {
      const erin = crypto.getRandomValues(new Uint8Array(32));
      const e = await makeUserWithSeed(base, "erin", erin);
      const long = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`;
      // written by another tool: the name is not under erin's key (signPacket would put it there)
      const v = encodeDnsPacket([
        { name: long, ttl: 300, class: 1, data: { type: "TXT", strings: [utf8("x")] } },
      ]);
      const kp = keypairFromSeed(erin);
      const ts = Date.now() * 1000;
      const tr = testTransport(net);
      try {
        await tr.publish({
          publicKey: kp.publicKey,
          signature: sign(erin, signable(ts, v)),
          timestamp: ts,
          v,
          records: decodeDnsPacket(v),
        });
      } finally {
        await tr.close();
      }
      const s = await sendAs(e, net, ["--self", "--protocol", "1", "-p", "r8", "-"], "r8");
      assert.equal(s.code, 0, s.stderr);
    });

    await t.step("a packet stamped 2^53-1 gives a message that says what to do", async () => {
      const frank = crypto.getRandomValues(new Uint8Array(32));
      const f = await makeUserWithSeed(base, "frank", frank);
      await publishRecords(net, frank, [txtRecord("_x", 300, "y")], Number.MAX_SAFE_INTEGER);
      const s = await sendAs(f, net, ["--self", "--protocol", "1", "-"], "r8");
      assert.equal(s.code, 1, s.stderr);
      assert.match(s.stderr, /timestamp/);
      assert.match(s.stderr, /hint: /);
    });

    await t.step("an output name of NAME_MAX bytes works", async () => {
      const s = await sendAs(alice, net, ["--self", "-"], "long name");
      const out = `${base}/${"n".repeat(255)}`;
      const r = await receiveAs(alice, net, s.uri, ["--accept", alice.z32, "-o", out]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await Deno.readTextFile(out), "long name");
    });

    await t.step(
      "parallel v1 sends: one wins, the others say a live v1 share would be replaced",
      async () => {
        const gina = await makeUser(base, "gina");
        const rs = await Promise.all(
          Array.from(
            { length: 5 },
            (_, i) => sendAs(gina, net, ["--self", "--protocol", "1", "-"], `p${i}`),
          ),
        );
        assert.equal(rs.filter((r) => r.code === 0).length, 1, rs.map((r) => r.stderr).join("\n"));
        for (const r of rs.filter((r) => r.code !== 0)) {
          assert.match(r.stderr, /live v1 share/, r.stderr);
        }
      },
    );

    // the ledger was never torn along the way
    for (const u of [alice, bob]) {
      const text = await ledgerText(u.home);
      assert.ok(text === "" || text.endsWith("\n"));
    }
  });
});
