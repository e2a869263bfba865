// Claude sync's scope, path map, MCP servers opt-in and one-sync-at-a-time lock
// (docs/PROTOCOL.md §8.4, §8.5) through the real CLI: two machines (separate HOME and
// cipherpost homes, one identity), a local testnet and the stand-in homeserver. What a push
// sends is read back by opening the signed snapshot and its chunks with the identity's keys.
import assert from "node:assert/strict";
import {
  cli,
  cliCommand,
  type CliResult,
  makeUserWithSeed,
  PASS,
  testTransport,
  tmpDir,
} from "./_helpers.ts";
import { startTestnet, type Testnet } from "../lib/testing/testnet.ts";
import { startHomeserver } from "../lib/testing/homeserver.ts";
import { connect } from "../lib/homeserver/connect.ts";
import type { HomeserverClient } from "../lib/homeserver/client.ts";
import { keypairFromSeed } from "../lib/crypto/keys.ts";
import { projectDirName } from "../lib/claude/project_dir.ts";
import { chunkPath, headPath, SyncKeys } from "../lib/sync/keys.ts";
import { type Manifest, openChunk } from "../lib/sync/snapshot.ts";
import { readSnapshot } from "../lib/flows/sync/common.ts";
import { globRegExp, inScope, scopeRules } from "../lib/sync/scope.ts";
import { historyRewriteOf, localDirOf, rootToken } from "../lib/sync/canonical.ts";
import { parseMapRule } from "../lib/sync/config.ts";
import {
  MCP_PATH,
  mcpCanonical,
  mergeMcpServers,
  unionMcpServers,
} from "../lib/sync/mcp_servers.ts";
import { State } from "../lib/state/state.ts";
import { startClaudeApi } from "./_claude_api.ts";

const SEED = new Uint8Array(32).fill(11);
const KEYS = new SyncKeys(keypairFromSeed(SEED));
const ID = "5a1c2a9e-1b2c-4d3e-8f90-0123456789ab";
const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("sync scope: globs, scopes, includes", () => {
  const full = scopeRules("full", ["plugins"], ["*.bak", "agents/private", "projects/**/memory"]);
  assert(inScope("settings.json", full));
  assert(inScope("plugins/installed_plugins.json", full));
  assert(inScope("agents/review.md", full));
  assert(!inScope("agents/private/x.md", full), "a folder's glob covers what is below it");
  assert(!inScope("agents/notes.bak", full), "a glob without / matches a name at any depth");
  assert(!inScope("projects/-a-b/memory/MEMORY.md", full));
  assert(inScope("projects/-a-b/x.jsonl", full));
  // never, whatever the scope
  for (const p of [".credentials.json", ".claude.json", "sessions/123.json", "a.lock"]) {
    assert(!inScope(p, full), p);
  }
  const sessions = scopeRules("sessions");
  assert(!inScope("settings.json", sessions));
  assert(!inScope("plugins/x.json", scopeRules("full")), "plugins/ only when included");
  assert(!inScope("statsig/x", full) && !inScope("backups/.claude.json.backup.1", full));
  assert(!inScope("shell-snapshots/s.sh", full) && !inScope("session-env/x", full));
  for (const bad of ["", "/abs", "a/../b", "x\u0001"]) {
    assert.deepStrictEqual(globRegExp(bad), null);
  }
  assert.throws(() => scopeRules("full", ["statsig"]), /cannot include/);
  assert.throws(() => scopeRules("everything" as "full"), /sessions or full/);
});

Deno.test("sync path map: FROM=TO both ways, longest rule first, ${HOME} after the map", () => {
  const map = [
    { from: "/tmpA/home/work", to: "/tmpB/elsewhere" },
    { from: "/tmpA/home/work/deep", to: "/srv/deep" },
    { from: "${HOME}/code", to: "/opt/code" },
  ];
  assert.deepStrictEqual(localDirOf("/tmpA/home/work/x", "/home/b", map), "/tmpB/elsewhere/x");
  assert.deepStrictEqual(localDirOf("/tmpA/home/work/deep/y", "/home/b", map), "/srv/deep/y");
  assert.deepStrictEqual(localDirOf("/tmpA/home/workshop", "/home/b", map), "/tmpA/home/workshop");
  assert.deepStrictEqual(localDirOf("${HOME}/code/p", "/home/b", map), "/opt/code/p");
  assert.deepStrictEqual(localDirOf("${HOME}/other", "/home/b", map), "/home/b/other");
  assert.deepStrictEqual(rootToken("/tmpB/elsewhere/x", "/home/b", map), "/tmpA/home/work/x");
  assert.deepStrictEqual(rootToken("/srv/deep/y", "/home/b", map), "/tmpA/home/work/deep/y");
  assert.deepStrictEqual(rootToken("/opt/code/p", "/home/b", map), "${HOME}/code/p");
  assert.deepStrictEqual(rootToken("/home/b/z", "/home/b", map), "${HOME}/z");
  const toLocal = historyRewriteOf("/home/b", map, true)!;
  const line = JSON.stringify({ display: "hi", project: "/tmpA/home/work/x", timestamp: 1 });
  assert.deepStrictEqual(JSON.parse(toLocal.apply(line)).project, "/tmpB/elsewhere/x");
  const back = historyRewriteOf("/home/b", map, false)!;
  assert.deepStrictEqual(back.apply(toLocal.apply(line)), line);
  assert.deepStrictEqual(parseMapRule("${HOME}/code/=/opt/code"), {
    from: "${HOME}/code",
    to: "/opt/code",
  });
  for (const bad of ["a=/b", "/a=b", "/a", "/=/b", "/a/../b=/c", "/a=/"]) {
    assert.throws(() => parseMapRule(bad), /--map takes FROM=TO/, bad);
  }
});

Deno.test("sync MCP servers: only mcpServers, home tokenised, every other key kept", async () => {
  const dir = await tmpDir("cp-sync-mcp-");
  try {
    const a = `${dir}/a.json`, b = `${dir}/b.json`;
    await Deno.writeTextFile(
      a,
      JSON.stringify({
        userID: "secret-user",
        mcpServers: { fs: { command: "npx", args: ["/home/a/work", "/home/ab"], env: {} } },
      }),
    );
    const canon = await mcpCanonical(a, "/home/a");
    assert(!canon.includes("secret-user"));
    assert.deepStrictEqual(JSON.parse(canon).fs.args, ["${HOME}/work", "/home/ab"]);
    const other = { userID: "b-user", projects: { "/home/b/p": { x: 1 } }, numStartups: 3 };
    await Deno.writeTextFile(b, JSON.stringify(other));
    await Deno.chmod(b, 0o640);
    await mergeMcpServers(b, enc.encode(canon), "/home/b");
    const merged = JSON.parse(await Deno.readTextFile(b));
    assert.deepStrictEqual({ ...merged, mcpServers: undefined }, {
      ...other,
      mcpServers: undefined,
    });
    assert.deepStrictEqual(merged.mcpServers.fs.args, ["/home/b/work", "/home/ab"]);
    assert.deepStrictEqual((await Deno.stat(b)).mode! & 0o777, 0o640);
    // not an object: nothing written
    const before = await Deno.readTextFile(b);
    await assert.rejects(mergeMcpServers(b, enc.encode("[1]"), "/home/b"), /not a JSON object/);
    assert.deepStrictEqual(await Deno.readTextFile(b), before);
    const u = unionMcpServers(enc.encode('{"x":1,"s":"l"}'), enc.encode('{"y":2,"s":"r"}'), true)!;
    assert.deepStrictEqual(JSON.parse(dec.decode(u)), { x: 1, s: "r", y: 2 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

interface Machine {
  name: string;
  home: string;
  homeDir: string;
  config: string;
}

async function machine(base: string, name: string): Promise<Machine> {
  const u = await makeUserWithSeed(base, `${name}-cp`, SEED);
  const homeDir = `${base}/${name}-home`;
  await Deno.mkdir(homeDir, { recursive: true });
  return { name, home: u.home, homeDir, config: `${homeDir}/.claude` };
}

function run(m: Machine, net: Testnet, args: string[]): Promise<CliResult> {
  return cli(["claude", "sync", ...args], {
    home: m.home,
    net,
    env: { HOME: m.homeDir, CIPHERPOST_PASSPHRASE: PASS, CIPHERPOST_DEVICE_LABEL: m.name },
  });
}

async function ok(m: Machine, net: Testnet, args: string[]) {
  const r = await run(m, net, [...args, "--json"]);
  assert.deepStrictEqual(r.code, 0, `${m.name} ${args.join(" ")}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function write(path: string, text: string): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(path, text);
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/** A device's head, opened with the identity's keys. */
async function headOf(c: HomeserverClient, device: string): Promise<Manifest> {
  const r = await readSnapshot(c, headPath(device), KEYS, device);
  assert.ok(r, `no head for ${device}`);
  return r.manifest;
}

/** Every file of a head, decrypted: path → content. */
async function contentOf(c: HomeserverClient, m: Manifest): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of m.files) {
    let text = "";
    for (const [id, len] of f.chunks) {
      const r = await c.get(chunkPath(id));
      const sealed = new Uint8Array(await new Response(r!.body).arrayBuffer());
      text += dec.decode(await openChunk(sealed, id, len, KEYS));
    }
    out.set(f.root === undefined ? f.path : `${f.root}//${f.path}`, text);
  }
  return out;
}

interface Net {
  net: Testnet;
  client: HomeserverClient;
  close(): Promise<void>;
}

async function setup(A: Machine): Promise<Net> {
  const net = await startTestnet({ nodes: 12 });
  const tr = testTransport(net);
  const hs = await startHomeserver({ signupMode: "open", transport: tr });
  const signup = await cli(["homeserver", "signup", hs.key], {
    home: A.home,
    net,
    env: { CIPHERPOST_PASSPHRASE: PASS },
  });
  assert.deepStrictEqual(signup.code, 0, signup.stderr);
  const client = (await connect(tr, { home: A.home, user: keypairFromSeed(SEED).publicKey }))
    .client;
  return {
    net,
    client,
    async close() {
      await hs.close();
      await tr.close();
      await net.close();
    },
  };
}

function transcriptLine(cwd: string, n: number, text: string): string {
  return JSON.stringify({
    type: n % 2 ? "assistant" : "user",
    uuid: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
    parentUuid: n ? `00000000-0000-4000-8000-${String(n - 1).padStart(12, "0")}` : null,
    sessionId: ID,
    cwd,
    timestamp: `2026-12-05T10:00:${String(n).padStart(2, "0")}.000Z`,
    message: { role: n % 2 ? "assistant" : "user", content: text },
  }) + "\n";
}

Deno.test({
  name: "claude sync scope: full with excludes and plugins included; sessions takes only its part",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const base = await tmpDir("cp-sync-scope-");
    const A = await machine(base, "A");
    const B = await machine(base, "B");
    const n = await setup(A);
    try {
      const proj = `${A.homeDir}/code/p`;
      await Deno.mkdir(proj, { recursive: true });
      const folder = `projects/${projectDirName(proj)}`;
      const files: Record<string, string> = {
        [`${folder}/${ID}.jsonl`]: transcriptLine(proj, 0, "hello"),
        "CLAUDE.md": "# mine\n",
        "settings.json": '{"theme":"dark"}\n',
        "agents/review.md": "review agent\n",
        "agents/private/key.md": "private\n",
        "skills/s/SKILL.md": "skill\n",
        "plugins/installed_plugins.json": "{}\n",
        "agents/notes.bak": "x\n",
        "top-level.md": "not in any scope\n",
        // what Claude Code 2.1 writes that no scope takes
        ".credentials.json": '{"token":"cred-secret"}',
        "backups/.claude.json.backup.1": '{"userID":"backup-secret"}',
        "statsig/x": "s",
        "shell-snapshots/snap.sh": "s",
        "session-env/x/y": "s",
        "sessions/4242.json": "{}",
        "plugins/cache/big.bin": "cache",
      };
      for (const [p, text] of Object.entries(files)) await write(`${A.config}/${p}`, text);
      let device = "";
      await t.step(
        "A: full, plugins included, two excludes; the head holds exactly that",
        async () => {
          const c = await ok(A, n.net, [
            "config",
            "--scope",
            "full",
            "--include",
            "plugins",
            "--exclude",
            "agents/private",
            "--exclude",
            "plugins/cache",
          ]);
          assert.deepStrictEqual(c.scope, "full");
          const r = await ok(A, n.net, ["push"]);
          device = r.device;
          const head = await headOf(n.client, device);
          const paths = head.files.map((f) => f.path).sort();
          assert.deepStrictEqual(paths, [
            `${ID}.jsonl`,
            "CLAUDE.md",
            "agents/notes.bak",
            "agents/review.md",
            "plugins/installed_plugins.json",
            "settings.json",
            "skills/s/SKILL.md",
          ]);
          const all = [...(await contentOf(n.client, head)).values()].join("\n");
          for (const s of ["cred-secret", "backup-secret", "private", "not in any"]) {
            assert(!all.includes(s), s);
          }
        },
      );
      await t.step("B (sessions, the default) pulls only the sessions part", async () => {
        await ok(B, n.net, ["pull"]);
        assert(
          await exists(`${B.config}/projects/${projectDirName(`${B.homeDir}/code/p`)}/${ID}.jsonl`),
        );
        for (const p of ["CLAUDE.md", "settings.json", "agents", "plugins", "skills"]) {
          assert(!await exists(`${B.config}/${p}`), p);
        }
      });
      await t.step("B widens to full, excluding *.bak: takes the rest, not plugins", async () => {
        await ok(B, n.net, ["config", "--scope", "full", "--exclude", "*.bak"]);
        const r = await ok(B, n.net, ["pull"]);
        const got = r.actions.map((a: { path: string }) => a.path).sort();
        assert.deepStrictEqual(got, [
          "CLAUDE.md",
          "agents/review.md",
          "settings.json",
          "skills/s/SKILL.md",
        ]);
        assert.deepStrictEqual(
          await Deno.readTextFile(`${B.config}/settings.json`),
          files["settings.json"],
        );
        assert(
          !await exists(`${B.config}/plugins`) && !await exists(`${B.config}/agents/notes.bak`),
        );
        // B pushes: nothing of B's own changed; a plain push must not drop A's files
        await ok(B, n.net, ["push"]);
      });
      await t.step("A narrows to sessions: its settings are not deleted on B", async () => {
        await ok(A, n.net, ["config", "--scope", "sessions", "--remove-include", "plugins"]);
        const st = await ok(A, n.net, ["status"]);
        assert.deepStrictEqual(st.deleted, [], "out of scope is not a deletion");
        await write(
          `${A.config}/${folder}/${ID}.jsonl`,
          transcriptLine(proj, 0, "hello") + transcriptLine(proj, 1, "more"),
        );
        const r = await ok(A, n.net, ["push"]);
        assert.deepStrictEqual([r.changed, r.deleted], [1, 0]);
        const head = await headOf(n.client, device);
        assert.deepStrictEqual(head.gone, []);
        assert.deepStrictEqual(head.files.map((f) => f.path), [`${ID}.jsonl`]);
        const p = await ok(B, n.net, ["pull"]);
        assert.deepStrictEqual(p.actions.map((a: { action: string }) => a.action), [
          "fast-forward",
        ]);
        assert(await exists(`${B.config}/settings.json`));
      });
      await t.step(
        "a bad scope, include or glob is a usage error; nothing is written",
        async () => {
          const before = await Deno.readTextFile(`${B.home}/sync/config.json`);
          for (
            const args of [["--scope", "all"], ["--include", "statsig"], ["--exclude", "../x"], [
              "--map",
              "x=y",
            ]]
          ) {
            const r = await run(B, n.net, ["config", ...args]);
            assert.deepStrictEqual(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
          }
          assert.deepStrictEqual(await Deno.readTextFile(`${B.home}/sync/config.json`), before);
        },
      );
    } finally {
      await n.close();
      await Deno.remove(base, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "claude sync MCP servers: only mcpServers travels, tokenised; every other key stays home",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const base = await tmpDir("cp-sync-mcpcli-");
    const A = await machine(base, "A");
    const B = await machine(base, "B");
    const n = await setup(A);
    try {
      const aJson = `${A.homeDir}/.claude.json`, bJson = `${B.homeDir}/.claude.json`;
      const aOther = {
        userID: "uid-of-A",
        oauthAccount: { emailAddress: "a@example.org", accessToken: "A-ACCESS-SECRET" },
        projects: { [`${A.homeDir}/work`]: { allowedTools: [] } },
      };
      await Deno.writeTextFile(
        aJson,
        JSON.stringify({
          ...aOther,
          mcpServers: {
            fs: {
              type: "stdio",
              command: "npx",
              args: ["-y", "srv-fs", `${A.homeDir}/work`],
              env: { TOKEN: "mcp-token" },
            },
          },
        }),
      );
      const bOther = {
        userID: "uid-of-B",
        oauthAccount: { emailAddress: "b@example.org" },
        numStartups: 5,
        projects: { [`${B.homeDir}/x`]: { history: [] } },
      };
      await Deno.writeTextFile(bJson, JSON.stringify(bOther));
      await Deno.chmod(bJson, 0o600);
      await ok(A, n.net, ["config", "--mcp-servers"]);
      const pushed = await ok(A, n.net, ["push"]);
      const head = await headOf(n.client, pushed.device);
      assert.deepStrictEqual(head.files.map((f) => f.path), [MCP_PATH]);
      const content = await contentOf(n.client, head);
      const all = [...content.values()].join("\n");
      for (const s of ["uid-of-A", "A-ACCESS-SECRET", "a@example.org", A.homeDir]) {
        assert(!all.includes(s), `${s} left A`);
      }
      assert.deepStrictEqual(JSON.parse(content.get(MCP_PATH)!).fs.args[2], "${HOME}/work");

      // B without the opt-in takes nothing of it
      const bBefore = await Deno.readTextFile(bJson);
      await ok(B, n.net, ["pull"]);
      assert.deepStrictEqual(await Deno.readTextFile(bJson), bBefore);

      await ok(B, n.net, ["config", "--mcp-servers"]);
      await ok(B, n.net, ["pull"]);
      const b1 = JSON.parse(await Deno.readTextFile(bJson));
      assert.deepStrictEqual(b1.mcpServers.fs.args, ["-y", "srv-fs", `${B.homeDir}/work`]);
      assert.deepStrictEqual(b1.mcpServers.fs.env, { TOKEN: "mcp-token" });
      delete b1.mcpServers;
      assert.deepStrictEqual(b1, bOther, "B's other keys untouched");
      assert.deepStrictEqual((await Deno.stat(bJson)).mode! & 0o777, 0o600);
      const again = await ok(B, n.net, ["status"]);
      assert.deepStrictEqual(
        [again.added, again.modified],
        [[], []],
        "the merge is B's synced state",
      );

      // both add a server: B's pull keeps both (by name); A then takes B's
      const addServer = async (path: string, name: string) => {
        const o = JSON.parse(await Deno.readTextFile(path));
        o.mcpServers[name] = { type: "stdio", command: name, args: [], env: {} };
        await Deno.writeTextFile(path, JSON.stringify(o));
      };
      await addServer(aJson, "from-a");
      await addServer(bJson, "from-b");
      await ok(A, n.net, ["push"]);
      const r = await ok(B, n.net, ["pull"]);
      assert.deepStrictEqual(r.actions.map((a: { action: string }) => a.action), ["merged"]);
      const b2 = JSON.parse(await Deno.readTextFile(bJson));
      assert.deepStrictEqual(Object.keys(b2.mcpServers).sort(), ["from-a", "from-b", "fs"]);
      await ok(B, n.net, ["push"]);
      await ok(A, n.net, ["pull"]);
      const a2 = JSON.parse(await Deno.readTextFile(aJson));
      assert.deepStrictEqual(Object.keys(a2.mcpServers).sort(), ["from-a", "from-b", "fs"]);
      delete a2.mcpServers;
      assert.deepStrictEqual(a2, aOther, "A's other keys untouched");
    } finally {
      await n.close();
      await Deno.remove(base, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "claude sync lock: a second sync while one runs waits, then exits 1 (a hook: exit 0, logged)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const base = await tmpDir("cp-sync-lock-");
    const A = await machine(base, "A");
    const B = await machine(base, "B");
    const n = await setup(A);
    const seed = 2026;
    try {
      // enough to upload that the first push holds the lock for a while (a folder without a
      // transcript keeps its name: its root is `?<folder>`)
      let x = seed;
      const proj = `${A.homeDir}/p`;
      const folder = `${A.config}/projects/${projectDirName(proj)}`;
      await Deno.mkdir(folder, { recursive: true });
      for (let i = 0; i < 24; i++) {
        const b = new Uint8Array(512 * 1024);
        for (let j = 0; j < b.length; j++) {
          x = (x * 1103515245 + 12345) % 2147483648;
          b[j] = 97 + (x >> 16) % 26;
        }
        await Deno.writeTextFile(`${folder}/f${i}.txt`, dec.decode(b));
      }
      const env = { HOME: A.homeDir, CIPHERPOST_PASSPHRASE: PASS, CIPHERPOST_DEVICE_LABEL: "A" };
      const first = cliCommand(["claude", "sync", "push", "--json"], {
        home: A.home,
        net: n.net,
        env,
      })
        .spawn();
      // wait until the first push holds the home's sync lock, then freeze it there
      const state = new State(A.home);
      let held = false;
      for (let i = 0; i < 6000 && !held; i++) {
        const release = await state.tryLock("sync");
        if (release) {
          release();
          await new Promise((r) => setTimeout(r, 5));
        } else held = true;
      }
      assert(held, `the first push never took the lock (seed ${seed})`);
      Deno.kill(first.pid, "SIGSTOP");
      try {
        // both at once, so the first is frozen only about one wait long
        const [second, hook] = await Promise.all([
          run(A, n.net, ["pull"]),
          run(A, n.net, ["push", "--hook"]),
        ]);
        assert.deepStrictEqual(second.code, 1, second.stderr);
        assert.match(second.stderr, /another sync is running from this home/);
        assert.deepStrictEqual([hook.code, hook.stdout, hook.stderr], [0, "", ""]);
        const log = await Deno.readTextFile(`${A.home}/sync/hook.log`);
        assert.match(log, /push failed \(exit 1\).*another sync is running/);
      } finally {
        Deno.kill(first.pid, "SIGCONT");
      }
      const out = await first.output();
      assert.deepStrictEqual(out.code, 0, dec.decode(out.stderr));
      assert.deepStrictEqual(JSON.parse(dec.decode(out.stdout)).changed, 24);
      // two at once that fit in the wait: both complete, in turn; the state is whole
      await Deno.writeTextFile(`${folder}/f0.txt`, "changed\n");
      const [p, q] = await Promise.all([
        run(A, n.net, ["push", "--json"]),
        run(A, n.net, ["pull", "--json"]),
      ]);
      assert.deepStrictEqual([p.code, q.code], [0, 0], p.stderr + q.stderr);
      const st = await ok(A, n.net, ["status"]);
      assert.deepStrictEqual([st.added, st.modified, st.deleted], [[], [], []]);
      await ok(B, n.net, ["pull"]);
      assert.deepStrictEqual(
        await Deno.readTextFile(`${B.config}/projects/${projectDirName(proj)}/f0.txt`),
        "changed\n",
      );
    } finally {
      await n.close();
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
    "claude sync path map: a project under another directory on B; the real Claude Code resumes it",
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
    const base = await tmpDir("cp-sync-map-");
    const A = await machine(base, "A");
    const B = await machine(base, "B");
    const n = await setup(A);
    const api = startClaudeApi();
    try {
      // outside both homes: the root is the absolute path, which B maps
      const projA = `${base}/tmpA/home/work/x`;
      const projB = `${base}/tmpB/elsewhere/x`;
      await Deno.mkdir(projA, { recursive: true });
      await Deno.mkdir(projB, { recursive: true });
      const claude = async (m: Machine, cwd: string, args: string[]) => {
        const out = await new Deno.Command(CLAUDE_BIN, {
          args,
          cwd,
          env: {
            HOME: m.homeDir,
            CLAUDE_CONFIG_DIR: m.config,
            ANTHROPIC_API_KEY: "test",
            ANTHROPIC_BASE_URL: api.url,
            DISABLE_TELEMETRY: "1",
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
            DISABLE_AUTOUPDATER: "1",
            PATH: "/usr/bin:/bin",
          },
          clearEnv: true,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.deepStrictEqual(out.code, 0, dec.decode(out.stderr));
      };
      await claude(A, projA, ["-p", "alpha: the mapped project"]);
      const folderA = `${A.config}/projects/${projectDirName(projA)}`;
      const id = (await Array.fromAsync(Deno.readDir(folderA)))
        .filter((e) => e.name.endsWith(".jsonl")).map((e) => e.name.slice(0, -6))[0];
      assert(id, "Claude Code wrote a transcript");
      await write(
        `${A.config}/history.jsonl`,
        JSON.stringify({ display: "alpha", timestamp: 1, project: projA, sessionId: id }) + "\n",
      );
      await ok(A, n.net, ["push"]);
      const cfg = await ok(B, n.net, [
        "config",
        "--map",
        `${base}/tmpA/home/work=${base}/tmpB/elsewhere`,
      ]);
      assert.deepStrictEqual(cfg.map, [{
        from: `${base}/tmpA/home/work`,
        to: `${base}/tmpB/elsewhere`,
      }]);
      await ok(B, n.net, ["pull"]);
      const folderB = `${B.config}/projects/${projectDirName(projB)}`;
      const placed = `${folderB}/${id}.jsonl`;
      const cwds = new Set(
        (await Deno.readTextFile(placed)).split("\n").filter((l) => l).map((l) => JSON.parse(l).cwd)
          .filter((c) => typeof c === "string"),
      );
      assert.deepStrictEqual([...cwds], [projB]);
      assert(!await exists(`${B.config}/projects/${projectDirName(projA)}`));
      const hist = JSON.parse(await Deno.readTextFile(`${B.config}/history.jsonl`));
      assert.deepStrictEqual(hist.project, projB);
      const posts = api.requests.length;
      await claude(B, projB, ["--resume", id, "-p", "beta: on B"]);
      const sent = JSON.stringify(api.requests.slice(posts).map((q) => q.body));
      assert(sent.includes("alpha: the mapped project"), "A's earlier turn reached the API from B");
      // B's turn goes back under A's own path: same folder, A's cwd, no folder for B's path
      await ok(B, n.net, ["push"]);
      const r = await ok(A, n.net, ["pull"]);
      assert.deepStrictEqual(
        r.actions.filter((a: { path: string }) => a.path.endsWith(`${id}.jsonl`))
          .map((a: { action: string }) => a.action),
        ["fast-forward"],
      );
      const mine = await Deno.readTextFile(`${folderA}/${id}.jsonl`);
      assert(mine.includes("beta: on B"));
      assert(!mine.includes(projB));
      assert(!await exists(`${A.config}/projects/${projectDirName(projB)}`));
    } finally {
      await api.close();
      await n.close();
      await Deno.remove(base, { recursive: true }).catch(() => {});
    }
  },
});
