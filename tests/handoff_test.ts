// The Claude Code hand-off's launch: the `claude` that `claude pickup` runs is an agent with a
// sender's transcript in its context, so it gets no cipherpost secret in its environment.
import assert from "node:assert/strict";
import { cli, makeUser, PASS, tmpDir } from "./_helpers.ts";
import { startTestnet } from "../lib/testing/testnet.ts";
import { encodePath } from "../lib/claude/project_dir.ts";

const ID = "0f8e2a1c-5b7d-4e3f-9a6b-2c1d0e9f8a7b";

Deno.test("claude pickup: the launched claude gets no CIPHERPOST_PASSPHRASE or CIPHERPOST_PIN", async () => {
  const base = await tmpDir("cp-handoff-");
  const net = await startTestnet({ nodes: 12 });
  try {
    const alice = await makeUser(base, "alice");
    const project = await Deno.realPath(await Deno.makeTempDir({ dir: base, prefix: "proj-" }));
    const config = `${base}/claude-config`;
    const folder = `${config}/projects/${encodePath(project)}`;
    await Deno.mkdir(folder, { recursive: true });
    await Deno.writeTextFile(
      `${folder}/${ID}.jsonl`,
      [
        { type: "user", cwd: project, sessionId: ID, message: { role: "user", content: "hi" } },
        {
          type: "assistant",
          cwd: project,
          sessionId: ID,
          message: { role: "assistant", content: [{ type: "text", text: "hello" }] },
        },
      ].map((l) => JSON.stringify(l)).join("\n") + "\n",
    );
    // a `claude` that records its environment (the run permission names `claude` on PATH)
    const bin = `${base}/bin`;
    await Deno.mkdir(bin);
    const dump = `${base}/claude-env.txt`;
    await Deno.writeTextFile(`${bin}/claude`, `#!/bin/sh\nenv > "${dump}"\n`);
    await Deno.chmod(`${bin}/claude`, 0o755);
    const env = {
      CIPHERPOST_PASSPHRASE: PASS,
      CIPHERPOST_PIN: "correct-pin-1234",
      CLAUDE_CONFIG_DIR: config,
      HOME: `${base}/home`,
      PATH: `${bin}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
      MARKER: "inherited",
    };
    const sent = await cli(["claude", "send", ID, "--self"], {
      home: alice.home,
      env,
      net,
      cwd: project,
    });
    assert.equal(sent.code, 0, sent.stderr);
    const picked = await cli(["claude", "pickup", sent.stdout.trim(), "--accept", alice.z32], {
      home: alice.home,
      env,
      net,
      cwd: project,
    });
    assert.equal(picked.code, 0, picked.stderr);
    const seen = await Deno.readTextFile(dump);
    assert.match(seen, /^MARKER=inherited$/m, "the rest of the environment is passed on");
    assert.doesNotMatch(seen, /CIPHERPOST_PASSPHRASE/);
    assert.doesNotMatch(seen, /CIPHERPOST_PIN/);
    assert.ok(!seen.includes(PASS) && !seen.includes("correct-pin-1234"), "no secret value");
  } finally {
    await net.close();
    await Deno.remove(base, { recursive: true });
  }
});
