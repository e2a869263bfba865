// Room file drops (docs/PROTOCOL.md §9.8): the sensitive-path table and the drop body (pure),
// then three identities through the real CLI (and `cipherpost mcp` over stdio with the SDK
// client) on a local testnet and the stand-in homeserver: a drop reaches another member byte
// for byte, a tampered part is refused with nothing written, a sensitive path is refused (CLI
// and MCP) and allowed only by the CLI's flag, and a member removed before a drop cannot fetch it.
import assert from "node:assert/strict";
import {
  cli,
  cliArgv,
  makeUserWithSeed,
  PASS,
  testTransport,
  tmpDir,
  type User,
} from "./_helpers.ts";
import { replayHint, testSeed } from "./_seed.ts";
import { startTestnet, type Testnet } from "../lib/testing/testnet.ts";
import { type HomeserverStandIn, startHomeserver } from "../lib/testing/homeserver.ts";
import { writePrngFile } from "../lib/testing/prng_file.ts";
import { connect } from "../lib/homeserver/connect.ts";
import type { HomeserverClient } from "../lib/homeserver/client.ts";
import { type Keypair, keypairFromSeed } from "../lib/crypto/keys.ts";
import { ageDecrypt } from "../lib/crypto/age.ts";
import { readUpTo } from "../lib/homeserver/http.ts";
import { sensitivePathReason } from "../lib/util/sensitive_paths.ts";
import { dropBody, dropOf, dropPartSize, MAX_DROP_PARTS, messageText } from "../lib/rooms/drops.ts";
import { plainDropName } from "../lib/flows/rooms/drop.ts";
import { ciphertextHashOf, type LargePointer, partPath } from "../lib/protocol/large_manifest.ts";
import { MAX_BODY, messagePath } from "../lib/rooms/names.ts";
import type { Message } from "../lib/rooms/records.ts";
import { loadRoom } from "../lib/rooms/store.ts";
import { toHex, utf8 } from "../lib/util/encoding.ts";

// ---------------------------------------------------------------------------------------------
// Pure parts

Deno.test("drop paths: the sensitive-path table refuses keys and secrets, allows the rest", () => {
  const refused = [
    "/home/u/.ssh/id_ed25519.pub",
    "/home/u/.ssh/config",
    "/home/u/.aws/credentials",
    "/home/u/.gnupg/pubring.kbx",
    "/home/u/.kube/config",
    "/home/u/.docker/config.json",
    "/home/u/.config/gcloud/application_default_credentials.json",
    "/home/u/.config/gh/hosts.yml",
    "/srv/repo/.git/config",
    "/srv/app/.env",
    "/srv/app/.env.production",
    "/srv/app/.envrc",
    "/tmp/id_rsa",
    "/tmp/server.pem",
    "/tmp/TLS.KEY",
    "/tmp/cert.p12",
    "/tmp/vault.kdbx",
    "/home/u/.netrc",
    "/home/u/.npmrc",
    "/home/u/.pypirc",
    "/home/u/.git-credentials",
    "/home/u/.claude/.credentials.json",
    "/home/u/.cipherpost/secret_key",
    "/elsewhere/cp-home/rooms/x",
  ];
  for (const p of refused) {
    assert.notDeepStrictEqual(
      sensitivePathReason(p, ["/home/u/.cipherpost", "/elsewhere/cp-home"]),
      null,
      p,
    );
  }
  const allowed = [
    "/home/u/notes.txt",
    "/home/u/project/README.md",
    "/home/u/.config/app/settings.json",
    "/home/u/keys.txt",
    "/home/u/identity.md",
    "/home/u/.cipherpostrc-not-the-home",
    "/srv/app/env.example",
    "/srv/app/.github/workflows/ci.yml",
  ];
  for (const p of allowed) {
    assert.deepStrictEqual(sensitivePathReason(p, ["/home/u/.cipherpost"]), null, p);
  }
});

Deno.test("drop body: a 100-part pointer with a long name fits a message; shown without its key", () => {
  const hashes = Array.from(
    { length: MAX_DROP_PARTS },
    (_, i) => toHex(new Uint8Array(32).fill(i)),
  );
  const pointer: LargePointer = {
    blobId: "0123456789abcdef0123456789abcdef",
    ciphertextHash: ciphertextHashOf(hashes),
    compression: "none",
    contentIdentity: "AGE-SECRET-KEY-1" + "Q".repeat(58),
    fileCount: 1,
    homeserver: "8pinxxgqs41n4aididenw5apqp1urfmzdztr8jt4abrkdn435ewo",
    kind: "file",
    name: "é".repeat(127) + "x", // 255 bytes of UTF-8
    partHashes: hashes,
    partSize: 63 << 20,
    parts: MAX_DROP_PARTS,
    size: MAX_DROP_PARTS * (63 << 20),
    topEntries: [],
    version: 1,
  };
  const body = dropBody(pointer);
  assert(utf8(body).length <= MAX_BODY, `${utf8(body).length}`);
  const m: Message = {
    room: "0".repeat(32),
    epoch: 1,
    author: pointer.homeserver,
    seq: 1,
    hlc: 0,
    hlcC: 0,
    kind: "file_drop",
    body,
  };
  assert.deepStrictEqual(dropOf(m)?.pointer, pointer);
  const shown = messageText(m);
  assert.match(shown, /^\[file\] é+x \(6\.2 GiB, id 0123456789abcdef0123456789abcdef\)$/);
  assert(!shown.includes("AGE-SECRET-KEY"));
  // a part more, or a body that is not a pointer
  assert.throws(() => dropBody({ ...pointer, parts: 101 }));
  assert.deepStrictEqual(dropOf({ ...m, body: "cipherpost://x" }), null);
  assert.deepStrictEqual(messageText({ ...m, body: "{}" }), "[file drop that cannot be read]");
  // part sizes: 16 MiB while it fits, then raised to keep ≤ 100 parts
  assert.deepStrictEqual(dropPartSize(10), 16 << 20);
  assert.deepStrictEqual(dropPartSize(1600 << 20), 16 << 20);
  assert.deepStrictEqual(dropPartSize((1600 << 20) + 1), 17 << 20);
  assert.throws(() => dropPartSize(MAX_DROP_PARTS * (63 << 20) + 1), /too large/);
  // default names
  assert.deepStrictEqual(plainDropName("report.pdf"), "report.pdf");
  for (const bad of ["../x", "a/b", ".bashrc", "a\\b", "x\u202egp.exe", "a\nb", ""]) {
    assert.deepStrictEqual(plainDropName(bad), null, bad);
  }
});

// ---------------------------------------------------------------------------------------------
// Through the network

interface Person extends User {
  seed: Uint8Array;
  kp: Keypair;
}

async function person(base: string, name: string, n: number): Promise<Person> {
  const seed = new Uint8Array(32).fill(n);
  const u = await makeUserWithSeed(base, name, seed);
  return { ...u, seed, kp: keypairFromSeed(seed) };
}

function env(net: Testnet, extra: Record<string, string> = {}): Record<string, string> {
  return {
    CIPHERPOST_PASSPHRASE: PASS,
    CIPHERPOST_BOOTSTRAP: net.bootstrap.join(","),
    CIPHERPOST_RELAYS: net.relayUrl,
    CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK: "1",
    ...extra,
  };
}

async function as(p: Person, net: Testnet, args: string[], cwd?: string) {
  // 1 MiB parts, so that a few MiB make several parts
  return await cli(args, { home: p.home, env: env(net, { CIPHERPOST_PART_SIZE: "1048576" }), cwd });
}

async function ok(p: Person, net: Testnet, args: string[], cwd?: string): Promise<string> {
  const r = await as(p, net, args, cwd);
  assert.deepStrictEqual(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

async function sameBytes(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([Deno.readFile(a), Deno.readFile(b)]);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

async function writerFor(p: Person, net: Testnet, base: string): Promise<HomeserverClient> {
  const home = await Deno.makeTempDir({ dir: base, prefix: "writer-" });
  const t = testTransport(net);
  try {
    return (await connect(t, { home, user: p.kp.publicKey, seed: p.seed })).client;
  } finally {
    await t.close();
  }
}

async function files(p: Person, net: Testnet, room: string) {
  const out = await ok(p, net, ["room", "files", room, "--json"]);
  return out.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l)) as {
    id: string;
    name: string;
    size: number;
    author: string;
  }[];
}

Deno.test({
  name: "room drops: reach a member intact, tampering refused, sensitive paths, removal, MCP",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const seed = testSeed("CIPHERPOST_SAMPLE_SEED");
    const net = await startTestnet({ nodes: 10 });
    const tr = testTransport(net);
    let hs: HomeserverStandIn | null = null;
    const base = await tmpDir("cp-drops-");
    try {
      hs = await startHomeserver({ signupMode: "open", transport: tr });
      const alice = await person(base, "alice", 0x2a);
      const bob = await person(base, "bob", 0x2b);
      const carol = await person(base, "carol", 0x2c);
      for (const p of [alice, bob, carol]) await ok(p, net, ["homeserver", "signup", hs.key]);
      for (const p of [bob, carol]) await ok(p, net, ["contacts", "add", "alice", alice.z32]);
      const room = JSON.parse(await ok(alice, net, ["room", "create", "ops", "--json"])).room;
      for (const p of [bob, carol]) {
        const uri = (await ok(alice, net, ["room", "invite", "ops", p.z32])).trim();
        await ok(p, net, ["room", "join", uri, "--accept", "alice"]);
      }
      const work = `${base}/work`;
      await Deno.mkdir(work);

      await t.step("a drop reaches another member byte for byte", async () => {
        const src = `${work}/report.bin`;
        await writePrngFile(src, (2 << 20) + 12345, seed);
        const d = JSON.parse(await ok(alice, net, ["room", "drop", "ops", src, "--json"]));
        assert.match(d.id, /^[0-9a-f]{32}$/);
        assert.deepStrictEqual([d.name, d.size, d.parts], ["report.bin", (2 << 20) + 12345, 3]);
        const listed = await files(bob, net, "ops");
        assert.deepStrictEqual(
          listed.map((f) => [f.id, f.name, f.size, f.author]),
          [[d.id, "report.bin", (2 << 20) + 12345, alice.z32]],
        );
        // tail shows the drop by name, size and id, never its body (the content key)
        const tail = await ok(bob, net, ["room", "tail", "ops"]);
        assert.match(
          tail,
          new RegExp(`alice: \\[file\\] report\\.bin \\(2\\.0 MiB, id ${d.id}\\)`),
        );
        assert(!tail.includes("AGE-SECRET-KEY"), tail);
        const tj = JSON.parse((await ok(bob, net, ["room", "tail", "ops", "--json"])).trim());
        assert.deepStrictEqual(tj.kind, "file_drop");
        assert.deepStrictEqual(tj.drop, { id: d.id, name: "report.bin", size: (2 << 20) + 12345 });
        assert(!JSON.stringify(tj).includes("AGE-SECRET-KEY"));
        // fetched by a prefix of the id, to the drop's name in the working folder
        const bobDir = `${base}/bob-out`;
        await Deno.mkdir(bobDir);
        const f = await as(bob, net, ["room", "fetch", "ops", d.id.slice(0, 10)], bobDir);
        assert.deepStrictEqual(f.code, 0, f.stderr);
        assert(await sameBytes(src, `${bobDir}/report.bin`), "byte-identical");
        assert.deepStrictEqual(await names(bobDir), ["report.bin"]);
        // an existing target is refused without --force; a too-short id is a usage error
        const again = await as(bob, net, ["room", "fetch", "ops", d.id], bobDir);
        assert.deepStrictEqual(again.code, 1, again.stderr);
        assert.match(again.stderr, /already exists/);
        const short = await as(bob, net, ["room", "fetch", "ops", d.id.slice(0, 4)]);
        assert.deepStrictEqual(short.code, 2, short.stderr);
      });

      await t.step("a tampered part at the homeserver: exit 3, nothing written", async () => {
        const src = `${work}/b.bin`;
        await writePrngFile(src, (1 << 20) + 777, seed + 1);
        const d = JSON.parse(await ok(bob, net, ["room", "drop", "ops", src, "--json"]));
        const w = await writerFor(bob, net, base);
        const got = await w.get(partPath(d.id, 1));
        assert(got);
        const { bytes } = await readUpTo(got.body, 4 << 20);
        const flipped = bytes.slice();
        flipped[flipped.length - 40] ^= 0x01;
        await w.put(partPath(d.id, 1), flipped);
        const out = `${base}/carol-out`;
        await Deno.mkdir(out);
        const r = await as(carol, net, ["room", "fetch", "ops", d.id, "-o", `${out}/b.bin`]);
        assert.deepStrictEqual(r.code, 3, r.stderr);
        assert.match(r.stderr, /signature verification failed/);
        assert.deepStrictEqual(await names(out), [], "nothing left behind");
        // put back: the same fetch now succeeds (the drop itself was fine)
        await w.put(partPath(d.id, 1), bytes);
        await ok(carol, net, ["room", "fetch", "ops", d.id, "-o", `${out}/b.bin`]);
        assert(await sameBytes(src, `${out}/b.bin`));
      });

      await t.step(
        "sensitive paths are refused (symbolic links resolved) unless --allow-sensitive",
        async () => {
          await Deno.writeTextFile(`${work}/.env`, "TOKEN=x\n");
          await Deno.mkdir(`${work}/.ssh`);
          await Deno.writeTextFile(`${work}/.ssh/config`, "Host x\n");
          await Deno.symlink(`${work}/.ssh/config`, `${work}/innocent.txt`);
          const before = (await files(bob, net, "ops")).length;
          for (const p of [`${work}/.env`, `${work}/innocent.txt`, `${alice.home}/secret_key`]) {
            const r = await as(alice, net, ["room", "drop", "ops", p]);
            assert.deepStrictEqual(r.code, 2, `${p}: ${r.stderr}`);
            assert.match(r.stderr, /refusing to drop/);
            assert.match(r.stderr, /--allow-sensitive/);
          }
          assert.deepStrictEqual((await files(bob, net, "ops")).length, before, "nothing posted");
          const d = JSON.parse(
            await ok(alice, net, [
              "room",
              "drop",
              "ops",
              `${work}/innocent.txt`,
              "--allow-sensitive",
              "--json",
            ]),
          );
          assert.deepStrictEqual(d.name, "config"); // the real file's name
          assert.deepStrictEqual((await files(bob, net, "ops")).length, before + 1);
        },
      );

      await t.step(
        "MCP: room_drop drops a file, refuses a sensitive one with no override",
        async () => {
          const { Client } = await import("@modelcontextprotocol/sdk/client/index.js");
          const { StdioClientTransport } = await import(
            "@modelcontextprotocol/sdk/client/stdio.js"
          );
          const argv = cliArgv(["mcp"]);
          const transport = new StdioClientTransport({
            command: argv[0],
            args: argv.slice(1),
            cwd: work,
            env: {
              PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
              HOME: "/nonexistent",
              DENO_NO_UPDATE_CHECK: "1",
              DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
              CIPHERPOST_HOME: bob.home,
              ...env(net),
            },
            stderr: "pipe",
          });
          const client = new Client({ name: "test", version: "1" });
          try {
            await client.connect(transport);
            const names = (await client.listTools()).tools.map((x: { name: string }) => x.name);
            assert(names.includes("room_drop") && names.includes("room_list_files"), `${names}`);
            const call = async (name: string, args: Record<string, unknown>) => {
              const r = await client.callTool({ name, arguments: args });
              const content = r.content as { type: string; text: string }[];
              return { text: content.map((c) => c.text).join(""), isError: r.isError === true };
            };
            for (const path of [".env", "innocent.txt", `${bob.home}/secret_key`]) {
              const no = await call("room_drop", { room: "ops", path });
              assert(no.isError, `${path}: ${no.text}`);
              assert.match(no.text, /refusing to drop/);
              assert(!no.text.includes("allow-sensitive"), no.text);
            }
            await writePrngFile(`${work}/from-claude.bin`, 300_000, seed + 2);
            const yes = await call("room_drop", { room: "ops", path: "from-claude.bin" });
            assert(!yes.isError, yes.text);
            const id = /drop id ([0-9a-f]{32})/.exec(yes.text)?.[1];
            assert(id, yes.text);
            const listed = JSON.parse((await call("room_list_files", { room: "ops" })).text);
            assert(listed.some((f: { id: string }) => f.id === id));
            const out = `${base}/alice-out.bin`;
            await ok(alice, net, ["room", "fetch", "ops", id, "-o", out]);
            assert(await sameBytes(`${work}/from-claude.bin`, out));
          } finally {
            await client.close().catch(() => {});
          }
        },
      );

      await t.step("a member removed before a drop cannot fetch it", async () => {
        await ok(alice, net, ["room", "remove", "ops", carol.z32]);
        const src = `${work}/after.bin`;
        await writePrngFile(src, 50_000, seed + 3);
        const d = JSON.parse(await ok(alice, net, ["room", "drop", "ops", src, "--json"]));
        // bob (still a member) gets it
        await ok(bob, net, ["room", "fetch", "ops", d.id, "-o", `${base}/bob-after.bin`]);
        assert(await sameBytes(src, `${base}/bob-after.bin`));
        // carol: not among the messages she can read
        assert(!(await files(carol, net, "ops")).some((f) => f.id === d.id));
        const r = await as(carol, net, ["room", "fetch", "ops", d.id, "-o", `${base}/carol.bin`]);
        assert.deepStrictEqual(r.code, 5, r.stderr);
        assert.match(r.stderr, /no such drop/);
        // and no key she holds opens the message that carries the pointer
        const st = await loadRoom(carol.home, carol.kp, room);
        assert(st);
        const newest = st.epochs.at(-1)!.epoch;
        const reader = await writerFor(alice, net, base);
        const got = await reader.get(messagePath(room, alice.z32, newest + 1, 1));
        assert(got, "the drop's message is at the next epoch");
        const { bytes } = await readUpTo(got.body, 1 << 16);
        for (const e of st.epochs) {
          await assert.rejects(() => ageDecrypt(bytes, e.key));
        }
        // nor can she drop anything: refused before any part is uploaded
        const used = hs!.usedBytes(carol.z32);
        const no = await as(carol, net, ["room", "drop", "ops", src]);
        assert.deepStrictEqual(no.code, 1, no.stderr);
        assert.match(no.stderr, /removed from this room/);
        assert.deepStrictEqual(hs!.usedBytes(carol.z32), used);
      });
    } catch (e) {
      console.error(`failed with ${replayHint("CIPHERPOST_SAMPLE_SEED", seed)}`);
      throw e;
    } finally {
      await hs?.close();
      await tr.close();
      await net.close();
    }
  },
});
