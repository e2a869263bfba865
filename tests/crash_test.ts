// Keep attacking: crash consistency. `send` and `receive` (the real CLI) are killed with SIGKILL
// at random moments, 20 times or more. After every kill: the identity file is unchanged, no
// ledger line is torn, the output is absent or whole; after the next (unkilled) run: the share
// delivers, its receipt is on the network, no temp file is left anywhere, and in the end every
// identity still unlocks. The kill moments (fractions of a normal run's duration) follow from a
// seed, printed on failure; CIPHERPOST_CRASH_SEED=<seed> replays them.
import assert from "node:assert/strict";
import { parseJson } from "../lib/util/canonical_json.ts";
import { packetFromBytes } from "../lib/pkarr/signed_packet.ts";
import { collectReceipts } from "../lib/flows/share/receipts.ts";
import { State } from "../lib/state/state.ts";
import type { Testnet } from "../lib/testing/testnet.ts";
import {
  cli,
  cliCommand,
  makeUser,
  testTransport,
  tmpDir,
  type User,
  withTestnet,
} from "./_helpers.ts";
import { seededRandom, testSeed, withSeed } from "./_seed.ts";

const ROUNDS = Number(Deno.env.get("CIPHERPOST_CRASH_ROUNDS") ?? "10");
const SEED = testSeed("CIPHERPOST_CRASH_SEED");
const random = seededRandom(SEED, "kill moments");

/** Run the CLI and SIGKILL it after `delayMs` (if still running); returns whether it was killed. */
async function runAndKill(args: string[], u: User, net: Testnet, delayMs: number) {
  const child = cliCommand(args, { home: u.home, env: u.env, net }).spawn();
  let killed = false;
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
      killed = true;
    } catch { /* already exited */ }
  }, delayMs);
  const out = await child.output();
  clearTimeout(timer);
  return { killed: killed && out.signal === "SIGKILL", code: out.code };
}

/**
 * Kill a run at a random moment of a normal run's duration `ms`. A run that ended before its
 * kill (the machine got faster) is tried again with a shorter delay (at most 4 tries).
 */
async function killSomewhere(args: string[], u: User, net: Testnet, ms: number) {
  const delays: number[] = [];
  for (let attempt = 0; attempt < 4; attempt++) {
    const d = ms * (0.2 + 0.7 * random()) / 2 ** attempt;
    delays.push(Math.round(d));
    if ((await runAndKill(args, u, net, d)).killed) return { killed: true, delays };
  }
  return { killed: false, delays };
}

/** Every file under `dir` (relative paths). */
async function walk(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const rel = `${prefix}${e.name}`;
      if (e.isDirectory) out.push(...await walk(`${dir}/${e.name}`, `${rel}/`));
      else out.push(rel);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out;
}

const isTemp = (name: string) => /(^|\/)\.cipherpost-[0-9a-f]{8}\.tmp$|\.tmp-[0-9a-f]+$/.test(name);

/** The state of a home is whole: ledger lines, sent records, the saved packet. */
async function assertWholeState(u: User, label: string): Promise<void> {
  const dir = `${u.home}/state`;
  let ledger = "";
  try {
    ledger = await Deno.readTextFile(`${dir}/accepted.jsonl`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (ledger !== "") {
    assert.ok(ledger.endsWith("\n"), `${label}: torn last ledger line: ${ledger.slice(-80)}`);
    for (const line of ledger.slice(0, -1).split("\n")) {
      const row = parseJson(line) as Record<string, unknown>;
      assert.match(String(row.share_ref), /^[0-9a-f]{32}$/, `${label}: ledger row ${line}`);
    }
  }
  for (const f of await walk(`${dir}/sent`)) {
    if (isTemp(f)) continue; // swept by the next run; checked after it
    parseJson(await Deno.readTextFile(`${dir}/sent/${f}`));
  }
  try {
    packetFromBytes(await Deno.readFile(`${dir}/packet.bin`));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw new Error(`${label}: packet.bin: ${e}`);
  }
}

async function assertNoTemps(dirs: string[], label: string): Promise<void> {
  for (const d of dirs) {
    const temps = (await walk(d)).filter(isTemp);
    assert.deepEqual(temps, [], `${label}: temp files left in ${d}`);
  }
}

/** The receipt of a share is on the network, as its sender's `receipts` finds it. */
async function assertReceipt(net: Testnet, from: User, ref: string, to: User, label: string) {
  const t = testTransport(net);
  try {
    const h = await collectReceipts(t, new State(from.home), to.z32);
    assert.ok(
      h.valid.some((r) => r.shareRef === ref && r.recipientPubkey === to.z32),
      `${label}: no receipt for ${ref} (${h.fetched} fetched, ${h.invalid} invalid)`,
    );
  } finally {
    await t.close();
  }
}

Deno.test(`crash consistency: ${2 * ROUNDS} kill -9 of send and receive at random moments`, async () => {
  const base = await tmpDir();
  await withSeed("CIPHERPOST_CRASH_SEED", SEED, () =>
    withTestnet(async (net) => {
      const alice = await makeUser(base, "alice");
      const bob = await makeUser(base, "bob");
      const outDir = `${base}/out`;
      await Deno.mkdir(outDir);
      const identities = new Map<User, Uint8Array>();
      const remember = async (u: User) =>
        identities.set(u, await Deno.readFile(`${u.home}/secret_key`));
      await remember(alice);
      await remember(bob);
      const assertIdentities = async (label: string) => {
        for (const [u, bytes] of identities) {
          assert.deepEqual(
            await Deno.readFile(`${u.home}/secret_key`),
            bytes,
            `${label}: identity`,
          );
        }
      };

      let sendMs = 4000;
      let receiveMs = 4000;
      let kills = 0;
      const senders: User[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        // even rounds: a fresh sender (a v1 share); odd rounds: alice again (v2 once her v1 is live)
        const from = i % 2 === 0 ? await makeUser(base, `s${i}`) : alice;
        if (!identities.has(from)) await remember(from);
        senders.push(from);
        const secret = `secret ${i} ${crypto.randomUUID()}`;
        await Deno.writeTextFile(`${base}/in${i}`, secret);
        const sendArgs = [
          "send",
          "--share",
          bob.z32,
          "-p",
          `round ${i}`,
          "--material-file",
          `${base}/in${i}`,
          "--json",
        ];

        // 1. send, killed
        const k1 = await killSomewhere(sendArgs, from, net, sendMs);
        if (k1.killed) kills++;
        await assertIdentities(`round ${i} send killed at ${k1.delays} ms`);
        await assertWholeState(from, `round ${i} send killed`);

        // 2. send again: it must work
        let t0 = performance.now();
        const s = await cli(sendArgs, { home: from.home, env: from.env, net });
        sendMs = performance.now() - t0;
        assert.equal(s.code, 0, `round ${i} re-send: ${s.stderr}`);
        const { uri, share_ref: ref } = JSON.parse(s.stdout);
        await assertNoTemps([`${from.home}/state`], `round ${i} after re-send`);

        // 3. receive, killed
        const out = `${outDir}/out${i}`;
        const recvArgs = ["receive", uri, "--accept", from.z32, "-o", out];
        const k2 = await killSomewhere(recvArgs, bob, net, receiveMs);
        if (k2.killed) kills++;
        const label = `round ${i} receive killed at ${k2.delays} ms`;
        await assertIdentities(label);
        await assertWholeState(bob, label);
        try {
          assert.equal(await Deno.readTextFile(out), secret, `${label}: half-written output`);
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        }

        // 4. receive again: it completes, with its receipt
        t0 = performance.now();
        const r = await cli([...recvArgs, "--force"], { home: bob.home, env: bob.env, net });
        receiveMs = performance.now() - t0;
        assert.equal(r.code, 0, `${label}, re-receive: ${r.stderr}`);
        assert.equal(await Deno.readTextFile(out), secret, `${label}: output after re-receive`);
        await assertReceipt(net, from, ref, bob, `${label} (re-receive said: ${r.stderr.trim()})`);
        await assertNoTemps([`${bob.home}/state`, outDir], `${label}, after re-receive`);
      }
      assert.equal(kills, 2 * ROUNDS, "every step was killed mid-way");

      // every identity still unlocks
      for (const u of [alice, bob, senders[0]]) {
        const r = await cli(["identity", "show", "--json"], { home: u.home, env: u.env });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(JSON.parse(r.stdout).z32, u.z32);
      }
    }));
});
