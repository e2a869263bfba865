/**
 * Claude sync benchmark (issue 19): a synthetic Claude Code folder (default 1,000 sessions,
 * ~500 MB of realistic JSONL, one of them a 50 MB transcript; seeded) through the real CLI, a
 * local testnet and the homeserver stand-in on loopback. Measures the first push and the first
 * pull (MB/s, peak RSS of the CLI process), a push with nothing changed (seconds, files read),
 * a push after one turn appended to the 50 MB transcript (bytes uploaded against bytes
 * appended), and beside them, in the same run: hashing every file (what Claude Sync does on
 * each push) and `tar | age` of the whole tree.
 *
 *   deno task bench:sync [--sessions N] [--mb M] [--seed S] [--keep]
 *   (= deno run -P=cipherpost --allow-run --no-prompt scripts/bench_sync.ts …)
 *
 * `--mb` defaults to N / 2 (so `--sessions 100` is a quick 50 MB run); `--keep` keeps the temp
 * folder (its path is printed) to look at the homes afterwards. CLI times include the
 * process start; a push with changes includes the passphrase's Argon2id too (a push with
 * nothing changed does not unlock the identity, PROTOCOL §8.5).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { startTestnet } from "../lib/testing/testnet.ts";
import { startHomeserverOnTestnet } from "../lib/testing/homeserver.ts";
import { storeIdentity } from "../lib/state/identity.ts";
import { projectDirName } from "../lib/claude/project_dir.ts";
import { ageRecipientOfEd, keypairFromSeed } from "../lib/crypto/keys.ts";
import { syncPushUnchanged } from "../lib/flows/sync/push.ts";

const args = [...Deno.args];
const opt = (name: string, def: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const SESSIONS = opt("--sessions", 1000);
const TOTAL_MB = opt("--mb", SESSIONS / 2);
const SEED_ARG = opt("--seed", 1000);
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

/** Run `f` `n` times (the machine is shared: the fastest run is the least disturbed one). */
async function fastest<T extends { secs: number }>(n: number, f: () => Promise<T>) {
  const runs: T[] = [];
  for (let i = 0; i < n; i++) runs.push(await f());
  const best = runs.reduce((a, b) => (b.secs < a.secs ? b : a));
  return { ...best, all: runs.map((r) => r.secs.toFixed(2)).join(", ") };
}

const base = await Deno.makeTempDir({ prefix: "cp-bench-sync-" });
const net = await startTestnet({ nodes: 8 });
const hs = await startHomeserverOnTestnet(net, { signupMode: "open" });
const rows: string[][] = [];
const row = (...c: (string | number)[]) => {
  rows.push(c.map(String));
  console.error(`  ${c.join(" | ")}`);
};
/** The machine's load average (1, 5, 15 min): the benchmark shares it with others. */
async function loadavg(): Promise<string> {
  const out = await new Deno.Command("cat", { args: ["/proc/loadavg"], stdout: "piped" })
    .output();
  return new TextDecoder().decode(out.stdout).split(" ").slice(0, 3).join(" ");
}
const loadStart = await loadavg();
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
    const turns = await writeTranscript(path, cwd, id, size, SEED_ARG + s);
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
    "naive: SHA-256 of every file (Claude Sync, each push)",
    hashSecs.toFixed(2),
    (totalMB / hashSecs).toFixed(0),
    "-",
    "1.00",
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
    "naive: tar | age of the whole tree",
    tarAge.secs.toFixed(2),
    (totalMB / tarAge.secs).toFixed(0),
    "-", // a shell pipeline: /usr/bin/time sees the shell
    "1.00",
    `${totalMB.toFixed(0)} MB sealed`,
  );
  const idShow = await fastest(3, () => cp(A, ["identity", "show"], net));
  row(
    "(cipherpost process start: identity show)",
    idShow.secs.toFixed(2),
    "-",
    (idShow.hwmKiB / 1024).toFixed(0),
    "",
    `no unlock, no network; fastest of ${idShow.all} s`,
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
    `${(push1.secs / tarAge.secs).toFixed(2)} × tar|age`,
    `${
      (p1.counters.bytes_uploaded / MB).toFixed(1)
    } MB up: ${p1.counters.chunks_uploaded} chunks, ${p1.counters.pages_uploaded} pages`,
  );
  const pull1 = await cp(B, ["claude", "sync", "pull", "--json"], net);
  const q1 = j(pull1);
  row(
    "first pull (other machine)",
    pull1.secs.toFixed(2),
    (totalMB / pull1.secs).toFixed(0),
    (pull1.hwmKiB / 1024).toFixed(0),
    `${(pull1.secs / tarAge.secs).toFixed(2)} × tar|age`,
    `${q1.actions.length} files, ${(q1.counters.bytes_downloaded / MB).toFixed(1)} MB down`,
  );
  const st = await cp(A, ["claude", "sync", "status", "--json"], net);
  row(
    "(status: start + passphrase unlock + stat walk, no network)",
    st.secs.toFixed(2),
    "-",
    (st.hwmKiB / 1024).toFixed(0),
    "",
    `${j(st).counters.files_read} files read`,
  );
  hs.resetCounts();
  const push2 = await fastest(3, () => cp(A, ["claude", "sync", "push", "--json"], net));
  const p2 = j(push2);
  const requests2 = Object.values(hs.counts).reduce((a, b) => a + b, 0);
  row(
    "push, nothing changed",
    push2.secs.toFixed(2),
    "-",
    (push2.hwmKiB / 1024).toFixed(0),
    `${(push2.secs / hashSecs).toFixed(3)} × hashing`,
    `${p2.counters.files} files stat'ed, ${p2.counters.files_read} read, ${requests2} requests (3 runs), no unlock; fastest of ${push2.all} s`,
  );
  // the same decision in this process: what the push costs without the process start
  const envA = { configDir: A.config, homeDir: A.homeDir, label: "laptop" };
  const check = await fastest(3, async () => {
    const t2 = performance.now();
    const r = await syncPushUnchanged(A.home, envA);
    return { r, secs: (performance.now() - t2) / 1000 };
  });
  const same = check.r, sameSecs = check.secs;
  if (!same) throw new Error("the in-process no-change check found a change");
  row(
    "push, nothing changed: the check alone (in-process, no process start)",
    sameSecs.toFixed(3),
    "-",
    "-",
    `${(sameSecs / hashSecs).toFixed(3)} × hashing`,
    `${same.counters.files} files stat'ed, ${same.counters.filesRead} read; fastest of ${check.all} s`,
  );
  const turn = turnLine(bigCwd, bigId, bigTurns, makeText(SEED_ARG + 7)(3000));
  await Deno.writeTextFile(bigPath, turn, { append: true });
  // what Claude Sync uploads for that append: the whole transcript, gzip'd and age'd
  const naiveUp = await run("/bin/sh", [
    "-c",
    `gzip -c "$1" | age -r "$2" | wc -c`,
    "sh",
    bigPath,
    recipient,
  ], { PATH: "/usr/bin:/bin" });
  const naiveBytes = Number(naiveUp.stdout.trim());
  hs.resetCounts();
  const push3 = await cp(A, ["claude", "sync", "push", "--json"], net);
  const p3 = j(push3);
  const up = p3.counters.bytes_uploaded;
  row(
    `push, one turn appended to the ${BIG_MB} MB transcript`,
    push3.secs.toFixed(2),
    "-",
    (push3.hwmKiB / 1024).toFixed(0),
    `${(up / turn.length).toFixed(2)} × appended`,
    `${up} B up for ${turn.length} B appended: ${p3.counters.chunks_uploaded} chunk(s), ${p3.counters.pages_uploaded} page(s), head ×2; ${p3.counters.files_read} file(s) read, ${hs.counts.PUT} PUTs`,
  );
  row(
    "naive: gzip | age of that transcript (Claude Sync's upload)",
    naiveUp.secs.toFixed(2),
    "-",
    "-",
    `${(naiveBytes / turn.length).toFixed(0)} × appended`,
    `${naiveBytes} B (${(naiveBytes / up).toFixed(0)} × ours)`,
  );
  const push4 = await fastest(3, () => cp(A, ["claude", "sync", "push", "--json"], net));
  const p4 = j(push4);
  row(
    "push, nothing changed (after the append)",
    push4.secs.toFixed(2),
    "-",
    (push4.hwmKiB / 1024).toFixed(0),
    `${(push4.secs / hashSecs).toFixed(3)} × hashing`,
    `${p4.counters.files_read} read, pushed: ${p4.pushed}; fastest of ${push4.all} s`,
  );

  console.log(
    `\nClaude sync benchmark: ${t.files.length} files, ${
      totalMB.toFixed(0)
    } MB (${SESSIONS} sessions, one of ${BIG_MB} MB; seed ${SEED_ARG}); ` +
      `${navigator.hardwareConcurrency} CPUs, load average at the start ${loadStart}, at the end ${await loadavg()}\n`,
  );
  console.log("| step | seconds | MB/s | peak RSS MiB | ratio | notes |");
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  console.log(
    `\npush with nothing changed: ${push2.secs.toFixed(2)} s (process start alone ${
      idShow.secs.toFixed(2)
    } s; the check itself ${
      sameSecs.toFixed(3)
    } s), ${p2.counters.files_read} files read, against ${
      hashSecs.toFixed(2)
    } s hashing all ${t.files.length} files.`,
  );
  console.log(
    `append: ${up} B uploaded for ${turn.length} B appended (goal: ≤ 2 × appended + snapshot); ` +
      `Claude Sync would upload ${naiveBytes} B.`,
  );
} finally {
  await hs.close();
  await net.close();
  if (args.includes("--keep")) console.error(`kept: ${base}`);
  else await Deno.remove(base, { recursive: true }).catch(() => {});
}
