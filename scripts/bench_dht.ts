/**
 * DHT publish/resolve latency: our client against npm pkarr@1.3.0 on the same local testnet.
 *
 *   deno run -P=cipherpost --allow-run --no-prompt scripts/bench_dht.ts [--quick] [--keys=N]
 *
 * For each testnet (100 and 500 nodes; `--quick`: 100 only) at 0 and 50 ms injected per-node
 * latency, N fresh keys (default 30) are published by each client, and every packet published
 * by either client is resolved by both, so resolvers are compared on the same packets.
 *
 * - The testnet runs in this process; each client runs in its own long-lived subprocess that
 *   takes JSON-line commands on stdin and reports its own timings, so process startup and DHT
 *   bootstrap are excluded and neither client competes with the 100–500 nodes for the event
 *   loop. Both get the same 20 random bootstrap nodes and the testnet's KRPC timeout.
 * - ours: this script re-run with `--worker` under `-P=cipherpost`. One publisher and one
 *   resolver {@link Transport} (DHT only), each opened once and reused across keys: a CLI run
 *   opens a fresh one per command, which is what the `fresh client` rows measure.
 *   `resolve first` = until the first valid packet (`accept` returns true), `resolve full` =
 *   whole traversal, newest packet.
 * - pkarr: `tests/peer/pkarr_peer.mjs` (Node, pkarr@1.3.0, `lib/dht.js` put/get): `resolve
 *   first` = `get(key)` (first valid answer; pkarr keeps traversing in the background), `resolve
 *   full` = `get(key, {fullLookup: true})`.
 * - `fresh client` rows come last (their closed clients stay in routing tables as dead nodes):
 *   ours = new Transport + resolve-first + close (includes its bootstrap); pkarr = new DHT + get,
 *   as `Pkarr.resolve` does (no wait for bootstrap).
 *
 * Prints a markdown table; asserts nothing.
 *
 * @module
 */

import { startTestnet } from "../lib/testing/testnet.ts";
import { Transport } from "../lib/pkarr/transport.ts";
import { signPacket } from "../lib/pkarr/signed_packet.ts";
import { txtRecord } from "../lib/pkarr/dns.ts";
import { encodeZ32, parsePublicKey } from "../lib/pkarr/public_key.ts";
import { generateKeypair } from "../lib/crypto/keys.ts";
import { LinePeer, type PeerReply, startPkarrPeer } from "../tests/peer/peer_client.ts";
// @ts-types="../lib/pkarr/dht/bittorrent-dht.d.ts"
import DHT from "bittorrent-dht";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));

// ------------------------------------------------------------------------------------------
// Worker: our client in its own process, same JSON-lines protocol as the pkarr peer.

/**
 * Delays the answers of every bittorrent-dht instance in this process by `ms`, like the
 * testnet's nodes: clients are DHT nodes too (they end up in routing tables and store puts), and
 * without this they would be the only latency-free holders in the network.
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

async function worker(): Promise<void> {
  const bootstrap = (Deno.env.get("BENCH_BOOTSTRAP") ?? "").split(",").filter((
    s,
  ) => s);
  if (bootstrap.length === 0) throw new Error("BENCH_BOOTSTRAP is empty");
  const timeoutMs = Number(Deno.env.get("BENCH_TIMEOUT_MS") ?? 500);
  delayIncomingQueries(DHT, Number(Deno.env.get("BENCH_LATENCY_MS") ?? 0));
  const opts = {
    bootstrap,
    relays: [],
    useDht: true,
    useRelays: false,
    timeoutMs,
  };
  const publisher = new Transport(opts);
  const resolver = new Transport(opts);
  // Open both DHT clients (bootstrap) before the clock starts.
  const warm = generateKeypair().publicKey;
  await Promise.all([publisher.resolve(warm), resolver.resolve(warm)]);
  const out = (o: unknown) => Deno.stdout.write(new TextEncoder().encode(JSON.stringify(o) + "\n"));

  const ops: Record<
    string,
    (c: Record<string, unknown>) => Promise<Record<string, unknown>>
  > = {
    async publish(c) {
      const seed = unhex(c.seed as string);
      const packet = signPacket(
        seed,
        [txtRecord("_bench", 300, c.text as string)],
        Date.now() * 1e3,
      );
      const t0 = performance.now();
      await publisher.publish(packet);
      const ms = performance.now() - t0;
      return {
        ms,
        publicKey: encodeZ32(packet.publicKey),
        timestamp: packet.timestamp,
      };
    },
    async resolve(c) {
      const pk = parsePublicKey(c.key as string);
      const ts = c.timestamp as number;
      const accept = c.full ? undefined : (p: { timestamp: number }) => p.timestamp === ts;
      const t0 = performance.now();
      let t = resolver;
      if (c.fresh) t = new Transport(opts);
      let got;
      try {
        got = await t.resolve(pk, accept);
      } finally {
        if (c.fresh) await t.close();
      }
      const ms = performance.now() - t0; // fresh: includes close (destroy is synchronous-ish)
      return { ms, found: got !== null, timestamp: got?.packet.timestamp };
    },
    async close() {
      await publisher.close();
      await resolver.close();
      return {};
    },
  };

  await out({ event: "ready" });
  let buf = "";
  for await (
    const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())
  ) {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const cmd = JSON.parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      try {
        const r = await ops[cmd.op](cmd);
        await out({ id: cmd.id, ok: true, ...r });
      } catch (e) {
        await out({
          id: cmd.id,
          ok: false,
          error: String((e as Error)?.message ?? e),
        });
      }
      if (cmd.op === "close") return;
    }
  }
  await publisher.close();
  await resolver.close();
}

function startOurs(
  bootstrap: string[],
  timeoutMs: number,
  latencyMs: number,
): Promise<LinePeer> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-P=cipherpost",
      "--no-prompt",
      "--quiet",
      new URL(import.meta.url).pathname,
      "--worker",
    ],
    cwd: new URL("..", import.meta.url).pathname,
    env: {
      BENCH_BOOTSTRAP: bootstrap.join(","),
      BENCH_TIMEOUT_MS: String(timeoutMs),
      BENCH_LATENCY_MS: String(latencyMs),
    },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const peer = new LinePeer(cmd);
  return peer.ready().then(() => peer, async (e) => {
    await peer.close();
    throw e;
  });
}

// ------------------------------------------------------------------------------------------
// Driver

type Op =
  | "publish"
  | "resolve first"
  | "resolve full"
  | "resolve first, fresh client";
type Who = "ours" | "pkarr";

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(p * s.length) - 1)];
}

async function runConfig(
  nodes: number,
  latencyMs: number,
  keys: number,
  freshKeys: number,
): Promise<string[]> {
  const timeoutMs = Math.max(500, latencyMs * 4); // the testnet's own default
  const t0 = performance.now();
  const net = await startTestnet({ nodes, latencyMs, timeoutMs });
  const boot = [...net.bootstrap].sort(() => Math.random() - 0.5).slice(0, 20);
  let ours: LinePeer | null = null;
  let pkarr: LinePeer | null = null;
  const samples = new Map<string, number[]>();
  const misses = new Map<string, number>();
  const add = (who: Who, op: Op, r: PeerReply, ts?: number) => {
    const key = `${who}|${op}`;
    if (op !== "publish" && (r.found !== true || r.timestamp !== ts)) {
      misses.set(key, (misses.get(key) ?? 0) + 1);
      return;
    }
    samples.set(key, [...(samples.get(key) ?? []), r.ms as number]);
  };
  try {
    [ours, pkarr] = await Promise.all([
      startOurs(boot, timeoutMs, latencyMs),
      startPkarrPeer({ bootstrap: boot, timeoutMs, latencyMs }),
    ]);
    const clients: Record<Who, LinePeer> = { ours, pkarr };
    const published: Array<{ key: string; timestamp: number }> = [];
    const order = (
      i: number,
    ): Who[] => (i % 2 === 0 ? ["ours", "pkarr"] : ["pkarr", "ours"]);
    for (let i = 0; i < keys; i++) {
      const mine: Array<{ key: string; timestamp: number }> = [];
      for (const who of order(i)) {
        const seed = hex(generateKeypair().seed);
        const text = `bench ${who} ${i}`;
        const r = who === "ours"
          ? await clients.ours.call("publish", { seed, text })
          : await clients.pkarr.call("publish", {
            seed,
            records: [{ name: "_bench", type: "TXT", ttl: 300, data: text }],
          });
        add(who, "publish", r);
        mine.push({
          key: r.publicKey as string,
          timestamp: r.timestamp as number,
        });
      }
      published.push(...mine);
      for (const p of mine) {
        for (const full of [false, true]) {
          for (const who of order(i)) {
            const r = await clients[who].call("resolve", { ...p, full });
            add(who, full ? "resolve full" : "resolve first", r, p.timestamp);
          }
        }
      }
    }
    for (let i = 0; i < Math.min(freshKeys, published.length); i++) {
      const p = published[i];
      for (const who of order(i)) {
        const r = await clients[who].call("resolve", { ...p, fresh: true });
        add(who, "resolve first, fresh client", r, p.timestamp);
      }
    }
  } finally {
    await ours?.close();
    await pkarr?.close();
    await net.close();
  }
  const rows: string[] = [];
  const f = (x: number | undefined) => (x === undefined ? "–" : x.toFixed(1));
  for (
    const op of [
      "publish",
      "resolve first",
      "resolve full",
      "resolve first, fresh client",
    ]
  ) {
    const o = samples.get(`ours|${op}`) ?? [];
    const k = samples.get(`pkarr|${op}`) ?? [];
    const [o50, o95, k50, k95] = [
      pct(o, 0.5),
      pct(o, 0.95),
      pct(k, 0.5),
      pct(k, 0.95),
    ];
    const ratio = (
      a?: number,
      b?: number,
    ) => (a && b ? (a / b).toFixed(2) : "–");
    const miss = `${misses.get(`ours|${op}`) ?? 0}/${misses.get(`pkarr|${op}`) ?? 0}`;
    rows.push(
      `| ${nodes} | ${latencyMs} ms | ${op} | ${f(o50)} / ${f(o95)} | ${f(k50)} / ${f(k95)} | ` +
        `${ratio(o50, k50)} / ${ratio(o95, k95)} | ${o.length}/${k.length} | ${miss} |`,
    );
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(0);
  console.error(`  ${nodes} nodes, ${latencyMs} ms: done in ${secs} s`);
  return rows;
}

async function main(): Promise<void> {
  const quick = Deno.args.includes("--quick");
  const keysArg = Deno.args.find((a) => a.startsWith("--keys="));
  const keys = keysArg ? Number(keysArg.slice(7)) : 30;
  const freshKeys = Math.min(10, keys);
  const sizes = quick ? [100] : [100, 500];
  console.error(
    `bench_dht: ${keys} keys per client per testnet, ${freshKeys} for fresh-client rows`,
  );
  const rows: string[] = [];
  for (const nodes of sizes) {
    for (const latencyMs of [0, 50]) {
      rows.push(...await runConfig(nodes, latencyMs, keys, freshKeys));
    }
  }
  console.log(
    "| nodes | latency | op | ours p50 / p95 (ms) | pkarr@1.3.0 p50 / p95 (ms) | " +
      "ratio ours/pkarr p50 / p95 | samples ours/pkarr | misses ours/pkarr |",
  );
  console.log("|---|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(r);
}

if (Deno.args.includes("--worker")) await worker();
else await main();
