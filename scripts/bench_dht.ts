/**
 * Small shares on a realistic DHT (issue 21): our client against npm pkarr@1.3.0 on the same
 * network, and our v2 shares of 100 B, 8 KiB, 40 KiB and 64 KiB published and fetched many
 * times, counting every fetch that fails after a publish that succeeded.
 *
 *   deno run -P=cipherpost --allow-run --no-prompt scripts/bench_dht.ts [--nodes=1000]
 *     [--procs=4] [--seed=1] [--dead=15] [--loss=5] [--delay=20-400] [--keys=20]
 *     [--tries=50] [--parallel=2] [--sizes=100,8192,40960,65536]
 *
 * The network (all on 127.0.0.1): `--nodes` real bittorrent-dht nodes (BEP44 storage, Ed25519
 * verification) spread over `--procs` child Deno processes (this script with `--host-nodes`),
 * every node told of every other (so the Kademlia tables hold what a long-lived network's would,
 * dead entries included). Each node answers every query after its own delay, drawn once from a
 * uniform spread (`--delay`, default 20–400 ms); `--dead` percent of the nodes (default 15)
 * answer nothing; every live node drops `--loss` percent of the queries it gets (default 5).
 * All of it is drawn from `--seed` (printed), so a run is repeatable up to scheduling.
 *
 * - Single packets (`--keys` fresh keys per client): each client publishes, and every packet
 *   published by either is resolved by both (`resolve first` = until the first valid packet;
 *   `resolve full` = the whole traversal). Both clients are long-lived subprocesses (ours: this
 *   script with `--worker`; pkarr: `tests/peer/pkarr_peer.mjs` under Node), bootstrapped before
 *   the clock starts, with the same 20 bootstrap nodes, the same KRPC timeout (2000 ms: our
 *   CLI's default) and the same delay on the queries they answer (the spread's median).
 * - Shares (`--tries` per size): our worker builds a real v2 share (an age blob of a JSON
 *   Envelope, as `send` makes it), publishes it with a fresh Transport and fetches it with
 *   another (as two CLI runs would: DHT only, bootstrap included). A fetch that fails after its
 *   publish succeeded is counted and its error printed; the goal is none. `--parallel=N` runs N
 *   such rounds at once (more tries in the time; the times then include N-fold contention).
 *
 * Prints markdown tables; asserts nothing. Every wait is bounded (per-op timeouts below); the
 * node processes are stopped at the end, on failure and on SIGINT.
 *
 * @module
 */

import { startPkarrPeer } from "../tests/peer/peer_client.ts";
import { LinePeer, type PeerReply } from "../tests/peer/peer_client.ts";
import { Transport } from "../lib/pkarr/transport.ts";
import { signPacket } from "../lib/pkarr/signed_packet.ts";
import { txtRecord } from "../lib/pkarr/dns.ts";
import { encodeZ32, parsePublicKey } from "../lib/pkarr/public_key.ts";
import { ageRecipientOfEd, generateKeypair } from "../lib/crypto/keys.ts";
import { ageEncrypt } from "../lib/crypto/age.ts";
import { b64encode, utf8 } from "../lib/util/encoding.ts";
import { shareRef } from "../lib/protocol/record.ts";
import { buildV2Share } from "../lib/protocol/v2.ts";
import { fetchV2Share, publishPackets } from "../lib/flows/share/v2_transfer.ts";
import { injectFaults, itemsPerNode } from "../lib/testing/testnet.ts";
import { verifySignature } from "../lib/pkarr/item.ts";
// @ts-types="../lib/pkarr/dht/bittorrent-dht.d.ts"
import DHT from "bittorrent-dht";
import { Buffer } from "node:buffer";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const out = (o: unknown) => Deno.stdout.write(new TextEncoder().encode(JSON.stringify(o) + "\n"));
/** The KRPC timeout of both clients: our CLI's default (`CIPHERPOST_TIMEOUT`). */
const CLIENT_TIMEOUT_MS = 2000;

/** mulberry32: a small seeded PRNG (uniform in [0, 1)). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Node `i`'s own seed, from the run's seed (so each process draws the same values). */
const nodeSeed = (seed: number, i: number, salt: number) =>
  (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(i + 1, 0xc2b2ae35) ^ salt) >>> 0;

/** The faults of node `i`: its reply delay, and whether it is dead. */
function faultsOf(c: NetConfig, i: number): { delayMs: number; dead: boolean } {
  const r = prng(nodeSeed(c.seed, i, 0x5eed));
  const delayMs = Math.round(c.delayMin + r() * (c.delayMax - c.delayMin));
  return { delayMs, dead: r() * 100 < c.deadPct };
}

interface NetConfig {
  nodes: number;
  procs: number;
  seed: number;
  deadPct: number;
  lossPct: number;
  delayMin: number;
  delayMax: number;
}

// ------------------------------------------------------------------------------------------
// Node host: a slice of the network's nodes in this process.

/** Reads JSON lines from stdin, one at a time. */
async function* lines(): AsyncGenerator<Record<string, unknown>> {
  let buf = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim()) yield JSON.parse(line);
    }
  }
}

async function hostNodes(): Promise<void> {
  const c = JSON.parse(Deno.env.get("BENCH_NET") ?? "{}") as NetConfig;
  const from = Number(Deno.env.get("BENCH_FROM"));
  const to = Number(Deno.env.get("BENCH_TO"));
  const nodes: DHT[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  for (let i = from; i < to; i++) {
    const node = new DHT({
      bootstrap: false,
      verify: verifySignature,
      timeout: CLIENT_TIMEOUT_MS,
      maxValues: itemsPerNode(c.nodes),
    });
    node.on("warning", () => {});
    node.on("error", () => {});
    await new Promise<void>((r) => node.listen(0, "127.0.0.1", () => r()));
    nodes.push(node);
  }
  await out({
    event: "nodes",
    nodes: nodes.map((n, k) => ({ i: from + k, port: n.address().port, id: hex(n.nodeId) })),
  });
  for await (const cmd of lines()) {
    if (cmd.op === "mesh") {
      const all = cmd.nodes as { i: number; port: number; id: string }[];
      for (const [k, node] of nodes.entries()) {
        for (const b of all) {
          if (b.i !== from + k) {
            node.addNode({ host: "127.0.0.1", port: b.port, id: Buffer.from(b.id, "hex") });
          }
        }
      }
      // faults start once every table is full
      for (const [k, node] of nodes.entries()) {
        const f = faultsOf(c, from + k);
        const loss = prng(nodeSeed(c.seed, from + k, 0x1055));
        injectFaults(node, f.delayMs, f.dead ? 100 : c.lossPct, timers, loss);
      }
      await out({ event: "meshed" });
    } else if (cmd.op === "close") break;
  }
  for (const t of timers) clearTimeout(t);
  await Promise.all(nodes.map((n) => new Promise<void>((r) => n.destroy(() => r()))));
}

// ------------------------------------------------------------------------------------------
// Worker: our client in its own process, same JSON-lines protocol as the pkarr peer.

/**
 * Delays the answers of every bittorrent-dht instance in this process by `ms`, like the
 * network's nodes: clients are DHT nodes too (they end up in routing tables and store puts), and
 * without this they would be the only delay-free holders in the network.
 */
export function delayIncomingQueries(dhtClass: unknown, ms: number): void {
  if (ms <= 0) return;
  type Node = { destroyed: boolean };
  const proto = (dhtClass as { prototype: Record<string, unknown> }).prototype;
  const orig = proto._onquery as (this: Node, ...a: unknown[]) => void;
  proto._onquery = function (this: Node, ...args: unknown[]) {
    setTimeout(() => {
      if (!this.destroyed) orig.apply(this, args);
    }, ms);
  };
}

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
  return b;
}

async function worker(): Promise<void> {
  const bootstrap = (Deno.env.get("BENCH_BOOTSTRAP") ?? "").split(",").filter((s) => s);
  if (bootstrap.length === 0) throw new Error("BENCH_BOOTSTRAP is empty");
  delayIncomingQueries(DHT, Number(Deno.env.get("BENCH_LATENCY_MS") ?? 0));
  const opts = {
    bootstrap,
    relays: [],
    useDht: true,
    useRelays: false,
    timeoutMs: CLIENT_TIMEOUT_MS,
  };
  const publisher = new Transport(opts);
  const resolver = new Transport(opts);
  // Open both DHT clients (bootstrap) before the clock starts.
  const warm = generateKeypair().publicKey;
  await Promise.all([publisher.resolve(warm), resolver.resolve(warm)]);
  const sender = generateKeypair();
  const recipient = generateKeypair();

  const ops: Record<string, (c: Record<string, unknown>) => Promise<Record<string, unknown>>> = {
    async publish(c) {
      const packet = signPacket(
        unhex(c.seed as string),
        [txtRecord("_bench", 300, c.text as string)],
        Date.now() * 1e3,
      );
      const t0 = performance.now();
      await publisher.publish(packet);
      return {
        ms: performance.now() - t0,
        publicKey: encodeZ32(packet.publicKey),
        timestamp: packet.timestamp,
      };
    },
    async resolve(c) {
      const pk = parsePublicKey(c.key as string);
      const ts = c.timestamp as number;
      const accept = c.full ? undefined : (p: { timestamp: number }) => p.timestamp === ts;
      const t0 = performance.now();
      const got = await resolver.resolve(pk, accept);
      return { ms: performance.now() - t0, found: got !== null, timestamp: got?.packet.timestamp };
    },
    /** A v2 share of `size` payload bytes: publish (fresh Transport), then fetch (another). */
    async share(c) {
      const size = c.size as number;
      const createdAt = Math.floor(Date.now() / 1000);
      const envelope = utf8(
        `{"created_at":${createdAt},"material":{"bytes":"${b64encode(randomBytes(size))}",` +
          `"type":"generic_secret"},"protocol_version":2,"purpose":"bench"}`,
      );
      const blob = await ageEncrypt(envelope, ageRecipientOfEd(recipient.publicKey));
      const built = await buildV2Share({
        sender,
        recipient: encodeZ32(recipient.publicKey),
        blob,
        shareRef: shareRef(blob, createdAt),
        createdAt,
        ttlSeconds: 86400n,
        pinRequired: false,
      });
      const r: Record<string, unknown> = { packets: built.packets.length, blob: blob.length };
      let t0 = performance.now();
      const tp = new Transport(opts);
      let stored: number[] = [];
      try {
        stored = (await publishPackets(tp, built.packets)).stored;
        r.pubMs = performance.now() - t0;
        r.minStored = Math.min(...stored);
      } catch (e) {
        r.pubError = String((e as Error)?.message ?? e).slice(0, 300);
        return r;
      } finally {
        await tp.close();
      }
      t0 = performance.now();
      const tf = new Transport(opts);
      try {
        const got = await fetchV2Share(tf, encodeZ32(sender.publicKey), built.locator);
        if (got.blob.length !== blob.length || hex(got.blob) !== hex(blob)) {
          throw new Error("fetched blob differs");
        }
        r.getMs = performance.now() - t0;
      } catch (e) {
        r.getError = String((e as Error)?.message ?? e).slice(0, 300);
        // how many nodes the publish said stored each missing part ("… missing (parts 3, 7)")
        const missing = /parts ([\d, ]+)\)/.exec(r.getError as string)?.[1].split(/,\s*/);
        if (missing) {
          r.getError += `; the publish stored those on ${
            missing.map((i) => stored[+i]).join(", ")
          } node(s)`;
        }
      } finally {
        await tf.close();
      }
      return r;
    },
    async close() {
      await publisher.close();
      await resolver.close();
      return {};
    },
  };

  await out({ event: "ready" });
  // commands run concurrently (the driver's `--parallel` share lanes); replies are written one
  // whole line at a time, in the order they finish
  let writing = Promise.resolve();
  const reply = (o: unknown) => (writing = writing.then(() => out(o).then(() => {})));
  const running = new Set<Promise<void>>();
  for await (const cmd of lines()) {
    if (cmd.op === "close") {
      await Promise.all(running);
      await ops.close(cmd);
      await reply({ id: cmd.id, ok: true });
      await writing;
      return;
    }
    const p = (async () => {
      try {
        await reply({ id: cmd.id, ok: true, ...await ops[cmd.op as string](cmd) });
      } catch (e) {
        await reply({ id: cmd.id, ok: false, error: String((e as Error)?.message ?? e) });
      }
    })();
    running.add(p);
    p.finally(() => running.delete(p));
  }
  await Promise.all(running);
  await publisher.close();
  await resolver.close();
}

// ------------------------------------------------------------------------------------------
// Driver

const script = new URL(import.meta.url).pathname;
const cwd = new URL("..", import.meta.url).pathname;

function self(mode: string, env: Record<string, string>): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-P=cipherpost", "--no-prompt", "--quiet", script, mode],
    cwd,
    env,
    stdin: "piped",
    stdout: "piped",
    // the worker's is read by LinePeer (and shown when it dies); the node hosts' goes through
    stderr: mode === "--worker" ? "piped" : "inherit",
  });
}

/** `peer.call`, bounded: no answer within `ms` is an error. */
async function call(
  peer: LinePeer,
  op: string,
  args: Record<string, unknown>,
  ms = 300_000,
): Promise<PeerReply> {
  let t: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      peer.call(op, args),
      new Promise<never>((_, rej) => {
        t = setTimeout(() => rej(new Error(`${op}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(t);
  }
}

/** A node-host child: its stdin writer and a reader of its JSON lines. */
interface Host {
  child: Deno.ChildProcess;
  send(o: unknown): Promise<void>;
  next(ms: number): Promise<Record<string, unknown>>;
}

function spawnHost(c: NetConfig, from: number, to: number): Host {
  const child = self("--host-nodes", {
    BENCH_NET: JSON.stringify(c),
    BENCH_FROM: String(from),
    BENCH_TO: String(to),
  }).spawn();
  const w = child.stdin.getWriter();
  const r = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  return {
    child,
    send: (o) => w.write(new TextEncoder().encode(JSON.stringify(o) + "\n")),
    async next(ms) {
      const deadline = Date.now() + ms;
      for (;;) {
        const nl = buf.indexOf("\n");
        if (nl >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          return JSON.parse(line);
        }
        let t: ReturnType<typeof setTimeout> | undefined;
        const x = await Promise.race([
          r.read(),
          new Promise<never>((_, rej) => {
            t = setTimeout(() => rej(new Error("node host: no answer")), deadline - Date.now());
          }),
        ]).finally(() => clearTimeout(t));
        if (x.done) throw new Error("node host exited");
        buf += x.value;
      }
    },
  };
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(p * s.length) - 1)];
}

function arg(name: string, dflt: string): string {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
}

async function main(): Promise<void> {
  const [dMin, dMax] = arg("delay", "20-400").split("-").map(Number);
  const c: NetConfig = {
    nodes: Number(arg("nodes", "1000")),
    procs: Number(arg("procs", "4")),
    seed: Number(arg("seed", "1")),
    deadPct: Number(arg("dead", "15")),
    lossPct: Number(arg("loss", "5")),
    delayMin: dMin,
    delayMax: dMax,
  };
  const keys = Number(arg("keys", "20"));
  const tries = Number(arg("tries", "50"));
  const parallel = Number(arg("parallel", "2"));
  const sizes = arg("sizes", "100,8192,40960,65536").split(",").map(Number);
  const bad = (x: number, lo: number, hi: number) => !Number.isInteger(x) || x < lo || x > hi;
  if (
    bad(c.nodes, 20, 5000) || bad(c.procs, 1, 16) || bad(c.deadPct, 0, 90) ||
    bad(c.lossPct, 0, 90) || bad(c.delayMin, 0, 5000) || bad(c.delayMax, c.delayMin, 5000) ||
    bad(keys, 0, 1000) || bad(tries, 0, 1000) || bad(parallel, 1, 16) ||
    !sizes.every((s) => !bad(s, 1, 65536))
  ) throw new Error("bad arguments (see the header of scripts/bench_dht.ts)");
  console.error(`bench_dht: seed ${c.seed}, ${JSON.stringify(c)}`);

  const hosts: Host[] = [];
  const peers: LinePeer[] = [];
  const stop = async () => {
    for (const p of peers.splice(0)) await p.close().catch(() => {});
    for (const h of hosts.splice(0)) {
      await h.send({ op: "close" }).catch(() => {});
      const done = await Promise.race([
        h.child.status.then(() => true),
        new Promise<false>((r) => setTimeout(() => r(false), 10_000)),
      ]);
      if (!done) {
        try {
          h.child.kill("SIGKILL");
        } catch { /* gone */ }
        await h.child.status;
      }
    }
  };
  /** Prints the tables of what was measured (at the end, or on SIGINT: what was measured so far). */
  const report = async (interrupted: boolean) => {
    const f = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "–");
    const ratio = (a: number, b: number) => (a > 0 && b > 0 ? (a / b).toFixed(2) : "–");
    console.log(`network: ${netLine}`);
    console.log(
      `whole run: ${((performance.now() - t0) / 1000).toFixed(0)} s; shares in ${parallel} ` +
        `parallel lane(s); load average at the end: ${
          new TextDecoder().decode(
            (await new Deno.Command("cat", { args: ["/proc/loadavg"], stdout: "piped" }).output())
              .stdout,
          ).split(" ").slice(0, 3).join(" ")
        }`,
    );
    console.log("");
    console.log(
      "| op | ours p50 / p95 ms | pkarr@1.3.0 p50 / p95 ms | ours ÷ pkarr p50 / p95 | " +
        "samples ours / pkarr | misses ours / pkarr |",
    );
    console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (const op of ["publish", "resolve first", "resolve full"]) {
      const o = single.get(`ours|${op}`) ?? [];
      const k = single.get(`pkarr|${op}`) ?? [];
      console.log(
        `| ${op} | ${f(pct(o, 0.5))} / ${f(pct(o, 0.95))} | ${f(pct(k, 0.5))} / ${
          f(pct(k, 0.95))
        } | ${ratio(pct(o, 0.5), pct(k, 0.5))} / ${
          ratio(pct(o, 0.95), pct(k, 0.95))
        } | ${o.length} / ${k.length} | ${misses.get(`ours|${op}`) ?? 0} / ${
          misses.get(`pkarr|${op}`) ?? 0
        } |`,
      );
    }
    console.log("");
    console.log(
      "| our share | blob B | packets | publish p50 / p95 ms | fetch p50 / p95 ms | " +
        "published / fetched | fewest nodes that stored a part |",
    );
    console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const [size, r] of shares) {
      console.log(
        `| ${size} B | ${r.blob} | ${r.packets} | ${f(pct(r.pub, 0.5))} / ${
          f(pct(r.pub, 0.95))
        } | ${f(pct(r.get, 0.5))} / ${f(pct(r.get, 0.95))} | ${r.pub.length} / ${r.get.length} | ${
          r.minStored ?? "–"
        } |`,
      );
    }
    console.log("");
    console.log(
      `shares: ${getTried} published, ${getFailed} failed fetches of a share whose publish ` +
        `succeeded; ${pubFailed} publishes failed (not fetched)`,
    );
    for (const x of failures.slice(0, 20)) console.log(`- ${x}`);
    if (interrupted) {
      console.log("(interrupted: the figures above are what was measured until then)");
    }
  };
  const onSignal = () => void stop().then(() => report(true)).finally(() => Deno.exit(130));
  Deno.addSignalListener("SIGINT", onSignal);

  type Who = "ours" | "pkarr";
  let netLine = "";
  const single = new Map<string, number[]>();
  const misses = new Map<string, number>();
  const shares = new Map<
    number,
    { pub: number[]; get: number[]; packets: number; blob: number; minStored?: number }
  >();
  const failures: string[] = [];
  let pubFailed = 0;
  let getFailed = 0;
  let getTried = 0;
  const t0 = performance.now();
  try {
    // the network
    const per = Math.ceil(c.nodes / c.procs);
    for (let p = 0; p < c.procs; p++) {
      hosts.push(spawnHost(c, p * per, Math.min(c.nodes, (p + 1) * per)));
    }
    const all: { i: number; port: number; id: string }[] = [];
    for (const h of hosts) all.push(...((await h.next(120_000)).nodes as typeof all));
    for (const h of hosts) await h.send({ op: "mesh", nodes: all });
    for (const h of hosts) await h.next(300_000);
    const dead = all.filter((n) => faultsOf(c, n.i).dead).length;
    const delays = all.map((n) => faultsOf(c, n.i).delayMs);
    const median = pct(delays, 0.5);
    console.error(
      `network: ${all.length} nodes in ${c.procs} processes, ${dead} dead, delays p50 ${median} ms, ` +
        `up in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    );
    const r = prng(c.seed);
    const boot = [...all].sort(() => r() - 0.5).slice(0, 20).map((n) => `127.0.0.1:${n.port}`);

    const oursPeer = new LinePeer(
      self("--worker", { BENCH_BOOTSTRAP: boot.join(","), BENCH_LATENCY_MS: String(median) }),
    );
    peers.push(oursPeer);
    await oursPeer.ready();
    const pkarrPeer = await startPkarrPeer({
      bootstrap: boot,
      timeoutMs: CLIENT_TIMEOUT_MS,
      latencyMs: median,
    });
    peers.push(pkarrPeer);
    const clients: Record<Who, LinePeer> = { ours: oursPeer, pkarr: pkarrPeer };
    netLine = `${all.length} nodes in ${c.procs} processes on 127.0.0.1, ${dead} dead ` +
      `(${(100 * dead / all.length).toFixed(1)} %), reply delays ${c.delayMin}–${c.delayMax} ms ` +
      `uniform (p50 ${median} ms), ${c.lossPct} % of queries lost, seed ${c.seed}; clients: ` +
      `KRPC timeout ${CLIENT_TIMEOUT_MS} ms, 20 bootstrap nodes`;

    // single packets: each client publishes, both resolve every packet
    const add = (who: Who, op: string, r: PeerReply, ts?: number) => {
      const key = `${who}|${op}`;
      if (op !== "publish" && (r.found !== true || r.timestamp !== ts)) {
        misses.set(key, (misses.get(key) ?? 0) + 1);
        return;
      }
      single.set(key, [...(single.get(key) ?? []), r.ms as number]);
    };
    const order = (i: number): Who[] => (i % 2 === 0 ? ["ours", "pkarr"] : ["pkarr", "ours"]);
    for (let i = 0; i < keys; i++) {
      const mine: { key: string; timestamp: number }[] = [];
      for (const who of order(i)) {
        const seed = hex(generateKeypair().seed);
        const text = `bench ${who} ${i}`;
        let r: PeerReply;
        try {
          r = who === "ours"
            ? await call(clients.ours, "publish", { seed, text })
            : await call(clients.pkarr, "publish", {
              seed,
              records: [{ name: "_bench", type: "TXT", ttl: 300, data: text }],
            });
        } catch (e) {
          misses.set(`${who}|publish`, (misses.get(`${who}|publish`) ?? 0) + 1);
          console.error(`${who} publish failed: ${(e as Error).message.slice(0, 200)}`);
          continue;
        }
        add(who, "publish", r);
        mine.push({ key: r.publicKey as string, timestamp: r.timestamp as number });
      }
      for (const p of mine) {
        for (const full of [false, true]) {
          for (const who of order(i)) {
            const op = full ? "resolve full" : "resolve first";
            try {
              add(who, op, await call(clients[who], "resolve", { ...p, full }), p.timestamp);
            } catch (e) {
              misses.set(`${who}|${op}`, (misses.get(`${who}|${op}`) ?? 0) + 1);
              console.error(`${who} ${op} failed: ${(e as Error).message.slice(0, 200)}`);
            }
          }
        }
      }
      if ((i + 1) % 10 === 0) console.error(`  single packets: ${i + 1}/${keys} keys`);
    }

    // our shares, round-robin over the sizes (so a slow minute hits every size alike), in
    // `--parallel` lanes (each its own Transports, as separate CLI runs would be)
    let rounds = 0;
    const lane = async (first: number) => {
      for (let t = first; t < tries; t += parallel) {
        for (const size of sizes) {
          const r = await call(clients.ours, "share", { size });
          const row = shares.get(size) ?? { pub: [], get: [], packets: 0, blob: 0 };
          shares.set(size, row);
          row.packets = r.packets as number;
          row.blob = r.blob as number;
          if (r.pubError !== undefined) {
            pubFailed++;
            failures.push(`publish ${size} B: ${r.pubError}`);
            continue;
          }
          row.pub.push(r.pubMs as number);
          row.minStored = Math.min(row.minStored ?? Infinity, r.minStored as number);
          getTried++;
          if (r.getError !== undefined) {
            getFailed++;
            failures.push(`FETCH AFTER A GOOD PUBLISH ${size} B: ${r.getError}`);
            console.error(`fetch failed after a good publish (${size} B): ${r.getError}`);
          } else row.get.push(r.getMs as number);
        }
        if (++rounds % 5 === 0) {
          console.error(
            `  shares: ${rounds}/${tries} rounds, ${getFailed} failed fetches of ${getTried}, ` +
              `${((performance.now() - t0) / 1000).toFixed(0)} s`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, tries) }, (_, j) => lane(j)));
  } finally {
    await stop();
    Deno.removeSignalListener("SIGINT", onSignal);
  }

  await report(false);
}

if (Deno.args.includes("--worker")) await worker();
else if (Deno.args.includes("--host-nodes")) await hostNodes();
else await main();
