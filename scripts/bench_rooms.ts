/**
 * Rooms benchmark (issue 20), in one process on loopback (a DHT testnet and the stand-in
 * homeserver, every member on it), through the library flows the CLI runs:
 *
 * - send-to-display latency p50/p95 with 3 and with 20 members, every member following the room
 *   live (the event stream); one author posts, every other member's follower times arrival;
 * - messages per second one author posts (`sendToRoom`: catch-up, sign, encrypt, PUT);
 * - backfill of N messages (default 10000) by a fresh reader (list, fetch, verify, order).
 *
 *   deno run -P=cipherpost --no-prompt scripts/bench_rooms.ts [--backfill N] [--messages N]
 *
 * Members are admitted in one roster update (the invite share itself is not timed).
 *
 * @module
 */

import { startTestnet } from "../lib/testing/testnet.ts";
import { startHomeserver } from "../lib/testing/homeserver.ts";
import { Transport } from "../lib/pkarr/transport.ts";
import { bindHomeserverHttp } from "../lib/homeserver/endpoint_policy.ts";
import { connect } from "../lib/homeserver/connect.ts";
import { withPubkyRecord } from "../lib/homeserver/discovery.ts";
import { generateKeypair, type Keypair } from "../lib/crypto/keys.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";
import { State } from "../lib/state/state.ts";
import { nextRoster } from "../lib/rooms/roster.ts";
import { messagePath } from "../lib/rooms/names.ts";
import { sealMessage } from "../lib/rooms/seal.ts";
import { current, loadRoom, type RoomState, saveRoom } from "../lib/rooms/store.ts";
import { order } from "../lib/rooms/order.ts";
import { createRoom } from "../lib/flows/rooms/manage.ts";
import { fetchEpoch, publishEpoch } from "../lib/flows/rooms/epochs.ts";
import { RoomNet } from "../lib/flows/rooms/net.ts";
import { sendToRoom } from "../lib/flows/rooms/send.ts";
import { RoomReader } from "../lib/flows/rooms/read.ts";
import { followRoom } from "../lib/flows/rooms/live.ts";

const args = [...Deno.args];
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const BACKFILL = opt("--backfill", 10_000);
const MESSAGES = opt("--messages", 30);

interface Member {
  me: Keypair;
  z32: string;
  home: string;
  ctx: { transport: Transport; state: State; me: Keypair };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const net = await startTestnet({ nodes: 8 });
const t = new Transport({
  bootstrap: net.bootstrap,
  relays: [net.relayUrl],
  useDht: true,
  useRelays: true,
  timeoutMs: 1000,
});
bindHomeserverHttp(t, { allowLoopback: true });
const hs = await startHomeserver({ signupMode: "open", transport: t });
const base = await Deno.makeTempDir({ prefix: "cp-bench-rooms-" });

async function member(i: number): Promise<Member> {
  const me = generateKeypair();
  const home = `${base}/m${i}`;
  await Deno.mkdir(home, { recursive: true });
  await connect(t, { home, user: me.publicKey, seed: me.seed, homeserver: hs.key, signup: true });
  // as `homeserver signup` does: the _pubky record, so the others find this homeserver
  await t.update(
    me.seed,
    me.publicKey,
    (records) => withPubkyRecord(encodeZ32(me.publicKey), records, hs.key),
  );
  return {
    me,
    z32: encodeZ32(me.publicKey),
    home,
    ctx: { transport: t, state: new State(home), me },
  };
}

/** A room of `n` members: created by the first, the others admitted in one update. */
async function room(n: number): Promise<{ members: Member[]; room: string }> {
  const members = await Promise.all(Array.from({ length: n }, (_, i) => member(i)));
  const owner = members[0];
  const st = await createRoom(owner.ctx, `bench-${n}`);
  const net0 = new RoomNet(owner.ctx);
  const e = await publishEpoch(
    owner.ctx,
    net0,
    nextRoster(
      current(st).roster,
      "admit",
      members.slice(1).map((m) => m.z32),
      owner.z32,
      Date.now(),
    ),
  );
  st.epochs.push(e);
  await saveRoom(owner.home, owner.me, st);
  for (const m of members.slice(1)) {
    const held = await fetchEpoch(m.ctx, new RoomNet(m.ctx), st.room, e.epoch, owner.z32);
    const mine: RoomState = { ...st, epochs: [held!], seq: {}, hlc: null };
    await saveRoom(m.home, m.me, mine);
  }
  return { members, room: st.room };
}

async function latency(n: number): Promise<{ p50: number; p95: number; samples: number }> {
  const { members, room: id } = await room(n);
  const stop = new AbortController();
  const samples: number[] = [];
  const follows: Promise<void>[] = [];
  let modes = 0;
  for (const m of members.slice(1)) {
    const st = (await loadRoom(m.home, m.me, id))!;
    const reader = new RoomReader(st, new RoomNet(m.ctx));
    await reader.scan();
    follows.push(followRoom(m.ctx, reader, {
      message(msg) {
        const sent = Number(msg.body.split(" ")[1]);
        samples.push(performance.now() - sent);
      },
      problem() {},
      note() {},
    }, { signal: stop.signal, mode: (mode) => mode === "events" && modes++ }));
  }
  await new Promise((r) => setTimeout(r, 1500)); // streams connected
  for (let i = 0; i < MESSAGES; i++) {
    await sendToRoom(members[0].ctx, id, `t ${performance.now()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const want = MESSAGES * (n - 1);
  const until = Date.now() + 30_000;
  while (samples.length < want && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  stop.abort();
  await Promise.all(follows);
  if (modes === 0) console.log("  (no follower used the event stream)");
  return { p50: pct(samples, 50), p95: pct(samples, 95), samples: samples.length };
}

try {
  for (const n of [3, 20]) {
    const r = await latency(n);
    console.log(
      `send-to-display, ${n} members: p50 ${r.p50.toFixed(0)} ms, p95 ${r.p95.toFixed(0)} ms ` +
        `(${r.samples} deliveries of ${MESSAGES * (n - 1)})`,
    );
  }

  const { members, room: id } = await room(2);
  const N = 50;
  let t0 = performance.now();
  for (let i = 0; i < N; i++) await sendToRoom(members[0].ctx, id, `rate ${i}`);
  let secs = (performance.now() - t0) / 1000;
  console.log(
    `one author, room send: ${(N / secs).toFixed(1)} messages/s (${N} in ${secs.toFixed(1)} s)`,
  );

  // backfill: N messages from the second member, written straight (as sends would), then read
  const author = members[1];
  const st = (await loadRoom(author.home, author.me, id))!;
  const cur = current(st);
  const client = await new RoomNet(author.ctx).own();
  t0 = performance.now();
  let next = 0;
  const now = Date.now();
  const put = async () => {
    while (next < BACKFILL) {
      const seq = ++next;
      const file = await sealMessage(
        {
          room: id,
          epoch: cur.epoch,
          author: author.z32,
          seq,
          hlc: now + seq,
          hlcC: 0,
          kind: "chat",
          body: `backfill message number ${seq}`,
        },
        author.me.seed,
        cur.key,
      );
      await client.put(messagePath(id, author.z32, cur.epoch, seq), file);
    }
  };
  await Promise.all(Array.from({ length: 8 }, put));
  secs = (performance.now() - t0) / 1000;
  console.log(
    `wrote ${BACKFILL} messages in ${secs.toFixed(1)} s (${
      (BACKFILL / secs).toFixed(0)
    }/s, 8 in flight)`,
  );
  const reader = new RoomReader(
    (await loadRoom(members[0].home, members[0].me, id))!,
    new RoomNet(members[0].ctx),
  );
  t0 = performance.now();
  const r = await reader.scan();
  const placed = order(reader.messages, Date.now());
  secs = (performance.now() - t0) / 1000;
  console.log(
    `backfill: ${placed.length} messages verified and ordered in ${secs.toFixed(1)} s ` +
      `(${(placed.length / secs).toFixed(0)}/s), ${r.problems.length} problems`,
  );
} finally {
  await hs.close();
  await t.close();
  await net.close();
  await Deno.remove(base, { recursive: true }).catch(() => {});
}
