// `cipherpost doctor` through the real CLI on a local testnet and the homeserver stand-in: all
// well; the Claude Code registrations seen once `claude install-rooms` wrote them; a loose
// identity file reported with its fix (exit 1); an unreachable homeserver reported (exit 1).
import assert from "node:assert/strict";
import { cli, makeUser, PASS, testTransport, tmpDir } from "./_helpers.ts";
import { startTestnet } from "../lib/testing/testnet.ts";
import { type HomeserverStandIn, startHomeserver } from "../lib/testing/homeserver.ts";

interface Finding {
  check: string;
  status: "ok" | "warn" | "fail";
  detail: string;
  fix?: string;
}

Deno.test({
  name: "doctor: modes, homeserver, clock and Claude Code registrations, each with its fix",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const net = await startTestnet({ nodes: 8 });
    const tr = testTransport(net);
    let hs: HomeserverStandIn | null = null;
    const base = await tmpDir("cp-doctor-");
    try {
      hs = await startHomeserver({ signupMode: "open", transport: tr });
      const alice = await makeUser(base, "alice");
      const claudeDir = `${base}/claude`;
      const env = { CIPHERPOST_PASSPHRASE: PASS, CLAUDE_CONFIG_DIR: claudeDir };
      const run = (args: string[]) => cli(args, { home: alice.home, net, env });
      const doctor = async (extra: string[] = []) => {
        const r = await run(["doctor", "--json", ...extra]);
        const out = JSON.parse(r.stdout) as { ok: boolean; findings: Finding[] };
        const of = (check: string) => out.findings.filter((f) => f.check === check);
        return { ...r, out, of };
      };
      const signup = await run(["homeserver", "signup", hs.key]);
      assert.equal(signup.code, 0, signup.stderr);

      await t.step("all well; the Claude Code registrations missing are warnings", async () => {
        const d = await doctor();
        assert.equal(d.code, 0, d.stdout + d.stderr);
        assert.equal(d.out.ok, true);
        for (const c of ["home", "identity", "homeserver", "session", "clock"]) {
          assert.deepEqual(d.of(c).map((f) => f.status), ["ok"], `${c}: ${d.stdout}`);
        }
        assert.equal(d.of("room_hook")[0].status, "warn");
        assert.match(d.of("room_hook")[0].fix!, /cipherpost claude install-rooms/);
        assert.equal(d.of("mcp_server")[0].status, "warn");
        assert.match(d.of("sync_hooks")[0].fix!, /cipherpost claude sync auto enable/);
        assert.match(d.of("clock")[0].detail, /^[+-]\d+ s against the homeserver$/);
      });

      await t.step("a registered hook and MCP server are seen", async () => {
        const i = await run(["claude", "install-rooms"]);
        assert.equal(i.code, 0, i.stderr);
        const d = await doctor();
        assert.equal(d.code, 0, d.stderr);
        assert.equal(d.of("room_hook")[0].status, "ok", d.stdout);
        assert.match(d.of("room_hook")[0].detail, /settings\.json/);
        assert.equal(d.of("mcp_server")[0].status, "ok", d.stdout);
        // the human form: one line per check, OK/WARN/FAIL first
        const h = await run(["doctor"]);
        assert.equal(h.code, 0, h.stderr);
        assert.match(h.stdout, /^OK +room_hook +UserPromptSubmit hook in /m);
        assert.match(h.stdout, /^WARN +sync_hooks .*\n +fix: to sync Claude Code sessions: /m);
      });

      await t.step("a loose identity file: FAIL with the chmod that fixes it, exit 1", async () => {
        const id = `${alice.home}/secret_key`;
        await Deno.chmod(id, 0o644);
        try {
          const h = await run(["doctor"]);
          assert.equal(h.code, 1, h.stdout + h.stderr);
          assert.match(h.stdout, /^FAIL +identity +.*secret_key is 0644, not 0600/m);
          assert.ok(h.stdout.includes(`fix: chmod 600 ${id}\n`), h.stdout);
          const d = await doctor();
          assert.equal(d.out.ok, false);
          assert.deepEqual(d.of("identity").map((f) => f.fix), [`chmod 600 ${id}`]);
        } finally {
          await Deno.chmod(id, 0o600);
        }
        await Deno.chmod(alice.home, 0o755);
        try {
          const d = await doctor();
          assert.equal(d.code, 1);
          assert.equal(d.of("home")[0].fix, `chmod 700 ${alice.home}`);
        } finally {
          await Deno.chmod(alice.home, 0o700);
        }
      });

      await t.step("an unreachable homeserver: FAIL, clock not checked, exit 1", async () => {
        await hs!.close();
        hs = null;
        const d = await doctor();
        assert.equal(d.code, 1, d.stdout + d.stderr);
        const h = d.of("homeserver")[0];
        assert.equal(h.status, "fail");
        assert.match(h.detail, /is unreachable/);
        assert.match(h.fix!, /check the network/);
        assert.equal(d.of("clock")[0].status, "warn");
        assert.match(d.of("clock")[0].detail, /not checked: the homeserver did not answer/);
        // the local checks still came out fine
        assert.equal(d.of("identity")[0].status, "ok");
      });
    } finally {
      await hs?.close();
      await tr.close();
      await net.close();
    }
  },
});
