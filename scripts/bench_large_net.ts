/**
 * `scripts/bench_large.ts --net` (issue 21): one large share end to end on a shaped network,
 * beside magic-wormhole in the same run.
 *
 *   deno run -P=cipherpost --allow-run --no-prompt scripts/bench_large.ts --net [MiB]
 *     [--rates 100,400,1000] [--runs N] [--workers N] [--only-ours]      (as root)
 *
 * As root it makes three network namespaces, sender, middle and receiver, joined by two veth
 * pairs (sender–middle, middle–receiver) with private test addresses inside those namespaces
 * only (10.213.1.0/24 and 10.213.2.0/24; the middle's services listen on 10.213.0.1, on its own
 * loopback device; the two sides have a route to that one address and nothing else, so no
 * packet leaves the namespaces and the sides cannot reach each other directly). Every veth end
 * is shaped with `tc tbf` to the link rate (each way), rate after rate on the same namespaces.
 *
 * - ours: `cipherpost testnet --host 10.213.0.1 --homeserver` (DHT nodes, relay and stand-in
 *   homeserver) in the middle; `cipherpost send --material-file` in the sender's namespace and
 *   `cipherpost receive` in the receiver's, started when the send prints its URI (end to end =
 *   send start → receive end). The clients reach the stand-in through the address its packet
 *   names, admitted by the `CIPHERPOST_HOMESERVER_ALLOW_HTTP` line the testnet prints.
 * - magic-wormhole (Debian's magic-wormhole, python3-magic-wormhole-mailbox-server and
 *   magic-wormhole-transit-relay): mailbox server and transit relay in the middle, `wormhole
 *   send` and `wormhole receive` started together on the sides (end to end = the later end).
 *   The sides cannot reach each other, so wormhole goes through its relay as ours goes through
 *   the homeserver.
 * - floor: payload ÷ link rate (the two links run at once, so a relay that forwards as it
 *   receives needs no more); beside it, the payload over one plain TCP connection from the
 *   sender's namespace to the middle, timed inside (`deno eval` at both ends): what one shaped
 *   link really carries.
 * - CPU seconds and peak RSS of each side from `/usr/bin/time`; the middle's CPU from
 *   `/proc/<pid>/stat` before and after each transfer. CPU per GiB = CPU s ÷ payload GiB.
 *
 * Everything is torn down at the end, on failure and on SIGINT/SIGTERM (processes stopped,
 * namespaces deleted, which deletes the veths and their qdiscs, temp folder removed). Every wait
 * is bounded. Prints markdown tables; asserts nothing but that every output is identical.
 *
 * @module
 */

import { blake3File, writePrngFile } from "../lib/testing/prng_file.ts";
import {
  childPids,
  cipherpostFlags,
  type Cmd,
  type Measured,
  runTimed,
  runTimedFirstLine,
} from "./_bench_proc.ts";

const MiB = 1 << 20;
const GiB = 1 << 30;
const root = new URL("..", import.meta.url);
const mainTs = new URL("main.ts", root).pathname;
const PASS = "bench passphrase";
const MIDDLE_IP = "10.213.0.1";
const MAILBOX_PORT = 4000;
const TRANSIT_PORT = 4001;
const WIRE_PORT = 4002;

/** In the middle: take one TCP connection on WIRE_PORT, read it to its end, answer one byte. */
const WIRE_SINK = `
const l = Deno.listen({ hostname: "${MIDDLE_IP}", port: ${WIRE_PORT} });
console.log("listening");
const c = await l.accept();
const buf = new Uint8Array(1 << 20);
while ((await c.read(buf)) !== null);
await c.write(new Uint8Array([1]));
c.close();
l.close();
`;
/** On a side: send the file given as the first argument, print seconds until the byte back. */
const WIRE_SOURCE = `
const f = await Deno.open(Deno.args[0]);
const t0 = performance.now();
const c = await Deno.connect({ hostname: "${MIDDLE_IP}", port: ${WIRE_PORT} });
const buf = new Uint8Array(1 << 20);
for (let n; (n = await f.read(buf)) !== null;) {
  for (let off = 0; off < n;) off += await c.write(buf.subarray(off, n));
}
await c.closeWrite();
await c.read(new Uint8Array(1));
console.log(((performance.now() - t0) / 1000).toFixed(3));
c.close();
`;

interface Opts {
  sizeMiB: number;
  rates: number[];
  runs: number;
  workers: string;
  onlyOurs: boolean;
  v8flags: string;
}

function parse(argv: string[]): Opts {
  const args = [...argv];
  const take = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args.splice(i, 2)[1] : undefined;
  };
  const o = args.indexOf("--only-ours");
  if (o >= 0) args.splice(o, 1);
  const rates = (take("--rates") ?? "100,400,1000").split(",").map(Number);
  const runs = Number(take("--runs") ?? 1);
  const workers = take("--workers") ?? "0";
  const v8flags = take("--v8-flags") ?? "--max-semi-space-size=1";
  const sizeMiB = Number(args[0] ?? 256);
  if (
    !rates.every((r) => Number.isInteger(r) && r >= 1 && r <= 10_000) ||
    !Number.isInteger(runs) || runs < 1 || runs > 10 ||
    !Number.isInteger(sizeMiB) || sizeMiB < 1 || sizeMiB > 8192
  ) {
    throw new Error("usage: --net [MiB 1-8192] [--rates MBIT,…] [--runs 1-10]");
  }
  return { sizeMiB, rates, runs, workers, onlyOurs: o >= 0, v8flags };
}

async function sh(cmd: string, args: string[], ns?: string): Promise<string> {
  const full = ns ? ["netns", "exec", ns, cmd, ...args] : args;
  const out = await new Deno.Command(ns ? "ip" : cmd, {
    args: full,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `${ns ? `[${ns}] ` : ""}${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

async function has(bin: string): Promise<boolean> {
  const r = await new Deno.Command("sh", {
    args: ["-c", `command -v ${bin}`],
    stdout: "null",
    stderr: "null",
  }).output();
  return r.success;
}

const CLK_TCK = 100;
/**
 * CPU seconds (user + system) a live process has used so far; NaN when it is gone. Read through
 * `cat`: Deno's sandbox lets only --allow-all read /proc, and this script runs without it.
 */
async function cpuOf(pid: number): Promise<number> {
  const stat = await sh("cat", [`/proc/${pid}/stat`]).catch(() => "");
  if (!stat) return NaN;
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

/** The summed CPU seconds of `pids`. */
async function cpuOfAll(pids: number[]): Promise<number> {
  let sum = 0;
  for (const p of pids) sum += await cpuOf(p);
  return sum;
}

/** The namespaces, links and addresses; `down` undoes all of it (idempotent). */
class Topology {
  readonly S = `cpbench-s-${Deno.pid}`;
  readonly M = `cpbench-m-${Deno.pid}`;
  readonly R = `cpbench-r-${Deno.pid}`;
  /** [namespace, device] of every veth end */
  readonly ends: [string, string][] = [[this.S, "vs"], [this.M, "vsm"], [this.M, "vrm"], [
    this.R,
    "vr",
  ]];
  private made: string[] = [];

  async up(): Promise<void> {
    for (const ns of [this.S, this.M, this.R]) {
      await sh("ip", ["netns", "add", ns]);
      this.made.push(ns);
      await sh("ip", ["link", "set", "lo", "up"], ns);
    }
    // the veths are created inside the namespaces: nothing appears in the host's namespace
    await sh("ip", [
      "link",
      "add",
      "vs",
      "netns",
      this.S,
      "type",
      "veth",
      "peer",
      "name",
      "vsm",
      "netns",
      this.M,
    ]);
    await sh("ip", [
      "link",
      "add",
      "vr",
      "netns",
      this.R,
      "type",
      "veth",
      "peer",
      "name",
      "vrm",
      "netns",
      this.M,
    ]);
    await sh("ip", ["addr", "add", `${MIDDLE_IP}/32`, "dev", "lo"], this.M);
    const addr: [string, string, string][] = [
      [this.S, "vs", "10.213.1.2/24"],
      [this.M, "vsm", "10.213.1.1/24"],
      [this.M, "vrm", "10.213.2.1/24"],
      [this.R, "vr", "10.213.2.2/24"],
    ];
    for (const [ns, dev, a] of addr) {
      await sh("ip", ["addr", "add", a, "dev", dev], ns);
      await sh("ip", ["link", "set", dev, "up"], ns);
    }
    // each side reaches the middle's one service address, and nothing else
    await sh("ip", ["route", "add", `${MIDDLE_IP}/32`, "via", "10.213.1.1"], this.S);
    await sh("ip", ["route", "add", `${MIDDLE_IP}/32`, "via", "10.213.2.1"], this.R);
  }

  /** Every veth end (so each link, each way) shaped to `mbit` Mbit/s with a token bucket. */
  async shape(mbit: number): Promise<void> {
    // burst: at least 256 KiB (GSO packets up to 64 KiB must fit), or 2 ms at the rate
    const burst = Math.max(256 * 1024, Math.round(mbit * 1e6 / 8 * 0.002));
    for (const [ns, dev] of this.ends) {
      await sh("tc", [
        "qdisc",
        "replace",
        "dev",
        dev,
        "root",
        "tbf",
        "rate",
        `${mbit}mbit`,
        "burst",
        String(burst),
        "latency",
        "50ms",
      ], ns);
    }
  }

  async down(): Promise<void> {
    for (const ns of this.made.splice(0)) {
      await sh("ip", ["netns", "del", ns]).catch((e) => console.error(`teardown: ${e}`));
    }
  }
}

/** One transfer's measurements. */
interface Row {
  rate: number;
  run: number;
  who: "cipherpost" | "magic-wormhole";
  e2e: number;
  send: Measured;
  recv: Measured;
  middleCpu: number;
  uriAt?: number;
  same: boolean;
}

export async function benchNet(argv: string[]): Promise<void> {
  const o = parse(argv);
  if ((await sh("id", ["-u"])).trim() !== "0") {
    throw new Error("--net makes network namespaces: run it as root");
  }
  for (const bin of ["ip", "tc", "/usr/bin/time", "ps"]) {
    if (!await has(bin)) throw new Error(`--net needs ${bin}`);
  }
  const wormhole = !o.onlyOurs && await has("wormhole") && await has("twistd3");
  const wormholeNote = o.onlyOurs
    ? "magic-wormhole: skipped (--only-ours)"
    : wormhole
    ? ""
    : "magic-wormhole: not installed (apt-get install magic-wormhole " +
      "python3-magic-wormhole-mailbox-server magic-wormhole-transit-relay)";
  const SIZE = o.sizeMiB * MiB;
  const net = new Topology();
  const children: Deno.ChildProcess[] = [];
  const base = await Deno.makeTempDir({ prefix: "cp-bench-net-" });
  let stopping = false;
  const teardown = async () => {
    if (stopping) return;
    stopping = true;
    for (const c of children) {
      for (const pid of await childPids(c.pid).catch(() => [])) {
        try {
          Deno.kill(pid, "SIGTERM");
        } catch { /* gone */ }
      }
      try {
        c.kill("SIGTERM");
      } catch { /* gone */ }
    }
    await Promise.all(
      children.map((c) => Promise.race([c.status, new Promise((r) => setTimeout(r, 10_000))])),
    );
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await net.down();
    await Deno.remove(base, { recursive: true }).catch(() => {});
  };
  const onSignal = () => {
    console.error("interrupted: tearing down");
    teardown().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const rows: Row[] = [];
  const wire = new Map<number, number>();
  try {
    const src = `${base}/payload.bin`;
    console.error(`generating ${o.sizeMiB} MiB payload...`);
    const srcHash = await writePrngFile(src, SIZE, 0x9e3779b9);
    console.error("namespaces and links...");
    await net.up();

    const env = { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" };
    const deno = (args: string[]): Cmd => ({
      cmd: Deno.execPath(),
      argv: ["run", ...cipherpostFlags(root), "--no-prompt", "--quiet", ...args],
      env,
    });

    // ours: the testnet, its relay and the stand-in homeserver in the middle
    const tn = deno([mainTs, "testnet", "--host", MIDDLE_IP, "--nodes", "12", "--homeserver"]
      .concat(["--signup-mode", "open"]));
    const netProc = new Deno.Command("ip", {
      args: ["netns", "exec", net.M, tn.cmd, ...tn.argv],
      env: tn.env,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    children.push(netProc);
    const lines = await readEnvLines(netProc.stdout, "CIPHERPOST_HOMESERVER_ALLOW_HTTP", 60_000);
    const netEnv = {
      ...env,
      CIPHERPOST_BOOTSTRAP: lines.CIPHERPOST_BOOTSTRAP,
      CIPHERPOST_RELAYS: lines.CIPHERPOST_RELAYS,
      CIPHERPOST_HOMESERVER_ALLOW_HTTP: lines.CIPHERPOST_HOMESERVER_ALLOW_HTTP,
      CIPHERPOST_PART_WORKERS: o.workers,
      CIPHERPOST_PASSPHRASE: PASS,
    };
    const v8 = o.v8flags ? [`--v8-flags=${o.v8flags}`] : [];
    const cp = (home: string, args: string[]): Cmd => {
      const c = deno([...v8, mainTs, ...args]);
      return { ...c, env: { ...netEnv, CIPHERPOST_HOME: home } };
    };
    const people: { home: string; z32: string; ns: string }[] = [];
    for (const [name, ns] of [["alice", net.S], ["bob", net.R]]) {
      const home = `${base}/${name}`;
      for (
        const args of [["identity", "generate"], [
          "homeserver",
          "signup",
          lines.CIPHERPOST_HOMESERVER,
        ]]
      ) {
        const g = await runTimed(cp(home, args), ns);
        if (g.code !== 0) throw new Error(`${name}: ${args.join(" ")} failed: ${g.stderr}`);
      }
      const show = await runTimed(cp(home, ["identity", "show", "--json"]), ns);
      people.push({ home, z32: JSON.parse(show.stdout).z32, ns });
    }
    const [alice, bob] = people;
    const middlePid = netProc.pid; // `ip netns exec` execs: the pid is the testnet's

    // magic-wormhole's mailbox server and transit relay in the middle
    const wormholePids: number[] = [];
    if (wormhole) {
      const wd = `${base}/wormhole`;
      await Deno.mkdir(`${wd}/in`, { recursive: true });
      for (
        const args of [
          [
            "-n",
            "--pidfile",
            `${wd}/mailbox.pid`,
            "wormhole-mailbox",
            `--port=tcp:${MAILBOX_PORT}:interface=${MIDDLE_IP}`,
            `--channel-db=${wd}/relay.sqlite`,
          ],
          [
            "-n",
            "--pidfile",
            `${wd}/transit.pid`,
            "transitrelay",
            `--port=tcp:${TRANSIT_PORT}:interface=${MIDDLE_IP}`,
          ],
        ]
      ) {
        const c = new Deno.Command("ip", {
          args: ["netns", "exec", net.M, "twistd3", ...args],
          cwd: wd,
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).spawn();
        children.push(c);
        wormholePids.push(c.pid); // `ip netns exec` execs: the pid is twistd's
      }
      await waitListening(net.M, [MAILBOX_PORT, TRANSIT_PORT], 30_000);
    }

    for (const rate of o.rates) {
      await net.shape(rate);
      wire.set(rate, await wireSeconds(net, src));
      for (let run = 1; run <= o.runs; run++) {
        console.error(`${rate} Mbit/s, run ${run}: cipherpost...`);
        const out = `${base}/received.bin`;
        let c0 = await cpuOf(middlePid);
        const start = performance.now();
        let uriAt = NaN;
        let receiving: Promise<Measured> | null = null;
        const s = await runTimedFirstLine(
          cp(alice.home, ["send", "--share", bob.z32, "--material-file", src]),
          (uri) => {
            uriAt = (performance.now() - start) / 1000;
            receiving = runTimed(
              cp(bob.home, ["receive", uri.trim(), "--accept", alice.z32, "-o", out]),
              bob.ns,
            );
          },
          alice.ns,
        );
        if (s.code !== 0 || receiving === null) throw new Error(`send failed: ${s.stderr}`);
        const r: Measured = await receiving;
        const e2e = (performance.now() - start) / 1000;
        if (r.code !== 0) throw new Error(`receive failed: ${r.stderr}`);
        rows.push({
          rate,
          run,
          who: "cipherpost",
          e2e,
          send: s,
          recv: r,
          middleCpu: (await cpuOf(middlePid)) - c0,
          uriAt,
          same: (await blake3File(out)) === srcHash,
        });
        await Deno.remove(out);

        if (!wormhole) continue;
        console.error(`${rate} Mbit/s, run ${run}: magic-wormhole...`);
        const w = (args: string[]): Cmd => ({
          cmd: "wormhole",
          argv: [
            `--relay-url=ws://${MIDDLE_IP}:${MAILBOX_PORT}/v1`,
            `--transit-helper=tcp:${MIDDLE_IP}:${TRANSIT_PORT}`,
            ...args,
          ],
        });
        const code = `7-bench-${rate}-${run}`;
        const wout = `${base}/wormhole/in/payload.bin`;
        c0 = await cpuOfAll(wormholePids);
        const w0 = performance.now();
        const [ws, wr] = await Promise.all([
          runTimed(w(["send", "--hide-progress", `--code=${code}`, src]), net.S),
          runTimed(w(["receive", "--hide-progress", "--accept-file", "-o", wout, code]), net.R),
        ]);
        const we2e = (performance.now() - w0) / 1000;
        rows.push({
          rate,
          run,
          who: "magic-wormhole",
          e2e: we2e,
          send: ws,
          recv: wr,
          middleCpu: (await cpuOfAll(wormholePids)) - c0,
          same: wr.code === 0 && (await blake3File(wout).catch(() => "")) === srcHash,
        });
        if (wr.code !== 0 || ws.code !== 0) {
          console.error(`wormhole failed: ${ws.stderr.slice(0, 300)} ${wr.stderr.slice(0, 300)}`);
        }
        await Deno.remove(wout).catch(() => {});
      }
    }
  } finally {
    await teardown();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  const load = (await sh("cat", ["/proc/loadavg"])).split(" ").slice(0, 3).join(" ");
  report(o, rows, wire, wormholeNote, load);
}

/**
 * Seconds for the payload over one plain TCP connection from the sender's namespace to the
 * middle (one link), as the shaping lets it through: what the link really carries. NaN when it
 * fails (bounded: 600 s).
 */
async function wireSeconds(net: Topology, src: string): Promise<number> {
  const sink = new Deno.Command("ip", {
    args: ["netns", "exec", net.M, Deno.execPath(), "eval", WIRE_SINK],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = sink.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    await reader.read(); // "listening"
    const source = new Deno.Command("ip", {
      args: ["netns", "exec", net.S, Deno.execPath(), "eval", WIRE_SOURCE, src],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const timer = setTimeout(() => {
      for (const c of [source, sink]) {
        try {
          c.kill("SIGKILL");
        } catch { /* gone */ }
      }
    }, 600_000);
    const outp = await source.output();
    clearTimeout(timer);
    return Number(new TextDecoder().decode(outp.stdout).trim()) || NaN;
  } finally {
    reader.releaseLock();
    await sink.stdout.cancel().catch(() => {});
    try {
      sink.kill("SIGKILL");
    } catch { /* gone */ }
    await sink.status;
  }
}

/** Reads `NAME=value` lines from `stream` until `last` is seen (bounded by `ms`). */
async function readEnvLines(
  stream: ReadableStream<Uint8Array>,
  last: string,
  ms: number,
): Promise<Record<string, string>> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  const lines: Record<string, string> = {};
  let buf = "";
  const deadline = Date.now() + ms;
  try {
    while (lines[last] === undefined) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        reader.read(),
        new Promise<never>((_, rej) => {
          timer = setTimeout(
            () => rej(new Error("testnet did not start")),
            Math.max(0, deadline - Date.now()),
          );
        }),
      ]).finally(() => clearTimeout(timer));
      if (r.done) throw new Error("testnet exited");
      buf += r.value;
      for (const line of buf.split("\n")) {
        const m = /^(CIPHERPOST_[A-Z_]+)=(.*)$/.exec(line);
        if (m) lines[m[1]] = m[2];
      }
    }
  } finally {
    reader.releaseLock();
  }
  // keep draining (nothing more is printed until it stops, but never let the pipe fill)
  stream.pipeTo(new WritableStream()).catch(() => {});
  return lines;
}

/** Waits until `ports` listen on TCP in `ns` (polls `ss`, at most `ms`). */
async function waitListening(ns: string, ports: number[], ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const out = await sh("ss", ["-ltnH"], ns).catch(() => "");
    if (ports.every((p) => out.includes(`${MIDDLE_IP}:${p} `))) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`wormhole servers did not listen on ${ports.join(", ")} within ${ms} ms`);
}

function report(
  o: Opts,
  rows: Row[],
  wire: Map<number, number>,
  note: string,
  load: string,
): void {
  const gib = (o.sizeMiB * MiB) / GiB;
  const f = (x: number, d = 2) => Number.isFinite(x) ? x.toFixed(d) : "–";
  console.log(
    `payload: ${o.sizeMiB} MiB; three network namespaces, two veth links shaped with tc tbf ` +
      `(each way); ${Deno.build.target}, ${navigator.hardwareConcurrency} cores; ` +
      `part workers ${o.workers}; load average at the end: ${load}`,
  );
  if (note) console.log(note);
  console.log("");
  console.log(
    "| link | run | floor s (payload ÷ rate) | plain TCP over one link s | cipherpost e2e s | " +
      "magic-wormhole e2e s | ours ÷ wormhole | ours ÷ floor | wormhole ÷ floor |",
  );
  console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const rate of o.rates) {
    for (let run = 1; run <= o.runs; run++) {
      const ours = rows.find((r) => r.rate === rate && r.run === run && r.who === "cipherpost");
      const w = rows.find((r) => r.rate === rate && r.run === run && r.who === "magic-wormhole");
      const floor = (o.sizeMiB * MiB * 8) / (rate * 1e6);
      const a = ours?.e2e ?? NaN;
      const b = w?.e2e ?? NaN;
      console.log(
        `| ${rate} Mbit/s | ${run} | ${f(floor)} | ${f(wire.get(rate) ?? NaN)} | ${f(a)}${
          ours && !ours.same ? " DIFFERS" : ""
        } | ${f(b)}${w && !w.same ? " FAILED" : ""} | ${f(a / b)}× | ${f(a / floor)}× | ${
          f(b / floor)
        }× |`,
      );
    }
  }
  console.log("");
  console.log(
    "| link | run | who | send s | receive s | URI after s | CPU s sender / receiver / middle | " +
      "CPU s per GiB sender / receiver / both sides | peak RSS MiB sender / receiver |",
  );
  console.log("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const r of rows) {
    console.log(
      `| ${r.rate} Mbit/s | ${r.run} | ${r.who} | ${f(r.send.secs)} | ${f(r.recv.secs)} | ${
        r.uriAt === undefined ? "" : f(r.uriAt)
      } | ${f(r.send.cpu, 1)} / ${f(r.recv.cpu, 1)} / ${f(r.middleCpu, 1)} | ${
        f(r.send.cpu / gib, 1)
      } / ${f(r.recv.cpu / gib, 1)} / ${f((r.send.cpu + r.recv.cpu) / gib, 1)} | ${
        f(r.send.hwmKiB / 1024, 0)
      } / ${f(r.recv.hwmKiB / 1024, 0)} |`,
    );
  }
}
