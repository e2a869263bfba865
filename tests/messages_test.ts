/**
 * Issue 18, item 8: errors say what happened and what to do. Each case runs the real CLI as a
 * subprocess: an inline passphrase refused by every command that takes the passphrase flags
 * (also one that needs no passphrase this time), an output that cannot be written named as such
 * (not "configuration error"), a mistyped v1 URI (exit 3, with the hint that it may be
 * mistyped), and a URI with nothing behind it (exit 5, with what to do). The expired share and the passphrase source are in flows_test.ts and
 * cli_identity_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  cli,
  type CliResult,
  makeUser,
  receiveAs,
  sendAs,
  tmpDir,
  withTestnet,
} from "./_helpers.ts";

function assertExit(r: CliResult, code: number, what: string) {
  assert.equal(r.code, code, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

Deno.test("messages: inline --passphrase is refused everywhere, also by identity show (exit 4)", async () => {
  const base = await tmpDir();
  try {
    const u = await makeUser(base, "u");
    for (
      const args of [
        ["identity", "show"],
        ["identity", "show", "--json"],
        ["identity", "check"],
        ["homeserver", "status"],
      ]
    ) {
      const r = await cli([...args, "--passphrase", "hunter2-not-shown"], { home: u.home });
      assertExit(r, 4, args.join(" "));
      assert.equal(
        r.stderr,
        "invalid passphrase input: inline argv rejected\n" +
          "hint: use --passphrase-file, --passphrase-fd or CIPHERPOST_PASSPHRASE\n",
      );
      assert.equal(r.stdout, "", "nothing printed before the refusal");
    }
    // without it, show still needs no passphrase
    const ok = await cli(["identity", "show"], { home: u.home });
    assertExit(ok, 0, "identity show");
    assert.equal(ok.stdout.split("\n")[0], u.z32);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("messages: an output that cannot be written says so, not 'configuration error' (exit 1)", async () => {
  const base = await tmpDir();
  try {
    const u = await makeUser(base, "u");
    const dir = `${base}/adir`;
    await Deno.mkdir(dir);
    const r = await cli(["identity", "export", "-o", dir], { home: u.home, env: u.env });
    assertExit(r, 1, "export -o a directory");
    assert.match(r.stderr, new RegExp(`^cannot write ${dir}: it is a directory\n`));
    assert.doesNotMatch(r.stderr, /configuration error/);
    const file = `${base}/exists.txt`;
    await Deno.writeTextFile(file, "keep me");
    const e = await cli(["identity", "export", "-o", file], { home: u.home, env: u.env });
    assertExit(e, 1, "export -o an existing file");
    assert.match(e.stderr, /^cannot write .*: it already exists \(refusing to overwrite it\)$/m);
    assert.equal(await Deno.readTextFile(file), "keep me");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("messages: a mistyped v1 URI is exit 3 with a hint that it may be mistyped", async () => {
  await withTestnet(async (net) => {
    const base = await tmpDir();
    try {
      const alice = await makeUser(base, "alice");
      const bob = await makeUser(base, "bob");
      const s = await sendAs(alice, net, ["--share", bob.z32, "-p", "x", "-"], "s3cret");
      assertExit(s, 0, "send");
      assert.match(s.uri, /^cipherpost:\/\/[a-z0-9]{52}\/[0-9a-f]{32}$/, "a v1 URI");
      // one hex digit of the share_ref changed, as a typo would
      const last = s.uri.at(-1)!;
      const typo = s.uri.slice(0, -1) + (last === "0" ? "1" : "0");
      const r = await receiveAs(bob, net, typo, ["--accept", alice.z32]);
      assertExit(r, 3, "mistyped URI");
      assert.match(r.stderr, /^share_ref in URI does not match resolved record$/m);
      assert.match(r.stderr, /^hint: the URI may be mistyped or cut short: copy it again/m);
      assert.equal(r.stdout, "");
      // a URI naming a sender with nothing on the DHT: exit 5, and what to do
      const nobody = `cipherpost://${bob.z32}/${"0".repeat(32)}`;
      const gone = await receiveAs(alice, net, nobody, ["--accept", bob.z32]);
      assertExit(gone, 5, "nothing published");
      assert.match(gone.stderr, /^record not found on DHT$/m);
      assert.match(gone.stderr, /^hint: check the URI for a typo; else the share expired/m);
      // the URI as sent still works
      const ok = await receiveAs(bob, net, s.uri, ["--accept", alice.z32]);
      assertExit(ok, 0, "the URI as sent");
      assert.equal(ok.stdout, "s3cret");
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  });
});
