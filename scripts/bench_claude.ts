/**
 * Claude Code session hand-off cost: with the real Claude Code (tests/claude-peer) against the
 * loopback Messages API stand-in and a local testnet (12 nodes, no latency), build sessions of
 * 1, 2, 4 and 12 turns (plus tool-results sidecar files of 40 KB, 120 KB and 2 MB; bundles over a v2 share go through
 * a homeserver stand-in A signed up on), then time
 * `cipherpost claude send --share B` and `cipherpost claude pickup URI --accept A --no-launch`
 * (each a fresh CLI process, as a user runs them). Prints transcript size, bundle size, packets
 * and times; asserts nothing. Sessions whose bundle exceeds a v2 share are reported as refused.
 *
 * Usage: deno run -P=cipherpost --allow-run scripts/bench_claude.ts   (needs npm ci --prefix tests/claude-peer)
 *
 * @module
 */

import { startClaudeApi } from "../tests/_claude_api.ts";
import {
  cli,
  makeUser,
  makeUserWithSeed,
  testTransport,
  tmpDir,
  withTestnet,
} from "../tests/_helpers.ts";
import { startHomeserver } from "../lib/testing/homeserver.ts";
import { connect } from "../lib/homeserver/connect.ts";
import { withPubkyRecord } from "../lib/homeserver/discovery.ts";
import { keypairFromSeed } from "../lib/crypto/keys.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";

const BIN = new URL(
  "../tests/claude-peer/node_modules/@anthropic-ai/claude-code-linux-x64/claude",
  import.meta.url,
).pathname;

const api = startClaudeApi();
const base = await tmpDir("cp-bench-claude-");
const rows: string[] = [];
try {
  {
    const seedA = crypto.getRandomValues(new Uint8Array(32));
    const A = await makeUserWithSeed(base, "a", seedA);
    const B = await makeUser(base, "b");
    const pk = keypairFromSeed(seedA).publicKey;
    const env = (who: string) => ({
      HOME: `${base}/${who}/home`,
      CLAUDE_CONFIG_DIR: `${base}/${who}/cc`,
      ANTHROPIC_API_KEY: "test",
      ANTHROPIC_BASE_URL: api.url,
      DISABLE_TELEMETRY: "1",
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
      DISABLE_AUTOUPDATER: "1",
      PATH: "/usr/bin:/bin",
    });
    await Deno.mkdir(`${base}/a/home`, { recursive: true });
    await Deno.mkdir(`${base}/b/home`, { recursive: true });
    const cases: { turns: number; sidecar: number }[] = [
      { turns: 1, sidecar: 0 },
      { turns: 2, sidecar: 0 },
      { turns: 4, sidecar: 0 },
      { turns: 12, sidecar: 0 },
      { turns: 1, sidecar: 40_000 },
      { turns: 1, sidecar: 120_000 },
      { turns: 1, sidecar: 2_000_000 },
    ];
    // a fresh testnet (and homeserver stand-in, which A signs up on) per case: one 12-node
    // testnet degrades after ~5 multi-packet shares
    for (const c of cases) {
      await withTestnet(async (net) => {
        const tr = testTransport(net);
        const hs = await startHomeserver({ signupMode: "open", transport: tr });
        await connect(tr, {
          home: A.home,
          user: pk,
          seed: seedA,
          homeserver: hs.key,
          signup: true,
        });
        await tr.update(seedA, pk, (records) => withPubkyRecord(encodeZ32(pk), records, hs.key));
        try {
          const proj = await Deno.realPath(await Deno.makeTempDir({ dir: base, prefix: "proj-" }));
          const dest = await Deno.realPath(await Deno.makeTempDir({ dir: base, prefix: "dest-" }));
          let id = "";
          for (let i = 0; i < c.turns; i++) {
            const args = i === 0 ? ["-p", `turn ${i}`] : ["--resume", id, "-p", `turn ${i}`];
            const r = await new Deno.Command(BIN, {
              args,
              cwd: proj,
              env: env("a"),
              clearEnv: true,
              stdin: "null",
              stdout: "null",
              stderr: "null",
            }).output();
            if (r.code !== 0) throw new Error("claude failed");
            if (i === 0) {
              const folder = `${base}/a/cc/projects/${proj.replace(/[^A-Za-z0-9]/g, "-")}`;
              for await (const e of Deno.readDir(folder)) {
                if (e.name.endsWith(".jsonl")) id = e.name.slice(0, -6);
              }
            }
          }
          const folder = `${base}/a/cc/projects/${proj.replace(/[^A-Za-z0-9]/g, "-")}`;
          if (c.sidecar) {
            await Deno.mkdir(`${folder}/${id}/tool-results`, { recursive: true });
            const words = Array.from(
              { length: c.sidecar / 8 },
              (_, i) => `l${(i * 7919) % 100000} `,
            );
            await Deno.writeTextFile(
              `${folder}/${id}/tool-results/out.txt`,
              words.join("").slice(0, c.sidecar),
            );
          }
          const tBytes = (await Deno.stat(`${folder}/${id}.jsonl`)).size;
          let t0 = performance.now();
          const s = await cli(["claude", "send", id, "--share", B.z32, "--json"], {
            home: A.home,
            env: { ...A.env, ...env("a") },
            net,
            cwd: proj,
          });
          const sendMs = Math.round(performance.now() - t0);
          const label = `${c.turns} turn(s)${c.sidecar ? ` + ${c.sidecar / 1000} kB sidecar` : ""}`;
          if (s.code !== 0) {
            rows.push(
              `| ${label} | ${tBytes} | refused: ${s.stderr.trim().split("\n").pop()} | | | | |`,
            );
            return;
          }
          const j = JSON.parse(s.stdout);
          t0 = performance.now();
          const p = await cli(["claude", "pickup", j.uri, "--accept", A.z32, "--no-launch"], {
            home: B.home,
            env: { ...B.env, ...env("b") },
            net,
            cwd: dest,
          });
          const pickMs = Math.round(performance.now() - t0);
          if (p.code !== 0) {
            const why = p.stderr.trim().split("\n").filter((l) => !l.startsWith("hint")).pop();
            rows.push(
              `| ${label} | ${tBytes} | ${j.bundle_bytes} | ${j.via} | ${j.packets} | ${sendMs} | failed: ${why} |`,
            );
            return;
          }
          rows.push(
            `| ${label} | ${tBytes} | ${j.bundle_bytes} | ${j.via} | ${j.packets} | ${sendMs} | ${pickMs} |`,
          );
        } finally {
          await hs.close();
          await tr.close();
        }
      });
    }
  }
} finally {
  await api.close();
}
console.log(
  "| session | transcript bytes | bundle bytes (gzip) | via | DHT packets | send ms | pickup ms |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- |");
for (const r of rows) console.log(r);
