// Claude sync (docs/PROTOCOL.md §8) through the real CLI: two machines (separate HOME and
// cipherpost homes, the same identity), a local testnet and the stand-in homeserver. Sessions
// placed under another project path, fast-forward, divergence, history union, deletions, the
// stat cache, and a homeserver that rolls back, drops or swaps objects (exit 3, nothing written).
import assert from "node:assert/strict";
import { cli, cliArgv, PASS, testTransport, tmpDir } from "./_helpers.ts";
import { startTestnet } from "../lib/testing/testnet.ts";
import { startHomeserver } from "../lib/testing/homeserver.ts";
import { connect } from "../lib/homeserver/connect.ts";
import { keypairFromSeed } from "../lib/crypto/keys.ts";
import { projectDirName } from "../lib/claude/project_dir.ts";
import { startClaudeApi } from "./_claude_api.ts";
import {
  bytesOf,
  historyEntry,
  ID,
  type Machine,
  machine,
  ok,
  run,
  SEED,
  tree,
  turn,
} from "./_sync_people.ts";

import { BLOCK, type ChunkRef, cutChunks } from "../lib/sync/chunker.ts";
import { SyncKeys } from "../lib/sync/keys.ts";
import {
  type FileEntry,
  type Manifest,
  openChunk,
  openHead,
  openPages,
  type Page,
  sealChunk,
  sealSnapshot,
} from "../lib/sync/snapshot.ts";

const KEYS = new SyncKeys(keypairFromSeed(SEED));

/** Cut `bytes` against `base`; the chunks and which were new. */
async function cut(bytes: Uint8Array, base: ChunkRef[]) {
  const chunks: ChunkRef[] = [];
  let fresh = 0;
  let freshBytes = 0;
  const s = await cutChunks(
    new Blob([bytes as Uint8Array<ArrayBuffer>]).stream(),
    base,
    KEYS,
    (c) => {
      chunks.push([c.id, c.len]);
      if (!c.reused) {
        fresh++;
        freshBytes += c.len;
      }
    },
  );
  return { chunks, fresh, freshBytes, ...s };
}

function prng(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 255;
  }
  return b;
}

Deno.test("sync chunker: appends upload only the tail; a completed block is one chunk again", async () => {
  const seed = 20261205;
  const data = prng(3 * BLOCK + 5000, seed);
  const first = await cut(data, []);
  assert.deepStrictEqual(
    first.chunks.map((c) => c[1]),
    [BLOCK, BLOCK, BLOCK, 5000],
    `seed ${seed}`,
  );
  // append 700 bytes: one new piece of 700 bytes
  const grown = new Uint8Array(data.length + 700);
  grown.set(data);
  grown.set(prng(700, seed + 1), data.length);
  const second = await cut(grown, first.chunks);
  assert.deepStrictEqual(second.fresh, 1);
  assert.deepStrictEqual(second.freshBytes, 700);
  assert.deepStrictEqual(second.chunks.map((c) => c[1]), [BLOCK, BLOCK, BLOCK, 5000, 700]);
  // nothing changed: nothing new
  assert.deepStrictEqual((await cut(grown, second.chunks)).fresh, 0);
  // fill the block and more: the block becomes one chunk, then a new piece
  const full = new Uint8Array(4 * BLOCK + 10);
  full.set(grown);
  full.set(prng(full.length - grown.length, seed + 2), grown.length);
  const third = await cut(full, second.chunks);
  assert.deepStrictEqual(third.chunks.map((c) => c[1]), [BLOCK, BLOCK, BLOCK, BLOCK, 10]);
  assert.deepStrictEqual(third.fresh, 2);
  // the same content cut without a base gives the same chunks (stored once)
  assert.deepStrictEqual((await cut(full, [])).chunks, third.chunks);
  // a change inside one block re-uploads that block only
  const edited = full.slice();
  edited[BLOCK + 17] ^= 1;
  const fourth = await cut(edited, third.chunks);
  assert.deepStrictEqual(fourth.fresh, 1);
  assert.notDeepStrictEqual(fourth.hash, third.hash);
});

Deno.test("sync objects: a flipped byte, another key or a wrong id fail as a signature", async () => {
  const m: Manifest = {
    v: 2,
    device: "0".repeat(32),
    label: "x",
    seq: 1,
    prev: null,
    time: 1,
    seen: {},
    files: [],
    gone: [],
  };
  const sealed = (await sealSnapshot(m, KEYS)).head;
  assert.deepStrictEqual((await openHead(sealed, KEYS, m.device)).seq, 1);
  await assert.rejects(openHead(sealed, KEYS, "1".repeat(32)), /signature verification failed/);
  const flipped = sealed.slice();
  flipped[flipped.length - 20] ^= 1;
  await assert.rejects(openHead(flipped, KEYS, m.device), /signature verification failed/);
  const other = new SyncKeys(keypairFromSeed(new Uint8Array(32).fill(8)));
  await assert.rejects(
    openHead((await sealSnapshot(m, other)).head, KEYS, m.device),
    /signature verification failed/,
  );
  const plain = new TextEncoder().encode("chunk");
  const c = await sealChunk(plain, KEYS);
  assert.deepStrictEqual(c.length > 4096, true);
  assert.deepStrictEqual(await openChunk(c, KEYS.chunkId(plain), 5, KEYS), plain);
  await assert.rejects(openChunk(c, KEYS.chunkId(plain), 4, KEYS), /signature verification failed/);
  await assert.rejects(
    openChunk(await sealChunk(plain, other), KEYS.chunkId(plain), 5, KEYS),
    /signature verification failed/,
  );
});

Deno.test("sync snapshot pages: one changed file changes one page; swapped, dropped or moved pages fail", async () => {
  const entry = (i: number, hash: string): FileEntry => ({
    path: `s${i}.jsonl`,
    root: "${HOME}/code/p",
    mode: 0o600,
    mtime: i,
    size: 1,
    hash,
    chunks: [[hash, 1]],
    origin: ["0".repeat(32), 1],
  });
  const files = Array.from({ length: 1000 }, (_, i) => entry(i, "a".repeat(64)));
  const m: Manifest = {
    v: 2,
    device: "0".repeat(32),
    label: "x",
    seq: 1,
    prev: null,
    time: 1,
    seen: {},
    files,
    gone: [{ path: "gone.jsonl", time: 5, origin: ["0".repeat(32), 1] }],
  };
  const a = await sealSnapshot(m, KEYS);
  assert.deepStrictEqual(a.pages.length, 32); // 32² ≥ 1001
  const byId = new Map(a.pages.map((p) => [p.id, p]));
  const fetcher = (pages: Map<string, Page>) => (id: string, len: number) => {
    const p = pages.get(id);
    if (!p || p.plain.length !== len) throw new Error("missing");
    return Promise.resolve(p.plain);
  };
  const head = await openHead(a.head, KEYS, m.device);
  const back = await openPages(head, KEYS, fetcher(byId));
  assert.deepStrictEqual(back.files.length, 1000);
  assert.deepStrictEqual(back.gone.length, 1);
  assert.deepStrictEqual(
    new Set(back.files.map((f) => f.path)),
    new Set(files.map((f) => f.path)),
  );
  // one file changed: exactly one page differs; the head stays small
  const b = await sealSnapshot(
    { ...m, seq: 2, files: files.map((f, i) => i === 500 ? entry(i, "b".repeat(64)) : f) },
    KEYS,
  );
  assert.deepStrictEqual(b.pages.filter((p) => !byId.has(p.id)).length, 1);
  assert.ok(b.head.length < 4096, `head ${b.head.length} B`);
  // a page of another snapshot in place of the right one (its id is the signed one's): refused
  const bHead = await openHead(b.head, KEYS, m.device);
  const swapped = new Map(byId);
  for (const p of b.pages) if (!byId.has(p.id)) swapped.set(p.id, a.pages[b.pages.indexOf(p)]);
  await assert.rejects(
    openPages(bHead, KEYS, (id, len) => {
      const p = swapped.get(id)!;
      // what a chunk check would do: the id must match
      if (KEYS.chunkId(p.plain) !== id || p.plain.length !== len) {
        return Promise.reject(new Error("chunk id"));
      }
      return Promise.resolve(p.plain);
    }),
    /chunk id/,
  );
  // a page re-signed into another bucket (pages in the wrong order): the bucket check fails
  const reordered = { ...head, pages: [...head.pages].reverse() };
  await assert.rejects(
    openPages(reordered, KEYS, fetcher(byId)),
    /signature verification failed/,
  );
  // a head that claims fewer entries than its pages hold
  await assert.rejects(
    openPages({ ...head, nfiles: 999 }, KEYS, fetcher(byId)),
    /signature verification failed/,
  );
});

Deno.test({
  name: "claude sync: two machines, one identity: placement, merges, deletions, tampering",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const net = await startTestnet({ nodes: 12 });
    const tr = testTransport(net);
    const hs = await startHomeserver({ signupMode: "open", transport: tr });
    const base = await tmpDir("cp-sync-");
    try {
      const A = await machine(base, "A");
      const B = await machine(base, "B");
      const signup = await cli(["homeserver", "signup", hs.key], {
        home: A.home,
        net,
        env: { CIPHERPOST_PASSPHRASE: PASS },
      });
      assert.deepStrictEqual(signup.code, 0, signup.stderr);
      const client = (await connect(tr, { home: A.home, user: keypairFromSeed(SEED).publicKey }))
        .client;
      const transcriptA = `${A.folder}/${ID}.jsonl`;
      const transcriptB = `${B.folder}/${ID}.jsonl`;
      let devA = "";

      await t.step("a session on A, push; nothing readable on the homeserver", async () => {
        await Deno.mkdir(`${A.folder}/${ID}/tool-results`, { recursive: true });
        await Deno.writeTextFile(transcriptA, turn(A, 0, "hello") + turn(A, 1, "hi there"));
        await Deno.writeTextFile(`${A.folder}/${ID}/tool-results/t1.txt`, "tool output\n");
        await Deno.writeTextFile(`${A.config}/history.jsonl`, historyEntry(A, 1000, "hello"));
        // never synced
        await Deno.writeTextFile(`${A.config}/.credentials.json`, '{"token":"secret"}');
        await Deno.writeTextFile(`${A.folder}/${ID}.jsonl.lock`, "");
        await Deno.mkdir(`${A.config}/sessions`, { recursive: true });
        await Deno.writeTextFile(`${A.config}/sessions/4242.json`, "{}");
        const r = await ok(A, net, ["push"]);
        assert.deepStrictEqual(r.pushed, true);
        assert.deepStrictEqual(r.seq, 1);
        assert.deepStrictEqual(r.changed, 3);
        devA = r.device;
        const listing: string[] = [];
        for await (const e of client.listAll("/pub/cipherpost/")) listing.push(e.path);
        assert(listing.length >= 5, listing.join("\n"));
        for (const p of listing) {
          assert.match(
            p,
            /^\/pub\/cipherpost\/sync\/(o\/[0-9a-f]{64}|[0-9a-f]{32}\/(head|[0-9a-f]{32}))$/,
          );
          for (const bad of [ID, "proj", "history", "jsonl", "code", "tool", "A-home"]) {
            assert(!p.includes(bad), `${p} names ${bad}`);
          }
        }
      });

      await t.step("pull on B: placed under B's project path, cwd rewritten", async () => {
        const r = await ok(B, net, ["pull"]);
        assert.deepStrictEqual(r.devices.length, 1);
        const text = await Deno.readTextFile(transcriptB);
        assert.deepStrictEqual(text, turn(B, 0, "hello") + turn(B, 1, "hi there"));
        assert.deepStrictEqual(
          await Deno.readTextFile(`${B.folder}/${ID}/tool-results/t1.txt`),
          "tool output\n",
        );
        assert.deepStrictEqual(
          await Deno.readTextFile(`${B.config}/history.jsonl`),
          historyEntry(B, 1000, "hello"),
        );
        for (
          const p of [
            ".credentials.json",
            "sessions/4242.json",
            `projects/${projectDirName(B.project)}/${ID}.jsonl.lock`,
          ]
        ) {
          await assert.rejects(Deno.stat(`${B.config}/${p}`), Deno.errors.NotFound, p);
        }
      });

      await t.step("B appends a turn and pushes; A pulls: fast-forward, no conflict", async () => {
        await Deno.writeTextFile(transcriptB, turn(B, 2, "from B"), { append: true });
        const p = await ok(B, net, ["push"]);
        assert.deepStrictEqual(p.changed, 1);
        // only the appended bytes travel (one small piece), not the transcript again
        assert.deepStrictEqual(p.counters.chunks_uploaded, 1);
        const before = await Deno.readTextFile(transcriptA);
        const dry = await ok(A, net, ["pull", "--dry-run"]);
        assert.deepStrictEqual(dry.actions.map((a: { action: string }) => a.action), [
          "fast-forward",
        ]);
        assert.deepStrictEqual(await Deno.readTextFile(transcriptA), before);
        const r = await ok(A, net, ["pull"]);
        assert.deepStrictEqual(r.actions.map((a: { action: string }) => a.action), [
          "fast-forward",
        ]);
        assert.deepStrictEqual(
          await Deno.readTextFile(transcriptA),
          turn(A, 0, "hello") + turn(A, 1, "hi there") + turn(A, 2, "from B"),
        );
        const names = (await Array.fromAsync(Deno.readDir(A.folder))).map((e) => e.name).sort();
        assert.deepStrictEqual(names, [ID, `${ID}.jsonl`, `${ID}.jsonl.lock`]);
      });

      await t.step("push with nothing changed reads no file", async () => {
        const r = await ok(A, net, ["push"]);
        assert.deepStrictEqual(r.pushed, false);
        assert.deepStrictEqual(r.counters.files_read, 0);
        assert.deepStrictEqual(r.counters.bytes_read, 0);
        assert.deepStrictEqual(r.counters.stat_hits, r.counters.files);
        assert(r.counters.files >= 3);
      });

      await t.step("history.jsonl from both machines is merged", async () => {
        await Deno.writeTextFile(`${A.config}/history.jsonl`, historyEntry(A, 2000, "on A"), {
          append: true,
        });
        await Deno.writeTextFile(`${B.config}/history.jsonl`, historyEntry(B, 3000, "on B"), {
          append: true,
        });
        // two pushes at once: each device writes only its own head, both land
        const [pa, pb] = await Promise.all([ok(A, net, ["push"]), ok(B, net, ["push"])]);
        assert(pa.pushed && pb.pushed);
        const r = await ok(A, net, ["pull"]);
        assert.deepStrictEqual(r.actions.map((a: { action: string }) => a.action), ["merged"]);
        const want = (m: Machine) =>
          historyEntry(m, 1000, "hello") + historyEntry(m, 2000, "on A") +
          historyEntry(m, 3000, "on B");
        assert.deepStrictEqual(await Deno.readTextFile(`${A.config}/history.jsonl`), want(A));
        await ok(A, net, ["push"]);
        await ok(B, net, ["pull"]);
        assert.deepStrictEqual(await Deno.readTextFile(`${B.config}/history.jsonl`), want(B));
      });

      await t.step("divergence: both kept, the other as a fork session", async () => {
        await ok(B, net, ["push"]);
        await ok(A, net, ["pull"]);
        await Deno.writeTextFile(transcriptA, turn(A, 3, "A only"), { append: true });
        await Deno.writeTextFile(transcriptB, turn(B, 3, "B only"), { append: true });
        await ok(A, net, ["push"]);
        await ok(B, net, ["push"]);
        const r = await ok(A, net, ["pull"]);
        const fork = r.actions.find((a: { action: string }) => a.action === "fork");
        assert(fork, JSON.stringify(r.actions));
        const mine = await Deno.readTextFile(transcriptA);
        assert(mine.endsWith(turn(A, 3, "A only")));
        const theirs = await Deno.readTextFile(`${A.folder}/${fork.other}.jsonl`);
        assert(theirs.includes('"content":"B only"'));
        assert(theirs.includes(`"sessionId":"${fork.other}"`) && !theirs.includes(ID));
        assert(theirs.includes(`"cwd":"${A.project}"`));
      });

      await t.step(
        "a deletion propagates; a file changed since the last sync survives",
        async () => {
          await Deno.mkdir(`${A.folder}/memory`, { recursive: true });
          await Deno.writeTextFile(`${A.folder}/memory/notes.md`, "remember\n");
          await Deno.mkdir(`${A.config}/plans`, { recursive: true });
          await Deno.writeTextFile(`${A.config}/plans/plan.md`, "the plan\n");
          await ok(A, net, ["push"]);
          await ok(B, net, ["pull"]);
          assert.deepStrictEqual(
            await Deno.readTextFile(`${B.folder}/memory/notes.md`),
            "remember\n",
          );
          await Deno.writeTextFile(`${B.config}/plans/plan.md`, "B's better plan\n");
          await Deno.remove(`${A.folder}/memory/notes.md`);
          await Deno.remove(`${A.config}/plans/plan.md`);
          const p = await ok(A, net, ["push"]);
          assert.deepStrictEqual(p.deleted, 2);
          const r = await ok(B, net, ["pull"]);
          const acts = Object.fromEntries(
            r.actions.map((a: { path: string; action: string }) => [a.path, a.action]),
          );
          assert.deepStrictEqual(acts["plans/plan.md"], "kept-changed");
          await assert.rejects(Deno.stat(`${B.folder}/memory/notes.md`), Deno.errors.NotFound);
          assert.deepStrictEqual(
            await Deno.readTextFile(`${B.config}/plans/plan.md`),
            "B's better plan\n",
          );
        },
      );

      await t.step("status: local changes since the last sync, no network", async () => {
        await Deno.writeTextFile(`${B.config}/plans/new.md`, "x\n");
        const r = await ok(B, net, ["status"]);
        assert(r.added.includes("plans/new.md"), JSON.stringify(r));
        // kept against A's deletion: it is pushed again as a new file
        assert(r.added.includes("plans/plan.md"), JSON.stringify(r));
        assert.deepStrictEqual(r.deleted, []);
        assert.deepStrictEqual(r.counters.chunks_uploaded, 0);
      });

      await t.step(
        "a rolled-back, swapped or dropped object: exit 3, nothing written",
        async () => {
          await ok(B, net, ["push"]);
          await ok(A, net, ["pull"]);
          const oldHead = await bytesOf(client, `/pub/cipherpost/sync/${devA}/head`);
          await Deno.writeTextFile(`${A.config}/plans/next.md`, "a new plan\n".repeat(100));
          hs.log.length = 0;
          await ok(A, net, ["push"]);
          const newChunk = hs.log.find((l) => l.method === "PUT" && l.path.includes("/sync/o/"))!
            .path;
          const before = await tree(B.config);
          const expect3 = async (what: string) => {
            const r = await run(B, net, ["pull"]);
            assert.deepStrictEqual(r.code, 3, `${what}: ${r.stderr}`);
            assert.match(r.stderr, /signature verification failed/);
            assert.deepStrictEqual(await tree(B.config), before, what);
          };
          // B reads the new head once (and records its seq) before the homeserver misbehaves
          const good = await bytesOf(client, newChunk);
          // a dropped chunk
          assert(await client.delete(newChunk));
          await expect3("dropped chunk");
          // a swapped chunk: another validly encrypted chunk of ours in its place
          const other = hs.log.find((l) =>
            l.method === "PUT" && l.path.includes("/sync/o/") && l.path !== newChunk
          );
          const swapSrc = other?.path ??
            (await (async () => {
              for await (const e of client.listAll("/pub/cipherpost/sync/o/")) {
                if (e.path !== newChunk) return e.path;
              }
              throw new Error("no other chunk");
            })());
          await client.put(newChunk, await bytesOf(client, swapSrc));
          await expect3("swapped chunk");
          // another device's head in A's place
          const headA = await bytesOf(client, `/pub/cipherpost/sync/${devA}/head`);
          await client.put(newChunk, good);
          const devB = (await ok(B, net, ["status"])).device;
          await client.put(
            `/pub/cipherpost/sync/${devA}/head`,
            await bytesOf(client, `/pub/cipherpost/sync/${devB}/head`),
          );
          await expect3("another device's head");
          await client.put(`/pub/cipherpost/sync/${devA}/head`, headA);
          // the real head once: B records it; then the old one served again
          const r = await ok(B, net, ["pull"]);
          assert(r.actions.some((a: { path: string }) => a.path === "plans/next.md"));
          const after = await tree(B.config);
          await client.put(`/pub/cipherpost/sync/${devA}/head`, oldHead);
          const rb = await run(B, net, ["pull"]);
          assert.deepStrictEqual(rb.code, 3, rb.stderr);
          assert.deepStrictEqual(await tree(B.config), after);
          await client.put(`/pub/cipherpost/sync/${devA}/head`, headA);
          await ok(B, net, ["pull"]);
        },
      );

      await t.step("log: the snapshots of both machines, newest first", async () => {
        const r = await ok(A, net, ["log"]);
        assert(r.length >= 4);
        assert(r.some((e: { label: string }) => e.label === "A"));
        assert(r.some((e: { label: string }) => e.label === "B"));
        for (let i = 1; i < r.length; i++) assert(r[i - 1].time >= r[i].time);
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
  name: "claude sync auto: hooks added once, removed exactly; a failing hook is silent and logged",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const net = await startTestnet({ nodes: 8 });
    const base = await tmpDir("cp-sync-auto-");
    try {
      const A = await machine(base, "A");
      await Deno.mkdir(A.config, { recursive: true });
      const original = {
        model: "opus",
        hooks: { Stop: [{ matcher: "", hooks: [{ type: "command", command: "echo mine" }] }] },
      };
      const settings = `${A.config}/settings.json`;
      await Deno.writeTextFile(settings, JSON.stringify(original));
      const pf = `${base}/pass`;
      await Deno.writeTextFile(pf, PASS);
      await Deno.chmod(pf, 0o600);
      for (let i = 0; i < 2; i++) {
        const r = await run(A, net, ["auto", "enable", "--passphrase-file", pf, "--json"]);
        assert.deepStrictEqual(r.code, 0, r.stderr);
        // enabling twice adds nothing the second time
        assert.deepStrictEqual(JSON.parse(r.stdout), { changed: i === 0, settings });
      }
      const on = JSON.parse(await Deno.readTextFile(settings));
      assert.deepStrictEqual(on.model, "opus");
      const cmds = (ev: string) =>
        on.hooks[ev].flatMap((g: { hooks: { command: string }[] }) =>
          g.hooks.map((h) => h.command)
        );
      assert.deepStrictEqual(cmds("Stop"), [
        "echo mine",
        `cipherpost claude sync push --hook --passphrase-file ${pf}`,
      ]);
      assert.deepStrictEqual(cmds("SessionStart"), [
        `cipherpost claude sync pull --hook --passphrase-file ${pf}`,
      ]);
      const st = await run(A, net, ["auto", "status", "--json"]);
      assert.deepStrictEqual(JSON.parse(st.stdout), {
        SessionStart: true,
        Stop: true,
        last_hook_failure: null,
      });
      // a hook that fails (no homeserver for this identity): no output, exit 0, logged
      const h = await cli(["claude", "sync", "push", "--hook", "--passphrase-file", pf], {
        home: A.home,
        net,
        env: { HOME: A.homeDir },
      });
      assert.deepStrictEqual([h.code, h.stdout, h.stderr], [0, "", ""]);
      const st2 = JSON.parse((await run(A, net, ["auto", "status", "--json"])).stdout);
      assert.match(st2.last_hook_failure, /push failed \(exit 5\)/);
      // without a passphrase source a hook never prompts: it logs
      const np = await cli(["claude", "sync", "pull", "--hook"], {
        home: A.home,
        net,
        env: { HOME: A.homeDir },
      });
      assert.deepStrictEqual([np.code, np.stdout, np.stderr], [0, "", ""]);
      const st3 = JSON.parse((await run(A, net, ["auto", "status", "--json"])).stdout);
      assert.match(st3.last_hook_failure, /a hook cannot ask for the passphrase/);
      const off = await run(A, net, ["auto", "disable", "--json"]);
      assert.deepStrictEqual(off.code, 0, off.stderr);
      assert.deepStrictEqual(JSON.parse(off.stdout), { changed: true, settings });
      assert.deepStrictEqual(JSON.parse(await Deno.readTextFile(settings)), original);
    } finally {
      await net.close();
      await Deno.remove(base, { recursive: true }).catch(() => {});
    }
  },
});

const CLAUDE_BIN = new URL(
  "./claude-peer/node_modules/@anthropic-ai/claude-code-linux-x64/claude",
  import.meta.url,
).pathname;

Deno.test({
  name:
    "claude sync: the real Claude Code resumes on B what A made; B's turn reaches A; auto hooks push A's next turn",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    try {
      await Deno.stat(CLAUDE_BIN);
    } catch {
      throw new Error(
        "the real Claude Code is not installed: run npm ci --prefix tests/claude-peer",
      );
    }
    const net = await startTestnet({ nodes: 12 });
    const tr = testTransport(net);
    const hs = await startHomeserver({ signupMode: "open", transport: tr });
    const api = startClaudeApi();
    const base = await tmpDir("cp-sync-claude-");
    try {
      const A = await machine(base, "A");
      const B = await machine(base, "B");
      const signup = await cli(["homeserver", "signup", hs.key], {
        home: A.home,
        net,
        env: { CIPHERPOST_PASSPHRASE: PASS },
      });
      assert.deepStrictEqual(signup.code, 0, signup.stderr);
      const claude = async (m: Machine, args: string[], path = "/usr/bin:/bin") => {
        const out = await new Deno.Command(CLAUDE_BIN, {
          args,
          cwd: m.project,
          env: {
            HOME: m.homeDir,
            CLAUDE_CONFIG_DIR: m.config,
            ANTHROPIC_API_KEY: "test",
            ANTHROPIC_BASE_URL: api.url,
            DISABLE_TELEMETRY: "1",
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
            DISABLE_AUTOUPDATER: "1",
            PATH: path,
          },
          clearEnv: true,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.deepStrictEqual(out.code, 0, new TextDecoder().decode(out.stderr));
      };
      await claude(A, ["-p", "alpha: explain the parser"]);
      const ids = (await Array.fromAsync(Deno.readDir(A.folder)))
        .filter((e) => e.name.endsWith(".jsonl")).map((e) => e.name.slice(0, -6));
      assert.deepStrictEqual(ids.length, 1);
      const id = ids[0];
      // what Claude Code 2.1.x wrote, and what of it the sessions scope takes
      const written = (await tree(A.config)).map((l) => l.split(" ")[0]);
      console.log(`note: Claude Code wrote: ${written.join(", ")}`);
      const pushed = await ok(A, net, ["push"]);
      assert(pushed.pushed);
      await ok(B, net, ["pull"]);
      const placed = `${B.folder}/${id}.jsonl`;
      const cwds = new Set(
        (await Deno.readTextFile(placed)).split("\n").filter((l) => l).map((l) => JSON.parse(l).cwd)
          .filter((c) => typeof c === "string"),
      );
      assert.deepStrictEqual([...cwds], [B.project]);
      const posts = api.requests.length;
      await claude(B, ["--resume", id, "-p", "beta: carry on"]);
      const sent = JSON.stringify(api.requests.slice(posts).map((q) => q.body));
      assert(sent.includes("alpha: explain the parser"), "A's earlier turn reached the API");
      assert(sent.includes("beta: carry on"));
      await ok(B, net, ["push"]);
      const r = await ok(A, net, ["pull"]);
      assert.deepStrictEqual(
        r.actions.filter((a: { path: string }) => a.path.endsWith(`${id}.jsonl`)).map((
          a: { action: string },
        ) => a.action),
        ["fast-forward"],
      );
      const mine = await Deno.readTextFile(`${A.folder}/${id}.jsonl`);
      assert(mine.includes("beta: carry on"));
      assert(!mine.includes(B.project));
      const conflicts = (await tree(A.config)).filter((l) => l.includes(".sync-conflict-"));
      assert.deepStrictEqual(conflicts, []);
      // auto: the real Claude Code runs the hooks; its Stop hook pushes A's next turn to B
      const bin = `${base}/bin`;
      await Deno.mkdir(bin);
      const pf = `${base}/pass`;
      await Deno.writeTextFile(pf, PASS);
      await Deno.chmod(pf, 0o600);
      const quote = (w: string) => `'${w.replaceAll("'", `'\\''`)}'`;
      await Deno.writeTextFile(
        `${bin}/cipherpost`,
        `#!/bin/sh\nexport CIPHERPOST_HOME=${quote(A.home)} CIPHERPOST_BOOTSTRAP=${
          quote(net.bootstrap.join(","))
        } CIPHERPOST_RELAYS=${quote(net.relayUrl)} CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK=1 ` +
          `CIPHERPOST_DEVICE_LABEL=A DENO_DIR=${
            quote(Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`)
          }\nexec ${cliArgv([]).map(quote).join(" ")} "$@"\n`,
      );
      await Deno.chmod(`${bin}/cipherpost`, 0o755);
      const en = await run(A, net, ["auto", "enable", "--passphrase-file", pf]);
      assert.deepStrictEqual(en.code, 0, en.stderr);
      await claude(A, ["--resume", id, "-p", "gamma: from A with hooks"], `${bin}:/usr/bin:/bin`);
      const hooked = await ok(A, net, ["auto", "status"]);
      assert.deepStrictEqual(hooked.last_hook_failure, null);
      const rb = await ok(B, net, ["pull"]);
      assert(rb.actions.some((a: { action: string }) => a.action === "fast-forward"));
      assert((await Deno.readTextFile(placed)).includes("gamma: from A with hooks"));
    } finally {
      await api.close();
      await hs.close();
      await tr.close();
      await net.close();
      await Deno.remove(base, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "claude sync: kill -9 during push and pull (10 each) leaves both sides consistent; a re-run completes",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const seed = Number(Deno.env.get("SYNC_KILL_SEED") ?? 4711);
    let x = seed;
    const rand = () => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x / 2147483648;
    };
    const net = await startTestnet({ nodes: 8 });
    const tr = testTransport(net);
    const hs = await startHomeserver({ signupMode: "open", transport: tr });
    const base = await tmpDir("cp-sync-kill-");
    try {
      const A = await machine(base, "A");
      const B = await machine(base, "B");
      const signup = await cli(["homeserver", "signup", hs.key], {
        home: A.home,
        net,
        env: { CIPHERPOST_PASSPHRASE: PASS },
      });
      assert.deepStrictEqual(signup.code, 0, signup.stderr);
      const spawn = (m: Machine, args: string[]) => {
        const argv = cliArgv(["claude", "sync", ...args]);
        return new Deno.Command(argv[0], {
          args: argv.slice(1),
          env: {
            PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
            DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
            HOME: m.homeDir,
            CIPHERPOST_HOME: m.home,
            CIPHERPOST_PASSPHRASE: PASS,
            CIPHERPOST_BOOTSTRAP: net.bootstrap.join(","),
            CIPHERPOST_RELAYS: net.relayUrl,
            CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK: "1",
            CIPHERPOST_DEVICE_LABEL: m.name,
          },
          clearEnv: true,
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).spawn();
      };
      /** Start `args`, wait for the first chunk request, kill -9 a random moment later. */
      const killDuring = async (m: Machine, args: string[], method: string) => {
        hs.log.length = 0;
        const child = spawn(m, args);
        const end = Date.now() + 120_000;
        let exited = false;
        child.status.then(() => exited = true);
        while (
          !exited && Date.now() < end &&
          !hs.log.some((l) => l.method === method && l.path.includes("/sync/o/"))
        ) await new Promise((r) => setTimeout(r, 10));
        await new Promise((r) => setTimeout(r, Math.floor(rand() * 400)));
        try {
          child.kill("SIGKILL");
        } catch { /* already done */ }
        await child.status;
      };
      await Deno.mkdir(`${A.config}/plans`, { recursive: true });
      await Deno.mkdir(A.folder, { recursive: true });
      for (let i = 0; i < 10; i++) {
        // new and grown files every round: a few MiB to upload and to download
        await Deno.writeFile(`${A.config}/plans/p${i}.bin`, prng(600_000 + i * 1000, seed + i));
        await Deno.writeTextFile(`${A.folder}/${ID}.jsonl`, turn(A, i, `round ${i}`), {
          append: true,
        });
        await killDuring(A, ["push"], "PUT");
        const p = await run(A, net, ["push", "--json"]);
        assert.deepStrictEqual(p.code, 0, `seed ${seed} round ${i}: ${p.stderr}`);
        await killDuring(B, ["pull"], "GET");
        const q = await run(B, net, ["pull", "--json"]);
        assert.deepStrictEqual(q.code, 0, `seed ${seed} round ${i}: ${q.stderr}`);
        const again = JSON.parse((await run(B, net, ["pull", "--json"])).stdout);
        assert.deepStrictEqual(
          again.actions,
          [],
          `seed ${seed} round ${i}: a second pull is a no-op`,
        );
      }
      const plainA = (await tree(`${A.config}/plans`)).sort();
      assert.deepStrictEqual((await tree(`${B.config}/plans`)).sort(), plainA, `seed ${seed}`);
      let want = "";
      for (let i = 0; i < 10; i++) want += turn(B, i, `round ${i}`);
      assert.deepStrictEqual(
        await Deno.readTextFile(`${B.folder}/${ID}.jsonl`),
        want,
        `seed ${seed}`,
      );
      const debris = (await tree(B.config)).filter((l) => /sync-conflict|\.tmp /.test(l));
      assert.deepStrictEqual(debris, [], `seed ${seed}`);
      const status = JSON.parse((await run(A, net, ["status", "--json"])).stdout);
      assert.deepStrictEqual([status.added, status.modified, status.deleted], [[], [], []]);
    } finally {
      await hs.close();
      await tr.close();
      await net.close();
      await Deno.remove(base, { recursive: true }).catch(() => {});
    }
  },
});
