/**
 * Large-payload benchmark (issue 10): one payload (default 1 GiB, from a seeded PRNG) through
 * `cipherpost send` → stand-in homeserver → `cipherpost receive` on loopback (the receive
 * starts when the send prints its URI; end to end = send start → receive end), beside, in the
 * same run: typage's streaming encrypt+decrypt of the same bytes (one thread), the same with
 * the payload on the native AEAD (`lib/crypto/age_stream.ts`, what parts use), the `age` CLI
 * encrypt+decrypt, and magic-wormhole on loopback (own mailbox and transit relay). Prints MB/s,
 * wall time, ratios and the peak RSS (VmHWM) of our sender and receiver.
 *
 *   deno run -P=cipherpost --allow-run --no-prompt scripts/bench_large.ts [MiB] [--workers N]
 *     [--only-ours] [--v8-flags FLAGS]   (default --max-semi-space-size=1, as the task; "" = none)
 *
 * With `--net` (as root: `deno run -P=cipherpost --allow-run --no-prompt scripts/bench_large.ts
 * --net [MiB] [--rates 100,400,1000] [--runs N]`): sender, homeserver and receiver in three network namespaces joined by two veth
 * links shaped with `tc tbf`, magic-wormhole placed the same way, in the same run
 * (`scripts/bench_large_net.ts` says how).
 *
 * Loopback only. magic-wormhole needs the Debian packages magic-wormhole,
 * python3-magic-wormhole-mailbox-server and magic-wormhole-transit-relay (skipped if absent).
 *
 * @module
 */

import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import { ageStreamDecrypt, ageStreamEncrypt, payloadStream } from "../lib/crypto/age_stream.ts";
import { createHash } from "node:crypto";
import http from "node:http";
import { createBLAKE3 } from "hash-wasm";
import { blake3File, writePrngFile } from "../lib/testing/prng_file.ts";
import { cipherpostFlags, runTimed, runTimedFirstLine } from "./_bench_proc.ts";

// `--net`: the same comparison on a shaped network of three namespaces (needs root)
if (Deno.args.includes("--net")) {
  const { benchNet } = await import("./bench_large_net.ts");
  await benchNet(Deno.args.filter((a) => a !== "--net"));
  Deno.exit(0);
}

const MiB = 1 << 20;
const args = [...Deno.args];
const oIdx = args.indexOf("--only-ours");
const onlyOurs = oIdx >= 0;
if (onlyOurs) args.splice(oIdx, 1);
const vIdx = args.indexOf("--v8-flags");
// what `deno task cipherpost` and the compiled binaries use (README: memory)
const v8flags = vIdx >= 0 ? args.splice(vIdx, 2)[1] : "--max-semi-space-size=1";
const wIdx = args.indexOf("--workers");
const workers = wIdx >= 0 ? args.splice(wIdx, 2)[1] : "0";
const sizeMiB = Number(args[0] ?? 1024);
const SIZE = sizeMiB * MiB;
const root = new URL("..", import.meta.url);
const mainTs = new URL("main.ts", root).pathname;
const PASS = "bench passphrase";

const flags = () => cipherpostFlags(root);

/** Run a command to its end under `/usr/bin/time` (peak RSS, CPU seconds, output). */
function run(cmd: string, argv: string[], opts: { env?: Record<string, string> } = {}) {
  return runTimed({ cmd, argv, env: opts.env });
}

function cpArgv(home: string, argv: string[], env: Record<string, string>) {
  const v8 = v8flags ? [`--v8-flags=${v8flags}`] : [];
  return {
    cmd: Deno.execPath(),
    argv: ["run", ...flags(), ...v8, "--no-prompt", "--quiet", mainTs, ...argv],
    env: { ...env, CIPHERPOST_HOME: home, CIPHERPOST_PASSPHRASE: PASS, NO_COLOR: "1" },
  };
}

function cp(home: string, argv: string[], env: Record<string, string>) {
  const c = cpArgv(home, argv, env);
  return run(c.cmd, c.argv, { env: c.env });
}

function fileSource(path: string): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      f: null as Deno.FsFile | null,
      async start() {
        this.f = await Deno.open(path);
      },
      async pull(c) {
        const buf = new Uint8Array(MiB);
        const n = await this.f!.read(buf);
        if (n === null) {
          this.f!.close();
          c.close();
        } else c.enqueue(buf.subarray(0, n));
      },
    } as UnderlyingDefaultSource<Uint8Array> & { f: Deno.FsFile | null },
  );
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

async function has(bin: string): Promise<boolean> {
  try {
    const r = await new Deno.Command("sh", { args: ["-c", `command -v ${bin}`], stdout: "null" })
      .output();
    return r.success;
  } catch {
    return false;
  }
}

class Done extends Error {}
/** The CPU no design can avoid (see the hashes step), and the cores it can spread over. */
let floor: { cpu: number; cores: number } | null = null;
const rows: { name: string; secs: number; cpu?: number; note?: string }[] = [];
const base = await Deno.makeTempDir({ prefix: "cp-bench-large-" });
const src = `${base}/payload.bin`;
console.error(`generating ${sizeMiB} MiB payload...`);
const srcHash = await writePrngFile(src, SIZE, 0x9e3779b9);

// The testnet and the stand-in homeserver run as their own process (`cipherpost testnet
// --homeserver`), under /usr/bin/time, so their CPU is measured apart from ours.
const netProc = new Deno.Command("/usr/bin/time", {
  args: [
    "-f",
    "@@RUSAGE %M %U %S",
    Deno.execPath(),
    "run",
    ...flags(),
    "--no-prompt",
    "--quiet",
    mainTs,
    "testnet",
    "--nodes",
    "12",
    "--homeserver",
    "--signup-mode",
    "open",
  ],
  stdin: "null",
  stdout: "piped",
  stderr: "piped",
}).spawn();
const netLines: Record<string, string> = {};
{
  const reader = netProc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (netLines.CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK !== "1") {
    const r = await reader.read();
    if (r.done) throw new Error("testnet exited");
    buf += r.value;
    for (const line of buf.split("\n")) {
      const m = /^(CIPHERPOST_[A-Z_]+)=(.*)$/.exec(line);
      if (m) netLines[m[1]] = m[2];
    }
  }
  reader.releaseLock();
}
const netStderr = new Response(netProc.stderr).text();
const netEnv = {
  CIPHERPOST_BOOTSTRAP: netLines.CIPHERPOST_BOOTSTRAP,
  CIPHERPOST_RELAYS: netLines.CIPHERPOST_RELAYS,
  CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK: netLines.CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK,
  CIPHERPOST_PART_WORKERS: workers,
};
let standInCpu = NaN;
try {
  // two identities, signed up on the stand-in with the CLI
  const people = [];
  for (const name of ["alice", "bob"]) {
    const home = `${base}/${name}`;
    for (
      const argv of [["identity", "generate"], [
        "homeserver",
        "signup",
        netLines.CIPHERPOST_HOMESERVER,
      ]]
    ) {
      const g = await cp(home, argv, netEnv);
      if (g.code !== 0) throw new Error(`${argv.join(" ")} failed: ${g.stderr}`);
    }
    const show = await cp(home, ["identity", "show", "--json"], netEnv);
    people.push({ home, z32: JSON.parse(show.stdout).z32 as string });
  }
  const [alice, bob] = people;

  // ours: the receiver starts as soon as the sender prints the URI (the pointer is out once
  // every part is sealed; parts still uploading are waited for, PROTOCOL.md §5.5)
  console.error("cipherpost send, and receive from the moment the URI is printed...");
  const start = performance.now();
  let uriAt = NaN;
  let receiving: ReturnType<typeof cp> | null = null;
  const s = await runTimedFirstLine(
    cpArgv(alice.home, ["send", "--share", bob.z32, "--material-file", src], netEnv),
    (uri) => {
      uriAt = (performance.now() - start) / 1000;
      receiving = cp(bob.home, [
        "receive",
        uri.trim(),
        "--accept",
        alice.z32,
        "-o",
        `${base}/received.bin`,
      ], netEnv);
    },
  );
  if (s.code !== 0 || receiving === null) throw new Error(`send failed: ${s.stderr}`);
  const r = await (receiving as ReturnType<typeof cp>);
  const e2e = (performance.now() - start) / 1000;
  if (r.code !== 0) throw new Error(`receive failed: ${r.stderr}`);
  const ok = (await blake3File(`${base}/received.bin`)) === srcHash;
  await Deno.remove(`${base}/received.bin`);
  rows.push({
    name: `cipherpost send (workers=${workers})`,
    secs: s.secs,
    cpu: s.cpu,
    note: `peak RSS ${(s.hwmKiB / 1024).toFixed(0)} MiB; URI printed after ${uriAt.toFixed(2)} s`,
  });
  rows.push({
    name: `cipherpost receive (workers=${workers}), started at the URI`,
    secs: r.secs,
    cpu: r.cpu,
    note: `peak RSS ${(r.hwmKiB / 1024).toFixed(0)} MiB; output ${ok ? "identical" : "DIFFERS"}`,
  });
  rows.push({ name: "cipherpost send → receive (end to end)", secs: e2e });

  if (onlyOurs) throw new Done();
  // typage, one thread, streaming
  console.error("typage...");
  const id = await generateX25519Identity();
  const e = new Encrypter();
  e.addRecipient(await identityToRecipient(id));
  let t0 = performance.now();
  const enc = `${base}/typage.age`;
  {
    const out = await Deno.open(enc, { write: true, create: true, truncate: true });
    for await (const c of await e.encrypt(fileSource(src))) {
      let off = 0;
      while (off < c.length) off += await out.write(c.subarray(off));
    }
    out.close();
  }
  const tEnc = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const d = new Decrypter();
  d.addIdentity(id);
  {
    const out = await Deno.open(`${base}/typage.out`, {
      write: true,
      create: true,
      truncate: true,
    });
    for await (const c of await d.decrypt(fileSource(enc))) {
      let off = 0;
      while (off < c.length) off += await out.write(c.subarray(off));
    }
    out.close();
  }
  const tDec = (performance.now() - t0) / 1000;
  await Deno.remove(enc);
  await Deno.remove(`${base}/typage.out`);
  rows.push({ name: "typage encrypt (stream, 1 thread)", secs: tEnc });
  rows.push({ name: "typage decrypt (stream, 1 thread)", secs: tDec });
  rows.push({ name: "typage encrypt + decrypt", secs: tEnc + tDec });

  // the same age files with the payload on node:crypto's ChaCha20-Poly1305 (what parts use)
  console.error("native age STREAM...");
  t0 = performance.now();
  {
    const age = await ageStreamEncrypt(await identityToRecipient(id));
    const out = await Deno.open(enc, { write: true, create: true, truncate: true });
    await out.write(age.head);
    for await (const c of fileSource(src).pipeThrough(payloadStream(age.sealer))) {
      let off = 0;
      while (off < c.length) off += await out.write(c.subarray(off));
    }
    out.close();
  }
  const nEnc = (performance.now() - t0) / 1000;
  t0 = performance.now();
  {
    const out = await Deno.open(`${base}/native.out`, { write: true, create: true });
    for await (const c of fileSource(enc).pipeThrough(ageStreamDecrypt(id))) {
      let off = 0;
      while (off < c.length) off += await out.write(c.subarray(off));
    }
    out.close();
  }
  const nDec = (performance.now() - t0) / 1000;
  await Deno.remove(enc);
  await Deno.remove(`${base}/native.out`);
  rows.push({ name: "native age STREAM encrypt + decrypt (1 thread)", secs: nEnc + nDec });

  // The other work no design can skip: our SHA-256 of every part (sender and receiver each) and
  // the homeserver's BLAKE3 ETag (the stand-in's, as the real server's), each over the payload.
  console.error("hashes...");
  t0 = performance.now();
  {
    const h = createHash("sha256");
    for await (const c of fileSource(src)) h.update(c);
    h.digest();
  }
  const tSha = (performance.now() - t0) / 1000;
  t0 = performance.now();
  {
    const h = await createBLAKE3();
    h.init();
    for await (const c of fileSource(src)) h.update(c);
    h.digest();
  }
  const tB3 = (performance.now() - t0) / 1000;
  // and the two HTTP legs (sender → server, server → receiver) on loopback, both ends in this
  // one thread: a node:http server that discards what is PUT and serves the payload on GET
  const sink = http.createServer((req, res) => {
    if (req.method === "PUT") {
      req.on("data", () => {});
      req.on("end", () => {
        res.writeHead(201);
        res.end();
      });
      return;
    }
    res.writeHead(200, { "content-length": String(SIZE) });
    const f = Deno.openSync(src);
    const buf = new Uint8Array(MiB);
    const go = () => {
      for (;;) {
        const n = f.readSync(buf);
        if (n === null) {
          f.close();
          return res.end();
        }
        if (!res.write(buf.slice(0, n))) return void res.once("drain", go);
      }
    };
    go();
  });
  await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(sink.address() as { port: number }).port}/`;
  t0 = performance.now();
  await (await fetch(url, {
    method: "PUT",
    body: fileSource(src),
    headers: { "content-length": String(SIZE) },
  })).arrayBuffer();
  let got = 0;
  for await (const c of (await fetch(url)).body!) got += c.length;
  const tHttp = (performance.now() - t0) / 1000;
  await new Promise((r) => sink.close(r));
  if (got !== SIZE) throw new Error("HTTP leg lost bytes");
  rows.push({ name: "SHA-256 of the payload (node:crypto, 1 thread)", secs: tSha });
  rows.push({ name: "BLAKE3 of the payload (hash-wasm, the ETag; 1 thread)", secs: tB3 });
  rows.push({
    name: "HTTP PUT + GET of the payload on loopback (both ends, 1 thread)",
    secs: tHttp,
  });
  const cores = navigator.hardwareConcurrency;
  floor = {
    cpu: nEnc + nDec + 2 * tSha + tB3 + tHttp,
    cores,
  };

  // age CLI
  if (await has("age")) {
    console.error("age CLI...");
    const key = `${base}/age.key`;
    await Deno.writeTextFile(key, `${id}\n`, { mode: 0o600 });
    const rcpt = await identityToRecipient(id);
    const ae = await run("age", ["-r", rcpt, "-o", `${base}/cli.age`, src]);
    const ad = await run("age", ["-d", "-i", key, "-o", `${base}/cli.out`, `${base}/cli.age`]);
    await Deno.remove(`${base}/cli.age`);
    await Deno.remove(`${base}/cli.out`);
    rows.push({ name: "age CLI encrypt", secs: ae.secs, cpu: ae.cpu });
    rows.push({ name: "age CLI decrypt", secs: ad.secs, cpu: ad.cpu });
    rows.push({ name: "age CLI encrypt + decrypt", secs: ae.secs + ad.secs });
  } else rows.push({ name: "age CLI", secs: NaN, note: "not installed" });

  // magic-wormhole on loopback
  if (await has("wormhole") && await has("twistd3")) {
    console.error("magic-wormhole...");
    const mp = freePort();
    const tp = freePort();
    const wd = `${base}/wormhole`;
    await Deno.mkdir(wd);
    const mailbox = new Deno.Command("twistd3", {
      args: [
        "-n",
        "--pidfile",
        `${wd}/mailbox.pid`,
        "wormhole-mailbox",
        `--port=tcp:${mp}:interface=127.0.0.1`,
        `--channel-db=${wd}/relay.sqlite`,
      ],
      cwd: wd,
      stdout: "null",
      stderr: "null",
    }).spawn();
    const transit = new Deno.Command("twistd3", {
      args: [
        "-n",
        "--pidfile",
        `${wd}/transit.pid`,
        "transitrelay",
        `--port=tcp:${tp}:interface=127.0.0.1`,
      ],
      cwd: wd,
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      await new Promise((res) => setTimeout(res, 3000));
      const common = [
        `--relay-url=ws://127.0.0.1:${mp}/v1`,
        `--transit-helper=tcp:127.0.0.1:${tp}`,
      ];
      const code = "7-bench-large";
      const w0 = performance.now();
      const sender = run("wormhole", [...common, "send", "--hide-progress", `--code=${code}`, src]);
      await new Promise((res) => setTimeout(res, 1000));
      await Deno.mkdir(`${wd}/in`);
      const recv = await run("wormhole", [
        ...common,
        "receive",
        "--hide-progress",
        "--accept-file",
        `-o`,
        `${wd}/in/payload.bin`,
        code,
      ]);
      const sres = await sender;
      const secs = (performance.now() - w0) / 1000 - 1;
      const same = recv.code === 0 &&
        (await blake3File(`${wd}/in/payload.bin`).catch(() => "")) === srcHash;
      rows.push({
        name: "magic-wormhole send → receive (loopback)",
        secs,
        cpu: sres.cpu + recv.cpu,
        note: `RSS sender ${(sres.hwmKiB / 1024).toFixed(0)} MiB, receiver ${
          (recv.hwmKiB / 1024).toFixed(0)
        } MiB; ${same ? "identical" : `FAILED: ${recv.stderr.slice(0, 200)}`}`,
      });
    } finally {
      for (const c of [mailbox, transit]) {
        try {
          c.kill("SIGTERM");
        } catch { /* gone */ }
        await c.status;
      }
    }
  } else rows.push({ name: "magic-wormhole", secs: NaN, note: "not installed" });
} catch (e) {
  if (!(e instanceof Done)) throw e;
} finally {
  // stop the testnet process (the child of /usr/bin/time) and read its CPU
  const ps = await new Deno.Command("ps", {
    args: ["--ppid", String(netProc.pid), "-o", "pid="],
    stdout: "piped",
  })
    .output();
  for (const pid of new TextDecoder().decode(ps.stdout).split(/\s+/).filter((x) => x)) {
    await new Deno.Command("kill", { args: ["-TERM", pid] }).output();
  }
  await netProc.status;
  const m = /@@RUSAGE (\d+) ([\d.]+) ([\d.]+)/.exec(await netStderr);
  if (m) standInCpu = Number(m[2]) + Number(m[3]);
  if (m) console.error(`stand-in process: user ${m[2]} s, system ${m[3]} s, max RSS ${m[1]} KiB`);
  await Deno.remove(base, { recursive: true }).catch(() => {});
}
rows.splice(3, 0, {
  name: "testnet + stand-in homeserver process (whole run)",
  secs: NaN,
  cpu: standInCpu,
  note: "its own process; CPU over the whole run (mostly our PUTs and GETs)",
});

if (floor) {
  rows.push({
    name: `floor: STREAM enc+dec + 2 × SHA-256 + BLAKE3 + HTTP legs, over ${floor.cores} cores`,
    secs: floor.cpu / floor.cores,
    cpu: floor.cpu,
    note:
      `a lower bound on our end to end here: crypto, hashes and HTTP only (no process start, DHT, keys or server disk)${
        (() => {
          const w = rows.find((r) => r.name.startsWith("magic-wormhole send"));
          return w && Number.isFinite(w.secs)
            ? `; magic-wormhole took ${(w.secs / (floor.cpu / floor.cores)).toFixed(2)}× this`
            : "";
        })()
      }`,
  });
}
const mb = SIZE / 1e6;
const ours = rows.find((r) => r.name.startsWith("cipherpost send → receive"))!.secs;
console.log(
  `payload: ${sizeMiB} MiB (${SIZE} bytes); loopback; ${Deno.build.target}; our CLI with ${
    v8flags ? `--v8-flags=${v8flags}` : "no V8 flags"
  }`,
);
const load = new TextDecoder().decode(
  (await new Deno.Command("cat", { args: ["/proc/loadavg"], stdout: "piped" }).output()).stdout,
);
console.log(`load average at the end: ${load.split(" ").slice(0, 3).join(" ")}`);
console.log("| what | wall s | MB/s | ours e2e ÷ this | CPU s | notes |");
console.log("| --- | ---: | ---: | ---: | ---: | --- |");
for (const r of rows) {
  const ok = Number.isFinite(r.secs);
  console.log(
    `| ${r.name} | ${ok ? r.secs.toFixed(2) : "-"} | ${ok ? (mb / r.secs).toFixed(1) : "-"} | ${
      ok ? (ours / r.secs).toFixed(2) : "-"
    } | ${r.cpu === undefined || !Number.isFinite(r.cpu) ? "" : r.cpu.toFixed(1)} | ${
      r.note ?? ""
    } |`,
  );
}
