/**
 * The main job on the embedded default: a local Mainline testnet (real DHT nodes on 127.0.0.1
 * and a pkarr relay, in this process), two identities in a temporary folder, a secret sent from
 * Alice to Bob, received non-interactively, and the signed receipt fetched and verified.
 * Every step runs the real CLI entry point (`run` of lib/cli/program.ts) and prints what it did.
 *
 * Usage: deno task demo
 *
 * @module
 */

import { run } from "../lib/cli/program.ts";
import { startTestnet } from "../lib/testing/testnet.ts";

const enc = new TextEncoder();
const say = (s: string) => Deno.stdout.writeSync(enc.encode(`${s}\n`));

/** Run one CLI command with an environment; capture its output. */
async function cp(env: Record<string, string>, args: string[]) {
  const saved = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(env)) {
    saved.set(k, Deno.env.get(k));
    Deno.env.set(k, v);
  }
  let out = "", err = "";
  try {
    const code = await run(args, { out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
  } finally {
    for (const [k, v] of saved) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  }
}

function check(step: string, r: { code: number; err: string }): void {
  if (r.code !== 0) {
    say(`FAILED at ${step} (exit ${r.code}):\n${r.err}`);
    Deno.exit(1);
  }
}

const dir = await Deno.makeTempDir({ prefix: "cipherpost-demo-" });
const t0 = performance.now();
say("1. starting a local testnet: 20 Mainline DHT nodes + a pkarr relay on 127.0.0.1");
const net = await startTestnet({ nodes: 20 });
try {
  const netEnv = { CIPHERPOST_BOOTSTRAP: net.bootstrap.join(","), CIPHERPOST_RELAYS: net.relayUrl };
  // The passphrase travels in the environment here (never argv); real users get a TTY prompt.
  const alice = {
    ...netEnv,
    CIPHERPOST_HOME: `${dir}/alice`,
    CIPHERPOST_PASSPHRASE: "alice demo passphrase",
  };
  const bob = {
    ...netEnv,
    CIPHERPOST_HOME: `${dir}/bob`,
    CIPHERPOST_PASSPHRASE: "bob demo passphrase",
  };

  say(`2. creating two identities under ${dir}`);
  for (const [name, env] of [["alice", alice], ["bob", bob]] as const) {
    const g = await cp(env, ["identity", "generate"]);
    check(`identity generate (${name})`, g);
  }
  const aliceKey = JSON.parse((await cp(alice, ["identity", "show", "--json"])).out).z32;
  const bobKey = JSON.parse((await cp(bob, ["identity", "show", "--json"])).out).z32;
  say(`   alice: ${aliceKey}\n   bob:   ${bobKey}`);

  const secretFile = `${dir}/secret.txt`;
  const secret = `demo secret ${crypto.randomUUID()}`;
  await Deno.writeTextFile(secretFile, secret, { mode: 0o600 });
  say(
    `3. alice: cipherpost send --share ${bobKey.slice(0, 8)}… -p "demo" --material-file secret.txt`,
  );
  const s = await cp(alice, [
    "send",
    "--share",
    bobKey,
    "-p",
    "demo",
    "--material-file",
    secretFile,
    "--json",
  ]);
  check("send", s);
  const sent = JSON.parse(s.out);
  say(
    `   share URI: ${sent.uri}\n   protocol v${sent.protocol}, ${sent.size} bytes, expires ${
      new Date(sent.expires_at * 1000).toISOString()
    }`,
  );

  const outFile = `${dir}/received.txt`;
  say(`4. bob: cipherpost receive <uri> --accept ${aliceKey.slice(0, 8)}… -o received.txt`);
  const r = await cp(bob, ["receive", sent.uri, "--accept", aliceKey, "-o", outFile]);
  check("receive", r);
  say(r.err.split("\n").filter((l) => l).map((l) => `   | ${l}`).join("\n"));
  const got = await Deno.readTextFile(outFile);
  if (got !== secret) {
    say("FAILED: received bytes differ from the secret");
    Deno.exit(1);
  }
  say(
    `   received.txt matches the secret (mode ${
      ((await Deno.stat(outFile)).mode! & 0o777).toString(8)
    })`,
  );

  say(`5. alice: cipherpost receipts --from ${bobKey.slice(0, 8)}… --share-ref ${sent.share_ref}`);
  const rc = await cp(alice, [
    "receipts",
    "--from",
    bobKey,
    "--share-ref",
    sent.share_ref,
    "--json",
  ]);
  check("receipts", rc);
  const receipt = JSON.parse(rc.out)[0];
  const receiptFile = `${dir}/receipt.json`;
  await Deno.writeTextFile(receiptFile, JSON.stringify(receipt));
  say("6. alice: cipherpost receipt verify receipt.json   (offline)");
  const v = await cp({}, ["receipt", "verify", receiptFile]);
  check("receipt verify", v);
  say(v.out.split("\n").filter((l) => l).map((l) => `   | ${l}`).join("\n"));
  say(`\ndemo passed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
} finally {
  await net.close();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
