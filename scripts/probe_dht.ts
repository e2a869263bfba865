/**
 * Prints DHT get/put latencies on a local 100-node testnet, without and with injected latency.
 *
 *   deno run -P=cipherpost --no-prompt scripts/probe_dht.ts [nodes] [rounds]
 *
 * Measures only; asserts nothing.
 *
 * @module
 */

import { ed25519 } from "@noble/curves/ed25519.js";
import { DhtClient } from "../lib/pkarr/dht/client.ts";
import { type MutableItem, signItem } from "../lib/pkarr/item.ts";
import { startTestnet } from "../lib/testing/testnet.ts";

const NODES = Number(Deno.args[0] ?? 100);
const ROUNDS = Number(Deno.args[1] ?? 7);

function makeItem(sk: Uint8Array, seq: number): MutableItem {
  return signItem(sk, seq, new TextEncoder().encode(`probe ${seq}`));
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await fn();
  return [performance.now() - t0, r];
}

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const med = s[Math.floor(s.length / 2)];
  return `median ${med.toFixed(1)} ms (min ${s[0].toFixed(1)}, max ${s.at(-1)!.toFixed(1)})`;
}

for (const latencyMs of [0, 50]) {
  const timeoutMs = Math.max(500, latencyMs * 4);
  const [tNet, net] = await timed(() => startTestnet({ nodes: NODES, latencyMs, timeoutMs }));
  const [tOpen, writer] = await timed(() =>
    DhtClient.open({ bootstrap: net.bootstrap, timeoutMs })
  );
  const reader = await DhtClient.open({ bootstrap: net.bootstrap, timeoutMs });
  const m: Record<string, number[]> = { coldPut: [], warmPut: [], getFull: [], getFirst: [] };
  const counts: Record<string, number[]> = { stored: [], queried: [], responded: [] };
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const sk = ed25519.utils.randomSecretKey();
      const [a, put] = await timed(() => writer.put(makeItem(sk, 1)));
      const [b] = await timed(() => writer.put(makeItem(sk, 2)));
      const [c, full] = await timed(() => reader.get(ed25519.getPublicKey(sk)));
      const [d] = await timed(() => reader.get(ed25519.getPublicKey(sk), { onItem: () => true }));
      m.coldPut.push(a);
      m.warmPut.push(b);
      m.getFull.push(c);
      m.getFirst.push(d);
      counts.stored.push(put.stored);
      counts.queried.push(full.queried);
      counts.responded.push(full.responded);
    }
  } finally {
    await reader.close();
    await writer.close();
    await net.close();
  }
  console.log(
    `\n${NODES} nodes, latency ${latencyMs} ms, KRPC timeout ${timeoutMs} ms, ${ROUNDS} rounds`,
  );
  console.log(`  testnet start      ${tNet.toFixed(1)} ms`);
  console.log(`  client open        ${tOpen.toFixed(1)} ms`);
  console.log(`  put (cold: lookup + put)  ${stats(m.coldPut)}`);
  console.log(`  put (warm: cached tokens) ${stats(m.warmPut)}`);
  console.log(`  get (full traversal)      ${stats(m.getFull)}`);
  console.log(`  get (first valid item)    ${stats(m.getFirst)}`);
  console.log(
    `  stored per put ${counts.stored.join(",")}; get queried ${
      counts.queried.join(",")
    }; responded ${counts.responded.join(",")}`,
  );
}
