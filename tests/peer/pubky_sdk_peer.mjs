// One-shot Node peer running the third-party SDK npm @synonymdev/pubky@0.6.0 against a
// cipherpost stand-in homeserver (loopback only). Input: one JSON object as argv[2]. Output: one
// JSON object on stdout. Every URL the SDK fetches is recorded (`hosts`) so the test can check
// that nothing left loopback.
import { createRequire } from "node:module";

const hosts = new Set();
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = new URL(
    typeof input === "string" || input instanceof URL ? input : input.url,
  );
  hosts.add(url.hostname);
  if (!["127.0.0.1", "localhost", "::1", "[::1]"].includes(url.hostname)) {
    return Promise.reject(
      new Error(`refused non-loopback fetch to ${url.hostname}`),
    );
  }
  return realFetch(input, init);
};

const require = createRequire(import.meta.url);
const { Client, Keypair, PublicKey, Pubky } = require("@synonymdev/pubky");

const args = JSON.parse(process.argv[2]);
const out = { ok: true, steps: [] };
const step = (name, value) => out.steps.push(value === undefined ? [name] : [name, value]);

try {
  const seed = Uint8Array.from(Buffer.from(args.secretHex, "hex"));
  const kp = Keypair.fromSecret(seed);
  const client = new Client({
    pkarr: { relays: [args.relay], requestTimeout: 3000 },
  });
  const pubky = Pubky.withClient(client);
  const user = kp.publicKey;
  const signer = pubky.signer(kp);
  let session;
  if (args.mode === "signup") {
    session = await signer.signup(
      PublicKey.from(args.homeserver),
      args.token ?? null,
    );
    step("signup");
  } else {
    session = await signer.signinBlocking();
    step("signin");
  }
  const storage = session.storage;
  const hsOf = await pubky.getHomeserverOf(user);
  step("homeserverOf", hsOf ? hsOf.z32() : null);
  if (args.mode === "signup") {
    await storage.putText(
      "/pub/cipherpost/sdk/hello.txt",
      "written by the SDK",
    );
    await storage.putBytes(
      "/pub/cipherpost/sdk/bytes",
      Uint8Array.from({ length: 256 }, (_, i) => i),
    );
    step("put");
    step("getText", await storage.getText("/pub/cipherpost/sdk/hello.txt"));
    step("list", await storage.list("/pub/cipherpost/sdk/"));
    step(
      "listShallow",
      await storage.list("/pub/cipherpost/", null, false, 10, true),
    );
    step(
      "listLimit",
      await storage.list("/pub/cipherpost/sdk/", null, false, 1, false),
    );
    step(
      "listReverse",
      await storage.list("/pub/cipherpost/sdk/", null, true, null, false),
    );
    const stats = await storage.stats("/pub/cipherpost/sdk/bytes");
    step(
      "stats",
      stats ? { contentLength: stats.contentLength, etag: stats.etag ?? null } : null,
    );
    step(
      "publicGet",
      await pubky.publicStorage.getText(
        `${user.toString()}/pub/cipherpost/sdk/hello.txt`,
      ),
    );
  } else {
    // Read what our client wrote, privately and publicly, then clean up.
    const ours = await storage.getBytes(args.ourPath);
    step("readOurs", Buffer.from(ours).toString("hex"));
    const pub = await pubky.publicStorage.getBytes(
      `${user.toString()}${args.ourPath}`,
    );
    step("readOursPublic", Buffer.from(pub).toString("hex"));
    step("existsBefore", await storage.exists("/pub/cipherpost/sdk/hello.txt"));
    await storage.delete("/pub/cipherpost/sdk/hello.txt");
    step("existsAfter", await storage.exists("/pub/cipherpost/sdk/hello.txt"));
    await storage.putText("/pub/cipherpost/sdk/second.txt", "again");
    await session.signout();
    step("signout");
    try {
      await storage.putText("/pub/cipherpost/sdk/after-signout.txt", "no");
      step("putAfterSignout", "accepted");
    } catch (e) {
      step("putAfterSignout", String(e?.name ?? e));
    }
  }
} catch (e) {
  out.ok = false;
  out.error = `${e?.name ?? "Error"}: ${e?.message ?? String(e)}`;
}
out.hosts = [...hosts].sort();
process.stdout.write(JSON.stringify(out) + "\n");
process.exit(0);
