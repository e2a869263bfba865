// Claude sync's inspecting and repairing commands through the real CLI (docs/PROTOCOL.md §8.7):
// diff, restore --at (in place and -o, refusal, a swapped old snapshot), conflicts (listed and
// resolved both ways), devices. Two machines with one identity, testnet + stand-in homeserver.
import assert from "node:assert/strict";
import { keypairFromSeed } from "../lib/crypto/keys.ts";
import { SyncKeys } from "../lib/sync/keys.ts";
import { projectDirName } from "../lib/claude/project_dir.ts";
import { bytesOf, ID, type Machine, ok, run, SEED, syncWorld, tree, turn } from "./_sync_people.ts";

const KEYS = new SyncKeys(keypairFromSeed(SEED));

interface DiffRow {
  path: string;
  local: string;
  remote: string;
  local_size: number | null;
  remote_size: number | null;
  from: string | null;
}

Deno.test({
  name: "claude sync diff, restore, conflicts, devices: two machines, one identity",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const w = await syncWorld("cp-sync-cmds-");
    const { net, A, B, client } = w;
    const write = async (m: Machine, rel: string, text: string, mtime?: number) => {
      const p = `${m.config}/${rel}`;
      await Deno.mkdir(p.slice(0, p.lastIndexOf("/")), { recursive: true });
      await Deno.writeTextFile(p, text);
      if (mtime !== undefined) await Deno.utime(p, mtime / 1000, mtime / 1000);
    };
    const read = (m: Machine, rel: string) => Deno.readTextFile(`${m.config}/${rel}`);
    try {
      let devA = "", devB = "";

      await t.step("devices: both machines, newest push first", async () => {
        await Deno.mkdir(A.folder, { recursive: true });
        await Deno.writeTextFile(`${A.folder}/${ID}.jsonl`, turn(A, 0, "hello") + turn(A, 1, "hi"));
        await write(A, "plans/plan.md", "plan v1\n");
        await write(A, "tasks/t.json", '{"t":1}\n');
        devA = (await ok(A, net, ["push"])).device;
        await ok(B, net, ["pull"]);
        const pb = await ok(B, net, ["push"]);
        assert(pb.pushed, "a first push publishes B's head");
        devB = pb.device;
        const ds = await ok(A, net, ["devices"]);
        assert.deepStrictEqual(
          ds.map((d: { label: string; device: string; seq: number; mine: boolean }) => [
            d.label,
            d.device,
            d.seq,
            d.mine,
          ]),
          [["B", devB, 1, false], ["A", devA, 1, true]],
        );
        assert(ds[0].time >= ds[1].time);
        assert.deepStrictEqual(ds[1].files, 3);
        const text = await run(B, net, ["devices"]);
        assert.deepStrictEqual(text.code, 0, text.stderr);
        assert.match(text.stdout, /^\* B .*#1/m);
        assert.match(text.stdout, /^ {2}A .*#1/m);
      });

      await t.step("diff: a local edit and a remote one, per file, with sizes", async () => {
        await write(A, "plans/plan.md", "plan v2, edited on A\n");
        await Deno.remove(`${A.config}/tasks/t.json`);
        await Deno.writeTextFile(`${B.folder}/${ID}.jsonl`, turn(B, 2, "from B"), {
          append: true,
        });
        await write(B, "plans/b.md", "made on B\n");
        await ok(B, net, ["push"]);
        const before = await tree(A.config);
        const r = await ok(A, net, ["diff"]);
        const rows = Object.fromEntries(r.files.map((f: DiffRow) => [f.path, f]));
        assert.deepStrictEqual(Object.keys(rows).length, 4, JSON.stringify(r.files));
        assert.deepStrictEqual(rows["plans/plan.md"], {
          path: "plans/plan.md",
          local: "modified",
          remote: "same",
          local_size: 21,
          remote_size: 8,
          from: "A",
        });
        assert.deepStrictEqual(
          [rows["tasks/t.json"].local, rows["tasks/t.json"].remote],
          ["deleted", "same"],
        );
        assert.deepStrictEqual(
          [rows["plans/b.md"].local, rows["plans/b.md"].remote, rows["plans/b.md"].from],
          ["same", "added", "B"],
        );
        const tr = r.files.find((f: DiffRow) => f.path.endsWith(`//${ID}.jsonl`));
        assert(tr, JSON.stringify(r.files));
        assert.deepStrictEqual([tr.local, tr.remote, tr.from], ["same", "modified", "B"]);
        assert(tr.remote_size > tr.local_size);
        // snapshots only: no chunk fetched, nothing written
        assert.deepStrictEqual(r.counters.chunks_downloaded, 0);
        assert.deepStrictEqual(await tree(A.config), before);
        const text = await run(A, net, ["diff"]);
        assert.match(text.stdout, /^modified +same +plans\/plan\.md +\(here 21 B, remote 8 B/m);
        await ok(A, net, ["pull"]);
        await ok(A, net, ["push"]);
        await ok(B, net, ["pull"]);
        assert.deepStrictEqual((await ok(B, net, ["diff"])).files, []);
      });

      await t.step("restore --at: an old version, into -o DIR and into place", async () => {
        await write(A, "plans/plan.md", "plan v3\n");
        await ok(A, net, ["push"]);
        const log = await ok(A, net, ["log"]);
        const first = log.find((e: { label: string; seq: number }) =>
          e.label === "A" && e.seq === 1
        );
        assert(first, JSON.stringify(log));
        assert.deepStrictEqual(first.id, `${devA.slice(0, 8)}:1`);
        // into another folder: the whole snapshot, mapped to this machine; nothing else changes
        const out = `${w.base}/restored`;
        const before = await tree(A.config);
        const r = await ok(A, net, ["restore", "--at", first.id, "-o", out]);
        assert.deepStrictEqual(r.snapshot.seq, 1);
        assert.deepStrictEqual(r.files.length, 3);
        assert.deepStrictEqual(await Deno.readTextFile(`${out}/plans/plan.md`), "plan v1\n");
        assert.deepStrictEqual(await Deno.readTextFile(`${out}/tasks/t.json`), '{"t":1}\n');
        assert.deepStrictEqual(
          await Deno.readTextFile(`${out}/projects/${projectDirName(A.project)}/${ID}.jsonl`),
          turn(A, 0, "hello") + turn(A, 1, "hi"),
        );
        assert.deepStrictEqual(await tree(A.config), before);
        // again into the same folder: refused without --force, nothing written
        const again = await run(A, net, ["restore", "--at", first.id, "-o", out]);
        assert.deepStrictEqual(again.code, 1, again.stderr);
        assert.match(again.stderr, /already exists/);
        // into place, one file, from B's machine naming A's snapshot by label
        const onB = await ok(B, net, ["restore", "--at", "A:1", "plans/plan.md"]);
        assert.deepStrictEqual(onB.files.map((f: { path: string }) => f.path), ["plans/plan.md"]);
        assert.deepStrictEqual(await read(B, "plans/plan.md"), "plan v1\n");
        const st = await ok(B, net, ["status"]);
        assert.deepStrictEqual(st.modified, ["plans/plan.md"], JSON.stringify([st, onB]));
        // the next push publishes the restore; A takes it
        assert.deepStrictEqual((await ok(B, net, ["push"])).changed, 1);
        const pulled = await ok(A, net, ["pull"]);
        assert.deepStrictEqual(
          pulled.actions.map((a: { path: string; action: string }) => [a.path, a.action]),
          [["plans/plan.md", "update"]],
        );
        assert.deepStrictEqual(await read(A, "plans/plan.md"), "plan v1\n");
        // a file changed here since the last sync is not clobbered without --force
        await write(A, "plans/plan.md", "unsaved work\n");
        const refused = await run(A, net, ["restore", "--at", `${devA.slice(0, 8)}:3`]);
        assert.deepStrictEqual(refused.code, 1, refused.stderr);
        assert.match(refused.stderr, /changed here since the last sync/);
        assert.match(refused.stderr, /--force/);
        assert.deepStrictEqual(await read(A, "plans/plan.md"), "unsaved work\n");
        const forced = await ok(A, net, ["restore", "--at", "3", "plans", "--force"]);
        assert.deepStrictEqual(forced.snapshot.device, devA);
        assert.deepStrictEqual(await read(A, "plans/plan.md"), "plan v3\n");
        // an unknown snapshot, a path in no file: usage errors
        const bad = await run(A, net, ["restore", "--at", "A:99"]);
        assert.deepStrictEqual(bad.code, 2, bad.stderr);
        const none = await run(A, net, ["restore", "--at", "A:1", "plans/nope.md"]);
        assert.deepStrictEqual(none.code, 2, none.stderr);
      });

      await t.step("restore --at: a swapped old snapshot is exit 3, nothing written", async () => {
        const p1 = `/pub/cipherpost/sync/${devA}/${KEYS.snapName(devA, 1)}`;
        const p2 = `/pub/cipherpost/sync/${devA}/${KEYS.snapName(devA, 2)}`;
        const good = await bytesOf(client, p1);
        await client.put(p1, await bytesOf(client, p2));
        const out = `${w.base}/swapped`;
        const r = await run(B, net, ["restore", "--at", "A:1", "-o", out]);
        assert.deepStrictEqual(r.code, 3, r.stderr);
        assert.match(r.stderr, /signature verification failed/);
        await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
        assert(await client.delete(p1));
        const dropped = await run(B, net, ["restore", "--at", "A:1", "-o", out]);
        assert.deepStrictEqual(dropped.code, 3, dropped.stderr);
        await client.put(p1, good);
        await ok(B, net, ["restore", "--at", "A:1", "-o", out]);
        assert.deepStrictEqual(await Deno.readTextFile(`${out}/plans/plan.md`), "plan v1\n");
      });

      await t.step("conflicts: listed, never synced, resolved both ways", async () => {
        await ok(A, net, ["push"]);
        await ok(B, net, ["pull"]);
        for (const n of [1, 2, 3]) await write(A, `plans/c${n}.md`, `c${n} base\n`);
        await ok(A, net, ["push"]);
        await ok(B, net, ["pull"]);
        const now = Date.now();
        for (const n of [1, 2, 3]) await write(A, `plans/c${n}.md`, `c${n} from A\n`, now);
        await ok(A, net, ["push"]);
        // B's c1 and c3 are newer than A's (A's version becomes the copy); B's c2 is older
        await write(B, "plans/c1.md", "c1 from B\n", now + 3_600_000);
        await write(B, "plans/c2.md", "c2 from B\n", now - 3_600_000);
        await write(B, "plans/c3.md", "c3 from B\n", now + 3_600_000);
        const pulled = await ok(B, net, ["pull"]);
        assert.deepStrictEqual(
          pulled.actions.filter((a: { action: string }) => a.action === "conflict").length,
          3,
          JSON.stringify(pulled.actions),
        );
        const list = await ok(B, net, ["conflicts"]);
        assert.deepStrictEqual(list.resolved, []);
        const sides = Object.fromEntries(
          list.conflicts.map((c: { file: string; side: string; from: string }) => [
            c.file,
            [c.side, c.from],
          ]),
        );
        assert.deepStrictEqual(sides, {
          "plans/c1.md": ["remote", "A"],
          "plans/c2.md": ["local", "A"],
          "plans/c3.md": ["remote", "A"],
        });
        for (const c of list.conflicts) assert.match(c.copy, /\.sync-conflict-\d{8}T\d{6}Z$/);
        // copies are never synced
        const st = await ok(B, net, ["status"]);
        assert(
          ![...st.added, ...st.modified].some((p: string) => p.includes("sync-conflict")),
          JSON.stringify(st),
        );
        // keep remote where the copy is remote: the copy replaces the file
        const r1 = await ok(B, net, ["conflicts", "--keep", "remote", "plans/c1.md"]);
        assert.deepStrictEqual(r1.resolved.map((x: { action: string }) => x.action), ["replaced"]);
        assert.deepStrictEqual(await read(B, "plans/c1.md"), "c1 from A\n");
        // keep local where the copy is local: B's version goes back in place
        const r2 = await ok(B, net, ["conflicts", "--keep", "local", "plans/c2.md"]);
        assert.deepStrictEqual(r2.resolved.map((x: { action: string }) => x.action), ["replaced"]);
        assert.deepStrictEqual(await read(B, "plans/c2.md"), "c2 from B\n");
        // keep local where the copy is remote: the copy goes
        const r3 = await ok(B, net, ["conflicts", "--keep", "local", "plans/c3.md"]);
        assert.deepStrictEqual(r3.resolved.map((x: { action: string }) => x.action), ["removed"]);
        assert.deepStrictEqual(await read(B, "plans/c3.md"), "c3 from B\n");
        assert.deepStrictEqual((await ok(B, net, ["conflicts"])).conflicts, []);
        const debris = (await tree(B.config)).filter((l) => /sync-conflict|\.tmp /.test(l));
        assert.deepStrictEqual(debris, []);
        const none = await run(B, net, ["conflicts", "--keep", "local", "plans/c1.md"]);
        assert.deepStrictEqual(none.code, 2, none.stderr);
        // what was kept travels: A ends with B's c2 and c3 and A's c1
        await ok(B, net, ["push"]);
        await ok(A, net, ["pull"]);
        assert.deepStrictEqual(
          [
            await read(A, "plans/c1.md"),
            await read(A, "plans/c2.md"),
            await read(A, "plans/c3.md"),
          ],
          ["c1 from A\n", "c2 from B\n", "c3 from B\n"],
        );
      });
    } finally {
      await w.close();
    }
  },
});
