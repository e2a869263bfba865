// Claude sync's incremental costs (docs/PROTOCOL.md §8.3, §8.5) through the real CLI, a local
// testnet and the homeserver stand-in: a push with nothing changed neither unlocks the identity
// (a wrong passphrase does not matter) nor makes a request; a turn appended to a transcript
// uploads one small chunk, one snapshot page and the small head (bytes counted at the stand-in);
// a head the homeserver lost is caught by pull and repaired by `push --force`.
import assert from "node:assert/strict";
import { cli, type CliResult, makeUserWithSeed, PASS, testTransport, tmpDir } from "./_helpers.ts";
import { startTestnet, type Testnet } from "../lib/testing/testnet.ts";
import { startHomeserver } from "../lib/testing/homeserver.ts";
import { connect } from "../lib/homeserver/connect.ts";
import { keypairFromSeed } from "../lib/crypto/keys.ts";
import { projectDirName } from "../lib/claude/project_dir.ts";
import type { HomeserverClient } from "../lib/homeserver/client.ts";

const SEED = new Uint8Array(32).fill(11);

function turn(cwd: string, id: string, n: number, text: string): string {
  return JSON.stringify({
    parentUuid: null,
    cwd,
    sessionId: id,
    type: n % 2 ? "assistant" : "user",
    message: { role: n % 2 ? "assistant" : "user", content: [{ type: "text", text }] },
    uuid: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
  }) + "\n";
}

/** Seeded letters and spaces. */
function textGen(seed: number) {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    let s = "";
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      s += "abcdefghijklmnopqrstuvwxyz   "[(x >>> 0) % 29];
    }
    return s;
  };
}

async function sizeAt(c: HomeserverClient, path: string): Promise<number> {
  const r = await c.get(path);
  return r ? (await new Response(r.body).arrayBuffer()).byteLength : 0;
}

Deno.test({
  name:
    "claude sync perf: a no-change push makes no request and needs no unlock; an append uploads about what was appended",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const seed = Number(Deno.env.get("SYNC_PERF_SEED") ?? 20261205);
    const net: Testnet = await startTestnet({ nodes: 8 });
    const tr = testTransport(net);
    const hs = await startHomeserver({ signupMode: "open", transport: tr });
    const base = await tmpDir("cp-sync-perf-");
    try {
      const u = await makeUserWithSeed(base, "cp", SEED);
      const homeDir = `${base}/home`;
      const project = `${homeDir}/code/proj`;
      await Deno.mkdir(project, { recursive: true });
      const config = `${homeDir}/.claude`;
      const folder = `${config}/projects/${projectDirName(project)}`;
      await Deno.mkdir(folder, { recursive: true });
      // a second machine with the same identity (pulls only)
      const uB = await makeUserWithSeed(base, "cpB", SEED);
      const homeB = `${base}/homeB`;
      await Deno.mkdir(`${homeB}/code/proj`, { recursive: true });
      const run = (args: string[], pass = PASS, onB = false): Promise<CliResult> =>
        cli(["claude", "sync", ...args], {
          home: onB ? uB.home : u.home,
          net,
          env: {
            HOME: onB ? homeB : homeDir,
            CIPHERPOST_PASSPHRASE: pass,
            CIPHERPOST_DEVICE_LABEL: onB ? "B" : "perf",
          },
        });
      const ok = async (args: string[], pass = PASS, onB = false) => {
        const r = await run([...args, "--json"], pass, onB);
        assert.deepStrictEqual(r.code, 0, `${args.join(" ")} (seed ${seed}): ${r.stderr}`);
        return JSON.parse(r.stdout);
      };
      assert.deepStrictEqual(
        (await cli(["homeserver", "signup", hs.key], { home: u.home, net, env: u.env })).code,
        0,
      );
      const client = (await connect(tr, { home: u.home, user: keypairFromSeed(SEED).publicKey }))
        .client;

      // 60 sessions, one of ~3 MB: enough entries for several snapshot pages
      const text = textGen(seed);
      const big = `${folder}/00000000-0000-4000-8000-000000000000.jsonl`;
      for (let s = 0; s < 60; s++) {
        const id = `${String(s).padStart(8, "0")}-0000-4000-8000-000000000000`;
        const lines: string[] = [];
        const turns = s === 0 ? 900 : 4;
        for (let n = 0; n < turns; n++) lines.push(turn(project, id, n, text(3000)));
        await Deno.writeTextFile(`${folder}/${id}.jsonl`, lines.join(""));
      }
      const first = await ok(["push"]);
      assert.deepStrictEqual(first.pushed, true);
      assert(first.counters.pages_uploaded >= 8, JSON.stringify(first.counters));

      // B's first pull reads every page; a pull with nothing new reads A's head and no object
      // (the pages come from B's page cache)
      const objectGets = () =>
        hs.log.filter((l) => l.method === "GET" && l.path.includes("/sync/o/")).length;
      hs.log.length = 0;
      assert.deepStrictEqual((await ok(["pull"], PASS, true)).actions.length, 60);
      assert(objectGets() >= 60 + first.counters.pages_uploaded, `${objectGets()} object GETs`);
      hs.log.length = 0;
      assert.deepStrictEqual((await ok(["pull"], PASS, true)).actions.length, 0);
      assert.deepStrictEqual(objectGets(), 0);

      // nothing changed: no request at all, and no unlock (a wrong passphrase is never tried)
      hs.log.length = 0;
      const same = await ok(["push"], "not the passphrase");
      assert.deepStrictEqual(same.pushed, false);
      assert.deepStrictEqual(same.seq, first.seq);
      assert.deepStrictEqual(same.counters.files, 60);
      assert.deepStrictEqual(same.counters.files_read, 0);
      assert.deepStrictEqual(hs.log.length, 0, JSON.stringify(hs.log));
      const plain = await run(["push"], "not the passphrase");
      assert.deepStrictEqual(plain.code, 0, plain.stderr);
      assert.match(plain.stderr, /nothing to push .*60 file\(s\) checked, 0 read/);

      // a turn appended to the 3 MB transcript
      const appended = turn(project, "00000000-0000-4000-8000-000000000000", 900, text(3000));
      await Deno.writeTextFile(big, appended, { append: true });
      // a change does need the identity: the wrong passphrase fails now, and nothing is sent
      hs.log.length = 0;
      const wrong = await run(["push"], "not the passphrase");
      assert.notDeepStrictEqual(wrong.code, 0);
      assert.deepStrictEqual(hs.log.filter((l) => l.method === "PUT").length, 0);
      const r = await ok(["push"]);
      assert.deepStrictEqual(r.pushed, true);
      assert.deepStrictEqual(r.changed, 1);
      assert.deepStrictEqual(r.counters.files_read, 1);
      assert.deepStrictEqual(r.counters.chunks_uploaded, 1);
      assert.deepStrictEqual(r.counters.pages_uploaded, 1);
      // bytes as stored at the stand-in, for every PUT of this push
      const puts = hs.log.filter((l) => l.method === "PUT" && l.path.includes("/sync/"));
      let stored = 0;
      let headBytes = 0;
      for (const p of puts) {
        const path = decodeURIComponent(p.path.replace(/^\/pub\//, "/pub/"));
        const n = await sizeAt(client, path);
        stored += n;
        if (path.endsWith("/head")) headBytes = n;
      }
      assert.deepStrictEqual(puts.length, 4, JSON.stringify(puts)); // chunk, page, snapshot, head
      assert.deepStrictEqual(stored, r.counters.bytes_uploaded);
      // the chunk: the appended bytes padded to 4 KiB plus age's header; the page: 60 entries
      // over 8 pages, each padded to 4 KiB; the head twice (its own name and `head`)
      const bound = 2 * appended.length + 2 * 4096 + 2 * headBytes + 1024;
      assert(
        stored <= bound,
        `uploaded ${stored} B for ${appended.length} B appended (bound ${bound}, seed ${seed})`,
      );
      assert(headBytes < 2048, `head ${headBytes} B`);

      // B pulls the append: one page and the transcript's new chunk, not every page
      hs.log.length = 0;
      const pb = await ok(["pull"], PASS, true);
      assert.deepStrictEqual(pb.actions.length, 1, JSON.stringify(pb.actions));
      assert(objectGets() < first.counters.pages_uploaded, `${objectGets()} object GETs`);

      // the homeserver loses this device's head: a no-change push does not look (documented),
      // pull notices (exit 3), push --force republishes, pull is fine again
      const dev = r.device as string;
      assert(await client.delete(`/pub/cipherpost/sync/${dev}/head`));
      assert.deepStrictEqual((await ok(["push"])).pushed, false);
      const lost = await run(["pull"]);
      assert.deepStrictEqual(lost.code, 3, lost.stderr);
      assert.match(lost.stderr, /signature verification failed/);
      const forced = await ok(["push", "--force"]);
      assert.deepStrictEqual(forced.pushed, true);
      assert.deepStrictEqual(forced.seq, r.seq + 1);
      assert.deepStrictEqual(forced.counters.files_read, 60);
      // every chunk (at least one per file) and every page uploaded again
      assert(forced.counters.chunks_uploaded >= 60, JSON.stringify(forced.counters));
      assert.deepStrictEqual(forced.counters.pages_uploaded, first.counters.pages_uploaded);
      assert.deepStrictEqual(forced.changed, 0);
      await ok(["pull"]);

      // log: every snapshot's counts from the signed heads, no page read
      hs.log.length = 0;
      const lg = await ok(["log"]);
      assert.deepStrictEqual(lg.length, forced.seq);
      assert.deepStrictEqual(lg[0].files, 60);
      assert.deepStrictEqual(objectGets(), 0);
    } finally {
      await hs.close();
      await tr.close();
      await net.close();
      await Deno.remove(base, { recursive: true }).catch(() => {});
    }
  },
});
