// What the rooms suites share: people with their own homes (fixed seeds), the CLI run as one of
// them against a testnet, and direct access to a person's homeserver folder and room state.
import assert from "node:assert/strict";
import { cli, cliCommand, makeUserWithSeed, PASS, testTransport, type User } from "./_helpers.ts";
import type { Testnet } from "../lib/testing/testnet.ts";
import { connect } from "../lib/homeserver/connect.ts";
import type { HomeserverClient } from "../lib/homeserver/client.ts";
import { type Keypair, keypairFromSeed } from "../lib/crypto/keys.ts";
import { loadRoom, type RoomState } from "../lib/rooms/store.ts";

/** A person: a home with an identity of a fixed seed. */
export interface Person extends User {
  seed: Uint8Array;
  kp: Keypair;
}

/** `name` with the seed of 32 bytes `n`. */
export async function person(base: string, name: string, n: number): Promise<Person> {
  const seed = new Uint8Array(32).fill(n);
  const u = await makeUserWithSeed(base, name, seed);
  return { ...u, seed, kp: keypairFromSeed(seed) };
}

/** The environment of a CLI run against `net`. */
export function env(net: Testnet): Record<string, string> {
  return {
    CIPHERPOST_PASSPHRASE: PASS,
    CIPHERPOST_BOOTSTRAP: net.bootstrap.join(","),
    CIPHERPOST_RELAYS: net.relayUrl,
    CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK: "1",
  };
}

/** The CLI as `p`. */
export async function as(p: Person, net: Testnet, args: string[], stdin?: string) {
  return await cli(args, { home: p.home, env: env(net), stdin });
}

/** The CLI as `p`, which must succeed; its stdout. */
export async function ok(p: Person, net: Testnet, args: string[], stdin?: string): Promise<string> {
  const r = await as(p, net, args, stdin);
  assert.deepStrictEqual(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** `room tail --json` as `p`: the messages and stderr. */
export async function tail(p: Person, net: Testnet, room: string, extra: string[] = []) {
  const r = await as(p, net, ["room", "tail", room, "--json", ...extra]);
  assert.deepStrictEqual(r.code, 0, r.stderr);
  const msgs = r.stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
  return { msgs, stderr: r.stderr, stdout: r.stdout };
}

/** A client writing to `p`'s own folder, as a hostile homeserver (or p's own machine) could. */
export async function writerFor(p: Person, net: Testnet, base: string): Promise<HomeserverClient> {
  const home = await Deno.makeTempDir({ dir: base, prefix: "writer-" });
  const t = testTransport(net);
  try {
    return (await connect(t, { home, user: p.kp.publicKey, seed: p.seed })).client;
  } finally {
    await t.close();
  }
}

/** `p`'s stored state of `room`. */
export async function stateOf(p: Person, room: string): Promise<RoomState> {
  const st = await loadRoom(p.home, p.kp, room);
  assert(st, "room state");
  return st;
}

/**
 * A follower: `room tail --follow --json` as a child process (own environment), the messages
 * collected as they come, its stderr and its peak memory.
 */
export function follow(p: Person, net: Testnet, room: string, extra: string[] = []) {
  const child = cliCommand(["room", "tail", room, "--follow", "--json", ...extra], {
    home: p.home,
    env: env(net),
  }).spawn();
  const lines: { author: string; body: string; time: string }[] = [];
  let err = "";
  let buf = "";
  const pump = async (s: ReadableStream<Uint8Array>, f: (t: string) => void) => {
    const dec = new TextDecoder();
    for await (const c of s) f(dec.decode(c, { stream: true }));
  };
  const done = Promise.all([
    pump(child.stdout, (t) => {
      buf += t;
      const parts = buf.split("\n");
      buf = parts.pop()!;
      for (const l of parts) if (l !== "") lines.push(JSON.parse(l));
    }),
    pump(child.stderr, (t) => (err += t)),
  ]);
  return {
    lines,
    stderr: () => err,
    /** the follower's peak resident memory (VmHWM), bytes; null where /proc has none */
    async peakRss(): Promise<number | null> {
      // read by `cat`: Deno lets a process read another's /proc files only with --allow-all
      const r = await new Deno.Command("cat", { args: [`/proc/${child.pid}/status`] }).output()
        .catch(() => null);
      const m = r?.success ? /VmHWM:\s+(\d+) kB/.exec(new TextDecoder().decode(r.stdout)) : null;
      return m ? Number(m[1]) * 1024 : null;
    },
    async waitFor(pred: () => boolean, what: string, ms = 60_000) {
      const until = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}; stderr: ${err}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await done;
    },
  };
}
