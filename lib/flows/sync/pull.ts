/**
 * `claude sync pull` (docs/PROTOCOL.md §8.6): read and check every other device's head, stage
 * and check every chunk needed, decide each file by the merge rules, and only then change the
 * config folder (one rename per file); the state is saved last.
 *
 * @module
 */

import { concat } from "../../util/encoding.ts";
import { createHash } from "node:crypto";
import { isSessionId } from "../../claude/config.ts";
import { lineTransform, localDirOf, projectRewrite } from "../../sync/canonical.ts";
import { withSyncLock } from "../../sync/lock.ts";
import { MCP_PATH, mergeMcpServers, readMcpView, unionMcpServers } from "../../sync/mcp_servers.ts";
import { CONFLICT_MARK } from "../../sync/scope.ts";
import type { FileEntry, Tombstone } from "../../sync/snapshot.ts";
import {
  type ConflictRecord,
  type FileState,
  saveState,
  statSig,
  syncDir,
} from "../../sync/state.ts";
import { ensurePrivateDir } from "../../util/fsutil.ts";
import type { FlowUi } from "../share/ui.ts";
import {
  canonicalStream,
  checkHead,
  counters,
  displayPath,
  fileKey,
  type Head,
  inLocalScope,
  localEntry,
  type LocalFile,
  localFiles,
  localPathOf,
  openSync,
  prunePageCache,
  quietUi,
  readHeads,
  replacedTest,
  rewriteOf,
  stageEntry,
  syncClient,
  type SyncContext,
  type SyncCounters,
  type SyncEnv,
} from "./common.ts";

/** What happened (or, with `dryRun`, would happen) to one file. */
export interface PullAction {
  /** `root//path` or the config-relative path */
  path: string;
  /** What the merge rules decided for the file (docs/PROTOCOL.md §8.6). */
  action:
    | "new"
    | "fast-forward"
    | "update"
    | "kept-longer"
    | "fork"
    | "merged"
    | "conflict"
    | "deleted"
    | "kept-changed";
  /** the device whose version it was */
  from: string;
  /** fork: the new session's file; conflict: the conflict copy */
  other?: string;
}

/** What a pull did. */
export interface PullResult {
  /** The other devices whose checked heads were read, with their label and newest seq. */
  devices: { device: string; label: string; seq: number }[];
  /** One entry per file a newer remote version reached: what was done with it. */
  actions: PullAction[];
  /** Nothing was written: the actions are what a real pull would do. */
  dryRun: boolean;
  /** What the pull read and fetched. */
  counters: SyncCounters;
}

interface Candidate {
  key: string;
  file?: FileEntry;
  gone?: Tombstone;
  head: Head;
}

type Relation = "same" | "local_prefix" | "remote_prefix" | "diverged";

async function relationOf(
  a: ReadableStream<Uint8Array>,
  b: ReadableStream<Uint8Array>,
): Promise<Relation> {
  const ra = a.getReader(), rb = b.getReader();
  let ba: Uint8Array = new Uint8Array(0), bb: Uint8Array = new Uint8Array(0);
  let ea = false, eb = false;
  try {
    for (;;) {
      if (ba.length === 0 && !ea) {
        const r = await ra.read();
        if (r.done) ea = true;
        else ba = r.value;
        continue;
      }
      if (bb.length === 0 && !eb) {
        const r = await rb.read();
        if (r.done) eb = true;
        else bb = r.value;
        continue;
      }
      if (ba.length === 0 && bb.length === 0) return "same";
      if (ba.length === 0) return "local_prefix";
      if (bb.length === 0) return "remote_prefix";
      const n = Math.min(ba.length, bb.length);
      for (let i = 0; i < n; i++) if (ba[i] !== bb[i]) return "diverged";
      ba = ba.subarray(n);
      bb = bb.subarray(n);
    }
  } finally {
    await ra.cancel().catch(() => {});
    await rb.cancel().catch(() => {});
  }
}

/**
 * The session ID a fork gets: a UUID (version 4 layout) derived from the session and the
 * remote version, so a pull re-run after a kill writes the same fork, not a second one.
 */
export function forkIdOf(sessionId: string, hash: string): string {
  const h = createHash("sha256").update(`cipherpost-sync-fork\0${sessionId}\0${hash}`).digest();
  h[6] = (h[6] & 0x0f) | 0x40;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

function stamp(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "Z");
}

/** Cap of an in-memory `history.jsonl` union (beyond it: last writer, conflict copy). */
const HISTORY_CAP = 64 << 20;

async function readAll(s: ReadableStream<Uint8Array>, cap: number): Promise<Uint8Array | null> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of s) {
    n += c.length;
    if (n > cap) return null;
    parts.push(c);
  }
  return concat(...parts);
}

/** Union of two `history.jsonl` texts by entry, ordered by `timestamp`, duplicates once. */
export function unionHistory(local: string, remote: string): string {
  const seen = new Set<string>();
  const rows: { line: string; ts: number; i: number }[] = [];
  let i = 0;
  for (const text of [local, remote]) {
    for (const line of text.split("\n")) {
      if (line === "" || seen.has(line)) continue;
      seen.add(line);
      let ts = Number.MAX_SAFE_INTEGER;
      try {
        const o = JSON.parse(line);
        if (typeof o?.timestamp === "number") ts = o.timestamp;
      } catch { /* kept, last */ }
      rows.push({ line, ts, i: i++ });
    }
  }
  rows.sort((a, b) => a.ts - b.ts || a.i - b.i);
  return rows.map((r) => `${r.line}\n`).join("");
}

/**
 * Pull every other device's head and merge it here: only files in this machine's scope
 * (`env.config`, `env.mcp`), placed by its path map. Holds the home's sync lock
 * (lib/sync/lock.ts) throughout.
 */
export async function syncPull(
  ctx: SyncContext,
  env: SyncEnv,
  o: { dryRun?: boolean } = {},
  uiIn?: FlowUi,
): Promise<PullResult> {
  return await withSyncLock(ctx.home, () => pullLocked(ctx, env, o, uiIn));
}

async function pullLocked(
  ctx: SyncContext,
  env: SyncEnv,
  o: { dryRun?: boolean },
  uiIn?: FlowUi,
): Promise<PullResult> {
  const ui = quietUi(uiIn);
  const { keys, device, state } = await openSync(ctx);
  const count = counters();
  const client = await syncClient(ctx);
  const pageCache = `${syncDir(ctx.home)}/pages`;
  // our own head: still there and not rolled back (a push with nothing to send does not look)
  if (state.heads[device]) await checkHead(client, keys, device, state);
  const heads = await readHeads(client, keys, state, { except: device, count, pageCache });
  await prunePageCache(pageCache, heads);
  const known = (dev: string) => state.known[dev] ?? 0;

  // new versions per file
  const cands = new Map<string, Candidate[]>();
  for (const h of heads) {
    const add = (c: Candidate, origin: [string, number]) => {
      const base = state.files[c.key]?.base;
      // a version seen before is old news, unless this machine has no record of the file
      // (it was out of this machine's scope then: a widened scope takes it now)
      if (origin[1] <= known(origin[0]) && base) return;
      if (c.file && base?.file?.hash === c.file.hash) return;
      if (c.gone && (base?.gone || !base)) return;
      const list = cands.get(c.key) ?? [];
      const same = list.find((x) =>
        (x.file ?? x.gone)!.origin.join() === origin.join() &&
        (x.file?.hash ?? "gone") === (c.file?.hash ?? "gone")
      );
      if (!same) list.push(c);
      cands.set(c.key, list);
    };
    for (const f of h.manifest.files) {
      add({ key: fileKey(f.root, f.path), file: f, head: h }, f.origin);
    }
    for (const g of h.manifest.gone) {
      add({ key: fileKey(g.root, g.path), gone: g, head: h }, g.origin);
    }
  }
  // drop versions another head has seen and replaced
  const replaced = replacedTest(heads);
  for (const [key, list] of cands) {
    const kept = list.filter((c) => !replaced(c.head, key, (c.file ?? c.gone)!.origin));
    if (kept.length) cands.set(key, kept);
    else cands.delete(key);
  }
  // files this machine does not take (its scope, excludes, the MCP opt-in) stay unknown
  for (const [key, list] of cands) {
    const ref = list[0].file ?? list[0].gone!;
    if (!await inLocalScope(ref.root, ref.path, env, state)) cands.delete(key);
  }

  // temp files a killed pull left beside their targets
  const temps: string[] = [];
  const local = await localFiles(env, state, (p) => temps.push(p));
  const stage = `${syncDir(ctx.home)}/stage`;
  await Deno.remove(stage, { recursive: true }).catch(() => {});
  await ensurePrivateDir(stage);
  let staged = 0;
  const stagedOf = new Map<Candidate, string>();
  const actions: PullAction[] = [];
  type Op =
    | { kind: "write"; src: string; dst: string; e: FileEntry; forkId?: string; oldId?: string }
    | { kind: "writeBytes"; bytes: Uint8Array; dst: string; e: FileEntry }
    | { kind: "rename"; from: string; to: string }
    | { kind: "delete"; path: string };
  const ops: Op[] = [];
  const next: Record<string, FileState> = structuredClone(state.files);
  const conflicts: Record<string, ConflictRecord> = {};
  try {
    // phase 1: stage and check every chunk needed (nothing in the config folder changes)
    const localOf = new Map<string, { lf: LocalFile; entry: FileEntry }>();
    // progress: the sizes of the remote versions, each counted once fetched or found here
    let total = 0, done = 0;
    for (const list of cands.values()) for (const c of list) total += c.file?.size ?? 0;
    for (const [key, list] of cands) {
      const lf = local.get(key);
      if (lf && !localOf.has(key)) {
        const { entry } = await localEntry(lf, state.files[key], env, keys, count);
        localOf.set(key, { lf, entry });
      }
      for (const c of list) {
        if (!c.file) continue;
        if (localOf.get(key)?.entry.hash !== c.file.hash) {
          const path = `${stage}/${staged++}`;
          await stageEntry(client, keys, c.file, path, count);
          stagedOf.set(c, path);
        }
        if (total > 0) ui.progress?.("download", done += c.file.size, total);
      }
    }

    // decisions
    for (const [key, list] of [...cands].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const first = list[0];
      const ref = first.file ?? first.gone!;
      const dst = await localPathOf(ref.root, ref.path, env, state);
      if (dst === null) continue; // a ${HOME} root on a machine without HOME
      const shown = displayPath(ref.root, ref.path);
      const base = state.files[key]?.base;
      const lo = localOf.get(key);
      let cur: { hash: string; mtime: number } | null = lo
        ? { hash: lo.entry.hash, mtime: lo.entry.mtime }
        : null;
      let changed = lo ? lo.entry.hash !== base?.file?.hash : !!base?.file;
      let newBase = base;
      const lww = (r: FileEntry, src: string, dst: string, shown: string, from: string) => {
        const copy = `${dst}${CONFLICT_MARK}${stamp()}`;
        const side = r.mtime > (cur?.mtime ?? 0) ? "local" : "remote";
        if (side === "local") {
          ops.push({ kind: "rename", from: dst, to: copy });
          ops.push({ kind: "write", src, dst, e: r });
        } else {
          ops.push({ kind: "write", src, dst: copy, e: r });
          changed = true;
        }
        conflicts[copy.slice(env.configDir.length + 1)] = { side, from };
        actions.push({ path: shown, action: "conflict", from, other: copy.split("/").pop() });
      };
      for (const c of list) {
        const from = c.head.manifest.label;
        if (c.gone) {
          newBase = { gone: c.gone };
          if (cur === null) continue;
          if (!changed) {
            ops.push({ kind: "delete", path: dst });
            actions.push({ path: shown, action: "deleted", from });
            cur = null;
          } else actions.push({ path: shown, action: "kept-changed", from });
          continue;
        }
        const r = c.file!;
        newBase = { file: r };
        if (cur?.hash === r.hash) continue;
        const src = stagedOf.get(c)!;
        const transcript = r.root !== undefined && r.path.endsWith(".jsonl");
        const history = r.root === undefined && r.path === "history.jsonl";
        if (cur === null) {
          ops.push({ kind: "write", src, dst, e: r });
          actions.push({ path: shown, action: "new", from });
        } else if (transcript && lo) {
          const rel = await relationOf(
            await canonicalStream(lo.lf, env),
            (await Deno.open(src, { read: true })).readable,
          );
          if (rel === "local_prefix") {
            ops.push({ kind: "write", src, dst, e: r });
            actions.push({ path: shown, action: "fast-forward", from });
          } else if (rel === "remote_prefix" || rel === "same") {
            actions.push({ path: shown, action: "kept-longer", from });
            changed = true;
            continue;
          } else if (/^[^/]+\.jsonl$/.test(r.path) && isSessionId(r.path.slice(0, -6))) {
            const newId = forkIdOf(r.path.slice(0, -6), r.hash);
            const forkPath = dst.replace(/[^/]+\.jsonl$/, `${newId}.jsonl`);
            ops.push({
              kind: "write",
              src,
              dst: forkPath,
              e: { ...r, path: `${newId}.jsonl` },
              forkId: newId,
              oldId: r.path.slice(0, -6),
            });
            actions.push({ path: shown, action: "fork", from, other: newId });
            changed = true;
            continue;
          } else {
            lww(r, src, dst, shown, from);
          }
        } else if (history && lo) {
          const l = await readAll(await canonicalStream(lo.lf, env), HISTORY_CAP);
          const rm = await readAll((await Deno.open(src, { read: true })).readable, HISTORY_CAP);
          if (l && rm) {
            const dec = new TextDecoder();
            const merged = new TextEncoder().encode(unionHistory(dec.decode(l), dec.decode(rm)));
            ops.push({ kind: "writeBytes", bytes: merged, dst, e: r });
            actions.push({ path: shown, action: "merged", from });
            changed = true;
            cur = { hash: "merged", mtime: Date.now() };
            continue;
          }
          lww(r, src, dst, shown, from);
        } else if (r.root === undefined && r.path === MCP_PATH && lo && changed) {
          // MCP servers changed on both sides: union by server name, the newer side's wins
          const merged = unionMcpServers(
            await readMcpView(lo.lf.abs),
            await readMcpView(src),
            r.mtime > (cur?.mtime ?? 0),
          );
          if (!merged) {
            lww(r, src, dst, shown, from);
          } else {
            ops.push({ kind: "writeBytes", bytes: merged, dst, e: r });
            actions.push({ path: shown, action: "merged", from });
            cur = { hash: "merged", mtime: Date.now() };
            continue;
          }
        } else if (!changed) {
          ops.push({ kind: "write", src, dst, e: r });
          actions.push({ path: shown, action: "update", from });
        } else {
          lww(r, src, dst, shown, from);
        }
        cur = { hash: r.hash, mtime: r.mtime };
      }
      next[key] = { base: newBase };
      // the local copy stays cached only when it is now exactly the base
      if (!changed && lo && newBase?.file?.hash === lo.entry.hash) {
        next[key].local = { st: lo.lf.st, entry: lo.entry };
      }
    }

    if (!o.dryRun) {
      // phase 2: apply, one rename per file
      for (const p of temps) await Deno.remove(p).catch(() => {});
      for (const op of ops) {
        if (op.kind === "delete") {
          await Deno.remove(op.path).catch((e) => {
            if (!(e instanceof Deno.errors.NotFound)) throw e;
          });
        } else if (op.kind === "rename") {
          await Deno.rename(op.from, op.to);
        } else {
          if (env.mcp && op.dst === env.mcp.view) {
            // .claude.json first: a kill before the view is written leaves them agreeing
            const bytes = op.kind === "write" ? await readMcpView(op.src) : op.bytes;
            await mergeMcpServers(env.mcp.claudeJson, bytes, env.homeDir);
          }
          await materialize(op, env);
          const key = fileKey(op.e.root, op.e.path);
          if (op.kind === "write" && !op.forkId && next[key]?.base?.file?.hash === op.e.hash) {
            const st = statSig(await Deno.stat(op.dst));
            next[key].local = { st, entry: op.e };
          }
        }
      }
      for (const h of heads) {
        state.heads[h.device] = { seq: h.manifest.seq, sha256: h.sha256 };
        state.known[h.device] = Math.max(known(h.device), h.manifest.seq);
        for (const [d, s] of Object.entries(h.manifest.seen)) {
          if (d !== device) state.known[d] = Math.max(known(d), s);
        }
      }
      state.files = next;
      if (Object.keys(conflicts).length) state.conflicts = { ...state.conflicts, ...conflicts };
      await saveState(ctx.home, state);
    }
  } finally {
    await Deno.remove(stage, { recursive: true }).catch(() => {});
  }
  if (actions.length) ui.status(`${actions.length} file(s) ${o.dryRun ? "to change" : "changed"}`);
  return {
    devices: heads.map((h) => ({
      device: h.device,
      label: h.manifest.label,
      seq: h.manifest.seq,
    })),
    actions,
    dryRun: o.dryRun === true,
    counters: count,
  };
}

/**
 * Write staged canonical content (or merged bytes) to its place, mapped to this machine: a
 * temp file beside `dst`, then one rename (the mtime is the entry's for staged content).
 */
export async function materialize(
  op:
    | { kind: "write"; src: string; dst: string; e: FileEntry; forkId?: string; oldId?: string }
    | { kind: "writeBytes"; bytes: Uint8Array; dst: string; e: FileEntry },
  env: SyncEnv,
): Promise<void> {
  const dir = op.dst.slice(0, op.dst.lastIndexOf("/"));
  await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
  const tmp = `${dir}/.cpsync-${crypto.randomUUID().slice(0, 8)}.tmp`;
  let rw = rewriteOf(op.e.root, op.e.path, env, true);
  if (op.kind === "write" && op.forkId && op.oldId && op.e.root !== undefined) {
    const d = localDirOf(op.e.root, env.homeDir, env.config?.map) ?? op.e.root;
    rw = projectRewrite(op.e.root, d, op.oldId, op.forkId);
  }
  const src = op.kind === "write"
    ? (await Deno.open(op.src, { read: true })).readable
    : new Blob([op.bytes as Uint8Array<ArrayBuffer>]).stream();
  const out = await Deno.open(tmp, { write: true, createNew: true, mode: op.e.mode || 0o600 });
  try {
    await src.pipeThrough(lineTransform(rw)).pipeTo(out.writable);
    await Deno.chmod(tmp, op.e.mode || 0o600);
    if (op.kind === "write") await Deno.utime(tmp, new Date(), new Date(op.e.mtime));
    await Deno.rename(tmp, op.dst);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
