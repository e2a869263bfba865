// Faithfulness of the stand-in homeserver: the third-party SDK npm @synonymdev/pubky@0.6.0
// (under Node, tests/peer) signs up with a signup token, writes, reads, lists, stats and
// deletes against it, resolving everything through the testnet's pkarr relay only; files it
// writes read back through our client and the other way round.
import nodeAssert from "node:assert/strict";
import { generateKeypair } from "../lib/crypto/keys.ts";
import { connect, reader } from "../lib/homeserver/connect.ts";
import { discover } from "../lib/homeserver/discovery.ts";
import { toHex } from "../lib/util/encoding.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";
import { startHomeserverOnTestnet } from "../lib/testing/homeserver.ts";
import { createBLAKE3 } from "hash-wasm";
import { b64encode } from "../lib/util/encoding.ts";
import { testTransport, tmpDir, withTestnet } from "./_helpers.ts";

const PEER = new URL("./peer/pubky_sdk_peer.mjs", import.meta.url).pathname;
const SDK = new URL("./peer/node_modules/@synonymdev/pubky/package.json", import.meta.url);

interface PeerOut {
  ok: boolean;
  error?: string;
  steps: [string, unknown?][];
  hosts: string[];
}

async function runPeer(args: Record<string, unknown>): Promise<PeerOut> {
  const home = await tmpDir("cp-sdk-home-");
  try {
    const out = await new Deno.Command("node", {
      args: [PEER, JSON.stringify(args)],
      env: { HOME: home, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    if (!text) throw new Error(`peer printed nothing: ${new TextDecoder().decode(out.stderr)}`);
    return JSON.parse(text.split("\n").pop()!);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

function steps(o: PeerOut): Record<string, unknown> {
  nodeAssert.ok(o.ok, o.error);
  return Object.fromEntries(o.steps.map(([k, v]) => [k, v ?? true]));
}

async function etag(bytes: Uint8Array): Promise<string> {
  const h = await createBLAKE3();
  h.init();
  h.update(bytes);
  return `"${b64encode(h.digest("binary"))}"`;
}

Deno.test("SDK @synonymdev/pubky 0.6.0 ⇄ stand-in ⇄ our client", async () => {
  try {
    await Deno.stat(SDK);
  } catch {
    throw new Error("tests/peer is not installed: run npm ci --prefix tests/peer");
  }
  await withTestnet(async (net) => {
    const hs = await startHomeserverOnTestnet(net, { signupMode: "token_required" });
    const t = testTransport(net);
    const home = await tmpDir();
    try {
      const me = generateKeypair();
      const user = encodeZ32(me.publicKey);
      const common = { relay: net.relayUrl, homeserver: hs.key, secretHex: toHex(me.seed) };

      // 1. The SDK signs up with a minted token, writes, reads, lists, stats.
      const first = await runPeer({ ...common, mode: "signup", token: hs.mintSignupToken() });
      const s1 = steps(first);
      nodeAssert.deepStrictEqual(
        first.hosts.filter((h) => h !== "127.0.0.1" && h !== "localhost"),
        [],
      );
      nodeAssert.equal(s1.homeserverOf, hs.key);
      nodeAssert.equal(s1.getText, "written by the SDK");
      nodeAssert.equal(s1.publicGet, "written by the SDK");
      const urls = [
        `pubky://${user}/pub/cipherpost/sdk/bytes`,
        `pubky://${user}/pub/cipherpost/sdk/hello.txt`,
      ];
      nodeAssert.deepStrictEqual(s1.list, urls);
      nodeAssert.deepStrictEqual(s1.listLimit, urls.slice(0, 1));
      nodeAssert.deepStrictEqual(s1.listReverse, [...urls].reverse());
      nodeAssert.deepStrictEqual(s1.listShallow, [`pubky://${user}/pub/cipherpost/sdk/`]);
      const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
      const stats = s1.stats as { contentLength: number; etag: string | null };
      nodeAssert.equal(stats.contentLength, 256);
      // The SDK signed up with root capabilities (it cannot ask for less); our client never does.
      nodeAssert.deepStrictEqual(hs.sessionCapabilities(user), ["/:rw"]);

      // 2. Our side: discovery finds the _pubky record the SDK published (via the relay), the
      // anonymous reader gets the SDK's files, listings agree, ETag is BLAKE3.
      nodeAssert.deepStrictEqual(await discover(t, me.publicKey), {
        homeserver: hs.key,
        baseUrl: hs.baseUrl,
      });
      const anon = await reader(t, me.publicKey);
      const got = await anon.get("/pub/cipherpost/sdk/bytes");
      nodeAssert.ok(got);
      nodeAssert.deepStrictEqual(new Uint8Array(await new Response(got.body).arrayBuffer()), bytes);
      nodeAssert.equal(got.etag, await etag(bytes));
      if (stats.etag !== null) {
        nodeAssert.equal(stats.etag.replaceAll('"', ""), got.etag!.replaceAll('"', ""));
      }
      nodeAssert.deepStrictEqual((await anon.list("/pub/cipherpost/sdk/")).map((e) => e.url), urls);

      // 3. Our client signs in (the account exists) and writes a file for the SDK to read.
      const conn = await connect(t, { home, user: me.publicKey, seed: me.seed });
      const ours = crypto.getRandomValues(new Uint8Array(4096));
      await conn.client.put("/pub/cipherpost/ours.bin", ours);
      nodeAssert.ok(
        hs.sessionCapabilities(user).includes("/pub/cipherpost/:rw"),
        "our session is scoped",
      );

      // 4. The SDK signs in, reads ours privately and publicly, deletes its file, signs out.
      const second = await runPeer({
        ...common,
        mode: "signin",
        ourPath: "/pub/cipherpost/ours.bin",
      });
      const s2 = steps(second);
      nodeAssert.deepStrictEqual(
        second.hosts.filter((h) => h !== "127.0.0.1" && h !== "localhost"),
        [],
      );
      nodeAssert.equal(s2.readOurs, toHex(ours));
      nodeAssert.equal(s2.readOursPublic, toHex(ours));
      nodeAssert.equal(s2.existsBefore, true);
      nodeAssert.equal(s2.existsAfter, false);
      nodeAssert.notEqual(s2.putAfterSignout, "accepted");

      // 5. Our client sees the SDK's delete and its later write.
      nodeAssert.equal(await anon.head("/pub/cipherpost/sdk/hello.txt"), null);
      const second2 = await anon.get("/pub/cipherpost/sdk/second.txt");
      nodeAssert.equal(await new Response(second2!.body).text(), "again");
      nodeAssert.equal(await anon.head("/pub/cipherpost/sdk/after-signout.txt"), null);
    } finally {
      await t.close();
      await hs.close();
      await Deno.remove(home, { recursive: true });
    }
  });
});
