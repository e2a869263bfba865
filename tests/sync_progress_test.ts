// Claude sync through the library (docs/PROTOCOL.md §8): push and pull report their progress
// through the FlowUi port (the CLI draws it as a bar on a terminal), growing to the total of
// what they read or fetch; a push with nothing to read reports none.
import assert from "node:assert/strict";
import { keypairFromSeed } from "../lib/crypto/keys.ts";
import type { SyncContext, SyncEnv } from "../lib/flows/sync/common.ts";
import { syncPull } from "../lib/flows/sync/pull.ts";
import { syncPush } from "../lib/flows/sync/push.ts";
import type { FlowUi, ProgressPhase } from "../lib/flows/share/ui.ts";
import { ID, SEED, syncWorld, turn } from "./_sync_people.ts";

function recorder(): { ui: FlowUi; calls: [ProgressPhase, number, number][] } {
  const calls: [ProgressPhase, number, number][] = [];
  return {
    calls,
    ui: {
      status() {},
      note() {},
      progress(phase, done, total) {
        calls.push([phase, done, total]);
      },
    },
  };
}

function checkGrowth(calls: [ProgressPhase, number, number][], phase: ProgressPhase): number {
  assert.ok(calls.length > 0, `no ${phase} progress reported`);
  let last = 0;
  for (const [p, done, total] of calls) {
    assert.deepStrictEqual(p, phase);
    assert.ok(done >= last && done <= total, `progress ${done}/${total} after ${last}`);
    last = done;
  }
  const [, done, total] = calls[calls.length - 1];
  assert.deepStrictEqual(done, total, "the progress ends at its total");
  return total;
}

Deno.test({
  name: "claude sync progress: push and pull report growing progress up to their totals",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const w = await syncWorld("cp-sync-progress-", 8);
    try {
      const me = keypairFromSeed(SEED);
      const ctxOf = (home: string): SyncContext => ({ transport: w.tr, me, home });
      const envOf = (m: typeof w.A): SyncEnv => ({
        configDir: m.config,
        homeDir: m.homeDir,
        label: m.name,
      });
      await Deno.mkdir(w.A.folder, { recursive: true });
      let text = "";
      for (let n = 0; n < 40; n++) text += turn(w.A, n, `turn ${n} `.repeat(500));
      await Deno.writeTextFile(`${w.A.folder}/${ID}.jsonl`, text);
      await Deno.writeTextFile(`${w.A.config}/history.jsonl`, "");

      const push = recorder();
      const pushed = await syncPush(ctxOf(w.A.home), envOf(w.A), push.ui);
      assert.ok(pushed.pushed);
      const size = (await Deno.stat(`${w.A.folder}/${ID}.jsonl`)).size;
      assert.deepStrictEqual(checkGrowth(push.calls, "upload"), size, "push: the bytes read");

      const again = recorder();
      const same = await syncPush(ctxOf(w.A.home), envOf(w.A), again.ui);
      assert.deepStrictEqual(same.pushed, false);
      assert.deepStrictEqual(again.calls, [], "nothing read: no progress");

      const pull = recorder();
      const pulled = await syncPull(ctxOf(w.B.home), envOf(w.B), {}, pull.ui);
      assert.ok(pulled.actions.length > 0);
      // the remote versions' canonical sizes (home paths tokenised): about the transcript's
      const fetched = checkGrowth(pull.calls, "download");
      assert.ok(fetched > size / 2 && fetched < size * 2, `pull total ${fetched} vs ${size}`);
    } finally {
      await w.close();
    }
  },
});
