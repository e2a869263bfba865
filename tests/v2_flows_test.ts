// Beyond one packet (v2 shares), with the real CLI on a real testnet: realistic materials in every
// mode, 20 live shares and their receipts, revocation of one, and the multi-packet failures
// (missing part → network lane, replaced part or hash mismatch → signature lane, no receipt).
import assert from "node:assert/strict";
import { toHex } from "../lib/util/encoding.ts";
import { keypairFromSeed } from "../lib/crypto/keys.ts";
import { dhtTarget } from "../lib/pkarr/public_key.ts";
import { shareRef } from "../lib/protocol/record.ts";
import { parseShareUri } from "../lib/protocol/share_uri.ts";
import { signPacket } from "../lib/pkarr/signed_packet.ts";
import type { Testnet } from "../lib/testing/testnet.ts";
import { buildV2Share, deriveV2Keys } from "../lib/protocol/v2.ts";
import { fetchV2Receipt, fetchV2Share } from "../lib/flows/share/v2_transfer.ts";
import {
  cli,
  makeUser,
  makeUserWithSeed,
  receiveAs,
  sendAs,
  testTransport,
  tmpDir,
  type User,
  withTestnet,
} from "./_helpers.ts";

const fixtures = new URL("./vectors/cipherpost/", import.meta.url);
const fixture = (name: string) => new URL(name, fixtures).pathname;

const transport = testTransport;

function locatorOf(uri: string): Uint8Array {
  const u = parseShareUri(uri);
  if (u.version !== 2) throw new Error(`expected a v2 URI: ${uri}`);
  return u.locator;
}

/** Remove a key's item from every testnet node (a packet dropped from the DHT). */
function dropFromDht(net: Testnet, pk: Uint8Array): number {
  const target = toHex(dhtTarget(pk));
  let n = 0;
  for (const node of net.nodes) {
    // deno-lint-ignore no-explicit-any
    if ((node as any)._values.remove?.(target) ?? (node as any)._values.delete?.(target)) n++;
  }
  return n;
}

async function noReceipt(net: Testnet, uri: string): Promise<void> {
  const t = transport(net);
  try {
    assert.equal(await fetchV2Receipt(t, locatorOf(uri)), null, "no receipt published");
  } finally {
    await t.close();
  }
}

async function pool<T>(items: T[], n: number, f: (x: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: n }, async () => {
    while (queue.length) await f(queue.shift()!);
  }));
}

Deno.test("v2: every material in every mode, self and cross-identity", async (t) => {
  const base = await tmpDir();
  await withTestnet(async (net) => {
    const alice = await makeUser(base, "alice");
    const bob = await makeUser(base, "bob");
    const pinFile = `${base}/pin`;
    await Deno.writeTextFile(pinFile, "correct-pin-42\n", { mode: 0o600 });
    const big = crypto.getRandomValues(new Uint8Array(65536));
    await Deno.writeFile(`${base}/big.bin`, big);

    const cases: Array<
      { name: string; args: string[]; file: string; pin?: boolean; burn?: boolean }
    > = [
      {
        name: "935-byte RSA PGP key",
        args: ["--material", "pgp-key"],
        file: fixture("material_pgp_fixture_realistic.pgp"),
      },
      {
        name: "RSA SSH key",
        args: ["--material", "ssh-key"],
        file: fixture("material_ssh_fixture_rsa1024.openssh-v1"),
      },
      {
        name: "X.509 certificate",
        args: ["--material", "x509-cert"],
        file: fixture("x509_cert_fixture.der"),
      },
      { name: "64 KiB generic secret", args: [], file: `${base}/big.bin` },
      {
        name: "PIN share",
        args: ["--pin", "--pin-file", pinFile],
        file: fixture("x509_cert_fixture.der"),
        pin: true,
      },
      {
        name: "PIN + burn share",
        args: ["--pin", "--pin-file", pinFile, "--burn"],
        file: fixture("material_pgp_fixture.pgp"),
        pin: true,
        burn: true,
      },
    ];
    for (const c of cases) {
      for (const [label, to] of [["self", alice], ["to bob", bob]] as Array<[string, User]>) {
        await t.step(`${c.name}, ${label}`, async () => {
          const target = to === alice ? ["--self"] : ["--share", bob.z32];
          const s = await sendAs(alice, net, [
            ...target,
            ...c.args,
            "--material-file",
            c.file,
            "--json",
          ]);
          assert.equal(s.code, 0, s.stderr);
          const info = JSON.parse(s.stdout);
          assert.equal(info.protocol, 2, "too large for v1: sent as v2");
          const out = `${base}/${c.name.replace(/\W+/g, "_")}_${label.replace(/\W+/g, "_")}`;
          const extra = c.pin ? ["--pin-file", pinFile] : [];
          const r = await receiveAs(to, net, info.uri, [
            "--accept",
            alice.z32,
            "-o",
            out,
            ...extra,
          ]);
          assert.equal(r.code, 0, r.stderr);
          const want = await Deno.readFile(c.file); // the SSH fixtures are already canonical
          assert.deepEqual(await Deno.readFile(out), want);
          assert.match(r.stderr, /Protocol: {4}v2/);
          if (c.burn) {
            const again = await receiveAs(to, net, info.uri, [
              "--accept",
              alice.z32,
              "-o",
              "-",
              ...extra,
            ]);
            assert.equal(again.code, 7, again.stderr);
          }
        });
      }
    }

    await t.step("wrong PIN → exit 4, no receipt, nothing written", async () => {
      const s = await sendAs(
        alice,
        net,
        ["--share", bob.z32, "--pin", "--pin-file", pinFile, "-"],
        "pin protected",
      );
      assert.equal(s.code, 0, s.stderr);
      const wrong = `${base}/wrongpin`;
      await Deno.writeTextFile(wrong, "another-pin-99\n", { mode: 0o600 });
      const out = `${base}/wrongpin.out`;
      const r = await receiveAs(bob, net, s.uri, [
        "--accept",
        alice.z32,
        "-o",
        out,
        "--pin-file",
        wrong,
      ]);
      assert.equal(r.code, 4, r.stderr);
      await assert.rejects(Deno.stat(out));
      await noReceipt(net, s.uri);
    });
  });
});

Deno.test("v2: 20 live shares to several recipients, all receipts, revoking one leaves 19", async () => {
  const base = await tmpDir();
  await withTestnet(async (net) => {
    const alice = await makeUser(base, "alice");
    const recipients = await Promise.all(["bob", "carol", "dave"].map((n) => makeUser(base, n)));
    const sent: Array<{ uri: string; to: User; secret: string; ref: string }> = [];
    for (let i = 0; i < 20; i++) {
      const to = recipients[i % 3];
      const secret = `secret number ${i}`;
      const s = await sendAs(
        alice,
        net,
        ["--share", to.z32, "-p", `share ${i}`, "--json", "-"],
        secret,
      );
      assert.equal(s.code, 0, s.stderr);
      const info = JSON.parse(s.stdout);
      sent.push({ uri: info.uri, to, secret, ref: info.share_ref });
    }
    assert.ok(sent.filter((s) => s.uri.includes("/2.")).length >= 19, "one v1 slot, the rest v2");
    const revoked = sent[7];
    const rv = await cli(["revoke", revoked.uri], { home: alice.home, env: alice.env, net });
    assert.equal(rv.code, 0, rv.stderr);

    const results = new Map<string, number>();
    await pool(sent, 3, async (s) => {
      const r = await receiveAs(s.to, net, s.uri, ["--accept", alice.z32, "-o", "-"]);
      results.set(s.ref, r.code);
      if (s !== revoked) {
        assert.equal(r.code, 0, `${s.uri}: ${r.stderr}`);
        assert.equal(r.stdout, s.secret);
        assert.doesNotMatch(r.stderr, /receipt publish failed/);
      }
    });
    assert.equal(results.get(revoked.ref), 5, "the revoked share is gone");

    const seen = new Set<string>();
    for (const to of recipients) {
      const r = await cli(["receipts", "--from", to.z32, "--json"], { home: alice.home, net });
      assert.equal(r.code, 0, r.stderr);
      for (const rc of JSON.parse(r.stdout)) {
        assert.equal(rc.recipient_pubkey, to.z32);
        // every receipt is what `receipt verify` accepts
        seen.add(rc.share_ref);
      }
    }
    const expected = sent.filter((s) => s !== revoked).map((s) => s.ref).sort();
    assert.deepEqual([...seen].sort(), expected);
    const all = await cli(["receipts", "--json"], { home: alice.home, net });
    assert.equal(all.code, 0, all.stderr);
    const one = JSON.parse(all.stdout)[0];
    const file = `${base}/one.json`;
    await Deno.writeTextFile(file, JSON.stringify(one));
    assert.equal((await cli(["receipt", "verify", file])).code, 0);
  });
});

Deno.test("v2 failures: missing part (exit 6), replaced part (exit 3), hash mismatch (exit 3), no receipt", async (t) => {
  const base = await tmpDir();
  await withTestnet(async (net) => {
    const aliceSeed = crypto.getRandomValues(new Uint8Array(32));
    const alice = await makeUserWithSeed(base, "alice", aliceSeed);
    const bob = await makeUser(base, "bob");
    const payload = crypto.getRandomValues(new Uint8Array(6000));
    await Deno.writeFile(`${base}/p.bin`, payload);
    const send = async () => {
      const s = await sendAs(alice, net, [
        "--share",
        bob.z32,
        "--protocol",
        "2",
        "--material-file",
        `${base}/p.bin`,
      ]);
      assert.equal(s.code, 0, s.stderr);
      return s.uri;
    };

    await t.step("one part dropped from the DHT → exit 6 naming it", async () => {
      const uri = await send();
      const keys = deriveV2Keys(locatorOf(uri));
      assert.ok(dropFromDht(net, keys.part(2).publicKey) > 0, "part 2 was stored");
      const r = await receiveAs(bob, net, uri, ["--accept", alice.z32, "-o", "-"], {
        CIPHERPOST_TIMEOUT: "300",
      });
      assert.equal(r.code, 6, r.stderr);
      assert.match(r.stderr, /share incomplete: 1 of \d+ parts missing \(parts 2\)/);
      assert.equal(r.stdout, "");
      await noReceipt(net, uri);
    });

    await t.step(
      "one part replaced by a validly signed packet with other bytes → exit 3",
      async () => {
        const uri = await send();
        const keys = deriveV2Keys(locatorOf(uri));
        const tr = transport(net);
        try {
          const cur = await tr.resolve(keys.part(1).publicKey);
          assert.ok(cur);
          const rec = cur.packet.records[0];
          assert.equal(rec.data.type, "TXT");
          const forged = {
            ...rec,
            data: {
              type: "TXT" as const,
              strings: (rec.data as { strings: Uint8Array[] }).strings.map((s) =>
                s.map((b) => b ^ 0x5a)
              ),
            },
          };
          await tr.publish(signPacket(keys.part(1).seed, [forged], cur.packet.timestamp + 1));
        } finally {
          await tr.close();
        }
        const r = await receiveAs(bob, net, uri, ["--accept", alice.z32, "-o", "-"]);
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stderr, /signature verification failed/);
        assert.ok(!r.stderr.includes("Purpose"));
        await noReceipt(net, uri);
      },
    );

    await t.step(
      "manifest whose whole-ciphertext hash does not match the parts → exit 3",
      async () => {
        const uri = await send();
        const locator = locatorOf(uri);
        // same length as the real blob, so the part count matches and only the hash differs
        const tr0 = transport(net);
        const real = await fetchV2Share(tr0, alice.z32, locator).finally(() => tr0.close());
        const other = crypto.getRandomValues(new Uint8Array(real.blob.length));
        const createdAt = Math.floor(Date.now() / 1000);
        const built = await buildV2Share({
          sender: keypairFromSeed(aliceSeed),
          recipient: bob.z32,
          blob: other,
          shareRef: shareRef(other, createdAt),
          createdAt,
          ttlSeconds: 86400n,
          pinRequired: false,
          locator,
          timestampUs: Date.now() * 1000 + 5_000_000,
        });
        const tr = transport(net);
        try {
          await tr.publish(built.packets[0]); // only the manifest: the old parts stay
        } finally {
          await tr.close();
        }
        const r = await receiveAs(bob, net, uri, ["--accept", alice.z32, "-o", "-"]);
        assert.equal(r.code, 3, r.stderr);
        await noReceipt(net, uri);
      },
    );
  });
});
