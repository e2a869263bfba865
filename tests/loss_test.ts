// Keep attacking: a lossy network. On a testnet where every node drops 30% of the queries it
// gets and 20% of the nodes answer nothing at all, a v1 share and a 64 KiB v2 share still
// deliver with the real CLI, and their receipts reach the sender. Which queries are lost follows
// from a seed, printed on failure; CIPHERPOST_LOSS_SEED=<seed> replays it.
import assert from "node:assert/strict";
import { startTestnet } from "../lib/testing/testnet.ts";
import { cli, makeUser, receiveAs, sendAs, tmpDir } from "./_helpers.ts";
import { testSeed, withSeed } from "./_seed.ts";

Deno.test("loss: 30% packet loss and 20% dead nodes: v1 and 64 KiB v2 deliver with receipts", async () => {
  const base = await tmpDir();
  const lossSeed = testSeed("CIPHERPOST_LOSS_SEED");
  const net = await startTestnet({ nodes: 20, lossPct: 30, deadNodes: 4, lossSeed });
  await withSeed("CIPHERPOST_LOSS_SEED", lossSeed, async () => {
    const alice = await makeUser(base, "alice");
    const bob = await makeUser(base, "bob");

    // v1: one packet under alice's key
    const v1 = await sendAs(
      alice,
      net,
      ["--share", bob.z32, "-p", "lossy v1", "--json", "-"],
      "v1 secret",
    );
    assert.equal(v1.code, 0, v1.stderr);
    const v1Info = JSON.parse(v1.stdout);
    assert.equal(v1Info.protocol, 1);
    const r1 = await receiveAs(bob, net, v1Info.uri, [
      "--accept",
      alice.z32,
      "-o",
      `${base}/v1.out`,
    ]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.equal(await Deno.readTextFile(`${base}/v1.out`), "v1 secret");
    assert.doesNotMatch(r1.stderr, /receipt publish failed/, r1.stderr);

    // v2: 64 KiB of material, about 75 packets
    const big = crypto.getRandomValues(new Uint8Array(65536));
    await Deno.writeFile(`${base}/big.bin`, big);
    const v2 = await sendAs(alice, net, [
      "--share",
      bob.z32,
      "-p",
      "lossy v2",
      "--material-file",
      `${base}/big.bin`,
      "--json",
    ]);
    assert.equal(v2.code, 0, v2.stderr);
    const v2Info = JSON.parse(v2.stdout);
    assert.equal(v2Info.protocol, 2);
    const r2 = await receiveAs(bob, net, v2Info.uri, [
      "--accept",
      alice.z32,
      "-o",
      `${base}/v2.out`,
    ]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(await Deno.readFile(`${base}/v2.out`), big);
    assert.doesNotMatch(r2.stderr, /receipt publish failed/, r2.stderr);

    // both receipts, as the sender sees them
    const rs = await cli(["receipts", "--from", bob.z32, "--json"], {
      home: alice.home,
      env: alice.env,
      net,
    });
    assert.equal(rs.code, 0, rs.stderr);
    const refs = (JSON.parse(rs.stdout) as Array<{ share_ref: string }>).map((r) => r.share_ref);
    assert.ok(refs.includes(v1Info.share_ref), `v1 receipt missing: ${rs.stdout}`);
    assert.ok(refs.includes(v2Info.share_ref), `v2 receipt missing: ${rs.stdout}`);
  }).finally(() => net.close());
});
