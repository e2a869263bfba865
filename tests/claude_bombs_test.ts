// Hostile Claude Code bundles and transcripts: decompression and
// line bombs go through parse → summary → plan → placement in a child process whose peak RSS
// is asserted; `claude list` over a transcript of newlines; a bundle where a file is also a
// folder; the line splitter and the streamed rewrite against the whole-text one, over seeded
// random chunkings (set CIPHERPOST_LINES_SEED to replay a printed seed).
import assert from "node:assert/strict";
import { parseBundle, readBundle } from "../lib/claude/bundle.ts";
import { rewriteJsonl, Rewriter, rewriteStream } from "../lib/claude/place.ts";
import {
  FactsReader,
  LINE_CAP,
  LineSplitter,
  PARSE_CAP,
  splitLines,
  transcriptFacts,
} from "../lib/claude/transcript.ts";
import { encodeTarHeader, TAR_END, tarPadding } from "../lib/material/tar.ts";
import { CipherpostError } from "../lib/util/errors.ts";
import { utf8 } from "../lib/util/encoding.ts";
import { cli, tmpDir } from "./_helpers.ts";

const ID = "11111111-2222-4333-8444-555555555555";
const MiB = 1024 * 1024;
/** The memory ceiling of a child that takes a bomb (a Deno process starts at ~40 MiB). */
const CEILING_KIB = 200 * 1024;
const CHILD = new URL("./_claude_bomb.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

const metaOf = (cwd: string) =>
  utf8(JSON.stringify({ claude_version: "2.1.0", cwd, format: 1, session_id: ID }));

/** One bundle entry whose body is `head` followed by `newlines` newline bytes. */
interface Part {
  path: string;
  head: Uint8Array;
  newlines?: number;
}

/** Write a gzip'd bundle of `parts` to `path`, streamed (never whole in memory). */
async function writeBundle(path: string, parts: Part[]): Promise<number> {
  const nl = new Uint8Array(MiB).fill(0x0a);
  const s = new ReadableStream<Uint8Array>({
    start(c) {
      for (const p of parts) {
        const size = p.head.length + (p.newlines ?? 0);
        c.enqueue(encodeTarHeader({ path: p.path, type: "file", mode: 0o600, size, mtime: 0 }, {
          ustarOnly: true,
        }));
        c.enqueue(p.head);
        for (let left = p.newlines ?? 0; left > 0; left -= MiB) {
          c.enqueue(nl.slice(0, Math.min(left, MiB)));
        }
        c.enqueue(tarPadding(size));
      }
      c.enqueue(TAR_END.slice());
      c.close();
    },
  });
  await Deno.writeFile(
    path,
    (s as ReadableStream<BufferSource>).pipeThrough(new CompressionStream("gzip")),
  );
  return (await Deno.stat(path)).size;
}

// deno-lint-ignore no-explicit-any
async function child(args: string[]): Promise<{ out: any; peakKiB: number }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--config", CONFIG, "--allow-all", CHILD, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, `the child failed (exit ${r.code}): ${stderr.slice(-2000)}`);
  return JSON.parse(new TextDecoder().decode(r.stdout));
}

const userLine = (cwd: string, text = "hi") =>
  JSON.stringify({ type: "user", cwd, sessionId: ID, message: { role: "user", content: text } });

Deno.test({
  name:
    "bomb: a 250 MiB sidecar of newlines (~250 KB compressed) is parsed, shown and placed in bounded memory",
  sanitizeResources: false,
  fn: async () => {
    const base = await tmpDir("cp-bomb-");
    try {
      await Deno.mkdir(`${base}/work`);
      const line = utf8(userLine("/nonexistent/sender") + "\n");
      const side = 250 * MiB;
      const gz = await writeBundle(`${base}/b.tgz`, [
        { path: "cipherpost-session.json", head: metaOf("/nonexistent/sender") },
        { path: `${ID}.jsonl`, head: line },
        { path: `${ID}/subagents/agent-1.jsonl`, head: new Uint8Array(), newlines: side },
      ]);
      assert.ok(gz < 400_000, `the bomb is small compressed (${gz} bytes)`);
      const r = await child(["pickup", `${base}/b.tgz`, `${base}/config`, `${base}/work`]);
      console.log(`250 MiB sidecar bomb: ${gz} bytes compressed, child peak RSS ${r.peakKiB} KiB`);
      assert.equal(r.out.action, "new");
      assert.equal(r.out.summary.messages, 1);
      assert.equal(r.out.summary.sidecarFiles, 1);
      assert.equal(r.out.summary.size, line.length + side);
      assert.equal((await Deno.stat(`${r.out.folder}/${ID}/subagents/agent-1.jsonl`)).size, side);
      const placed = await Deno.readTextFile(`${r.out.folder}/${ID}.jsonl`);
      assert.equal(JSON.parse(placed).cwd, await Deno.realPath(`${base}/work`), "cwd rewritten");
      assert.ok(r.peakKiB > 0 && r.peakKiB < CEILING_KIB, `peak RSS ${r.peakKiB} KiB`);
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "bomb: a transcript of 62 MB of newlines is compared with the local copy and placed in bounded memory",
  sanitizeResources: false,
  fn: async () => {
    const base = await tmpDir("cp-bomb-");
    try {
      await Deno.mkdir(`${base}/work`);
      const work = await Deno.realPath(`${base}/work`);
      const first = userLine("/nonexistent/sender", "first");
      const blank = 62_000_000;
      const gz = await writeBundle(`${base}/b.tgz`, [
        { path: "cipherpost-session.json", head: metaOf("/nonexistent/sender") },
        { path: `${ID}.jsonl`, head: utf8(first + "\n"), newlines: blank },
      ]);
      // the receiver already has the first line (a hand-back): the bundle extends it
      const folder = `${base}/config/projects/${work.replace(/[^A-Za-z0-9]/g, "-")}`;
      await Deno.mkdir(folder, { recursive: true });
      const local = rewriteJsonl(first + "\n", "/nonexistent/sender", work);
      await Deno.writeTextFile(`${folder}/${ID}.jsonl`, local);
      const r = await child(["pickup", `${base}/b.tgz`, `${base}/config`, `${base}/work`]);
      console.log(
        `62 MB newline transcript: ${gz} bytes compressed, child peak RSS ${r.peakKiB} KiB`,
      );
      assert.equal(r.out.action, "replace");
      assert.equal(r.out.folder, folder);
      assert.equal(r.out.summary.messages, 1);
      assert.equal(r.out.summary.lastPrompt, "first");
      const st = await Deno.stat(`${folder}/${ID}.jsonl`);
      assert.equal(st.size, utf8(local).length + blank);
      assert.ok(r.peakKiB > 0 && r.peakKiB < CEILING_KIB, `peak RSS ${r.peakKiB} KiB`);
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "claude list: a 10 MB transcript of newlines is summarized right, streamed, and the CLI completes",
  sanitizeResources: false,
  fn: async () => {
    const base = await tmpDir("cp-bomb-");
    try {
      const folder = `${base}/config/projects/-p`;
      await Deno.mkdir(folder, { recursive: true });
      const f = await Deno.open(`${folder}/${ID}.jsonl`, { write: true, createNew: true });
      await f.write(utf8(userLine("/p", "one") + "\n"));
      const nl = new Uint8Array(MiB).fill(0x0a);
      for (let i = 0; i < 10; i++) await f.write(nl);
      await f.write(utf8(userLine("/p", "two") + "\n"));
      f.close();
      const r = await child(["list", `${base}/config`]);
      console.log(`claude list over a 10 MiB newline transcript: child peak RSS ${r.peakKiB} KiB`);
      assert.equal(r.out.length, 1);
      assert.equal(r.out[0].cwd, "/p");
      assert.equal(r.out[0].headCwd, "/p");
      assert.equal(r.out[0].messages, 2);
      assert.equal(r.out[0].lastPrompt, "two");
      assert.ok(r.peakKiB > 0 && r.peakKiB < 150 * 1024, `peak RSS ${r.peakKiB} KiB`);
      const home = `${base}/home`;
      const list = await cli(["claude", "list", "--json"], {
        home,
        env: { CLAUDE_CONFIG_DIR: `${base}/config` },
      });
      assert.equal(list.code, 0, list.stderr);
      const rows = JSON.parse(list.stdout);
      assert.equal(rows[0].messages, 2);
      assert.equal(rows[0].last_prompt, "two");
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

async function gzipOf(parts: Uint8Array[]): Promise<Uint8Array> {
  const s = new Blob(parts as BlobPart[]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

function entry(path: string, body: string): Uint8Array[] {
  const b = utf8(body);
  return [
    encodeTarHeader({ path, type: "file", mode: 0o600, size: b.length, mtime: 0 }, {
      ustarOnly: true,
    }),
    b,
    tarPadding(b.length),
  ];
}

Deno.test("bundle: `<id>/a/b` with `<id>/a` (either order) is refused at validation", async () => {
  const head = [
    entry("cipherpost-session.json", new TextDecoder().decode(metaOf("/p"))),
    entry(
      `${ID}.jsonl`,
      "{}\n",
    ),
  ];
  for (const order of [["a/b", "a"], ["a", "a/b"], ["x/y/z", "x/y"], ["x/y", "x/y/z"]]) {
    const bytes = await gzipOf(
      [...head, ...order.map((p) => entry(`${ID}/${p}`, "x"))].flat()
        .concat([TAR_END]),
    );
    await assert.rejects(
      () => parseBundle(bytes),
      (e) =>
        e instanceof CipherpostError && e.kind === "invalid_material" &&
        /both a file and a folder/.test(e.message),
      order.join(" then "),
    );
  }
  // siblings sharing a prefix are fine
  const ok = await parseBundle(
    await gzipOf(
      [...head, ...entry(`${ID}/a/b`, "x"), ...entry(`${ID}/ab`, "y")].flat()
        .concat([TAR_END]),
    ),
  );
  assert.deepEqual([...ok.sidecar.keys()], ["a/b", "ab"]);
});

Deno.test("bundle: a gzip stream that unpacks past the cap is refused while streaming", async () => {
  // a 257 MiB sidecar: refused when the stream passes 256 MiB
  const base = await tmpDir("cp-bomb-");
  try {
    await writeBundle(`${base}/big.tgz`, [
      { path: "cipherpost-session.json", head: metaOf("/p") },
      { path: `${ID}.jsonl`, head: utf8("{}\n") },
      { path: `${ID}/big`, head: new Uint8Array(), newlines: 257 * MiB },
    ]);
    await assert.rejects(
      () => readBundle(() => Deno.openSync(`${base}/big.tgz`).readable),
      /unpacks to more than 256 MiB/,
    );
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Lines: seeded random chunkings

/** mulberry32: a small seeded generator, so a failing chunking can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function chunked(b: Uint8Array, next: () => number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let o = 0; o < b.length;) {
    const n = 1 + Math.floor(next() * (next() < 0.2 ? 4 : 300));
    out.push(b.slice(o, o + n));
    o += n;
  }
  return out;
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c.slice());
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function* iter(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* chunks;
}

Deno.test("lines: the streamed rewrite and facts equal the whole-text ones over random chunkings", async () => {
  const seed = Number(Deno.env.get("CIPHERPOST_LINES_SEED") ?? Date.now() % 2 ** 31);
  const next = rng(seed);
  const from = "/home/a/app";
  const to = "/srv/b/ä";
  const pieces = [
    userLine(from),
    "",
    userLine(`${from}/sub`, "second"),
    JSON.stringify({ type: "assistant", cwd: `${from}2`, message: { content: "x" } }),
    "not json " + from,
    JSON.stringify({ type: "last-prompt", lastPrompt: "lp", sessionId: ID }),
    JSON.stringify({ rendered: `x\n - Primary working directory: ${from}\n - y`, cwd: from }),
  ];
  try {
    for (let round = 0; round < 200; round++) {
      const lines = Array.from(
        { length: 1 + Math.floor(next() * 20) },
        () => pieces[Math.floor(next() * pieces.length)],
      );
      const text = lines.join("\n") + (next() < 0.5 ? "\n" : "");
      const bytes = utf8(text);
      const rw = new Rewriter(from, to, ID, "22222222-2222-4333-8444-555555555555");
      const want = rw.text(text);
      const got = new TextDecoder().decode(
        await collect(rewriteStream(iter(chunked(bytes, next)), rw)),
      );
      assert.equal(got, want, `round ${round}`);
      const facts = new FactsReader();
      await splitLines(chunked(bytes, next), LINE_CAP, facts);
      assert.deepEqual(facts.facts, transcriptFacts(text), `round ${round}`);
    }
  } catch (e) {
    console.error(`replay with CIPHERPOST_LINES_SEED=${seed}`);
    throw e;
  }
});

Deno.test("lines: over PARSE_CAP not parsed; over LINE_CAP passed through unchanged in pieces", async () => {
  // a big tool result under LINE_CAP is still rewritten (the cwd of its line), not parsed
  const big = JSON.stringify({
    type: "user",
    cwd: "/a",
    message: { content: [{ type: "tool_result", content: "z".repeat(PARSE_CAP) }] },
  });
  const text = `${userLine("/a")}\n${big}\n`;
  assert.equal(transcriptFacts(text).messages, 1, "the big line is skipped unparsed");
  const rw = new Rewriter("/a", "/b");
  const out = new TextDecoder().decode(await collect(rewriteStream(iter([utf8(text)]), rw)));
  assert.equal(out, rw.text(text));
  assert.equal(
    out.split("\n")[1].slice(0, 60),
    big.replace('"cwd":"/a"', '"cwd":"/b"').slice(0, 60),
  );
  // a line over the cap: pieces pass through, the lines around it are rewritten
  const huge = `{"cwd":"/a","x":"${"y".repeat(200)}"}`;
  const seen: string[] = [];
  const split = new LineSplitter(100, {
    line: (b, s, e, nl) => seen.push(`line ${new TextDecoder().decode(b.subarray(s, e))} ${nl}`),
    long: (p) => seen.push(`long ${p.length}`),
  });
  for (const c of chunked(utf8(`a\n${huge}\nb`), rng(7))) split.push(c);
  split.end();
  assert.deepEqual(seen.filter((s) => s.startsWith("line")), ["line a true", "line b false"]);
  assert.equal(
    seen.filter((s) => s.startsWith("long")).reduce((n, s) => n + Number(s.slice(5)), 0),
    huge.length + 1,
  );
});
