// Large shares (docs/PROTOCOL.md §5) through the real CLI, own homes, a local testnet and the
// stand-in homeserver: round trips of a 200 MiB file and of a directory tree, kill -9 during
// upload and download with resume, a replaced part, a deleted part, burn, expiry and gc.
import assert from "node:assert/strict";
import {
  cli,
  cliArgv,
  cliCommand,
  type CliResult,
  killAfterFirstLine,
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
import { parseShareUri } from "../lib/protocol/share_uri.ts";
import { fetchV2Receipt } from "../lib/flows/share/v2_transfer.ts";
import { blake3File, writePrngFile } from "../lib/testing/prng_file.ts";
import { HAVE_TMUX, runInTty } from "./_tty.ts";

const MiB = 1 << 20;
const BIG = 200 * MiB;
/**
 * Version-1 pointers (PROTOCOL.md §5.1–5.6), for the steps about their own behaviour (part
 * counts on the screen, kept ciphertext, the status file's count); streaming pointers (§5.7,
 * the default) are the other steps' and tests/large_stream_test.ts's.
 */
const V1 = { CIPHERPOST_LARGE_POINTER: "1" };

interface Person extends User {
  seed: Uint8Array;
}

/** A stable digest of a tree: paths, types, modes, link texts and file hashes. */
async function treeDigest(root: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  const names: string[] = [];
  for await (const e of Deno.readDir(`${root}/${rel}`)) names.push(e.name);
  names.sort();
  for (const n of names) {
    const p = rel ? `${rel}/${n}` : n;
    const st = await Deno.lstat(`${root}/${p}`);
    const mode = (st.mode ?? 0) & 0o777;
    if (st.isSymlink) out.push(`L ${p} -> ${await Deno.readLink(`${root}/${p}`)}`);
    else if (st.isDirectory) out.push(`D ${p} ${mode.toString(8)}`, ...await treeDigest(root, p));
    else out.push(`F ${p} ${mode.toString(8)} ${await blake3File(`${root}/${p}`)}`);
  }
  return out;
}

async function person(base: string, name: string, n: number): Promise<Person> {
  const seed = new Uint8Array(32).fill(n);
  const u = await makeUserWithSeed(base, name, seed);
  return { ...u, seed };
}

/** `cipherpost homeserver signup` on the stand-in (open signup). */
async function signUp(net: Testnet, p: Person, hs: HomeserverStandIn): Promise<void> {
  const r = await cli(["homeserver", "signup", hs.key], { home: p.home, env: env(net) });
  assert.deepStrictEqual(r.code, 0, r.stderr);
}

function env(net: Testnet, extra: Record<string, string> = {}): Record<string, string> {
  return {
    CIPHERPOST_PASSPHRASE: PASS,
    CIPHERPOST_BOOTSTRAP: net.bootstrap.join(","),
    CIPHERPOST_RELAYS: net.relayUrl,
    // the stand-in is plain http on 127.0.0.1 (as `cipherpost testnet --homeserver` prints it)
    CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK: "1",
    ...extra,
  };
}

async function send(
  from: Person,
  net: Testnet,
  args: string[],
  extra: Record<string, string> = {},
): Promise<CliResult & { uri: string }> {
  const r = await cli(["send", ...args], { home: from.home, env: env(net, extra) });
  return { ...r, uri: r.stdout.trim() };
}

async function receive(to: Person, net: Testnet, uri: string, sender: string, args: string[]) {
  return await cli(["receive", uri, "--accept", sender, ...args], {
    home: to.home,
    env: env(net),
  });
}

/** The CLI as a child process we can kill. */
function spawn(home: string, args: string[], e: Record<string, string>): Deno.ChildProcess {
  const argv = cliArgv(args);
  return new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: "/nonexistent",
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
      CIPHERPOST_HOME: home,
      ...e,
    },
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function resumeRecords(home: string, prefix: string): Promise<Record<string, unknown>[]> {
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

async function entries(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

/** The status file path of the newest blob with a PUT in the log. */
function statusPathOf(hs: HomeserverStandIn): string {
  const put = hs.log.findLast((l) => l.method === "PUT" && l.path.endsWith("/status"));
  assert(put, "a status file was written");
  return put.path;
}

const partPuts = (hs: HomeserverStandIn) =>
  hs.log.filter((l) => l.method === "PUT" && /\/part-\d{5}$/.test(l.path) && l.status === 201);
const partGets = (hs: HomeserverStandIn) =>
  hs.log.filter((l) => l.method === "GET" && /\/part-\d{5}$/.test(l.path) && l.status === 200);

Deno.test({
  name: "large shares: round trips, resume after kill -9, tampering, missing parts, burn, gc",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const net = await startTestnet({ nodes: 12 });
    const tr = testTransport(net);
    const hs = await startHomeserver({ signupMode: "open", transport: tr });
    const base = await tmpDir("cp-large-");
    try {
      const alice = await person(base, "alice", 1);
      const bob = await person(base, "bob", 2);
      await signUp(net, alice, hs);
      await signUp(net, bob, hs);
      const big = `${base}/big.bin`;
      const bigHash = await writePrngFile(big, BIG, 12345);
      const parts = Math.ceil(BIG / (16 * MiB));

      await t.step(
        "self: 200 MiB, kill -9 mid-upload, rerun uploads only the missing parts; kill -9 mid-download, rerun completes",
        async () => {
          hs.log.length = 0;
          const args = ["send", "--self", "-p", "big", "--material-file", big];
          const child = spawn(alice.home, args, env(net, V1));
          await waitFor(async () =>
            (await resumeRecords(alice.home, "send-")).some((r) =>
              Object.keys(r.done as object).length >= 3
            )
          );
          child.kill("SIGKILL");
          await child.status;
          const [rec] = await resumeRecords(alice.home, "send-");
          const doneBefore = Object.keys(rec.done as object).length;
          assert(doneBefore >= 3 && doneBefore < parts, `done before kill: ${doneBefore}`);
          hs.log.length = 0;
          const r = await send(alice, net, args.slice(1).concat("--json"), V1);
          assert.deepStrictEqual(r.code, 0, r.stderr);
          const out = JSON.parse(r.stdout);
          assert.deepStrictEqual(out.parts, parts);
          assert.deepStrictEqual(out.reused, doneBefore, r.stderr);
          assert.deepStrictEqual(out.uploaded, parts - doneBefore);
          assert.deepStrictEqual(partPuts(hs).length, parts - doneBefore, "PUTs of the rerun");
          assert.deepStrictEqual(await resumeRecords(alice.home, "send-"), []);

          hs.log.length = 0;
          const dest = `${base}/self-out.bin`;
          const rx = spawn(
            alice.home,
            ["receive", out.uri, "--accept", alice.z32, "-o", dest],
            env(net),
          );
          await waitFor(async () =>
            (await resumeRecords(alice.home, "recv-")).some((x) =>
              (x.verified as number[]).length >= 2
            )
          );
          rx.kill("SIGKILL");
          await rx.status;
          const [rr] = await resumeRecords(alice.home, "recv-");
          const verified = (rr.verified as number[]).length;
          assert(verified < parts, "killed before the end");
          assert(!(await entries(base)).includes("self-out.bin"), "nothing at the target yet");
          hs.log.length = 0;
          const r2 = await receive(alice, net, out.uri, alice.z32, ["-o", dest]);
          assert.deepStrictEqual(r2.code, 0, r2.stderr);
          assert.deepStrictEqual(
            partGets(hs).length,
            parts - verified,
            "only unverified parts fetched",
          );
          assert.deepStrictEqual(await blake3File(dest), bigHash);
          assert.deepStrictEqual((await Deno.stat(dest)).mode! & 0o777, 0o600);
          assert.deepStrictEqual(
            (await entries(base)).filter((n) => n.includes("cipherpost-")),
            [],
          );
        },
      );

      await t.step(
        "cross-identity: 200 MiB file, receipt binds the whole-ciphertext hash",
        async () => {
          const r = await send(alice, net, [
            "--share",
            bob.z32,
            "-p",
            "to bob",
            "--material-file",
            big,
          ], V1);
          assert.deepStrictEqual(r.code, 0, r.stderr);
          const dest = `${base}/bob-out.bin`;
          const rx = await receive(bob, net, r.uri, alice.z32, ["-o", dest]);
          assert.deepStrictEqual(rx.code, 0, rx.stderr);
          assert.match(rx.stderr, /Size: +209715200 bytes \(200\.0 MiB\) in 13 part/);
          assert.deepStrictEqual(await blake3File(dest), bigHash);
          const rc = await cli(["receipts", "--from", bob.z32, "--json"], {
            home: alice.home,
            env: env(net),
          });
          assert.deepStrictEqual(rc.code, 0, rc.stderr);
          const receipts = JSON.parse(rc.stdout);
          const sent = JSON.parse(
            await Deno.readTextFile(`${alice.home}/state/sent/${receipts[0].share_ref}.json`),
          );
          assert.deepStrictEqual(receipts[0].ciphertext_hash, sent.large.ciphertext_hash);
        },
      );

      await t.step(
        "the URI comes before the upload ends; a receiver started then waits for the parts (--wait 0 does not)",
        async () => {
          const src = `${base}/slow.bin`;
          const srcHash = await writePrngFile(src, 16 * MiB, 777);
          hs.holdPartPuts(true); // no part gets up until released
          hs.log.length = 0;
          const child = cliCommand(
            ["send", "--share", bob.z32, "-p", "slow", "--material-file", src],
            { home: alice.home, env: env(net, { ...V1, CIPHERPOST_PART_SIZE: String(MiB) }) },
          ).spawn();
          try {
            const stderrText = new Response(child.stderr).text();
            const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
            let out = "";
            while (!out.includes("\n")) {
              const r = await reader.read();
              if (r.done) break;
              out += r.value;
            }
            const uri = out.trim();
            assert.match(uri, /^cipherpost:\/\//);
            assert.deepStrictEqual(partPuts(hs).length, 0, "the URI is out before any part is up");
            const status = await fetch(`${hs.baseUrl}${statusPathOf(hs)}`, {
              headers: { "pubky-host": alice.z32 },
            });
            assert.deepStrictEqual(status.status, 200);
            assert.deepStrictEqual(JSON.parse(await status.text()), {
              parts: 16,
              state: "uploading",
            });

            const dest = `${base}/slow-out.bin`;
            const quick = await receive(bob, net, uri, alice.z32, ["-o", dest, "--wait", "0"]);
            assert.deepStrictEqual(quick.code, 6, quick.stderr);
            assert.match(quick.stderr, /share incomplete: 16 of 16 parts missing/);
            assert(!(await entries(base)).includes("slow-out.bin"), "nothing at the target");

            const statusGets = () =>
              hs.log.filter((l) => l.method === "GET" && l.path.endsWith("/status")).length;
            const asked = statusGets();
            const rxRun = receive(bob, net, uri, alice.z32, ["-o", dest]);
            // the receiver has found a part missing and read the status: let the parts go up
            await waitFor(() => statusGets() > asked);
            hs.holdPartPuts(false);
            const rx = await rxRun;
            assert.deepStrictEqual(rx.code, 0, rx.stderr);
            assert.match(rx.stderr, /the sender is still uploading; waiting/);
            assert.deepStrictEqual(await blake3File(dest), srcHash);
            for (;;) {
              const r = await reader.read();
              if (r.done) break;
              out += r.value;
            }
            const sent = await child.status;
            const errText = await stderrText;
            assert.deepStrictEqual(sent.code, 0, errText);
            assert.match(errText, /the receiver can start now/);
            assert.deepStrictEqual(out.trim(), uri, "the URI is printed once");
            const final = hs.log.filter((l) => l.method === "PUT" && l.path.endsWith("/status"));
            assert.deepStrictEqual(final.length, 2, "status written uploading, then complete");
          } finally {
            hs.holdPartPuts(false);
          }
        },
      );

      await t.step(
        "kill -9 after the pointer is out, kept ciphertext lost: the re-run (stdin) sends a new share",
        async () => {
          const bytes = new Uint8Array(4 * MiB).map((_, i) => (i * 2654435761) >>> 24);
          const args = ["send", "--self", "--via", "homeserver", "-p", "restart", "-"];
          const e = env(net, { ...V1, CIPHERPOST_PART_SIZE: String(MiB) });
          hs.holdPartPuts(true); // the pointer goes out, no part does
          let first = "";
          try {
            const argv = cliArgv(args);
            first = await killAfterFirstLine(argv, { ...e, CIPHERPOST_HOME: alice.home }, bytes);
          } finally {
            hs.holdPartPuts(false);
          }
          assert.match(first, /^cipherpost:\/\//);
          const [rec] = await resumeRecords(alice.home, "send-");
          assert.ok(rec?.published, "the resume record knows the pointer is out");
          for (const d of await entries(`${alice.home}/state/large`)) {
            if (d.startsWith("up-")) {
              await Deno.remove(`${alice.home}/state/large/${d}`, { recursive: true });
            }
          }
          const r = await cli([...args, "--json"], { home: alice.home, env: e, stdin: bytes });
          assert.deepStrictEqual(r.code, 0, r.stderr);
          assert.match(r.stderr, /cannot be completed \(the kept ciphertext of part \d+ is gone\)/);
          const out = JSON.parse(r.stdout);
          assert.notDeepStrictEqual(out.uri, first.trim(), "a new share");
          assert.deepStrictEqual(out.uploaded, 4);
          const dest = `${base}/restart-out.bin`;
          const rx = await receive(alice, net, out.uri, alice.z32, ["-o", dest]);
          assert.deepStrictEqual(rx.code, 0, rx.stderr);
          assert.deepStrictEqual(await Deno.readFile(dest), bytes);
        },
      );

      await t.step("directory tree with a PIN, to another key", async () => {
        const src = `${base}/tree`;
        await Deno.mkdir(`${src}/sub/deeper`, { recursive: true });
        await Deno.mkdir(`${src}/empty`);
        await writePrngFile(`${src}/a.bin`, 3 * MiB + 17, 7);
        await Deno.writeTextFile(`${src}/sub/notes.txt`, "hello\n");
        await Deno.writeTextFile(`${src}/sub/deeper/x.sh`, "#!/bin/sh\necho hi\n");
        await Deno.chmod(`${src}/sub/deeper/x.sh`, 0o755);
        await Deno.writeTextFile(`${src}/${"n".repeat(120)}.txt`, "long name");
        await Deno.symlink("sub/notes.txt", `${src}/link`);
        await Deno.writeTextFile(`${base}/pin.txt`, "4711-9020");
        await Deno.chmod(`${base}/pin.txt`, 0o600);
        const r = await send(alice, net, [
          "--share",
          bob.z32,
          "--pin",
          "--pin-file",
          `${base}/pin.txt`,
          "--material-file",
          src,
        ], { CIPHERPOST_PART_SIZE: String(MiB) });
        assert.deepStrictEqual(r.code, 0, r.stderr);
        const dest = `${base}/tree-out`;
        const rx = await receive(bob, net, r.uri, alice.z32, [
          "-o",
          dest,
          "--pin-file",
          `${base}/pin.txt`,
        ]);
        assert.deepStrictEqual(rx.code, 0, rx.stderr);
        assert.match(rx.stderr, /Files: +4/);
        assert.match(rx.stderr, /Entries: +a\.bin, empty, link, n+\.txt, sub/);
        assert.deepStrictEqual(await treeDigest(dest), await treeDigest(src));
      });

      // Small multi-part shares for the failure cases (1 MiB parts).
      const small = `${base}/small.bin`;
      await writePrngFile(small, 5 * MiB, 99);
      const smallEnv = { CIPHERPOST_PART_SIZE: String(MiB) };
      const alicesClient = async () =>
        (await connect(tr, { home: alice.home, user: keypairFromSeed(alice.seed).publicKey }))
          .client;
      const blobOf = async (uri: string) => {
        for await (const e of Deno.readDir(`${alice.home}/state/sent`)) {
          const s = JSON.parse(await Deno.readTextFile(`${alice.home}/state/sent/${e.name}`));
          if (s.uri === uri) return s.large.blob_id as string;
        }
        throw new Error("no sent record");
      };

      await t.step("a replaced part: exit 3, nothing written, no receipt", async () => {
        const r = await send(alice, net, ["--share", bob.z32, "--material-file", small], smallEnv);
        assert.deepStrictEqual(r.code, 0, r.stderr);
        const blob = await blobOf(r.uri);
        const c = await alicesClient();
        const p1 = await c.get(`/pub/cipherpost/blobs/${blob}/part-00001`);
        const bytes = new Uint8Array(await new Response(p1!.body).arrayBuffer());
        // a validly encrypted part in the wrong place: age accepts it, our hash does not
        await c.put(`/pub/cipherpost/blobs/${blob}/part-00002`, bytes);
        const out = `${base}/replaced`;
        await Deno.mkdir(out);
        const ledger = await ledgerText(bob.home);
        const rx = await receive(bob, net, r.uri, alice.z32, ["-o", `${out}/x.bin`]);
        assert.deepStrictEqual(rx.code, 3, rx.stderr);
        assert.match(rx.stderr, /signature verification failed/);
        assert.deepStrictEqual(await entries(out), []);
        assert.deepStrictEqual(await ledgerText(bob.home), ledger);
        assert.deepStrictEqual(
          await fetchV2Receipt(tr, (parseShareUri(r.uri) as { locator: Uint8Array }).locator),
          null,
        );
      });

      await t.step("a deleted part: exit 6 naming it", async () => {
        const r = await send(alice, net, ["--share", bob.z32, "--material-file", small], {
          ...smallEnv,
          ...V1,
        });
        assert.deepStrictEqual(r.code, 0, r.stderr);
        const blob = await blobOf(r.uri);
        assert(await (await alicesClient()).delete(`/pub/cipherpost/blobs/${blob}/part-00003`));
        const rx = await receive(bob, net, r.uri, alice.z32, ["-o", `${base}/deleted.bin`]);
        assert.deepStrictEqual(rx.code, 6, rx.stderr);
        assert.match(rx.stderr, /1 of 5 parts missing on the homeserver \(parts 3\)/);
        assert(!(await entries(base)).includes("deleted.bin"));
      });

      await t.step(
        "progress: a bar with rate and ETA on a terminal, nothing without one",
        async () => {
          const quiet = await send(alice, net, ["--self", "--material-file", small], smallEnv);
          assert.deepStrictEqual(quiet.code, 0, quiet.stderr);
          assert.doesNotMatch(quiet.stderr, /\[#|\r|ETA/, "no bar when stderr is not a terminal");
          if (!HAVE_TMUX) return console.log("tmux unavailable: the terminal bar is not exercised");
          const ttyEnv = {
            ...env(net, smallEnv),
            CIPHERPOST_HOME: alice.home,
            NO_COLOR: "1",
          };
          const up = await runInTty(["send", "--self", "--material-file", small], { env: ttyEnv });
          assert.deepStrictEqual(up.code, 0, up.screen);
          assert.match(
            up.screen,
            /upload \[#{24}\] 100% 5\.0 MiB\/5\.0 MiB [\d.]+ [KMG]?i?B\/s/,
          );
          const uri = up.stdout.trim();
          const down = await runInTty(
            ["receive", uri, "--accept", alice.z32, "-o", `${base}/tty.bin`],
            { env: ttyEnv },
          );
          assert.deepStrictEqual(down.code, 0, down.screen);
          assert.match(
            down.screen,
            /download \[#{24}\] 100% 5\.0 MiB\/5\.0 MiB [\d.]+ [KMG]?i?B\/s/,
          );
          assert.deepStrictEqual(await blake3File(`${base}/tty.bin`), await blake3File(small));
        },
      );

      await t.step(
        "429 on part GETs: waited out as Retry-After says; too many: exit 6 saying so",
        async () => {
          const r = await send(
            alice,
            net,
            ["--share", bob.z32, "--material-file", small],
            smallEnv,
          );
          assert.deepStrictEqual(r.code, 0, r.stderr);
          hs.log.length = 0;
          hs.rateLimitGets(2, "1");
          const t0 = performance.now();
          const rx = await receive(bob, net, r.uri, alice.z32, ["-o", `${base}/limited.bin`]);
          assert.deepStrictEqual(rx.code, 0, rx.stderr);
          assert.deepStrictEqual(hs.log.filter((l) => l.status === 429).length, 2);
          assert.ok(performance.now() - t0 >= 1000, "the Retry-After second was waited");
          assert.deepStrictEqual(
            await blake3File(`${base}/limited.bin`),
            await blake3File(small),
          );
          // a server that keeps answering 429 (and asks for an hour): a clear network failure
          const r2 = await send(
            alice,
            net,
            ["--share", bob.z32, "--material-file", small],
            smallEnv,
          );
          assert.deepStrictEqual(r2.code, 0, r2.stderr);
          hs.rateLimitGets(1000, "3600");
          const rx2 = await receive(bob, net, r2.uri, alice.z32, ["-o", `${base}/limited2.bin`]);
          hs.rateLimitGets(0, "0");
          assert.deepStrictEqual(rx2.code, 6, rx2.stderr);
          assert.match(
            rx2.stderr,
            /parts could not be fetched \(the homeserver is rate limiting \(429, asks to wait 3600 s\)/,
          );
          assert(!(await entries(base)).includes("limited2.bin"));
        },
      );

      await t.step(
        "burn: the second receive is refused; gc deletes the receipted burn blob",
        async () => {
          const r = await send(alice, net, [
            "--share",
            bob.z32,
            "--burn",
            "--via",
            "homeserver",
            "--material-file",
            small,
          ], smallEnv);
          assert.deepStrictEqual(r.code, 0, r.stderr);
          const blob = await blobOf(r.uri);
          const ok = await receive(bob, net, r.uri, alice.z32, ["-o", `${base}/burn1.bin`]);
          assert.deepStrictEqual(ok.code, 0, ok.stderr);
          const again = await receive(bob, net, r.uri, alice.z32, ["-o", `${base}/burn2.bin`]);
          assert.deepStrictEqual(again.code, 7, again.stderr);
          assert.match(again.stderr, /burned/);
          const gc = await cli(["homeserver", "gc"], { home: alice.home, env: env(net) });
          assert.deepStrictEqual(gc.code, 0, gc.stderr);
          assert.match(gc.stderr, new RegExp(`deleted blob ${blob} \\(burned and receipted\\)`));
          assert.deepStrictEqual(
            await (await alicesClient()).list(`/pub/cipherpost/blobs/${blob}/`),
            [],
          );
        },
      );

      await t.step("expiry and revoke: gc deletes the blob, keeps live ones", async () => {
        const live = await send(alice, net, ["--self", "--material-file", small], smallEnv);
        assert.deepStrictEqual(live.code, 0, live.stderr);
        const r = await send(
          alice,
          net,
          ["--self", "--ttl", "1", "--material-file", small],
          smallEnv,
        );
        assert.deepStrictEqual(r.code, 0, r.stderr);
        const blob = await blobOf(r.uri);
        const liveBlob = await blobOf(live.uri);
        await new Promise((res) => setTimeout(res, 1500));
        const gc = await cli(["homeserver", "gc"], { home: alice.home, env: env(net) });
        assert.deepStrictEqual(gc.code, 0, gc.stderr);
        assert.match(gc.stderr, new RegExp(`deleted blob ${blob} \\(expired\\)`));
        const c = await alicesClient();
        assert.deepStrictEqual(await c.list(`/pub/cipherpost/blobs/${blob}/`), []);
        // its 5 parts, the status file (§5.3) and the closing record (§5.7)
        assert.deepStrictEqual((await c.list(`/pub/cipherpost/blobs/${liveBlob}/`)).length, 7);
        // a folder this home did not send (another machine of the same identity, say): kept
        const foreign = "f0".repeat(16);
        await c.put(`/pub/cipherpost/blobs/${foreign}/part-00000`, new Uint8Array(100));
        const rv = await cli(["revoke", live.uri], { home: alice.home, env: env(net) });
        assert.deepStrictEqual(rv.code, 0, rv.stderr);
        const gc2 = await cli(["homeserver", "gc"], { home: alice.home, env: env(net) });
        assert.deepStrictEqual(gc2.code, 0, gc2.stderr);
        assert.match(gc2.stderr, new RegExp(`deleted blob ${liveBlob} \\(revoked\\)`));
        assert.deepStrictEqual(await c.list(`/pub/cipherpost/blobs/${liveBlob}/`), []);
        assert.match(gc2.stdout, /; 1 of them not sent from this home \(--delete-unknown/);
        assert.deepStrictEqual((await c.list(`/pub/cipherpost/blobs/${foreign}/`)).length, 1);
        // the tombstone did its work: a second gc deletes nothing
        const gc3 = await cli(["homeserver", "gc"], { home: alice.home, env: env(net) });
        assert.match(gc3.stdout, /^deleted 0 blob\(s\)/, gc3.stdout);
        const gc4 = await cli(["homeserver", "gc", "--delete-unknown"], {
          home: alice.home,
          env: env(net),
        });
        assert.deepStrictEqual(gc4.code, 0, gc4.stderr);
        assert.match(
          gc4.stderr,
          new RegExp(`deleted blob ${foreign} \\(not sent from this home\\)`),
        );
        assert.deepStrictEqual(await c.list(`/pub/cipherpost/blobs/${foreign}/`), []);
      });

      await t.step("republish forgets an expired large share and deletes its blob", async () => {
        const r = await send(
          alice,
          net,
          ["--self", "--ttl", "1", "--material-file", small],
          smallEnv,
        );
        assert.deepStrictEqual(r.code, 0, r.stderr);
        const blob = await blobOf(r.uri);
        await new Promise((res) => setTimeout(res, 1500));
        const rp = await cli(["republish"], { home: alice.home, env: env(net) });
        assert.deepStrictEqual(rp.code, 0, rp.stderr);
        assert.match(
          rp.stdout,
          /expired forgotten: [12];.*; homeserver: deleted 1 blob\(s\)/,
          rp.stdout,
        );
        assert.match(rp.stderr, new RegExp(`deleted blob ${blob} \\(expired\\)`));
        assert.deepStrictEqual(
          await (await alicesClient()).list(`/pub/cipherpost/blobs/${blob}/`),
          [],
        );
      });
    } finally {
      await hs.close();
      await tr.close();
      await net.close();
      await Deno.remove(base, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "large shares: over the homeserver quota → exit 1 naming the quota and gc; the share waits for a re-run",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const net = await startTestnet({ nodes: 12 });
    const tr = testTransport(net);
    const hs = await startHomeserver({ signupMode: "open", transport: tr, quotaBytes: 4 * MiB });
    const base = await tmpDir("cp-large-quota-");
    try {
      const alice = await person(base, "alice", 7);
      await signUp(net, alice, hs);
      const file = `${base}/six.bin`;
      await writePrngFile(file, 6 * MiB, 99);
      // parts are held until the pointer is out, so the quota stops the upload after it
      hs.holdPartPuts(true);
      const child = cliCommand(["send", "--self", "--material-file", file], {
        home: alice.home,
        env: env(net, { CIPHERPOST_PART_SIZE: String(MiB) }),
      }).spawn();
      const errText = new Response(child.stderr).text();
      let stdout = "";
      try {
        for await (const c of child.stdout.pipeThrough(new TextDecoderStream())) {
          stdout += c;
          if (stdout.includes("\n")) hs.holdPartPuts(false);
        }
      } finally {
        hs.holdPartPuts(false);
      }
      const r = { code: (await child.status).code, stdout, stderr: await errText };
      assert.deepStrictEqual(r.code, 1, r.stderr);
      assert.match(r.stderr, /storage quota exceeded on the homeserver/);
      assert.match(r.stderr, /cipherpost homeserver gc/);
      // every part was sealed, so the pointer went out (§5.3) before the quota stopped the
      // upload: the share is recorded, says it is incomplete, and the resume record stays
      assert.match(r.stdout, /^cipherpost:\/\/\S+\n$/);
      assert.match(r.stderr, /is published but incomplete: run the same send again/);
      const sent = await Array.fromAsync(Deno.readDir(`${alice.home}/state/sent`)).catch(() => []);
      assert.deepStrictEqual(sent.length, 1);
      const [rec] = await resumeRecords(alice.home, "send-");
      assert.ok(rec.published, "the resume record knows the share is out");
      assert.ok(hs.log.some((l) => l.method === "PUT" && l.status === 507), "a 507 was answered");
      assert.ok(hs.usedBytes(alice.z32) <= 4 * MiB);
    } finally {
      await hs.close();
      await tr.close();
      await net.close();
      await Deno.remove(base, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "large shares: Ctrl-C (SIGINT) during the upload says how far it got and that a re-run resumes (exit 130); the re-run does",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const net = await startTestnet({ nodes: 12 });
    const tr = testTransport(net);
    const hs = await startHomeserver({ signupMode: "open", transport: tr });
    const base = await tmpDir("cp-large-sigint-");
    try {
      const alice = await person(base, "alice", 8);
      await signUp(net, alice, hs);
      const file = `${base}/four.bin`;
      const hash = await writePrngFile(file, 4 * MiB, 4242);
      const args = ["send", "--self", "-p", "ctrl-c", "--material-file", file];
      const e = env(net, { CIPHERPOST_PART_SIZE: String(MiB) });
      // no part gets up: the pointer goes out, then the send waits on its first PUTs
      hs.holdPartPuts(true);
      const child = cliCommand(args, { home: alice.home, env: e }).spawn();
      const errText = new Response(child.stderr).text();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      try {
        while (!out.includes("\n")) {
          const r = await reader.read();
          if (r.done) break;
          out += r.value;
        }
        assert.match(out, /^cipherpost:\/\/\S+\n$/, "the URI is out");
        child.kill("SIGINT");
        const code = (await child.status).code;
        const stderr = await errText;
        assert.deepStrictEqual(code, 130, stderr);
        assert.match(
          stderr,
          /^interrupted \((no part uploaded yet|[\d.]+ [KMG]?i?B of 4\.0 MiB uploaded)\): run the same command again to resume$/m,
        );
      } finally {
        await reader.cancel().catch(() => {});
        hs.holdPartPuts(false);
      }
      // the re-run finishes the same share
      const again = await cli(args, { home: alice.home, env: e });
      assert.deepStrictEqual(again.code, 0, again.stderr);
      assert.deepStrictEqual(again.stdout, out, "the same URI");
      assert.match(again.stderr, /resuming:/);
      const dest = `${base}/four-out.bin`;
      const rx = await receive(alice, net, out.trim(), alice.z32, ["-o", dest]);
      assert.deepStrictEqual(rx.code, 0, rx.stderr);
      assert.deepStrictEqual(await blake3File(dest), hash);
    } finally {
      await hs.close();
      await tr.close();
      await net.close();
      await Deno.remove(base, { recursive: true }).catch(() => {});
    }
  },
});
