// `room watch` (docs/rooms.md): the live view with an input line, run by the real CLI on a
// terminal (tmux) against a local testnet and the homeserver stand-in. A message from another
// member appears live, escaped; a line typed at the bottom is sent and the other member reads
// it; Ctrl-C ends the view with the terminal restored, Ctrl-D on an empty line too; without a
// terminal it refuses.
import assert from "node:assert/strict";
import { cli, makeUserWithSeed, PASS, testTransport, tmpDir, type User } from "./_helpers.ts";
import { HAVE_TMUX, runInTty } from "./_tty.ts";
import { startTestnet, type Testnet } from "../lib/testing/testnet.ts";
import { type HomeserverStandIn, startHomeserver } from "../lib/testing/homeserver.ts";

function env(net: Testnet, home: string): Record<string, string> {
  return {
    CIPHERPOST_HOME: home,
    CIPHERPOST_PASSPHRASE: PASS,
    CIPHERPOST_BOOTSTRAP: net.bootstrap.join(","),
    CIPHERPOST_RELAYS: net.relayUrl,
    CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK: "1",
  };
}

async function ok(p: User, net: Testnet, args: string[]): Promise<string> {
  const r = await cli(args, { home: p.home, env: env(net, p.home) });
  assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

Deno.test({
  name: "room watch: live messages escaped, a typed line is sent, Ctrl-C restores the terminal",
  ignore: !HAVE_TMUX,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const net = await startTestnet({ nodes: 8 });
    const tr = testTransport(net);
    let hs: HomeserverStandIn | null = null;
    const base = await tmpDir("cp-watch-");
    try {
      hs = await startHomeserver({ signupMode: "open", transport: tr });
      const alice = await makeUserWithSeed(base, "alice", new Uint8Array(32).fill(0x1a));
      const bob = await makeUserWithSeed(base, "bob", new Uint8Array(32).fill(0x1b));
      for (const p of [alice, bob]) await ok(p, net, ["homeserver", "signup", hs.key]);
      await ok(bob, net, ["contacts", "add", "alice", alice.z32]);
      await ok(alice, net, ["room", "create", "w"]);
      const uri = (await ok(alice, net, ["room", "invite", "w", bob.z32])).trim();
      await ok(bob, net, ["room", "join", uri, "--accept", alice.z32]);
      await ok(alice, net, ["room", "send", "w", "before the watch"]);

      // not a terminal: refused, with the commands that work without one
      const piped = await cli(["room", "watch", "w"], { home: bob.home, env: env(net, bob.home) });
      assert.equal(piped.code, 2, piped.stderr);
      assert.match(piped.stderr, /needs a terminal/);
      assert.match(piped.stderr, /room tail ROOM --follow/);

      // alice posts once bob's view follows the room (its event stream is open)
      const streams = () => hs!.log.filter((e) => e.path === "/events-stream").length;
      const before = streams();
      let stopped = false;
      const alicePosts = (async () => {
        while (streams() <= before) {
          if (stopped) return;
          await new Promise((r) => setTimeout(r, 100));
        }
        await ok(alice, net, ["room", "send", "w", "hello from alice"]);
        await ok(alice, net, ["room", "send", "w", "\x1b[31mred\u202eevil\x07"]);
      })();
      let r;
      try {
        // the room named by default: bob is in one room only
        r = await runInTty(["room", "watch"], {
          env: env(net, bob.home),
          stdoutToTty: true,
          steps: [
            { wait: /alice: before the watch/ },
            { wait: /alice: \\x1b\[31mred\\u202eevil\\x07/, type: "hi from bob" },
            { wait: /you: hi from bob/, keys: ["C-c"] },
          ],
          after: "stty -a",
          timeoutMs: 120_000,
        });
      } finally {
        stopped = true;
        await alicePosts;
      }
      assert.equal(r.code, 0, r.screen);
      const screen = r.screen;
      assert.match(screen, /alice: hello from alice/);
      // the network's control and bidi characters never reach the terminal as such
      assert.ok(!screen.includes("\u202e"), screen);
      // the order: history, then alice's two, then bob's line
      const at = (s: string) => screen.indexOf(s);
      assert.ok(at("before the watch") < at("hello from alice"), screen);
      assert.ok(at("hello from alice") < at("you: hi from bob"), screen);
      // the terminal was given back as it was (echo and line editing on)
      assert.match(screen, /(^|\s)icanon(\s|$)/m, screen);
      assert.match(screen, /(^|\s)echo(\s|$)/m, screen);

      // editing: a line typed, Ctrl-D ignored (the line is not empty), Ctrl-U clears it, and
      // Ctrl-D on the empty line quits; nothing was sent
      const again = await runInTty(["room", "watch", "w", "-n", "2"], {
        env: env(net, bob.home),
        stdoutToTty: true,
        steps: [
          { wait: /you: hi from bob/, type: "never sent", keys: ["C-d"] },
          { wait: /> never sent/, keys: ["C-u", "C-d"] },
        ],
        timeoutMs: 120_000,
      });
      assert.equal(again.code, 0, again.screen);
      // -n 2: only the last two of the history
      assert.ok(!again.screen.includes("hello from alice"), again.screen);

      // alice reads bob's typed line
      const tail = await ok(alice, net, ["room", "tail", "w", "--json"]);
      const msgs = tail.trim().split("\n").map((l) => JSON.parse(l));
      const mine = msgs.filter((m) => m.author === bob.z32);
      assert.deepEqual(mine.map((m) => m.body), ["hi from bob"]);
      assert.ok(!tail.includes("never sent"));
    } finally {
      await hs?.close();
      await tr.close();
      await net.close();
    }
  },
});
