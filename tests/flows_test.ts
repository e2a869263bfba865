// Hand-off flows with the real CLI (subprocesses, one home per identity) on a real local testnet:
// round trips, PIN, burn, TTL, acceptance, wrong recipient, tampering, replay, idempotence,
// concurrency and secrecy. Attacks are crafted with the library from the test process.
import assert from "node:assert/strict";
import { txtRecord, txtText } from "../lib/pkarr/dns.ts";
import { keypairFromSeed } from "../lib/crypto/keys.ts";
import { dhtTarget, encodeZ32, parsePublicKey } from "../lib/pkarr/public_key.ts";
import { toHex } from "../lib/util/encoding.ts";
import {
  outerRecordJson,
  parseAndVerifyOuterRecord,
  signOuterRecord,
} from "../lib/protocol/record.ts";
import { signPacket } from "../lib/pkarr/signed_packet.ts";
import { receiptRecords } from "../lib/protocol/labels.ts";
import type { Testnet } from "../lib/testing/testnet.ts";
import {
  cli,
  ledgerText,
  makeUser,
  makeUserWithSeed,
  receiveAs,
  sendAs,
  testTransport,
  tmpDir,
  type User,
  withTestnet,
} from "./_helpers.ts";

const SIG = "signature verification failed";

const transport = testTransport;

async function receiptsOf(net: Testnet, user: User): Promise<string[]> {
  const t = transport(net);
  try {
    const r = await t.resolve(parsePublicKey(user.z32));
    return (r ? receiptRecords(r.packet) : []).map((x) => txtText(x) ?? "");
  } finally {
    await t.close();
  }
}

/** Replace Alice's `_cipherpost` record text in her packet (re-signed by her key, newer seq). */
async function rewriteShare(
  net: Testnet,
  seed: Uint8Array,
  edit: (text: string) => string,
): Promise<void> {
  const kp = keypairFromSeed(seed);
  const t = transport(net);
  try {
    const cur = await t.resolve(kp.publicKey);
    assert.ok(cur, "sender packet present");
    const records = cur.packet.records.map((r) =>
      r.name.startsWith("_cipherpost.") ? txtRecord("_cipherpost", r.ttl, edit(txtText(r)!)) : r
    );
    await t.publish(signPacket(seed, records, cur.packet.timestamp + 1000));
  } finally {
    await t.close();
  }
}

Deno.test("hand-off flows (v1) on a local testnet", async (t) => {
  const base = await tmpDir();
  await withTestnet(async (net) => {
    const aliceSeed = crypto.getRandomValues(new Uint8Array(32));
    const alice = await makeUserWithSeed(base, "alice", aliceSeed);
    const bob = await makeUser(base, "bob");
    const carol = await makeUser(base, "carol");

    await t.step("self round trip, v1 share, output file 0600", async () => {
      const s = await sendAs(
        alice,
        net,
        ["--self", "-p", "note to self", "--json", "-"],
        "self secret",
      );
      assert.equal(s.code, 0, s.stderr);
      const info = JSON.parse(s.stdout);
      assert.equal(info.protocol, 1);
      assert.match(info.uri, /^cipherpost:\/\/[a-z0-9]{52}\/[0-9a-f]{32}$/);
      const out = `${base}/self.txt`;
      const r = await receiveAs(alice, net, info.uri, ["--accept", alice.z32, "-o", out]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await Deno.readTextFile(out), "self secret");
      assert.equal((await Deno.stat(out)).mode! & 0o777, 0o600);
      const rv = await cli(["revoke", info.uri], { home: alice.home, env: alice.env, net });
      assert.equal(rv.code, 0, rv.stderr);
    });

    let bobUri = "";
    await t.step("cross-identity round trip, receipt verifiable offline", async () => {
      const s = await sendAs(
        alice,
        net,
        ["--share", bob.z32, "-p", "db password", "-"],
        "hunter2-db",
      );
      assert.equal(s.code, 0, s.stderr);
      bobUri = s.uri;
      assert.ok(!s.stderr.includes("hunter2-db"));
      const r = await receiveAs(bob, net, bobUri, ["--accept", alice.z32, "-o", "-"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "hunter2-db");
      assert.match(r.stderr, /Purpose: {5}"db password"/);
      assert.ok(!r.stderr.includes("hunter2-db"), "secret never on stderr");
      assert.ok(!(await ledgerText(bob.home)).includes("hunter2-db"), "secret never in the ledger");
      const rc = await cli(["receipts", "--from", bob.z32, "--json"], { home: alice.home, net });
      assert.equal(rc.code, 0, rc.stderr);
      const receipts = JSON.parse(rc.stdout);
      const ref = bobUri.split("/").pop();
      const mine = receipts.find((x: { share_ref: string }) => x.share_ref === ref);
      assert.ok(mine, "receipt for the share");
      assert.equal(mine.recipient_pubkey, bob.z32);
      const file = `${base}/receipt.json`;
      await Deno.writeTextFile(file, JSON.stringify(mine));
      const v = await cli(["receipt", "verify", file]);
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stdout, new RegExp(`share_ref: +${ref}`));
    });

    await t.step(
      "re-receive writes it again while fetchable (no new receipt); offline it says why",
      async () => {
        const ledger = await ledgerText(bob.home);
        const again = `${base}/again.txt`;
        const r = await receiveAs(bob, net, bobUri, ["-o", again]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(
          r.stderr,
          /already accepted at \d{4}-\d\d-\d\dT.*; fetching it again to write it \(no new receipt\)/,
        );
        assert.ok(!r.stderr.includes("ACCEPTANCE"), "no acceptance screen the second time");
        assert.match(
          r.stderr,
          new RegExp(`wrote 10 bytes \\(generic_secret\\) to ${again} \\(mode 0600\\)`),
        );
        assert.equal(await Deno.readTextFile(again), "hunter2-db");
        assert.equal(await ledgerText(bob.home), ledger, "no new ledger row, so no new receipt");
        const off = await receiveAs(bob, undefined, bobUri, ["-o", `${base}/off.txt`], {
          CIPHERPOST_BOOTSTRAP: "127.0.0.1:9",
          CIPHERPOST_RELAYS: "http://127.0.0.1:9",
          CIPHERPOST_TIMEOUT: "300",
        });
        assert.notEqual(off.code, 0, off.stderr);
        assert.match(off.stderr, /cannot write it again: /);
        await assert.rejects(Deno.stat(`${base}/off.txt`));
      },
    );

    await t.step("wrong recipient: exit 3 before decryption, no receipt", async () => {
      const before = await receiptsOf(net, carol);
      const r = await receiveAs(carol, net, bobUri, [
        "--accept",
        alice.z32,
        "-o",
        `${base}/carol.txt`,
      ]);
      assert.equal(r.code, 3, r.stderr);
      assert.equal(
        r.stderr.split("\n").find((l) => l.startsWith("this share")),
        `this share is addressed to someone else (${bob.z32}), not to you (${carol.z32})`,
      );
      assert.ok(!r.stderr.includes("Purpose"), "nothing from the envelope shown");
      assert.deepEqual(await receiptsOf(net, carol), before);
      assert.equal(await ledgerText(carol.home), "");
      await assert.rejects(Deno.stat(`${base}/carol.txt`));
    });

    await t.step(
      "declined: no TTY and no --accept, or a wrong key typed → exit 7, nothing written",
      async () => {
        await cli(["revoke", bobUri], { home: alice.home, env: alice.env, net });
        const s = await sendAs(alice, net, ["--share", bob.z32, "-"], "decline me");
        assert.equal(s.code, 0, s.stderr);
        const out = `${base}/declined.txt`;
        const a = await receiveAs(bob, net, s.uri, ["-o", out]);
        assert.equal(a.code, 7, a.stderr);
        assert.match(a.stderr, /--accept/);
        const b = await receiveAs(bob, net, s.uri, ["-o", out, "--accept", carol.z32]);
        assert.equal(b.code, 7, b.stderr);
        await assert.rejects(Deno.stat(out));
        assert.ok(!(await ledgerText(bob.home)).includes(s.uri.split("/").pop()!));
        // an existing output file is never replaced without --force
        await Deno.writeTextFile(out, "keep me");
        const c = await receiveAs(bob, net, s.uri, ["-o", out, "--accept", alice.z32]);
        assert.equal(c.code, 1, c.stderr);
        assert.equal(await Deno.readTextFile(out), "keep me");
        await cli(["revoke", s.uri], { home: alice.home, env: alice.env, net });
      },
    );

    const tamperCases: Array<[string, (text: string) => string]> = [
      [
        "a byte changed in the record JSON",
        (x) => x.replace('"ttl_seconds":86400', '"ttl_seconds":86401'),
      ],
      [
        "a byte changed in the blob",
        (x) => x.replace(/"blob":"(.)/, (_m, c) => `"blob":"${c === "A" ? "B" : "A"}`),
      ],
      ["the record re-signed by another key", (x) => {
        const r = parseAndVerifyOuterRecord(x);
        const mallory = keypairFromSeed(new Uint8Array(32).fill(7));
        return outerRecordJson(
          signOuterRecord({ ...r, pubkey: encodeZ32(mallory.publicKey) }, mallory.seed),
        );
      }],
    ];
    for (const [name, edit] of tamperCases) {
      await t.step(`tampering: ${name} → exit 3 before decryption, no receipt`, async () => {
        const s = await sendAs(
          alice,
          net,
          ["--share", bob.z32, "-p", "tamper", "-"],
          "tamper target",
        );
        assert.equal(s.code, 0, s.stderr);
        await rewriteShare(net, aliceSeed, edit);
        const before = await receiptsOf(net, bob);
        const r = await receiveAs(bob, net, s.uri, ["--accept", alice.z32, "-o", "-"]);
        assert.equal(r.code, 3, r.stderr);
        assert.ok(r.stderr.includes(SIG));
        assert.equal(r.stdout, "");
        assert.ok(!r.stderr.includes("tamper target") && !r.stderr.includes("Purpose"));
        assert.deepEqual(await receiptsOf(net, bob), before);
        await cli(["revoke", s.uri], { home: alice.home, env: alice.env, net });
      });
    }

    await t.step(
      "a validly signed record of A served in M's packet (URI names M) → exit 3",
      async () => {
        const s = await sendAs(alice, net, ["--share", bob.z32, "-"], "borrowed");
        const malloryKp = keypairFromSeed(new Uint8Array(32).fill(9));
        const tr = transport(net);
        try {
          const cur = await tr.resolve(keypairFromSeed(aliceSeed).publicKey);
          const rec = cur!.packet.records.find((r) => r.name.startsWith("_cipherpost."))!;
          await tr.publish(
            signPacket(
              malloryKp.seed,
              [txtRecord("_cipherpost", 300, txtText(rec)!)],
              Date.now() * 1000,
            ),
          );
        } finally {
          await tr.close();
        }
        const forged = s.uri.replace(alice.z32, encodeZ32(malloryKp.publicKey));
        const r = await receiveAs(bob, net, forged, ["--accept", encodeZ32(malloryKp.publicKey)]);
        assert.equal(r.code, 3, r.stderr);
        await cli(["revoke", s.uri], { home: alice.home, env: alice.env, net });
      },
    );

    await t.step("a replayed older packet never wins over the current one", async () => {
      const tr = transport(net);
      try {
        const first = await sendAs(alice, net, ["--share", bob.z32, "-"], "old share");
        const old = (await tr.resolve(keypairFromSeed(aliceSeed).publicKey))!.packet;
        await cli(["revoke", first.uri], { home: alice.home, env: alice.env, net });
        const second = await sendAs(alice, net, ["--share", bob.z32, "-"], "new share");
        assert.equal(second.code, 0, second.stderr);
        // replay: the old packet reinstated on half of the nodes' stores
        const target = toHex(dhtTarget(old.publicKey));
        let planted = 0;
        for (const node of net.nodes.slice(0, net.nodes.length / 2)) {
          // deno-lint-ignore no-explicit-any
          const values = (node as any)._values;
          const held = values.get(target);
          if (held) {
            values.set(target, { ...held, v: old.v, seq: old.timestamp, sig: old.signature });
            planted++;
          }
        }
        assert.ok(planted > 0, "replayed on some nodes");
        const newest = (await tr.resolve(keypairFromSeed(aliceSeed).publicKey))!.packet;
        assert.ok(newest.timestamp > old.timestamp, "full resolve picks the newest packet");
        const r = await receiveAs(bob, net, second.uri, ["--accept", alice.z32, "-o", "-"]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "new share");
        await cli(["revoke", second.uri], { home: alice.home, env: alice.env, net });
      } finally {
        await tr.close();
      }
    });

    await t.step("burn: second receive on the same machine → exit 7", async () => {
      const s = await sendAs(
        carol,
        net,
        ["--share", bob.z32, "--burn", "-p", "burn", "-"],
        "burn me",
      );
      assert.equal(s.code, 0, s.stderr);
      assert.match(s.stderr, /burn/i);
      const r1 = await receiveAs(bob, net, s.uri, ["--accept", carol.z32, "-o", "-"]);
      assert.equal(r1.code, 0, r1.stderr);
      assert.match(r1.stderr, /\[BURN — accepting consumes it: this home will not show it again\]/);
      const r2 = await receiveAs(bob, net, s.uri, ["--accept", carol.z32, "-o", "-"]);
      assert.equal(r2.code, 7, r2.stderr);
      assert.match(r2.stderr, /share already consumed: it was burned after reading at /);
      assert.equal(r2.stdout, "");
      await cli(["revoke", s.uri], { home: carol.home, env: carol.env, net });
    });

    await t.step("expiry → exit 2", async () => {
      const s = await sendAs(carol, net, ["--share", bob.z32, "--ttl", "1", "-"], "short lived");
      assert.equal(s.code, 0, s.stderr);
      await new Promise((r) => setTimeout(r, 2100));
      const r = await receiveAs(bob, net, s.uri, ["--accept", carol.z32]);
      assert.equal(r.code, 2, r.stderr);
      // when, and what to do
      assert.match(r.stderr, /^share expired at \d{4}-\d\d-\d\d \d\d:\d\d UTC \(1 minute ago\)$/m);
      assert.match(
        r.stderr,
        /^hint: it can no longer be received: ask the sender to send it again$/m,
      );
    });

    await t.step("a share too large for --protocol 1 fails before any network call", async () => {
      const big = "x".repeat(400);
      const r = await cli(["send", "--share", bob.z32, "--protocol", "1", "-"], {
        home: alice.home,
        env: {
          ...alice.env,
          CIPHERPOST_BOOTSTRAP: "127.0.0.1:9",
          CIPHERPOST_RELAYS: "http://127.0.0.1:9",
        },
        stdin: big,
      });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /too large for a v1 PKARR packet: .*material is 400 bytes/);
    });

    await t.step(
      "concurrent writers: two receipts into one packet and a send, nothing lost",
      async () => {
        const dave = await makeUser(base, "dave");
        const s1 = await sendAs(alice, net, ["--share", dave.z32, "-p", "one", "-"], "one");
        const s2 = await sendAs(carol, net, ["--share", dave.z32, "-p", "two", "-"], "two");
        assert.equal(s1.code + s2.code, 0);
        const [r1, r2, s3] = await Promise.all([
          receiveAs(dave, net, s1.uri, ["--accept", alice.z32, "-o", "-"]),
          receiveAs(dave, net, s2.uri, ["--accept", carol.z32, "-o", "-"]),
          sendAs(dave, net, ["--share", bob.z32, "-p", "three", "-"], "three"),
        ]);
        assert.equal(r1.code, 0, r1.stderr);
        assert.equal(r2.code, 0, r2.stderr);
        assert.equal(s3.code, 0, s3.stderr);
        assert.doesNotMatch(r1.stderr + r2.stderr, /receipt publish failed/);
        // one v1 receipt fits dave's packet; the other went to its share's overflow slot: each
        // sender finds its own
        for (const [sender, s] of [[alice, s1], [carol, s2]] as const) {
          const rc = await cli(["receipts", "--from", dave.z32, "--json"], {
            home: sender.home,
            net,
          });
          assert.equal(rc.code, 0, rc.stderr);
          const refs = JSON.parse(rc.stdout).map((x: { share_ref: string }) => x.share_ref);
          assert.ok(refs.includes(s.uri.split("/").pop()), `${sender.home}: ${rc.stdout}`);
        }
        // dave's own share is still in his packet next to both receipts
        const rb = await receiveAs(bob, net, s3.uri, ["--accept", dave.z32, "-o", "-"]);
        assert.equal(rb.code, 0, rb.stderr);
        assert.equal(rb.stdout, "three");
      },
    );
  });
});
