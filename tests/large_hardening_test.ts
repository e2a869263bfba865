// Issue 17 hardening of the large-share path: a homeserver refusing a streamed PUT before
// reading it (exit 1, not "unreachable"), concurrent sends of one source, I/O errors during a
// receive (no space, a too-long name), v2 publishes stored on enough nodes, the testnet's bounded
// stores, and the cleanup of abandoned receives.
import assert from "node:assert/strict";
import { HomeserverClient } from "../lib/homeserver/client.ts";
import { EXIT_OF } from "../lib/cli/exit_codes.ts";
import { CipherpostError } from "../lib/util/errors.ts";
import {
  cli,
  cliArgv,
  killAfterFirstLine,
  makeUserWithSeed,
  PASS,
  testTransport,
  tmpDir,
  type User,
} from "./_helpers.ts";
import { startTestnet, type Testnet } from "../lib/testing/testnet.ts";
import { startHomeserver } from "../lib/testing/homeserver.ts";
import { blake3File, writePrngFile } from "../lib/testing/prng_file.ts";
import { connect } from "../lib/homeserver/connect.ts";
import { keypairFromSeed } from "../lib/crypto/keys.ts";
import { State } from "../lib/state/state.ts";
import { largeSend } from "../lib/flows/large/send.ts";

const MiB = 1 << 20;

/**
 * A raw TCP "homeserver" that answers every request with `status` as soon as the headers are
 * in, then closes without reading the body (the peer's unread bytes make the kernel reset).
 */
function refusingServer(status: string): { port: number; close: () => void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const c of l) {
      conns.add(c);
      (async () => {
        try {
          const buf = new Uint8Array(8192);
          await c.read(buf);
          await c.write(
            new TextEncoder().encode(
              `HTTP/1.1 ${status}\r\ncontent-length: 4\r\nconnection: close\r\n\r\nfull`,
            ),
          );
        } catch { /* the client went away */ }
        try {
          c.close();
        } catch { /* closed */ }
        conns.delete(c);
      })();
    }
  })().catch(() => {});
  return {
    port: (l.addr as Deno.NetAddr).port,
    close: () => {
      l.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

function bigBody(size: number): () => ReadableStream<Uint8Array> {
  return () => {
    let sent = 0;
    const chunk = new Uint8Array(64 << 10);
    return new ReadableStream({
      pull(c) {
        if (sent >= size) return c.close();
        c.enqueue(chunk.slice());
        sent += chunk.length;
      },
    });
  };
}

const USER = "o4dksfbqk85ogzdb5osziw6befigbuxmuxkuxq8434q89uj56uyy";

Deno.test("homeserver PUT: a 507 sent before the body is read is a refusal (exit 1), not unreachable (exit 6)", async () => {
  const srv = refusingServer("507 Insufficient Storage");
  try {
    const client = new HomeserverClient({
      baseUrl: `http://127.0.0.1:${srv.port}`,
      user: USER,
      http: { allowLoopback: true },
      auth: {
        cookie: () => ({ user: USER, secret: "x", capabilities: "/pub/cipherpost/:rw" }),
        reauthenticate: () => Promise.resolve(false),
      },
    });
    let err: unknown = null;
    try {
      await client.put("/pub/cipherpost/blobs/x/part-00000", bigBody(32 * MiB), {
        contentLength: 32 * MiB,
      });
    } catch (e) {
      err = e;
    }
    assert(err instanceof CipherpostError, String(err));
    assert.notEqual(err.kind, "homeserver", err.message);
    assert.deepStrictEqual(EXIT_OF[err.kind], 1, `${err.kind}: ${err.message}`);
    assert.match(err.message, /quota|507/);
  } finally {
    srv.close();
  }
  // A homeserver that is not there at all stays unreachable (exit 6).
  const gone = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (gone.addr as Deno.NetAddr).port;
  gone.close();
  const client = new HomeserverClient({
    baseUrl: `http://127.0.0.1:${port}`,
    user: USER,
    http: { allowLoopback: true },
    auth: {
      cookie: () => ({ user: USER, secret: "x", capabilities: "/pub/cipherpost/:rw" }),
      reauthenticate: () => Promise.resolve(false),
    },
  });
  const e2 = await client.put("/pub/cipherpost/blobs/x/part-00000", bigBody(MiB)).then(
    () => null,
    (e) => e,
  );
  assert(e2 instanceof CipherpostError);
  assert.deepStrictEqual(EXIT_OF[e2.kind], 6, e2.message);
});

interface Person extends User {
  seed: Uint8Array;
}

async function person(base: string, name: string, n: number): Promise<Person> {
  const seed = new Uint8Array(32).fill(n);
  return { ...await makeUserWithSeed(base, name, seed), seed };
}

function netEnv(net: Testnet, extra: Record<string, string> = {}): Record<string, string> {
  return {
    CIPHERPOST_PASSPHRASE: PASS,
    CIPHERPOST_BOOTSTRAP: net.bootstrap.join(","),
    CIPHERPOST_RELAYS: net.relayUrl,
    CIPHERPOST_PART_SIZE: String(MiB),
    // the stand-in is plain http on 127.0.0.1
    CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK: "1",
    ...extra,
  };
}

async function largeDir(home: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(`${home}/state/large`)) {
      if (e.name.startsWith(prefix)) out.push(e.name);
    }
  } catch { /* none */ }
  return out.sort();
}

async function run(cmd: string, args: string[]): Promise<{ code: number; err: string }> {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
    return { code: o.code, err: new TextDecoder().decode(o.stderr) };
  } catch (e) {
    return { code: -1, err: (e as Error).message };
  }
}

/**
 * Version-1 pointers (PROTOCOL.md §5.3): a standard input staged and resumed from kept
 * ciphertext; a streaming one (§5.7) cannot resume (tests/large_stream_test.ts).
 */
const V1 = { CIPHERPOST_LARGE_POINTER: "1" };

Deno.test({
  name:
    "large shares: concurrent sends of one source, I/O errors while receiving, abandoned shares and receives",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const net = await startTestnet({ nodes: 12 });
    const tr = testTransport(net);
    const hs = await startHomeserver({ signupMode: "open", transport: tr });
    const base = await tmpDir("cp-largehard-");
    try {
      const alice = await person(base, "alice", 1);
      const bob = await person(base, "bob", 2);
      for (const p of [alice, bob]) {
        const r = await cli(["homeserver", "signup", hs.key], { home: p.home, env: netEnv(net) });
        assert.deepStrictEqual(r.code, 0, r.stderr);
      }
      const send = async (args: string[], stdin?: Uint8Array, extra = {}) => {
        const r = await cli(["send", "--share", bob.z32, "-p", "x", ...args], {
          home: alice.home,
          env: { ...netEnv(net), ...extra },
          stdin,
        });
        return { ...r, uri: r.stdout.trim() };
      };
      const receive = (uri: string, args: string[]) =>
        cli(["receive", uri, "--accept", alice.z32, ...args], { home: bob.home, env: netEnv(net) });

      await t.step(
        "two sends of one source at once: one at a time, every share sent is received",
        async () => {
          const file = `${base}/same.bin`;
          const tree = `${base}/tree`;
          await Deno.mkdir(tree);
          for (let i = 0; i < 3; i++) await writePrngFile(`${tree}/f${i}`, MiB + i, 50 + i);
          let refused = 0;
          for (let round = 0; round < 4; round++) {
            const hash = await writePrngFile(file, 6 * MiB + round, 900 + round);
            const src = round === 3 ? tree : file;
            const results = await Promise.all([
              send(["--material-file", src]),
              send(["--material-file", src]),
            ]);
            assert(results.some((r) => r.code === 0), results.map((r) => r.stderr).join("\n"));
            for (const [k, r] of results.entries()) {
              if (r.code !== 0) {
                assert.deepStrictEqual(r.code, 1, r.stderr);
                assert.match(r.stderr, /another send of .* is running from this home/);
                refused++;
                continue;
              }
              const out = `${base}/same-${round}-${k}`;
              const rx = await receive(r.uri, ["-o", out]);
              assert.deepStrictEqual(rx.code, 0, `round ${round}: ${rx.stderr}`);
              if (src === file) assert.deepStrictEqual(await blake3File(out), hash);
              else {
                for (let i = 0; i < 3; i++) {
                  assert.deepStrictEqual(
                    await blake3File(`${out}/f${i}`),
                    await blake3File(`${tree}/f${i}`),
                  );
                }
              }
            }
          }
          console.log(`concurrent sends: ${refused} of 8 refused as running`);
          assert.deepStrictEqual(await largeDir(alice.home, "send-"), []);
          assert.deepStrictEqual(await largeDir(alice.home, "stage-"), []);
        },
      );

      await t.step(
        "no space left while receiving: exit 1 naming it, the verified parts kept",
        async () => {
          const small = `${base}/small`;
          await Deno.mkdir(small);
          const m = await run("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", small]);
          if (m.code !== 0) {
            console.log(`SKIPPED: cannot mount a 4 MiB tmpfs (${m.err.trim()}); needs root`);
            return;
          }
          try {
            const src = `${base}/eight.bin`;
            await writePrngFile(src, 8 * MiB, 4242);
            const r = await send(["--material-file", src]);
            assert.deepStrictEqual(r.code, 0, r.stderr);
            const rx = await receive(r.uri, ["-o", `${small}/eight.bin`]);
            assert.deepStrictEqual(rx.code, 1, rx.stderr);
            assert.match(rx.stderr, /no space left on the device/);
            assert.doesNotMatch(rx.stderr, /signature verification failed/);
            assert.match(rx.stderr, /verified parts of 8 are kept/);
            const recs = await largeDir(bob.home, "recv-");
            assert.deepStrictEqual(recs.length, 1, "the resume record is kept");
            const rec = JSON.parse(await Deno.readTextFile(`${bob.home}/state/large/${recs[0]}`));
            assert(rec.verified.length >= 1, `verified parts kept: ${rec.verified.length}`);
            assert(rec.expires_at > Date.now() / 1000, "the record knows when its share expires");
            assert((await Deno.stat(rec.temp)).isFile, "the temporary file is kept");
            // The verified parts are used by the re-run: a target with room takes the rest.
            await Deno.remove(rec.temp);
          } finally {
            const u = await run("umount", [small]);
            assert.deepStrictEqual(u.code, 0, u.err);
          }
          // (its temporary file went with the tmpfs: the re-run starts over)
          const recs = await largeDir(bob.home, "recv-");
          for (const n of recs) await Deno.remove(`${bob.home}/state/large/${n}`);
        },
      );

      await t.step(
        "a target name too long: exit 1 naming it, before anything is fetched",
        async () => {
          const src = `${base}/two.bin`;
          await writePrngFile(src, 2 * MiB, 77);
          const r = await send(["--material-file", src]);
          assert.deepStrictEqual(r.code, 0, r.stderr);
          const gets = hs.log.length;
          const rx = await receive(r.uri, ["-o", `${base}/${"n".repeat(300)}`]);
          assert.deepStrictEqual(rx.code, 1, rx.stderr);
          assert.match(rx.stderr, /file name too long/);
          assert.doesNotMatch(rx.stderr, /signature verification failed/);
          assert.deepStrictEqual(
            hs.log.slice(gets).filter((l) => /\/part-\d+$/.test(l.path)).length,
            0,
            "no part fetched",
          );
          // A long name that fits (250 bytes) works: the temporary name is cut to fit.
          const long = `${base}/${"l".repeat(250)}`;
          const ok = await receive(r.uri, ["-o", long]);
          assert.deepStrictEqual(ok.code, 0, ok.stderr);
          assert.deepStrictEqual(await blake3File(long), await blake3File(src));
        },
      );

      await t.step(
        "a share abandoned for a new one: its receivers do not wait, and are told to ask for a new share",
        async () => {
          const bytes = new Uint8Array(4 * MiB).map((_, i) => (i * 2654435761) >>> 24);
          const args = ["send", "--share", bob.z32, "--via", "homeserver", "-p", "restart", "-"];
          hs.holdPartPuts(true); // the pointer goes out, no part does
          let first = "";
          try {
            const argv = cliArgv(args);
            first = await killAfterFirstLine(
              argv,
              { ...netEnv(net), ...V1, CIPHERPOST_HOME: alice.home },
              bytes,
            );
          } finally {
            hs.holdPartPuts(false);
          }
          assert.match(first, /^cipherpost:\/\//);
          for (const d of await largeDir(alice.home, "up-")) {
            await Deno.remove(`${alice.home}/state/large/${d}`, { recursive: true });
          }
          const again = await send(["--via", "homeserver", "-p", "restart", "-"], bytes, V1);
          assert.deepStrictEqual(again.code, 0, again.stderr);
          assert.match(again.stderr, /sending the payload again as a new share/);
          const rx = await receive(first.trim(), ["-o", `${base}/abandoned.bin`, "--wait", "30s"]);
          assert.deepStrictEqual(rx.code, 6, rx.stderr);
          assert.doesNotMatch(rx.stderr, /still uploading/, "no wait for parts that never come");
          assert.match(rx.stderr, /ask the sender for a new share/);
          assert.doesNotMatch(rx.stderr, /uploads only the missing parts/);
          const ok = await receive(again.uri, ["-o", `${base}/restarted.bin`]);
          assert.deepStrictEqual(ok.code, 0, ok.stderr);
          assert.deepStrictEqual(await Deno.readFile(`${base}/restarted.bin`), bytes);
        },
      );

      await t.step(
        "abandoned receives of expired shares are swept by receive and homeserver gc",
        async () => {
          const dir = `${bob.home}/state/large`;
          await Deno.mkdir(dir, { recursive: true });
          const plant = async (name: string, expires: number) => {
            const temp = `${base}/.${name}.cipherpost-${"ab".repeat(6)}`;
            await Deno.writeFile(temp, new Uint8Array(1000));
            await Deno.writeTextFile(
              `${dir}/recv-${name.padEnd(32, "0")}.json`,
              JSON.stringify({
                ciphertext_hash: "0".repeat(64),
                expires_at: expires,
                temp,
                verified: [],
              }),
            );
            return temp;
          };
          const exists = (p: string) => Deno.lstat(p).then(() => true, () => false);
          const now = Math.floor(Date.now() / 1000);
          const old1 = await plant("aaaa", now - 10);
          const live = await plant("bbbb", now + 3600);
          const gc = await cli(["homeserver", "gc"], { home: bob.home, env: netEnv(net) });
          assert.deepStrictEqual(gc.code, 0, gc.stderr);
          assert.match(gc.stderr, /removed 1 abandoned receive/);
          assert(
            !(await exists(old1)) && !(await exists(`${dir}/recv-${"aaaa".padEnd(32, "0")}.json`)),
          );
          assert(await exists(live) && await exists(`${dir}/recv-${"bbbb".padEnd(32, "0")}.json`));
          // a receive sweeps too
          const old2 = await plant("cccc", now - 10);
          const src = `${base}/sweep.bin`;
          await writePrngFile(src, 2 * MiB, 31);
          const r = await send(["--material-file", src]);
          assert.deepStrictEqual(r.code, 0, r.stderr);
          const rx = await receive(r.uri, ["-o", `${base}/sweep-out.bin`]);
          assert.deepStrictEqual(rx.code, 0, rx.stderr);
          assert(!(await exists(old2)), "swept by the receive");
          assert(await exists(live), "a live share's receive is kept");
        },
      );
    } finally {
      await hs.close();
      await tr.close();
      await net.close();
      await Deno.remove(base, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "large send: a part changed on the homeserver by another writer fails the send, never 'sent'",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const net = await startTestnet({ nodes: 8 });
    const t = testTransport(net);
    const hs = await startHomeserver({ signupMode: "open", transport: t });
    const base = await tmpDir("cp-largehard-tamper-");
    try {
      const me = keypairFromSeed(new Uint8Array(32).fill(5));
      const state = new State(`${base}/home`);
      let tampered = false;
      const tamper = async (input: string | URL, init?: RequestInit) => {
        const res = await fetch(input, init);
        if (init?.method === "PUT" && String(input).endsWith("/part-00001") && !tampered) {
          tampered = true; // another writer replaces the part right after our PUT
          const again = await fetch(input, {
            method: "PUT",
            headers: init.headers,
            body: new Uint8Array(600).fill(1),
          });
          await again.body?.cancel();
        }
        return res;
      };
      const conn = await connect(t, {
        home: state.home,
        user: me.publicKey,
        seed: me.seed,
        homeserver: hs.key,
        signup: true,
        fetch: tamper,
        http: { allowLoopback: true },
      });
      const src = `${base}/three.bin`;
      await writePrngFile(src, 3 * MiB, 3);
      const ui = { status() {}, note() {} };
      const err = await largeSend(t, conn.client, hs.key, state, me, {
        recipient: null,
        purpose: "tamper",
        source: { kind: "path", path: src },
        ttlSeconds: 3600n,
        pin: null,
        burn: false,
        partSize: MiB,
      }, ui).then(() => null, (e) => e);
      assert(tampered, "the part was replaced");
      assert(err instanceof CipherpostError, `the send must fail: ${err}`);
      assert.deepStrictEqual(EXIT_OF[err.kind], 1, err.message);
      assert.match(err.message, /1 of 3 parts on the homeserver are not what this send uploaded/);
    } finally {
      await hs.close();
      await t.close();
      await net.close();
      await Deno.remove(base, { recursive: true }).catch(() => {});
    }
  },
});
