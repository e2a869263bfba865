// Streaming large shares (docs/PROTOCOL.md §5.7) through the real CLI, own homes, a local
// testnet and the stand-in homeserver: `tar c | send -` on one home while `receive -o - | tar x`
// runs on another, the receiver writing before the sender's input has ended; a file sent and
// received with resume on both sides after kill -9; a replaced part and a forged closing
// record refused; and a version-1 pointer (CIPHERPOST_LARGE_POINTER=1) still received.
import assert from "node:assert/strict";
import {
  cli,
  cliCommand,
  ledgerText,
  makeUserWithSeed,
  PASS,
  testTransport,
  tmpDir,
  type User,
} from "./_helpers.ts";
import { startTestnet, type Testnet } from "../lib/testing/testnet.ts";
import { type HomeserverStandIn, startHomeserver } from "../lib/testing/homeserver.ts";
import { connect } from "../lib/homeserver/connect.ts";
import { keypairFromSeed } from "../lib/crypto/keys.ts";
import { blake3File, writePrngFile } from "../lib/testing/prng_file.ts";

const MiB = 1 << 20;
const SEED = 4242;

interface Person extends User {
  seed: Uint8Array;
}

async function person(base: string, name: string, n: number): Promise<Person> {
  const seed = new Uint8Array(32).fill(n);
  return { ...await makeUserWithSeed(base, name, seed), seed };
}

function env(net: Testnet, extra: Record<string, string> = {}): Record<string, string> {
  return {
    CIPHERPOST_PASSPHRASE: PASS,
    CIPHERPOST_BOOTSTRAP: net.bootstrap.join(","),
    CIPHERPOST_RELAYS: net.relayUrl,
    CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK: "1",
    CIPHERPOST_PART_SIZE: String(MiB),
    ...extra,
  };
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function records(home: string, prefix: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  try {
    for await (const e of Deno.readDir(`${home}/state/large`)) {
      if (e.name.startsWith(prefix) && e.name.endsWith(".json")) {
        out.push(JSON.parse(await Deno.readTextFile(`${home}/state/large/${e.name}`)));
      }
    }
  } catch { /* none */ }
  return out;
}

async function treeDigest(root: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  const names: string[] = [];
  for await (const e of Deno.readDir(`${root}/${rel}`)) names.push(e.name);
  names.sort();
  for (const n of names) {
    const p = rel ? `${rel}/${n}` : n;
    const st = await Deno.lstat(`${root}/${p}`);
    if (st.isDirectory) out.push(`D ${p}`, ...await treeDigest(root, p));
    else out.push(`F ${p} ${await blake3File(`${root}/${p}`)}`);
  }
  return out;
}

async function exists(p: string): Promise<boolean> {
  return await Deno.lstat(p).then(() => true, () => false);
}

/** Read a child's stdout up to its first line (the URI), keeping the rest flowing. */
async function firstLine(child: Deno.ChildProcess): Promise<string> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\n")) {
    const r = await reader.read();
    if (r.done) break;
    out += r.value;
  }
  (async () => {
    for (;;) if ((await reader.read()).done) break;
  })();
  return out.trim();
}

Deno.test({
  name: "streaming large shares: stdin through to tar x, resume, tampering, version-1 pointers",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const net = await startTestnet({ nodes: 12 });
    const tr = testTransport(net);
    const hs: HomeserverStandIn = await startHomeserver({ signupMode: "open", transport: tr });
    const base = await tmpDir("cp-lstream-");
    try {
      const alice = await person(base, "alice", 1);
      const bob = await person(base, "bob", 2);
      for (const p of [alice, bob]) {
        const r = await cli(["homeserver", "signup", hs.key], { home: p.home, env: env(net) });
        assert.deepStrictEqual(r.code, 0, r.stderr);
      }
      const aliceClient = async () =>
        (await connect(tr, {
          home: alice.home,
          user: keypairFromSeed(alice.seed).publicKey,
          seed: alice.seed,
          http: { allowLoopback: true },
        })).client;
      const blobOf = async (uri: string): Promise<string> => {
        for await (const e of Deno.readDir(`${alice.home}/state/sent`)) {
          const s = JSON.parse(await Deno.readTextFile(`${alice.home}/state/sent/${e.name}`));
          if (s.uri === uri) return s.large.blob_id as string;
        }
        throw new Error("no sent record");
      };

      await t.step(
        "tar c | send - and receive -o - | tar x run at once: output starts before the input ends",
        async () => {
          const dir = `${base}/tree/dir`;
          await Deno.mkdir(`${dir}/sub`, { recursive: true });
          await writePrngFile(`${dir}/a.bin`, 6 * MiB, SEED);
          await writePrngFile(`${dir}/sub/b.bin`, 5 * MiB + 123, SEED + 1);
          await Deno.writeTextFile(`${dir}/sub/c.txt`, "hello\n");
          const tarOut = await new Deno.Command("tar", {
            args: ["c", "-C", `${base}/tree`, "dir"],
            stdout: "piped",
          }).output();
          assert(tarOut.success);
          const tarBytes = tarOut.stdout;
          const sender = cliCommand(
            ["send", "--share", bob.z32, "--via", "homeserver", "-p", "a tree", "-"],
            { home: alice.home, env: env(net), stdin: new Uint8Array(0) },
          ).spawn();
          const senderErr = new Response(sender.stderr).text();
          const w = sender.stdin.getWriter();
          // the first 3 MiB of the tar only: the sender must publish and stream them
          await w.write(tarBytes.subarray(0, 3 * MiB));
          const uri = await firstLine(sender);
          assert.match(uri, /^cipherpost:\/\//, "the URI is out while stdin is open");
          const out = `${base}/tree-out`;
          await Deno.mkdir(out);
          const receiver = cliCommand(
            ["receive", uri, "--accept", alice.z32, "-o", "-"],
            {
              home: bob.home,
              env: env(net),
              shell: `set -o pipefail; "$@" | tar x -C '${out}'`,
            },
          ).spawn();
          const receiverErr = new Response(receiver.stderr).text();
          // a.bin appears and grows while the sender's standard input is still open
          await waitFor(async () =>
            (await Deno.stat(`${out}/dir/a.bin`).catch(() => null))?.size! > 0
          );
          // the closing record held back: the receiver reaches the last (short) part first and
          // must wait for the record instead of calling the short part a forgery
          hs.holdClosePuts(true);
          await w.write(tarBytes.subarray(3 * MiB));
          await w.close();
          await waitFor(async () =>
            (await Deno.readTextFile(`${out}/dir/sub/c.txt`).catch(() => "")) === "hello\n"
          );
          hs.holdClosePuts(false);
          const rx = await receiver.status;
          assert.deepStrictEqual(rx.code, 0, await receiverErr);
          const tx = await sender.status;
          assert.deepStrictEqual(tx.code, 0, await senderErr);
          assert.match(await receiverErr, /Size: +not known yet/);
          assert.deepStrictEqual(await treeDigest(`${out}/dir`), await treeDigest(dir));
          // the receipt binds the closing record's whole-ciphertext hash
          const rc = await cli(["receipts", "--from", bob.z32, "--json"], {
            home: alice.home,
            env: env(net),
          });
          assert.deepStrictEqual(rc.code, 0, rc.stderr);
          const [receipt] = JSON.parse(rc.stdout);
          const sent = JSON.parse(
            await Deno.readTextFile(`${alice.home}/state/sent/${receipt.share_ref}.json`),
          );
          assert.match(sent.large.ciphertext_hash, /^[0-9a-f]{64}$/);
          assert.deepStrictEqual(receipt.ciphertext_hash, sent.large.ciphertext_hash);
          assert.deepStrictEqual(await records(alice.home, "send-"), [], "stdin keeps no record");
        },
      );

      const big = `${base}/big.bin`;
      const bigHash = await writePrngFile(big, 40 * MiB + 7, SEED + 2);

      await t.step(
        "a file: kill -9 mid-send, the re-run uploads only the rest; kill -9 mid-receive, the re-run completes",
        async () => {
          const args = ["send", "--share", bob.z32, "-p", "big", "--material-file", big];
          const slow = env(net);
          const child = cliCommand(args, { home: alice.home, env: slow }).spawn();
          const uri = await firstLine(child);
          assert.match(uri, /^cipherpost:\/\//);
          // once 5 parts are up, hold the rest on the homeserver and kill the sender
          await waitFor(async () =>
            (await records(alice.home, "send-")).some((r) =>
              Object.keys(r.done as object).length >= 5
            )
          );
          hs.holdPartPuts(true);
          child.kill("SIGKILL");
          await child.status;
          hs.holdPartPuts(false);
          child.stderr.cancel().catch(() => {});
          const [rec] = await records(alice.home, "send-");
          assert.deepStrictEqual(rec.streaming, 2);
          const before = Object.keys(rec.done as object).length;
          assert(before < 41, `done before the kill: ${before}`);
          // a receiver started now gets the parts that are up, then waits
          const dest = `${base}/big-out.bin`;
          const rx = cliCommand(["receive", uri, "--accept", alice.z32, "-o", dest], {
            home: bob.home,
            env: env(net),
          }).spawn();
          await waitFor(async () =>
            (await records(bob.home, "recv-")).some((r) =>
              ((r.hashes as string[] | undefined) ?? []).length >= 3
            )
          );
          rx.kill("SIGKILL");
          await rx.status;
          rx.stdout.cancel().catch(() => {});
          rx.stderr.cancel().catch(() => {});
          assert(!(await exists(dest)), "nothing at the target yet");
          const [rr] = await records(bob.home, "recv-");
          const verified = (rr.hashes as string[]).length;

          hs.log.length = 0;
          const again = await cli([...args, "--json"], { home: alice.home, env: slow });
          assert.deepStrictEqual(again.code, 0, again.stderr);
          const o = JSON.parse(again.stdout);
          assert.deepStrictEqual(o.uri, uri, "the same share");
          assert.deepStrictEqual(o.reused, before);
          assert.deepStrictEqual(o.uploaded, 41 - before);
          assert.deepStrictEqual(await records(alice.home, "send-"), []);

          hs.log.length = 0;
          const r2 = await cli(["receive", uri, "--accept", alice.z32, "-o", dest], {
            home: bob.home,
            env: env(net),
          });
          assert.deepStrictEqual(r2.code, 0, r2.stderr);
          const gets = hs.log.filter((l) =>
            l.method === "GET" && /\/part-\d{5}$/.test(l.path) && l.status === 200
          ).length;
          assert.deepStrictEqual(gets, 41 - verified, "only the parts not yet verified");
          assert.deepStrictEqual(await blake3File(dest), bigHash);
          assert.deepStrictEqual(await records(bob.home, "recv-"), []);
        },
      );

      await t.step(
        "a replaced part or a forged closing record: exit 3, no output, no receipt",
        async () => {
          const small = `${base}/small.bin`;
          const smallHash = await writePrngFile(small, 5 * MiB, SEED + 3);
          for (const what of ["part", "close"] as const) {
            const r = await cli(["send", "--share", bob.z32, "--material-file", small], {
              home: alice.home,
              env: env(net),
            });
            assert.deepStrictEqual(r.code, 0, r.stderr);
            const uri = r.stdout.trim();
            const blob = await blobOf(uri);
            const c = await aliceClient();
            if (what === "part") {
              // a validly signed part in the wrong place: its signature names its index
              const p1 = await c.get(`/pub/cipherpost/blobs/${blob}/part-00001`);
              await c.put(
                `/pub/cipherpost/blobs/${blob}/part-00002`,
                new Uint8Array(await new Response(p1!.body).arrayBuffer()),
              );
            } else {
              const got = await c.get(`/pub/cipherpost/blobs/${blob}/close`);
              const bytes = new Uint8Array(await new Response(got!.body).arrayBuffer());
              bytes[3] ^= 1; // the signature no longer verifies
              await c.put(`/pub/cipherpost/blobs/${blob}/close`, bytes);
            }
            const ledger = await ledgerText(bob.home);
            const dest = `${base}/tampered-${what}.bin`;
            const rx = await cli(["receive", uri, "--accept", alice.z32, "-o", dest], {
              home: bob.home,
              env: env(net),
            });
            assert.deepStrictEqual(rx.code, 3, rx.stderr);
            assert.match(rx.stderr, /signature verification failed/);
            assert(!(await exists(dest)));
            assert.deepStrictEqual(await ledgerText(bob.home), ledger, "no acceptance recorded");
            assert.deepStrictEqual(await records(bob.home, "recv-"), []);
          }
          // an untouched one of the same file goes through
          const r = await cli(["send", "--share", bob.z32, "--material-file", small], {
            home: alice.home,
            env: env(net),
          });
          const dest = `${base}/fine.bin`;
          const rx = await cli(["receive", r.stdout.trim(), "--accept", alice.z32, "-o", dest], {
            home: bob.home,
            env: env(net),
          });
          assert.deepStrictEqual(rx.code, 0, rx.stderr);
          assert.deepStrictEqual(await blake3File(dest), smallHash);
        },
      );

      await t.step(
        "a version-1 pointer (CIPHERPOST_LARGE_POINTER=1) is still received",
        async () => {
          const r = await cli(["send", "--share", bob.z32, "--material-file", big], {
            home: alice.home,
            env: env(net, { CIPHERPOST_LARGE_POINTER: "1" }),
          });
          assert.deepStrictEqual(r.code, 0, r.stderr);
          const dest = `${base}/v1.bin`;
          const rx = await cli(["receive", r.stdout.trim(), "--accept", alice.z32, "-o", dest], {
            home: bob.home,
            env: env(net),
          });
          assert.deepStrictEqual(rx.code, 0, rx.stderr);
          assert.match(rx.stderr, /in 41 part\(s\)/, "the version-1 screen names the parts");
          assert.deepStrictEqual(await blake3File(dest), bigHash);
          // -o - stays refused for a version-1 pointer
          const rx2 = await cli(["receive", r.stdout.trim(), "--accept", alice.z32, "-o", "-"], {
            home: bob.home,
            env: env(net),
          });
          assert.notDeepStrictEqual(rx2.code, 0);
          assert.match(rx2.stderr, /needs an output path/);
        },
      );
    } catch (e) {
      console.error(`seed ${SEED}`);
      throw e;
    } finally {
      await hs.close();
      await net.close();
      await Deno.remove(base, { recursive: true }).catch(() => {});
    }
  },
});
