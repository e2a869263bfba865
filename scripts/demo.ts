/**
 * The main job on the embedded default: a local Mainline testnet (real DHT nodes on 127.0.0.1
 * and a pkarr relay, in this process), two identities in a temporary folder, a secret sent from
 * Alice to Bob, received non-interactively, and the signed receipt fetched and verified: the
 * walkthrough's commands (docs/cli.md), in order. Then a large hand-off: the stand-in homeserver joins
 * the testnet, both sign up, Alice sends a folder of 24 MiB through it (ciphertext parts on the
 * homeserver, a signed pointer on the DHT), Bob receives it byte for byte, and Alice verifies
 * his receipt. Every step runs the real CLI entry point (`run` of lib/cli/program.ts) and prints
 * what it did.
 *
 * Usage: deno task demo
 *
 * @module
 */

import { run } from "../lib/cli/program.ts";
import { startTestnet } from "../lib/testing/testnet.ts";
import { startHomeserverOnTestnet } from "../lib/testing/homeserver.ts";

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
  // what `cipherpost testnet --homeserver` prints: the stand-in homeserver is plain http on
  // 127.0.0.1, which is refused unless CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK=1
  const netEnv = {
    CIPHERPOST_BOOTSTRAP: net.bootstrap.join(","),
    CIPHERPOST_RELAYS: net.relayUrl,
    CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK: "1",
  };
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

  // From here on, exactly the walkthrough's commands of docs/cli.md (the demo passes --accept where a
  // person pastes the key at the prompt, and the passphrase through the environment).
  const secretFile = `${dir}/secret.txt`;
  const secret = `demo secret ${crypto.randomUUID()}`;
  await Deno.writeTextFile(secretFile, secret, { mode: 0o600 });
  say(`3. alice: cipherpost contacts add bob ${bobKey}`);
  check("contacts add", await cp(alice, ["contacts", "add", "bob", bobKey]));
  say(`4. alice: cipherpost send --share bob -p "demo" --material-file secret.txt`);
  const s = await cp(alice, [
    "send",
    "--share",
    "bob",
    "-p",
    "demo",
    "--material-file",
    secretFile,
  ]);
  check("send", s);
  const uri = s.out.trim();
  say(`   ${uri}`);

  const outFile = `${dir}/received.txt`;
  say(`5. bob: cipherpost receive ${uri} -o received.txt --accept ${aliceKey}`);
  const r = await cp(bob, ["receive", uri, "-o", outFile, "--accept", aliceKey]);
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

  const ref = uri.split("/").pop()!;
  say(`6. alice: cipherpost receipts --from bob --share-ref ${ref} --json > receipt.json`);
  const rc = await cp(alice, ["receipts", "--from", "bob", "--share-ref", ref, "--json"]);
  check("receipts", rc);
  const receiptFile = `${dir}/receipt.json`;
  await Deno.writeTextFile(receiptFile, rc.out); // what the shell's > writes: stdout verbatim
  say("7. alice: cipherpost receipt verify receipt.json   (offline)");
  const v = await cp({}, ["receipt", "verify", receiptFile]);
  check("receipt verify", v);
  say(v.out.split("\n").filter((l) => l).map((l) => `   | ${l}`).join("\n"));

  // A large hand-off through the homeserver tier (README: Large shares).
  say("8. a stand-in Pubky homeserver joins the testnet (open signup); both sign up");
  const hs = await startHomeserverOnTestnet(net, { signupMode: "open" });
  try {
    for (const [name, env] of [["alice", alice], ["bob", bob]] as const) {
      check(`homeserver signup (${name})`, await cp(env, ["homeserver", "signup", hs.key]));
    }
    const folder = `${dir}/dataset`;
    await Deno.mkdir(`${folder}/raw`, { recursive: true });
    const sizes: Record<string, number> = { "raw/a.bin": 16 << 20, "raw/b.bin": 8 << 20 };
    for (const [name, size] of Object.entries(sizes)) {
      const b = new Uint8Array(size);
      for (let o = 0; o < size; o += 65536) crypto.getRandomValues(b.subarray(o, o + 65536));
      await Deno.writeFile(`${folder}/${name}`, b);
    }
    await Deno.writeTextFile(`${folder}/README.txt`, "a demo dataset\n");
    say(`9. alice: cipherpost send --share bob -p "dataset" --material-file dataset/   (24 MiB)`);
    const ls = await cp(alice, [
      "send",
      "--share",
      "bob",
      "-p",
      "dataset",
      "--material-file",
      folder,
    ]);
    check("large send", ls);
    const largeUri = ls.out.trim();
    say(`   ${largeUri}`);
    const outDir = `${dir}/received-dataset`;
    say(`10. bob: cipherpost receive ${largeUri} -o received-dataset --accept ${aliceKey}`);
    const lr = await cp(bob, ["receive", largeUri, "-o", outDir, "--accept", aliceKey]);
    check("large receive", lr);
    say(lr.err.split("\n").filter((l) => l).map((l) => `   | ${l}`).join("\n"));
    for (const name of [...Object.keys(sizes), "README.txt"]) {
      const [a, b] = await Promise.all([
        Deno.readFile(`${folder}/${name}`),
        Deno.readFile(`${outDir}/${name}`),
      ]);
      if (a.length !== b.length || a.some((x, i) => x !== b[i])) {
        say(`FAILED: ${name} differs after the large hand-off`);
        Deno.exit(1);
      }
    }
    say("   every file of received-dataset/ matches dataset/");
    // a v2 URI names the share's locator; its share ref is on the acceptance screen
    const lref = /Share ref:\s+([0-9a-f]{32})/.exec(lr.err)![1];
    const lrc = await cp(alice, ["receipts", "--from", "bob", "--share-ref", lref, "--json"]);
    check("receipts (large)", lrc);
    await Deno.writeTextFile(`${dir}/large-receipt.json`, lrc.out);
    say("11. alice: cipherpost receipt verify large-receipt.json");
    check(
      "receipt verify (large)",
      await cp({}, ["receipt", "verify", `${dir}/large-receipt.json`]),
    );
    const partPuts = hs.log.filter((l) =>
      l.method === "PUT" && /\/part-\d{5}$/.test(l.path) && l.status === 201
    )
      .length;
    say(`   bob's signed receipt binds the whole ciphertext (${partPuts} part PUTs made)`);
  } finally {
    await hs.close();
  }
  say(`\ndemo passed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
} finally {
  await net.close();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
