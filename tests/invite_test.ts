/**
 * Contact invites (issue 18, "first contact without a key exchange"; PROTOCOL.md §7): the real
 * CLI on a local testnet, two homes. `contacts invite` runs in the background and prints a code;
 * `contacts accept` reads it from standard input; both contact lists then hold each other and
 * both sides print the same pair of fingerprints. A wrong code finds nothing (exit 5, nothing
 * added, the code not echoed); an expired invite is refused on both sides (exit 2).
 *
 * @module
 */

import assert from "node:assert/strict";
import { wordlist } from "@scure/bip39/wordlists/english.js";
import { sshFingerprint } from "../lib/crypto/keys.ts";
import { parsePublicKey } from "../lib/pkarr/public_key.ts";
import { newInviteCode, normalizeInviteCode } from "../lib/flows/share/invite.ts";
import { CipherpostError } from "../lib/util/errors.ts";
import { cli, cliCommand, makeUser, tmpDir, type User, withTestnet } from "./_helpers.ts";
import type { Testnet } from "../lib/testing/testnet.ts";

const CODE_RE = /^[1-9][0-9]{0,2}-[a-z]+-[a-z]+$/;

Deno.test("invite codes: a number 1-999 and two BIP39 words; typed forms normalized; others refused", () => {
  for (let i = 0; i < 200; i++) {
    const c = newInviteCode();
    assert.match(c, CODE_RE);
    const [n, a, b] = c.split("-");
    assert.ok(Number(n) >= 1 && Number(n) <= 999, c);
    assert.ok(wordlist.includes(a) && wordlist.includes(b), c);
    assert.equal(normalizeInviteCode(c), c);
  }
  assert.equal(normalizeInviteCode("  7 Abandon  ABILITY\n"), "7-abandon-ability");
  assert.equal(normalizeInviteCode("7-abandon ability"), "7-abandon-ability");
  for (
    const bad of [
      "",
      "7",
      "0-abandon-ability",
      "1000-abandon-ability",
      "7-abandon-notaword",
      "7-abandon-ability-able",
      "abandon-ability-7",
    ]
  ) {
    assert.throws(
      () => normalizeInviteCode(bad),
      (e) =>
        e instanceof CipherpostError && e.kind === "usage" &&
        e.message ===
          "not an invite code: it is a number and two words, like 7-crossover-clockwork",
      bad,
    );
  }
});

/** `contacts invite NAME` in the background; resolves the code once it is printed. */
function startInvite(u: User, net: Testnet, name: string, extra: string[] = []) {
  const child = cliCommand(["contacts", "invite", name, ...extra], {
    home: u.home,
    env: u.env,
    net,
  })
    .spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const code = (async () => {
    while (!out.includes("\n")) {
      const r = await reader.read();
      if (r.done) break;
      out += r.value;
    }
    return out.trim();
  })();
  const done = (async () => {
    await code;
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      out += r.value;
    }
    return { code: (await child.status).code, stdout: out, stderr: await stderr };
  })();
  return { code, done };
}

async function contactsOf(u: User): Promise<{ name: string; key: string }[]> {
  const r = await cli(["contacts", "list", "--json"], { home: u.home });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).map((c: { name: string; key: string }) => ({
    name: c.name,
    key: c.key,
  }));
}

Deno.test("contacts invite / accept: both lists hold each other, both print the same fingerprints", async () => {
  await withTestnet(async (net) => {
    const base = await tmpDir();
    try {
      const alice = await makeUser(base, "alice");
      const bob = await makeUser(base, "bob");
      const inv = startInvite(alice, net, "bob");
      const code = await inv.code;
      assert.match(code, CODE_RE);
      // no passphrase in the environment: the public_key file names bob's key
      const acc = await cli(["contacts", "accept", "alice"], {
        home: bob.home,
        net,
        stdin: `${code}\n`,
      });
      assert.equal(acc.code, 0, acc.stderr);
      assert.equal(acc.stdout.trim(), alice.z32);
      const done = await inv.done;
      assert.equal(done.code, 0, done.stderr);
      assert.deepEqual(await contactsOf(alice), [{ name: "bob", key: bob.z32 }]);
      assert.deepEqual(await contactsOf(bob), [{ name: "alice", key: alice.z32 }]);
      const fpA = sshFingerprint(parsePublicKey(alice.z32));
      const fpB = sshFingerprint(parsePublicKey(bob.z32));
      // what each side reads aloud is what the other expects to hear
      assert.match(done.stderr, new RegExp(`bob's should read: ${escape(fpB)}`));
      assert.match(done.stderr, new RegExp(`yours, which they should read: ${escape(fpA)}`));
      assert.match(acc.stderr, new RegExp(`alice's should read: ${escape(fpA)}`));
      assert.match(acc.stderr, new RegExp(`yours, which they should read: ${escape(fpB)}`));
      // the invite is spent: a second accept is refused and changes nothing
      const again = await cli(["contacts", "accept", "carol"], {
        home: bob.home,
        net,
        stdin: `${code}\n`,
      });
      assert.equal(again.code, 7, again.stderr);
      assert.match(again.stderr, /^that invite was already answered$/m);
      assert.deepEqual(await contactsOf(bob), [{ name: "alice", key: alice.z32 }]);
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  });
});

Deno.test("contacts accept: a wrong code finds nothing (exit 5, not echoed, nothing added); a malformed one is exit 2", async () => {
  await withTestnet(async (net) => {
    const base = await tmpDir();
    try {
      const alice = await makeUser(base, "alice");
      const bob = await makeUser(base, "bob");
      const inv = startInvite(alice, net, "bob", ["--ttl", "90s"]);
      const code = await inv.code;
      const [n, a, b] = code.split("-");
      const wrong = `${n === "1" ? "2" : "1"}-${a}-${b}`;
      const r = await cli(["contacts", "accept", "alice"], {
        home: bob.home,
        env: bob.env,
        net,
        stdin: `${wrong}\n`,
      });
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /^no invite found for that code$/m);
      assert.ok(!r.stderr.includes(wrong) && !r.stderr.includes(code), "the code is not echoed");
      assert.deepEqual(await contactsOf(bob), []);
      const bad = await cli(["contacts", "accept", "alice"], {
        home: bob.home,
        env: bob.env,
        net,
        stdin: "7-not-words\n",
      });
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /not an invite code/);
      // the invite gets no answer and says so when it expires
      const done = await inv.done;
      assert.equal(done.code, 2, done.stderr);
      assert.match(done.stderr, /the invite expired without an answer/);
      assert.deepEqual(await contactsOf(alice), []);
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  });
});

Deno.test("contacts accept: an expired invite is refused (exit 2), nothing added on either side", async () => {
  await withTestnet(async (net) => {
    const base = await tmpDir();
    try {
      const alice = await makeUser(base, "alice");
      const bob = await makeUser(base, "bob");
      const inv = startInvite(alice, net, "bob", ["--ttl", "2s"]);
      const code = await inv.code;
      const done = await inv.done; // it waits out its 2 seconds
      assert.equal(done.code, 2, done.stderr);
      const r = await cli(["contacts", "accept", "alice"], {
        home: bob.home,
        env: bob.env,
        net,
        stdin: `${code}\n`,
      });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^that invite has expired$/m);
      assert.deepEqual(await contactsOf(bob), []);
      assert.deepEqual(await contactsOf(alice), []);
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
