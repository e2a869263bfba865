/**
 * v2 share cost by size: on a local testnet (200 nodes, 50 ms then 0 ms latency), time
 * `publishPackets` and `fetchV2Share` for real age blobs of 100 B, 1 KiB, 8 KiB and 64 KiB
 * payloads (base64 inside JSON, as the Envelope carries them). Median of RUNS runs, each with a
 * fresh locator. Prints a table (with the CPU time the testnet process spent, from /proc, to show
 * when the single-process testnet is the bottleneck); asserts nothing.
 *
 * The testnet runs as a separate process (`cipherpost testnet`), like a network would, and every
 * publish and fetch opens its own Transport, as each CLI invocation does.
 *
 * Usage: deno task bench:sizes   (RUNS=5 for more runs; LATENCIES=50 for one latency)
 *
 * @module
 */

import { ageEncrypt } from "../lib/crypto/age.ts";
import { b64encode, utf8 } from "../lib/util/encoding.ts";
import { ageRecipientOfEd, generateKeypair } from "../lib/crypto/keys.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";
import { shareRef } from "../lib/protocol/record.ts";
import { Transport } from "../lib/pkarr/transport.ts";
import { buildV2Share } from "../lib/protocol/v2.ts";
import { fetchV2Share, publishPackets } from "../lib/flows/share/v2_transfer.ts";

const SIZES = [100, 1024, 8192, 65536];
const RUNS = Number(Deno.env.get("RUNS") ?? 3);
const NODES = 200;

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * CPU time (user + system) process `pid` has used so far, in ms; NaN where /proc is missing.
 * Read through `cat`, since Deno lets only `--allow-all` read /proc directly.
 */
async function cpuMs(pid: number): Promise<number> {
  try {
    const out = await new Deno.Command("cat", { args: [`/proc/${pid}/stat`] }).output();
    const stat = new TextDecoder().decode(out.stdout);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in 100 Hz ticks
  } catch {
    return NaN;
  }
}

/** Start `cipherpost testnet` as a subprocess; returns its env lines and a stopper. */
async function spawnTestnet(latencyMs: number) {
  const main = new URL("../main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-P=cipherpost",
      "--no-prompt",
      main,
      "testnet",
      "--nodes",
      String(NODES),
      "--latency",
      String(latencyMs),
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("CIPHERPOST_RELAYS=")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("testnet exited early");
    text += value;
  }
  const env = Object.fromEntries(
    text.trim().split("\n").map((l) => l.split("=") as [string, string]),
  );
  return {
    /** CPU time the testnet process has used so far, in ms. */
    cpuMs: () => cpuMs(child.pid),
    bootstrap: env.CIPHERPOST_BOOTSTRAP.split(","),
    relayUrl: env.CIPHERPOST_RELAYS.split("\n")[0],
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      reader.releaseLock();
    },
  };
}

async function bench(latencyMs: number): Promise<void> {
  const net = await spawnTestnet(latencyMs);
  const open = () =>
    new Transport({
      bootstrap: net.bootstrap,
      relays: [net.relayUrl],
      useDht: true,
      useRelays: true,
      timeoutMs: 2000,
    });
  const sender = generateKeypair();
  const recipient = generateKeypair();
  const rows: {
    size: number;
    blob: number;
    packets: number;
    pub: number;
    get: number;
    pubCpu: number;
    getCpu: number;
    pubOwn: number;
    getOwn: number;
  }[] = [];
  try {
    for (const size of SIZES) {
      const pubs: number[] = [], gets: number[] = [];
      const pubCpus: number[] = [], getCpus: number[] = [];
      const pubOwn: number[] = [], getOwn: number[] = [];
      let blobLen = 0, packets = 0;
      for (let run = 0; run < RUNS; run++) {
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
        blobLen = blob.length;
        packets = built.packets.length;
        const c0 = await net.cpuMs(), m0 = await cpuMs(Deno.pid);
        const t0 = performance.now();
        const ts = open();
        await publishPackets(ts, built.packets);
        await ts.close();
        const t1 = performance.now();
        const c1 = await net.cpuMs(), m1 = await cpuMs(Deno.pid);
        const t1b = performance.now(); // the CPU probes above are not part of the fetch
        const tr = open();
        await fetchV2Share(tr, encodeZ32(sender.publicKey), built.locator);
        await tr.close();
        const t2 = performance.now();
        const c2 = await net.cpuMs(), m2 = await cpuMs(Deno.pid);
        pubs.push(t1 - t0);
        gets.push(t2 - t1b);
        pubCpus.push(c1 - c0);
        getCpus.push(c2 - c1);
        pubOwn.push(m1 - m0);
        getOwn.push(m2 - m1);
      }
      rows.push({
        size,
        blob: blobLen,
        packets,
        pub: median(pubs),
        get: median(gets),
        pubCpu: median(pubCpus),
        getCpu: median(getCpus),
        pubOwn: median(pubOwn),
        getOwn: median(getOwn),
      });
    }
  } finally {
    await net.stop();
  }
  console.log(`\n${NODES} nodes, ${latencyMs} ms latency, median of ${RUNS}`);
  console.log(
    "payload   blob B  packets  publish ms  (×)    fetch ms  (×)   CPU ms: testnet pub/fetch" +
      "  client pub/fetch",
  );
  const base = rows[0];
  for (const r of rows) {
    console.log(
      `${String(r.size).padStart(7)}  ${String(r.blob).padStart(7)}  ${
        String(r.packets).padStart(7)
      }` +
        `  ${r.pub.toFixed(0).padStart(10)}  ${(r.pub / base.pub).toFixed(1).padStart(5)}` +
        `  ${r.get.toFixed(0).padStart(8)}  ${(r.get / base.get).toFixed(1).padStart(5)}` +
        `   ${`${r.pubCpu.toFixed(0)} / ${r.getCpu.toFixed(0)}`.padStart(19)}` +
        `  ${`${r.pubOwn.toFixed(0)} / ${r.getOwn.toFixed(0)}`.padStart(16)}`,
    );
  }
}

for (const l of (Deno.env.get("LATENCIES") ?? "50,0").split(",")) await bench(Number(l));
