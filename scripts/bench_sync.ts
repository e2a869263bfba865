/**
 * Claude sync benchmark (issue 19): a synthetic Claude Code folder (default 1,000 sessions,
 * ~500 MB of realistic JSONL, one of them a 50 MB transcript) through the real CLI, a local
 * testnet and the homeserver stand-in on loopback. Measures the first push and the first pull
 * (MB/s, peak RSS), a push with nothing changed (seconds, files read), a push after one turn
 * appended to the 50 MB transcript (bytes uploaded against bytes appended), and beside them, in
 * the same run: hashing every file (what Claude Sync does on each push) and `tar | age` of the
 * whole tree.
 *
 *   deno run -P=cipherpost --allow-run --no-prompt scripts/bench_sync.ts [--sessions N] [--mb M]
 *
 * CLI times include the process start and the passphrase's Argon2id (both measured alone too).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { startTestnet } from "../lib/testing/testnet.ts";
import { startHomeserverOnTestnet } from "../lib/testing/homeserver.ts";
import { storeIdentity } from "../lib/state/identity.ts";
import { projectDirName } from "../lib/claude/project_dir.ts";
import { ageRecipientOfEd, keypairFromSeed } from "../lib/crypto/keys.ts";

const args = [...Deno.args];
const opt = (name: string, def: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const SESSIONS = opt("--sessions", 1000);
const TOTAL_MB = opt("--mb", 500);
const BIG_MB = Math.min(50, Math.floor(TOTAL_MB / 2));
const MB = 1e6;
const PASS = "bench passphrase";
const SEED = new Uint8Array(32).fill(42);
const root = new URL("..", import.meta.url);
const mainTs = new URL("main.ts", root).pathname;

function flags(): string[] {
  const cfg = JSON.parse(Deno.readTextFileSync(new URL("deno.json", root)));
  return Object.entries(cfg.permissions.cipherpost as Record<string, boolean>)
    .filter(([, v]) => v).map(([k]) => `--allow-${k}`);
}

/** Run under `/usr/bin/time`: wall seconds, peak RSS (KiB), output. */
async function run(cmd: string, argv: string[], env: Record<string, string>) {
  const t0 = performance.now();
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-f", "@@RUSAGE %M", cmd, ...argv],
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const secs = (performance.now() - t0) / 1000;
  const err = new TextDecoder().decode(out.stderr);
  const m = /@@RUSAGE (\d+)\s*$/.exec(err);
  return {
    secs,
    hwmKiB: m ? Number(m[1]) : NaN,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: m ? err.slice(0, m.index) : err,
    code: out.code,
  };
}

interface Machine {
  home: string;
  homeDir: string;
  config: string;
}

function cp(m: Machine, argv: string[], net: { bootstrap: string[]; relayUrl: string }) {
  return run(Deno.execPath(), [
    "run",
    ...flags(),
    "--v8-flags=--max-semi-space-size=1",
    "--no-prompt",
    "--quiet",
    mainTs,
    ...argv,
  ], {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
    HOME: m.homeDir,
    CIPHERPOST_HOME: m.home,
    CIPHERPOST_PASSPHRASE: PASS,
    CIPHERPOST_BOOTSTRAP: net.bootstrap.join(","),
    CIPHERPOST_RELAYS: net.relayUrl,
    CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK: "1",
    CIPHERPOST_DEVICE_LABEL: m.homeDir.split("/").pop()!,
    NO_COLOR: "1",
  });
}

/** xorshift PRNG text: realistic-looking JSONL payloads (letters and spaces). */
function makeText(seed: number) {
  let x = seed >>> 0 || 1;
  const abc = "abcdefghijklmnopqrstuvwxyz     ";
  return (n: number) => {
    let s = "";
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      s += abc[(x >>> 0) % abc.length];
    }
    return s;
  };
}

function turnLine(cwd: string, id: string, n: number, text: string): string {
  return JSON.stringify({
    parentUuid: n ? `00000000-0000-4000-8000-${String(n - 1).padStart(12, "0")}` : null,
    isSidechain: false,
    userType: "external",
    cwd,
    sessionId: id,
    version: "2.1.328",
    gitBranch: "main",
    type: n % 2 ? "assistant" : "user",
    message: { role: n % 2 ? "assistant" : "user", content: [{ type: "text", text }] },
    uuid: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
    timestamp: new Date(Date.UTC(2026, 11, 5, 10, 0, n % 60)).toISOString(),
  }) + "\n";
}

async function writeTranscript(path: string, cwd: string, id: string, bytes: number, seed: number) {
  const text = makeText(seed);
  const f = await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o600 });
  const enc = new TextEncoder();
  let n = 0, written = 0, batch = "";
  while (written < bytes) {
    const l = turnLine(cwd, id, n++, text(Math.min(4000, 200 + ((n * 7919) % 3000))));
    batch += l;
    written += l.length;
    if (batch.length > 1 << 20) {
      await f.write(enc.encode(batch));
      batch = "";
    }
  }
  if (batch) await f.write(enc.encode(batch));
  f.close();
  return n;
}

async function tree(dir: string): Promise<{ files: string[]; bytes: number }> {
  const files: string[] = [];
  let bytes = 0;
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (e.isFile) {
        files.push(p);
        bytes += (await Deno.stat(p)).size;
      }
    }
  };
  await walk(dir);
  return { files, bytes };
}

const base = await Deno.makeTempDir({ prefix: "cp-bench-sync-" });
const net = await startTestnet({ nodes: 8 });
const hs = await startHomeserverOnTestnet(net, { signupMode: "open" });
const rows: string[][] = [];
const row = (...c: (string | number)[]) => rows.push(c.map(String));
try {
  const mk = async (name: string): Promise<Machine> => {
    const homeDir = `${base}/${name}`;
    const home = `${base}/${name}-cp`;
    await Deno.mkdir(homeDir, { recursive: true });
    await storeIdentity(home, SEED, PASS, false);
    return { home, homeDir, config: `${homeDir}/.claude` };
  };
  const A = await mk("laptop");
  const B = await mk("desktop");
  const su = await cp(A, ["homeserver", "signup", hs.key], net);
  if (su.code !== 0) throw new Error(su.stderr);

  // the synthetic tree: 20 projects, one 50 MB transcript, the rest spread evenly
  const projects = 20;
  const perSession = Math.floor(((TOTAL_MB - BIG_MB) * MB) / Math.max(1, SESSIONS - 1));
  let bigPath = "", bigCwd = "", bigId = "", bigTurns = 0;
  const hist: string[] = [];
  for (let s = 0; s < SESSIONS; s++) {
    const cwd = `${A.homeDir}/code/project-${s % projects}`;
    const folder = `${A.config}/projects/${projectDirName(cwd)}`;
    await Deno.mkdir(folder, { recursive: true });
    const id = `${String(s).padStart(8, "0")}-0000-4000-8000-000000000000`;
    const path = `${folder}/${id}.jsonl`;
    const size = s === 0 ? BIG_MB * MB : perSession;
    const turns = await writeTranscript(path, cwd, id, size, 1000 + s);
    if (s === 0) [bigPath, bigCwd, bigId, bigTurns] = [path, cwd, id, turns];
    hist.push(
      JSON.stringify({
        display: `prompt ${s}`,
        pastedContents: {},
        timestamp: 1_700_000_000_000 + s,
        project: cwd,
        sessionId: id,
      }),
    );
  }
  await Deno.writeTextFile(`${A.config}/history.jsonl`, hist.join("\n") + "\n");
  const t = await tree(A.config);
  const totalMB = t.bytes / MB;
  console.error(`tree: ${t.files.length} files, ${totalMB.toFixed(1)} MB`);

  // baselines
  const t0 = performance.now();
  for (const f of t.files) {
    const h = createHash("sha256");
    for await (const c of (await Deno.open(f, { read: true })).readable) h.update(c);
    h.digest();
  }
  const hashSecs = (performance.now() - t0) / 1000;
  row(
    "naive: SHA-256 of every file (Claude Sync's push)",
    hashSecs.toFixed(2),
    (totalMB / hashSecs).toFixed(0),
    "-",
    `${t.files.length} files read`,
  );
  const recipient = ageRecipientOfEd(keypairFromSeed(SEED).publicKey);
  const tarAge = await run("/bin/sh", [
    "-c",
    `tar -C "$1" -cf - . | age -r "$2" > /dev/null`,
    "sh",
    A.config,
    recipient,
  ], { PATH: "/usr/bin:/bin" });
  row(
    "tar | age of the whole tree",
    tarAge.secs.toFixed(2),
    (totalMB / tarAge.secs).toFixed(0),
    "-",
    `${totalMB.toFixed(0)} MB written`,
  );
  const idShow = await cp(A, ["identity", "show"], net);
  row(
    "(cipherpost start, no unlock: identity show)",
    idShow.secs.toFixed(2),
    "-",
    (idShow.hwmKiB / 1024).toFixed(0),
    "",
  );

  const j = (r: { stdout: string; stderr: string; code: number }) => {
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout);
  };
  const push1 = await cp(A, ["claude", "sync", "push", "--json"], net);
  const p1 = j(push1);
  row(
    "first push",
    push1.secs.toFixed(2),
    (totalMB / push1.secs).toFixed(0),
    (push1.hwmKiB / 1024).toFixed(0),
    `${(p1.counters.bytes_uploaded / MB).toFixed(1)} MB up, ${p1.counters.chunks_uploaded} chunks`,
  );
  const pull1 = await cp(B, ["claude", "sync", "pull", "--json"], net);
  const q1 = j(pull1);
  row(
    "first pull",
    pull1.secs.toFixed(2),
    (totalMB / pull1.secs).toFixed(0),
    (pull1.hwmKiB / 1024).toFixed(0),
    `${q1.actions.length} files, ${(q1.counters.bytes_downloaded / MB).toFixed(1)} MB down`,
  );
  const st = await cp(A, ["claude", "sync", "status", "--json"], net);
  row(
    "(status: start + passphrase unlock + stat walk, no network)",
    st.secs.toFixed(2),
    "-",
    (st.hwmKiB / 1024).toFixed(0),
    `${j(st).counters.files_read} files read`,
  );
  const push2 = await cp(A, ["claude", "sync", "push", "--json"], net);
  const p2 = j(push2);
  row(
    "push, nothing changed",
    push2.secs.toFixed(2),
    "-",
    (push2.hwmKiB / 1024).toFixed(0),
    `${p2.counters.files_read} files read, ${p2.counters.stat_hits} stat hits`,
  );
  const turn = turnLine(bigCwd, bigId, bigTurns, makeText(7)(3000));
  await Deno.writeTextFile(bigPath, turn, { append: true });
  const push3 = await cp(A, ["claude", "sync", "push", "--json"], net);
  const p3 = j(push3);
  row(
    "push, one turn appended to the 50 MB transcript",
    push3.secs.toFixed(2),
    "-",
    (push3.hwmKiB / 1024).toFixed(0),
    `${p3.counters.bytes_uploaded} B up (${p3.counters.chunks_uploaded} chunk(s) + snapshot) for ${turn.length} B appended; ${p3.counters.files_read} file(s) read`,
  );

  console.log(
    `\nClaude sync benchmark: ${t.files.length} files, ${
      totalMB.toFixed(0)
    } MB (${SESSIONS} sessions, one of ${BIG_MB} MB)\n`,
  );
  console.log("| step | seconds | MB/s | peak RSS MiB | notes |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  console.log(
    `\npush with nothing changed: ${push2.secs.toFixed(2)} s, of which ${
      st.secs.toFixed(2)
    } s are ` +
      `the process start and the passphrase's Argon2id (status); the sync itself ` +
      `${
        Math.max(0, push2.secs - st.secs).toFixed(2)
      } s reading ${p2.counters.files_read} files, ` +
      `against ${hashSecs.toFixed(2)} s hashing all ${t.files.length} files.`,
  );
  console.log(
    `append: ${p3.counters.bytes_uploaded} B uploaded for ${turn.length} B appended ` +
      `(the snapshot is sent twice: as its own object and as the head)`,
  );
} finally {
  await hs.close();
  await net.close();
  await Deno.remove(base, { recursive: true }).catch(() => {});
}
