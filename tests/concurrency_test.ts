// Concurrent writers: a write that reports success is in the packet. Ten writers of one home (each
// with its own State and Transport, as separate processes have) add one record each to the
// identity packet at the same time, 20 times over (or for at most CIPHERPOST_CONCURRENCY_BUDGET_S
// seconds), while a busy-loop process per core keeps the CPU saturated; after each round every
// record is there. The testnet runs in its own process.
import assert from "node:assert/strict";
import { txtRecord, txtText } from "../lib/pkarr/dns.ts";
import { generateKeypair } from "../lib/crypto/keys.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";
import { Transport } from "../lib/pkarr/transport.ts";
import { updateOwnPacket } from "../lib/flows/share/own_packet.ts";
import { State } from "../lib/state/state.ts";
import { cliCommand, tmpDir } from "./_helpers.ts";

const WRITERS = 10;
const ROUNDS = Number(Deno.env.get("CIPHERPOST_CONCURRENCY_ROUNDS") ?? "20");
const BUDGET_MS = 1000 * Number(Deno.env.get("CIPHERPOST_CONCURRENCY_BUDGET_S") ?? "150");

/** One busy-loop process per core; returns a stop function. */
function saturateCpu(): () => Promise<void> {
  const n = Math.max(1, navigator.hardwareConcurrency);
  const kids = Array.from({ length: n }, () =>
    new Deno.Command(Deno.execPath(), {
      args: ["eval", "for (;;) {}"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn());
  return async () => {
    for (const k of kids) {
      try {
        k.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await Promise.all(kids.map((k) => k.status));
  };
}

/** `cipherpost testnet` in its own process (as users run it); resolves its bootstrap and relay. */
async function testnetProcess(): Promise<
  { bootstrap: string[]; relay: string; close: () => Promise<void> }
> {
  const child = cliCommand(["testnet", "--nodes", "12"]).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/CIPHERPOST_RELAYS=\S+\n/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`testnet exited: ${text}`);
    text += value;
  }
  reader.releaseLock();
  const bootstrap = /CIPHERPOST_BOOTSTRAP=(\S+)/.exec(text)![1].split(",");
  const relay = /CIPHERPOST_RELAYS=(\S+)/.exec(text)![1];
  return {
    bootstrap,
    relay,
    close: async () => {
      child.kill("SIGTERM");
      await child.stdout.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
      await child.status;
    },
  };
}

Deno.test(`concurrency: ${WRITERS} concurrent writers on one packet × ${ROUNDS}, CPU saturated: nothing lost`, async () => {
  const net = await testnetProcess();
  const transport = () =>
    new Transport({
      bootstrap: net.bootstrap,
      relays: [net.relay],
      useDht: true,
      useRelays: true,
      timeoutMs: 2000,
    });
  const stop = saturateCpu();
  const started = performance.now();
  let rounds = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      if (round >= 3 && performance.now() - started > BUDGET_MS) break;
      rounds++;
      const kp = generateKeypair();
      const home = await tmpDir("cp-concurrency-");
      const z = encodeZ32(kp.publicKey);
      // every writer has its own transport (its own DHT client and sockets), like processes
      const results = await Promise.all(Array.from({ length: WRITERS }, async (_, w) => {
        const t = transport();
        try {
          await updateOwnPacket(t, new State(home), kp, (records) => [
            ...records.filter((r) => !r.name.startsWith(`_w${w}.`)),
            txtRecord(`_w${w}`, 300, `writer ${w} round ${round}`),
          ]);
          return "ok";
        } catch (e) {
          return `failed: ${(e as Error).message}`;
        } finally {
          await t.close();
        }
      }));
      const t = transport();
      try {
        const got = await t.resolve(kp.publicKey);
        const names = (got?.packet.records ?? []).map((r) => `${r.name}=${txtText(r)}`);
        for (let w = 0; w < WRITERS; w++) {
          if (results[w] !== "ok") continue; // a write that says it failed may be absent
          assert.ok(
            names.includes(`_w${w}.${z}=writer ${w} round ${round}`),
            `round ${round}: writer ${w} reported success but its record is gone: ${names}`,
          );
        }
        // most writers get through (a failure must be a reported one, never a silent loss)
        assert.ok(
          results.filter((r) => r === "ok").length >= WRITERS / 2,
          `round ${round}: ${results}`,
        );
      } finally {
        await t.close();
      }
    }
  } finally {
    await stop();
    await net.close();
  }
  console.log(`concurrency: ${rounds} rounds of ${WRITERS} writers`);
});
