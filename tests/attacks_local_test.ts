// Bad local input, without a network: it ends in a clear message and a documented exit code,
// never `internal error`.
import assert from "node:assert/strict";
import { cli, makeUser, tmpDir } from "./_helpers.ts";

Deno.test("bad local input: a passphrase variable that is not UTF-8 is exit 4 with a message", async () => {
  const base = await tmpDir();
  const u = await makeUser(base, "u");
  const r = await cli(["identity", "check"], {
    home: u.home,
    env: {},
    shell: 'CIPHERPOST_PASSPHRASE="$(printf "\\377")" exec "$@"',
  });
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /CIPHERPOST_PASSPHRASE is not valid UTF-8/);
  assert.doesNotMatch(r.stderr, /internal error/);
});

Deno.test("bad local input: receipt verify of a directory or a missing file is an io error (exit 1)", async () => {
  const base = await tmpDir();
  for (const path of [base, `${base}/missing.json`]) {
    const r = await cli(["receipt", "verify", path]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^io error: /);
  }
});
