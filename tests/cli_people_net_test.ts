/**
 * Built for people, on a real local testnet with the real CLI: the README's receipt pipeline, contacts
 * and the unknown-key warning, several recipients and who has received, `shares`, revoke by
 * prefix, republish skipping received shares, the v2 fallback note once, wrong PINs, and what a
 * person at a terminal sees (tmux): next steps after send, acceptance retries, binary material
 * refused on a terminal, progress, Ctrl-C.
 *
 * @module
 */

import assert from "node:assert/strict";
import { State } from "../lib/state/state.ts";
import { findSent } from "../lib/flows/share/revoke.ts";
import { CipherpostError } from "../lib/util/errors.ts";
import {
  cli,
  type CliResult,
  makeUser,
  receiveAs,
  sendAs,
  tmpDir,
  withTestnet,
} from "./_helpers.ts";
import { HAVE_TMUX, runInTty } from "./_tty.ts";

const X509 = new URL("./vectors/cipherpost/x509_cert_fixture.der", import.meta.url).pathname;

function ok(r: CliResult, what: string) {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

Deno.test("revoke takes a unique prefix; an ambiguous or short one says so", async () => {
  const state = new State(await tmpDir());
  const rec = (ref: string) => ({
    version: 1 as const,
    shareRef: ref,
    uri: `cipherpost://x/${ref}`,
    sender: "s",
    recipient: null,
    createdAt: 1,
    expiresAt: 2,
  });
  await state.saveSent(rec("aaaa1111" + "0".repeat(24)));
  await state.saveSent(rec("aaaa2222" + "0".repeat(24)));
  assert.equal((await findSent(state, "aaaa1")).shareRef, "aaaa1111" + "0".repeat(24));
  assert.equal((await findSent(state, "AAAA2222")).shareRef, "aaaa2222" + "0".repeat(24));
  await assert.rejects(findSent(state, "aaaa"), (e: unknown) => {
    assert.ok(e instanceof CipherpostError && e.kind === "usage");
    assert.match(e.message, /prefix aaaa is ambiguous: 2 of your shares start with it/);
    return true;
  });
  await assert.rejects(findSent(state, "aaa"), /no live share aaa/);
  await assert.rejects(findSent(state, "bbbb"), /no live share bbbb/);
});

Deno.test("people on a testnet", async (t) => {
  await withTestnet(async (net) => {
    const base = await tmpDir();
    const alice = await makeUser(base, "alice");
    const bob = await makeUser(base, "bob");
    const carol = await makeUser(base, "carol");
    const A = { home: alice.home, env: alice.env, net };

    await t.step(
      "usage: no recipient, both, bad --ttl, a fingerprint, an unknown name → exit 2",
      async () => {
        const cases: Array<[string[], RegExp]> = [
          [["send", "-"], /say who it is for: --self \(yourself\) or --share KEY\|NAME/],
          [["send", "--self", "--share", bob.z32, "-"], /choose --self or --share, not both/],
          [["send", "--self", "--ttl", "3y", "-"], /--ttl takes seconds, or a number with/],
          [["send", "--share", "SHA256:abcdef", "-"], /--share got a fingerprint/],
          [["send", "--share", "dave", "-"], /--share: no contact named 'dave'/],
        ];
        for (const [args, re] of cases) {
          const r = await cli(args, { ...A, stdin: "x" });
          assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
          assert.match(r.stderr, re);
          assert.equal(r.stdout, "");
        }
        const dir = await cli(["send", "--self", "--material-file", base], A);
        assert.equal(dir.code, 1, dir.stderr);
        assert.match(dir.stderr, /is a directory; send takes one file \(up to 64 KiB\)/);
        assert.match(dir.stderr, /large-payload sending/);
      },
    );

    let bobRef = "";
    await t.step(
      "README pipeline: contact, --ttl 30m, receive -o, receipts --share-ref --json > file, receipt verify file",
      async () => {
        ok(await cli(["contacts", "add", "bob", bob.z32], A), "contacts add");
        const before = Math.floor(Date.now() / 1000);
        const s = await sendAs(alice, net, [
          "--share",
          "bob",
          "-p",
          "demo",
          "--ttl",
          "30m",
          "--json",
          "-",
        ], "s3cret");
        ok(s, "send");
        const after = Math.floor(Date.now() / 1000);
        assert.ok(!s.stderr.includes("warning:"), "a contact is not warned about");
        const j = JSON.parse(s.stdout);
        assert.ok(j.expires_at >= before + 1800 && j.expires_at <= after + 1800, s.stdout);
        bobRef = j.share_ref;
        const out = `${base}/received.txt`;
        const r = await receiveAs(bob, net, j.uri, ["--accept", `pk:${alice.z32}`, "-o", out]);
        ok(r, "receive");
        assert.match(
          r.stderr,
          new RegExp(`wrote 6 bytes \\(generic_secret\\) to ${out} \\(mode 0600\\)\\n`),
        );
        assert.equal(await Deno.readTextFile(out), "s3cret");
        const rc = await cli(["receipts", "--from", bob.z32, "--share-ref", bobRef, "--json"], A);
        ok(rc, "receipts --share-ref --json");
        const obj = JSON.parse(rc.stdout);
        assert.ok(!Array.isArray(obj), "one object for one share");
        assert.equal(obj.share_ref, bobRef);
        await Deno.writeTextFile(`${base}/receipt.json`, rc.stdout);
        const v = await cli(["receipt", "verify", `${base}/receipt.json`]);
        ok(v, "receipt verify");
        assert.match(v.stdout, new RegExp(`share_ref: +${bobRef}`));
        const none = await cli(["receipts", "--json"], { home: carol.home, net });
        ok(none, "receipts --json with nothing");
        assert.equal(none.stdout, "[]\n");
      },
    );

    await t.step("an unknown key is warned about; once sent to, it is known", async () => {
      const s = await cli(["send", "--share", carol.z32, "-p", "hi", "-"], { ...A, stdin: "x1" });
      ok(s, "send to an unknown key (no terminal: warning only)");
      assert.match(
        s.stderr,
        new RegExp(
          `warning: ${carol.z32} is not one of your contacts and has never been seen on the DHT;`,
        ),
      );
      const again = await cli(["send", "--share", carol.z32, "-p", "hi", "-"], {
        ...A,
        stdin: "x2",
      });
      ok(again, "second send");
      assert.ok(!again.stderr.includes("warning:"), "sent to before: known");
      for (const uri of [s.stdout.trim(), again.stdout.trim()]) {
        ok(await cli(["revoke", uri], A), "revoke");
      }
    });

    await t.step(
      "several recipients: one share each, receipts and shares say who has received",
      async () => {
        ok(await cli(["contacts", "add", "carol", carol.z32], A), "contacts add carol");
        const s = await cli(["send", "--share", "bob", "--share", "carol", "-p", "wifi", "-"], {
          ...A,
          stdin: "wifi-pass",
        });
        ok(s, "send to two");
        const uris = s.stdout.trim().split("\n");
        assert.equal(uris.length, 2, s.stdout);
        ok(await receiveAs(bob, net, uris[0], ["--accept", alice.z32, "-o", "-"]), "bob receives");
        const carolTry = await receiveAs(carol, net, uris[0], ["--accept", alice.z32, "-o", "-"]);
        assert.equal(carolTry.code, 3, "bob's share is not carol's");
        assert.match(carolTry.stderr, /this share is addressed to someone else/);
        const rc = await cli(["receipts"], A);
        ok(rc, "receipts");
        const carolRef = (await cli(["shares", "--json"], A)).stdout;
        const rows = JSON.parse(carolRef) as Array<
          { share_ref: string; recipient_name: string; purpose: string; received_at: number | null }
        >;
        const wifi = rows.filter((r) => r.purpose === "wifi");
        assert.deepEqual(wifi.map((r) => [r.recipient_name, r.received_at !== null]).sort(), [
          ["bob", true],
          ["carol", false],
        ]);
        const carolShare = wifi.find((r) => r.recipient_name === "carol")!;
        assert.match(rc.stdout, /not received yet:\n/);
        assert.ok(rc.stdout.includes(`${carolShare.share_ref.slice(0, 16)}  carol`), rc.stdout);
        const table = await cli(["shares"], A);
        ok(table, "shares");
        assert.match(table.stdout, /^ref +recipient +purpose +expires \(UTC\) +received\n/);
        assert.match(
          table.stdout,
          new RegExp(`${carolShare.share_ref.slice(0, 12)}  carol +wifi +.*  no\\n`),
        );
        const rv = await cli(["revoke", carolShare.share_ref.slice(0, 8)], A);
        ok(rv, "revoke by prefix");
        assert.equal(rv.stdout, `revoked ${carolShare.share_ref}\n`);
      },
    );

    await t.step(
      "v2: fallback note once; republish skips the received share; wrong PIN says so",
      async () => {
        const big = "x".repeat(400);
        // a home that has never fallen back to v2 (alice did, for her second live share)
        const erin = await makeUser(base, "erin");
        const E = { home: erin.home, env: erin.env, net };
        const s1 = await cli(["send", "--share", bob.z32, "-p", "big1", "-"], { ...E, stdin: big });
        const s2 = await cli(["send", "--share", bob.z32, "-p", "big2", "-"], { ...E, stdin: big });
        ok(s1, "big send 1");
        ok(s2, "big send 2");
        assert.match(
          s1.stderr,
          /note: sent as protocol v2 because it is larger than one v1 packet/,
        );
        assert.ok(!s2.stderr.includes("note: sent as protocol v2"), "shown once");
        ok(await receiveAs(bob, net, s1.stdout.trim(), ["--accept", erin.z32, "-o", "-"]), "bob");
        const rp = await cli(["republish"], { home: erin.home, net });
        ok(rp, "republish");
        assert.match(rp.stdout, /skipped \(already received\): [1-9]/);
        assert.match(rp.stderr, /skipped share [0-9a-f]{32}: already received/);

        const pinned = await cli(["send", "--share", "bob", "--pin", "-"], {
          ...A,
          env: { ...alice.env, CIPHERPOST_PIN: "correct-pin-42" },
          stdin: "pinned",
        });
        ok(pinned, "PIN send");
        const wrong = await receiveAs(bob, net, pinned.stdout.trim(), ["--accept", alice.z32], {
          CIPHERPOST_PIN: "wrong-pin-4242",
        });
        assert.equal(wrong.code, 4, wrong.stderr);
        assert.equal(wrong.stderr.trim().split("\n").pop(), "wrong PIN");
        const right = await receiveAs(bob, net, pinned.stdout.trim(), [
          "--accept",
          alice.z32,
          "-o",
          "-",
        ], {
          CIPHERPOST_PIN: "correct-pin-42",
        });
        ok(right, "right PIN");
        assert.equal(right.stdout, "pinned");
      },
    );

    if (!HAVE_TMUX) {
      console.log("tmux not installed: terminal steps skipped");
      return;
    }
    const ttyEnv = (u: typeof alice) => ({
      CIPHERPOST_HOME: u.home,
      CIPHERPOST_PASSPHRASE: u.env.CIPHERPOST_PASSPHRASE,
      CIPHERPOST_BOOTSTRAP: net.bootstrap.join(","),
      CIPHERPOST_RELAYS: net.relayUrl,
      NO_COLOR: "1",
    });

    let ttyUri = "";
    await t.step(
      "terminal: send shows what the recipient runs and when it expires; progress for v2",
      async () => {
        const r = await runInTty(["send", "--share", "bob", "-p", "tty", "--ttl", "1h", "-"], {
          env: ttyEnv(alice),
          stdinText: "y".repeat(3000),
        });
        assert.equal(r.code, 0, r.screen);
        ttyUri = r.stdout.trim();
        assert.match(ttyUri, /^cipherpost:\/\//);
        assert.match(
          r.screen,
          /bob runs \(before \d{4}-\d\d-\d\d \d\d:\d\d UTC, in (59m|1h)\):/,
        );
        assert.ok(r.screen.includes(`  cipherpost receive ${ttyUri}`), r.screen);
        assert.match(r.screen, /Publishing for bob \[#+\] (\d+)\/\1/);
      },
    );

    await t.step(
      "terminal: a typo at the acceptance prompt is asked again; the key accepts",
      async () => {
        const out = `${base}/tty.txt`;
        const r = await runInTty(["receive", ttyUri, "-o", out], {
          env: ttyEnv(bob),
          steps: [
            {
              wait: /press Enter \(an empty line declines\):\n> $/m,
              type: alice.z32.slice(0, 10) + (alice.z32[10] === "y" ? "b" : "y") +
                alice.z32.slice(11),
            },
            { wait: /that is not the sender's key .*\(2 tries left\):\n> $/m, type: alice.z32 },
          ],
        });
        assert.equal(r.code, 0, r.screen);
        assert.equal(await Deno.readTextFile(out), "y".repeat(3000));
        const declined = await runInTty(["receive", ttyUri, "-o", `${base}/no.txt`], {
          env: ttyEnv(carol),
        });
        assert.equal(declined.code, 3, "carol's terminal: not her share");
      },
    );

    await t.step("terminal: binary material is not written to it unless -o -", async () => {
      const s = await cli([
        "send",
        "--share",
        "bob",
        "--material",
        "x509_cert",
        "--material-file",
        X509,
      ], A);
      ok(s, "send cert");
      const r = await runInTty(["receive", s.stdout.trim(), "--accept", alice.z32], {
        env: ttyEnv(bob),
        stdoutToTty: true,
      });
      assert.equal(r.code, 1, r.screen);
      assert.match(
        r.screen,
        /the material is binary \(\d+ bytes, x509_cert\); not writing it to the terminal/,
      );
      assert.match(
        r.screen,
        /-o FILE, or pass -o - to print it anyway \(--armor gives a text form\)/,
      );
      const pem = await runInTty(["receive", s.stdout.trim(), "--accept", alice.z32, "--armor"], {
        env: ttyEnv(bob),
        stdoutToTty: true,
      });
      assert.equal(pem.code, 0, pem.screen);
      assert.match(pem.screen, /-----BEGIN CERTIFICATE-----/);
    });

    await t.step(
      "terminal: an unknown key asks before sending; Ctrl-C at a prompt exits 130",
      async () => {
        const dave = await makeUser(base, "dave");
        const n = await runInTty(["send", "--share", dave.z32, "-"], {
          env: ttyEnv(alice),
          stdinText: "x",
          steps: [{ wait: /Send anyway\? \[y\/N\] $/m, type: "n" }],
        });
        assert.equal(n.code, 7, n.screen);
        assert.match(n.screen, /not sent: the recipient key was not confirmed/);
        const env = { ...ttyEnv(alice) } as Record<string, string>;
        delete env.CIPHERPOST_PASSPHRASE;
        const c = await runInTty(["identity", "check"], {
          env,
          steps: [{ wait: /Cipherpost passphrase: $/m, keys: ["C-c"] }],
        });
        assert.equal(c.code, 130, c.screen);
      },
    );
  });
});
