// Two machines for Claude sync tests (docs/PROTOCOL.md §8): the same identity in separate
// cipherpost homes and separate $HOME / Claude config folders, a local testnet and the stand-in
// homeserver, and the real CLI run as a subprocess against them.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cli, type CliResult, makeUserWithSeed, PASS, testTransport, tmpDir } from "./_helpers.ts";
import { startTestnet, type Testnet } from "../lib/testing/testnet.ts";
import { type HomeserverStandIn, startHomeserver } from "../lib/testing/homeserver.ts";
import { connect } from "../lib/homeserver/connect.ts";
import { keypairFromSeed } from "../lib/crypto/keys.ts";
import { projectDirName } from "../lib/claude/project_dir.ts";
import type { HomeserverClient } from "../lib/homeserver/client.ts";
import type { Transport } from "../lib/pkarr/transport.ts";

/** The one identity every machine holds. */
export const SEED: Uint8Array = new Uint8Array(32).fill(7);
/** A session ID. */
export const ID = "4f1c2a9e-1b2c-4d3e-8f90-0123456789ab";

/** One machine: its cipherpost home, `$HOME`, Claude config folder and one project. */
export interface Machine {
  name: string;
  /** cipherpost home */
  home: string;
  /** $HOME */
  homeDir: string;
  config: string;
  project: string;
  /** the project's folder in `config/projects/` */
  folder: string;
}

/** A machine named `name` below `base` holding {@link SEED}. */
export async function machine(base: string, name: string): Promise<Machine> {
  const u = await makeUserWithSeed(base, `${name}-cp`, SEED);
  const homeDir = `${base}/${name}-home-${name.toLowerCase()}`;
  const project = `${homeDir}/code/proj`;
  await Deno.mkdir(project, { recursive: true });
  const config = `${homeDir}/.claude`;
  const folder = `${config}/projects/${projectDirName(project)}`;
  return { name, home: u.home, homeDir, config, project, folder };
}

/** `cipherpost claude sync ARGS` on machine `m`. */
export function run(m: Machine, net: Testnet, args: string[]): Promise<CliResult> {
  return cli(["claude", "sync", ...args], {
    home: m.home,
    net,
    env: { HOME: m.homeDir, CIPHERPOST_PASSPHRASE: PASS, CIPHERPOST_DEVICE_LABEL: m.name },
  });
}

/** `cipherpost claude sync ARGS --json` on `m`: must exit 0; its parsed output. */
export async function ok(m: Machine, net: Testnet, args: string[]) {
  const r = await run(m, net, [...args, "--json"]);
  assert.deepStrictEqual(r.code, 0, `${m.name} ${args.join(" ")}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** One JSON line. */
export function line(o: Record<string, unknown>): string {
  return JSON.stringify(o) + "\n";
}

/** Turn `n` of a transcript made on `m`. */
export function turn(m: Machine, n: number, text: string, id = ID): string {
  return line({
    type: n % 2 ? "assistant" : "user",
    uuid: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
    parentUuid: n ? `00000000-0000-4000-8000-${String(n - 1).padStart(12, "0")}` : null,
    sessionId: id,
    cwd: m.project,
    timestamp: `2026-12-05T10:00:${String(n).padStart(2, "0")}.000Z`,
    message: { role: n % 2 ? "assistant" : "user", content: text },
  });
}

/** A `history.jsonl` entry made on `m`. */
export function historyEntry(m: Machine, ts: number, text: string): string {
  return line({
    display: text,
    pastedContents: {},
    timestamp: ts,
    project: m.project,
    sessionId: ID,
  });
}

/** Every file below `dir`: path and SHA-256 (a digest of the tree, to show nothing changed). */
export async function tree(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  let names: string[] = [];
  try {
    for await (const e of Deno.readDir(`${dir}/${rel}`)) names.push(e.name);
  } catch {
    return out;
  }
  names = names.sort();
  for (const n of names) {
    const p = rel ? `${rel}/${n}` : n;
    const st = await Deno.lstat(`${dir}/${p}`);
    if (st.isDirectory) out.push(...await tree(dir, p));
    else {
      const h = createHash("sha256").update(await Deno.readFile(`${dir}/${p}`)).digest("hex");
      out.push(`${p} ${h}`);
    }
  }
  return out;
}

/** The bytes of a homeserver object. */
export async function bytesOf(c: HomeserverClient, path: string): Promise<Uint8Array> {
  const r = await c.get(path);
  return new Uint8Array(await new Response(r!.body).arrayBuffer());
}

/** A testnet, a homeserver with {@link SEED} signed up, machines A and B, and a client. */
export interface SyncWorld {
  net: Testnet;
  tr: Transport;
  hs: HomeserverStandIn;
  base: string;
  A: Machine;
  B: Machine;
  /** the identity's own homeserver client (to look at or tamper with objects) */
  client: HomeserverClient;
  /** Stop everything and remove the temp folder. */
  close(): Promise<void>;
}

/** Start a {@link SyncWorld}. */
export async function syncWorld(prefix: string, nodes = 12): Promise<SyncWorld> {
  const net = await startTestnet({ nodes });
  const tr = testTransport(net);
  const hs = await startHomeserver({ signupMode: "open", transport: tr });
  const base = await tmpDir(prefix);
  const close = async () => {
    await hs.close();
    await tr.close();
    await net.close();
    await Deno.remove(base, { recursive: true }).catch(() => {});
  };
  try {
    const A = await machine(base, "A");
    const B = await machine(base, "B");
    const signup = await cli(["homeserver", "signup", hs.key], {
      home: A.home,
      net,
      env: { CIPHERPOST_PASSPHRASE: PASS },
    });
    assert.deepStrictEqual(signup.code, 0, signup.stderr);
    const client = (await connect(tr, { home: A.home, user: keypairFromSeed(SEED).publicKey }))
      .client;
    return { net, tr, hs, base, A, B, client, close };
  } catch (e) {
    await close();
    throw e;
  }
}
