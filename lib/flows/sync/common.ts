/**
 * What the sync flows share (docs/PROTOCOL.md §8): the context, the walk of the local tree with
 * the stat cache, canonical streams of local files, and the checked reads of heads and chunks.
 *
 * @module
 */

import { isSessionId } from "../../claude/config.ts";
import { projectDirName } from "../../claude/project_dir.ts";
import { firstCwdOfFile } from "../../claude/transcript.ts";
import type { HomeserverClient } from "../../homeserver/client.ts";
import { connect } from "../../homeserver/connect.ts";
import { readUpTo } from "../../homeserver/http.ts";
import { fileChunks } from "../../util/file_stream.ts";
import { CipherpostError, signatureError } from "../../util/errors.ts";
import { ensurePrivateDir, writeFileAtomic } from "../../util/fsutil.ts";
import { type ChunkRef, cutChunks } from "../../sync/chunker.ts";
import {
  folderMatches,
  historyRewriteOf,
  type LineRewrite,
  lineTransform,
  localDirOf,
  projectRewrite,
  rootToken,
} from "../../sync/canonical.ts";
import type { SyncConfig } from "../../sync/config.ts";
import { MCP_PATH, type McpPaths, refreshMcpView } from "../../sync/mcp_servers.ts";
import { chunkPath, DEVICE_RE, headPath, SYNC_DIR, SyncKeys } from "../../sync/keys.ts";
import {
  DEFAULT_RULES,
  inScope,
  type ScopeRules,
  scopeRules,
  walkScope,
} from "../../sync/scope.ts";
import {
  type FileEntry,
  type Manifest,
  MAX_SNAPSHOT,
  maxChunkObject,
  openChunk,
  type OpenedHead,
  openHead,
  openPages,
} from "../../sync/snapshot.ts";
import {
  deviceSecret,
  type FileState,
  loadState,
  sameStat,
  sha256Hex,
  type StatSig,
  statSig,
  type SyncState,
} from "../../sync/state.ts";
import type { FlowContext, FlowUi } from "../share/ui.ts";

/** Where the machine keeps Claude Code's files and who it is. */
export interface SyncEnv {
  /** Claude Code's config folder */
  configDir: string;
  /** `$HOME` (the `${HOME}` of roots), if known */
  homeDir?: string;
  /** the device's name for humans (≤ 64 characters, no controls) */
  label: string;
  /**
   * what this machine syncs: scope, includes, exclude globs, path map (docs/PROTOCOL.md §8.4;
   * `readSyncConfig` reads the home's); default: the `sessions` scope, no excludes, no map
   */
  config?: Omit<SyncConfig, "mcpServers">;
  /** the `mcpServers` opt-in: where `.claude.json` and this home's view of it are */
  mcp?: McpPaths;
}

const compiled = new WeakMap<object, ScopeRules>();

/** The compiled scope of an environment. */
export function rulesOf(env: SyncEnv): ScopeRules {
  const c = env.config;
  if (!c) return DEFAULT_RULES;
  let r = compiled.get(c);
  if (!r) compiled.set(c, r = scopeRules(c.scope, c.include, c.exclude));
  return r;
}

/**
 * True when a file (`root`, `path`) is in this machine's scope: where it would live here is in
 * the scope and not excluded (the MCP servers: when opted in). Files out of scope are neither
 * sent, deleted elsewhere, nor accepted.
 */
export async function inLocalScope(
  root: string | undefined,
  path: string,
  env: SyncEnv,
  state: SyncState,
): Promise<boolean> {
  if (root === undefined && path === MCP_PATH) return env.mcp !== undefined;
  const abs = await localPathOf(root, path, env, state);
  if (abs === null || !abs.startsWith(`${env.configDir}/`)) return false;
  return inScope(abs.slice(env.configDir.length + 1), rulesOf(env));
}

/** What the flows need: the context without the state, plus the cipherpost home. */
export interface SyncContext extends Omit<FlowContext, "state"> {
  /** the cipherpost home (device secret, sync state, stored homeserver session) */
  home: string;
}

/** Counters that tell what a run read and sent (`--json`). */
export interface SyncCounters {
  /** Files of the scope walked. */
  files: number;
  /** files whose stat matched the cache: not read */
  statHits: number;
  /** files read */
  filesRead: number;
  /** Bytes of local files read. */
  bytesRead: number;
  /** Sealed chunks written to the homeserver. */
  chunksUploaded: number;
  /** Snapshot pages written to the homeserver (sealed like chunks, §8.3). */
  pagesUploaded: number;
  /** Bytes written to the homeserver: chunks, snapshots and heads, sealed. */
  bytesUploaded: number;
  /** Sealed chunks fetched from the homeserver. */
  chunksDownloaded: number;
  /** Bytes fetched from the homeserver for those chunks. */
  bytesDownloaded: number;
}

/** Fresh counters. */
export function counters(): SyncCounters {
  return {
    files: 0,
    statHits: 0,
    filesRead: 0,
    bytesRead: 0,
    chunksUploaded: 0,
    pagesUploaded: 0,
    bytesUploaded: 0,
    chunksDownloaded: 0,
    bytesDownloaded: 0,
  };
}

/** The opened sync: keys, device, state. */
export interface Opened {
  keys: SyncKeys;
  device: string;
  state: SyncState;
}

/** Derive the keys and the device, load the state. */
export async function openSync(ctx: SyncContext): Promise<Opened> {
  const keys = new SyncKeys(ctx.me);
  const device = keys.deviceId(await deviceSecret(ctx.home));
  return { keys, device, state: await loadState(ctx.home) };
}

/** A client for our own files on our homeserver. */
export async function syncClient(ctx: SyncContext): Promise<HomeserverClient> {
  const conn = await connect(ctx.transport, {
    home: ctx.home,
    user: ctx.me.publicKey,
    seed: ctx.me.seed,
  });
  return conn.client;
}

/** A local file of the scope, keyed. */
export interface LocalFile {
  key: string;
  path: string;
  root?: string;
  /** absolute path */
  abs: string;
  info: Deno.FileInfo;
  st: StatSig;
}

/** The key of `(root, path)`. */
export function fileKey(root: string | undefined, path: string): string {
  return JSON.stringify([root ?? "", path]);
}

async function rootOfFolder(env: SyncEnv, folder: string): Promise<string> {
  const dir = `${env.configDir}/projects/${folder}`;
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(".jsonl") && isSessionId(e.name.slice(0, -6))) {
        names.push(e.name);
      }
    }
  } catch {
    /* unreadable: unknown root */
  }
  names.sort();
  for (const n of names.slice(0, 8)) {
    const cwd = await firstCwdOfFile(`${dir}/${n}`).catch(() => null);
    if (cwd && cwd.startsWith("/") && folderMatches(folder, cwd)) {
      return rootToken(cwd, env.homeDir, env.config?.map);
    }
  }
  return `?${folder}`;
}

/**
 * Walk the scope and key every file (project folders get their root, cached in the state);
 * with the MCP opt-in, the view of `.claude.json`'s `mcpServers` is refreshed and added.
 */
export async function localFiles(
  env: SyncEnv,
  state: SyncState,
  onTemp?: (abs: string) => void,
): Promise<Map<string, LocalFile>> {
  const out = new Map<string, LocalFile>();
  const files = await walkScope(
    env.configDir,
    (rel) => onTemp?.(`${env.configDir}/${rel}`),
    rulesOf(env),
  );
  if (env.mcp) {
    await refreshMcpView(env.mcp, env.homeDir);
    const info = await Deno.lstat(env.mcp.view);
    const key = fileKey(undefined, MCP_PATH);
    out.set(key, { key, path: MCP_PATH, abs: env.mcp.view, info, st: statSig(info) });
  }
  for (const f of files) {
    let root: string | undefined;
    let path = f.rel;
    const m = /^projects\/([^/]+)\/(.+)$/.exec(f.rel);
    if (m) {
      if (!/^[A-Za-z0-9-]{1,255}$/.test(m[1])) continue; // not a Claude Code project folder
      root = state.roots[m[1]] ??= await rootOfFolder(env, m[1]);
      path = m[2];
    } else if (f.rel.startsWith("projects/")) continue; // loose files in projects/
    const key = fileKey(root, path);
    out.set(key, {
      key,
      path,
      root,
      abs: `${env.configDir}/${f.rel}`,
      info: f.info,
      st: statSig(f.info),
    });
  }
  return out;
}

/** The rewrite from local to canonical content (`toLocal` false) or back, for a file. */
export function rewriteOf(
  root: string | undefined,
  path: string,
  env: SyncEnv,
  toLocal: boolean,
): LineRewrite | null {
  if (root !== undefined) {
    if (!/\.(jsonl|json)$/.test(path)) return null;
    const dir = localDirOf(root, env.homeDir, env.config?.map);
    if (dir === null || dir === root) return null;
    return toLocal ? projectRewrite(root, dir) : projectRewrite(dir, root);
  }
  if (path === "history.jsonl") return historyRewriteOf(env.homeDir, env.config?.map, toLocal);
  return null;
}

/** The canonical content of a local file, streamed. */
export async function canonicalStream(
  f: { abs: string; root?: string; path: string },
  env: SyncEnv,
  count?: SyncCounters,
): Promise<ReadableStream<Uint8Array>> {
  const file = await Deno.open(f.abs, { read: true });
  const raw = fileChunks(file, 1 << 20, (n) => {
    if (count) count.bytesRead += n;
  });
  return raw.pipeThrough(lineTransform(rewriteOf(f.root, f.path, env, false)));
}

/**
 * The entry of a local file: from the stat cache when its stat is unchanged (not read), else
 * read, canonicalised and cut against `base`; `onNew` gets every chunk not reused.
 */
export async function localEntry(
  f: LocalFile,
  fs: FileState | undefined,
  env: SyncEnv,
  keys: SyncKeys,
  count: SyncCounters,
  onNew?: (id: string, data: Uint8Array) => Promise<void>,
): Promise<{ entry: FileEntry; read: boolean }> {
  count.files++;
  if (fs?.local && sameStat(fs.local.st, f.st)) {
    count.statHits++;
    return { entry: fs.local.entry, read: false };
  }
  count.filesRead++;
  const base: ChunkRef[] = fs?.base?.file?.chunks ?? fs?.local?.entry.chunks ?? [];
  const chunks: ChunkRef[] = [];
  const s = await cutChunks(await canonicalStream(f, env, count), base, keys, async (c) => {
    chunks.push([c.id, c.len]);
    if (!c.reused && onNew) await onNew(c.id, c.data);
  });
  const entry: FileEntry = {
    path: f.path,
    mode: (f.info.mode ?? 0o600) & 0o777,
    mtime: f.st.mtime,
    size: s.size,
    hash: s.hash,
    chunks,
    origin: fs?.base?.file?.origin ?? ["0".repeat(32), 1],
  };
  if (f.root !== undefined) entry.root = f.root;
  if (fs?.base?.file && fs.base.file.hash === entry.hash) entry.origin = fs.base.file.origin;
  return { entry, read: true };
}

/** The device folders listed under `/pub/cipherpost/sync/`. */
export async function listDevices(client: HomeserverClient): Promise<string[]> {
  const out: string[] = [];
  for await (const e of client.listAll(SYNC_DIR, { shallow: true, maxEntries: 10_000 })) {
    const m = /^\/pub\/cipherpost\/sync\/([0-9a-f]{32})\/$/.exec(e.path);
    if (m) out.push(m[1]);
  }
  return out.sort();
}

/** A head read and checked. */
export interface Head {
  device: string;
  manifest: Manifest;
  sha256: string;
  /** the ids of its pages */
  pageIds: string[];
}

/** Read a head object and check it (§8.3), not its pages; null on 404. */
export async function readHeadObject(
  client: HomeserverClient,
  path: string,
  keys: SyncKeys,
  device: string,
): Promise<{ head: OpenedHead; sha256: string } | null> {
  let res;
  try {
    res = await client.get(path);
  } catch (e) {
    if (e instanceof CipherpostError && e.kind === "not_found") return null;
    throw e;
  }
  if (!res) return null;
  const { bytes, more } = await readUpTo(res.body, MAX_SNAPSHOT);
  if (more) throw signatureError("snapshot too large");
  return { head: await openHead(bytes, keys, device), sha256: sha256Hex(bytes) };
}

/** Read a snapshot: its head and every page, checked (§8.3); null when the head is 404. */
export async function readSnapshot(
  client: HomeserverClient,
  path: string,
  keys: SyncKeys,
  device: string,
  count: SyncCounters = counters(),
): Promise<{ manifest: Manifest; sha256: string } | null> {
  const r = await readHeadObject(client, path, keys, device);
  if (r === null) return null;
  const manifest = await openPages(
    r.head,
    keys,
    (id, len) => fetchChunk(client, keys, id, len, count),
  );
  return { manifest, sha256: r.sha256 };
}

/**
 * Read a device's head object (not its pages) and check it against what this machine saw
 * before: an older seq, or the same seq with other bytes, or a head gone that was seen, is exit 3.
 */
export async function checkHead(
  client: HomeserverClient,
  keys: SyncKeys,
  device: string,
  state: SyncState,
): Promise<{ head: OpenedHead; sha256: string } | null> {
  if (!DEVICE_RE.test(device)) return null;
  const r = await readHeadObject(client, headPath(device), keys, device);
  const seen = state.heads[device];
  if (r === null) {
    if (seen) throw signatureError("a head seen before is gone");
    return null;
  }
  if (seen) {
    if (r.head.seq < seen.seq) throw signatureError("rolled-back head");
    if (r.head.seq === seen.seq && r.sha256 !== seen.sha256) {
      throw signatureError("head swapped at the same seq");
    }
  }
  return r;
}

/**
 * {@link checkHead}, then the head's pages read and checked: the device's tree. With `pageCache`
 * (a private folder), pages read before come from there (checked again: id and length), and
 * pages fetched are kept there, so an unchanged head costs one request.
 */
export async function readHead(
  client: HomeserverClient,
  keys: SyncKeys,
  device: string,
  state: SyncState,
  count: SyncCounters = counters(),
  pageCache?: string,
): Promise<Head | null> {
  const r = await checkHead(client, keys, device, state);
  if (r === null) return null;
  const manifest = await openPages(r.head, keys, async (id, len) => {
    if (pageCache === undefined) return await fetchChunk(client, keys, id, len, count);
    const path = `${pageCache}/${id}`;
    try {
      const b = await Deno.readFile(path);
      if (b.length === len && keys.chunkId(b) === id) return b;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const plain = await fetchChunk(client, keys, id, len, count);
    await ensurePrivateDir(pageCache);
    await writeFileAtomic(path, plain, 0o600);
    return plain;
  });
  return { device, manifest, sha256: r.sha256, pageIds: r.head.pages.map(([id]) => id) };
}

/** Remove from a page cache every page none of `heads` refers to. */
export async function prunePageCache(pageCache: string, heads: Head[]): Promise<void> {
  const keep = new Set<string>();
  for (const h of heads) for (const id of h.pageIds) keep.add(id);
  try {
    for await (const e of Deno.readDir(pageCache)) {
      if (!keep.has(e.name)) await Deno.remove(`${pageCache}/${e.name}`).catch(() => {});
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * Every device's head that reads and checks (§8.3): the devices listed under
 * `/pub/cipherpost/sync/` and those this machine saw before, but `o.except`, sorted by device
 * (pages through `o.pageCache` when given, see {@link readHead}).
 */
export async function readHeads(
  client: HomeserverClient,
  keys: SyncKeys,
  state: SyncState,
  o: { except?: string; count?: SyncCounters; pageCache?: string } = {},
): Promise<Head[]> {
  const names = [...new Set([...await listDevices(client), ...Object.keys(state.heads)])]
    .filter((d) => d !== o.except).sort();
  const heads: Head[] = [];
  for (const d of names) {
    const h = await readHead(client, keys, d, state, o.count, o.pageCache);
    if (h) heads.push(h);
  }
  return heads;
}

/**
 * A test of "seen and replaced" over a set of heads (§8.6): true when a head other than `from`
 * has seen `origin` (its `seen` reaches that seq) and holds another version of `key`.
 */
export function replacedTest(
  heads: Head[],
): (from: Head, key: string, origin: [string, number]) => boolean {
  const versions = new Map<Head, Map<string, [string, number]>>();
  for (const h of heads) {
    const m = new Map<string, [string, number]>();
    for (const f of h.manifest.files) m.set(fileKey(f.root, f.path), f.origin);
    for (const g of h.manifest.gone) m.set(fileKey(g.root, g.path), g.origin);
    versions.set(h, m);
  }
  return (from, key, [od, os]) =>
    heads.some((h2) => {
      if (h2 === from || (h2.manifest.seen[od] ?? 0) < os) return false;
      const v = versions.get(h2)!.get(key);
      return v !== undefined && (v[0] !== od || v[1] !== os);
    });
}

/** Chunks fetched at once while staging a file. */
const DOWNLOADS = 4;

/**
 * Download and check every chunk of `entry` into the new file `path` (0600), in order, up to
 * four at once (at most four chunks in memory). A missing or bad chunk is exit 3.
 */
export async function stageEntry(
  client: HomeserverClient,
  keys: SyncKeys,
  entry: FileEntry,
  path: string,
  count: SyncCounters,
): Promise<void> {
  const f = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  try {
    const window: Promise<Uint8Array>[] = [];
    const writeNext = async () => {
      const plain = await window.shift()!;
      let off = 0;
      while (off < plain.length) off += await f.write(plain.subarray(off));
    };
    for (const [id, len] of entry.chunks) {
      const p = fetchChunk(client, keys, id, len, count);
      p.catch(() => {}); // awaited in order below; a later failure is not unhandled
      window.push(p);
      if (window.length >= DOWNLOADS) await writeNext();
    }
    while (window.length) await writeNext();
  } finally {
    f.close();
  }
}

/** Download and check one chunk; a missing one is a dropped object (exit 3). */
export async function fetchChunk(
  client: HomeserverClient,
  keys: SyncKeys,
  id: string,
  len: number,
  count: SyncCounters,
): Promise<Uint8Array> {
  let res;
  try {
    res = await client.get(chunkPath(id));
  } catch (e) {
    if (e instanceof CipherpostError && e.kind === "not_found") {
      throw signatureError("a chunk is missing");
    }
    throw e;
  }
  if (!res) throw signatureError("a chunk is missing");
  const { bytes, more } = await readUpTo(res.body, maxChunkObject(len));
  if (more) throw signatureError("chunk too large");
  count.chunksDownloaded++;
  count.bytesDownloaded += bytes.length;
  return await openChunk(bytes, id, len, keys);
}

/** The local folder name of a root (an existing folder of that root wins). */
export async function folderOfRoot(
  root: string,
  env: SyncEnv,
  state: SyncState,
): Promise<string> {
  for (const [folder, r] of Object.entries(state.roots)) if (r === root) return folder;
  if (root.startsWith("?")) return root.slice(1);
  const dir = localDirOf(root, env.homeDir, env.config?.map)!;
  let phys = dir;
  try {
    phys = await Deno.realPath(dir);
  } catch { /* not here (yet): its name as given */ }
  const folder = projectDirName(phys);
  state.roots[folder] = root;
  return folder;
}

/** The absolute local path of a key. */
export async function localPathOf(
  root: string | undefined,
  path: string,
  env: SyncEnv,
  state: SyncState,
): Promise<string | null> {
  if (root === undefined) {
    if (path === MCP_PATH) return env.mcp?.view ?? null;
    return `${env.configDir}/${path}`;
  }
  if (!root.startsWith("?") && localDirOf(root, env.homeDir, env.config?.map) === null) {
    return null;
  }
  return `${env.configDir}/projects/${await folderOfRoot(root, env, state)}/${path}`;
}

/** Escape-free short form of a key for messages and `--json` (root/path). */
export function displayPath(root: string | undefined, path: string): string {
  return root === undefined ? path : `${root}//${path}`;
}

/** The UI, or one that says nothing. */
export function quietUi(ui: FlowUi | undefined): FlowUi {
  return ui ?? { status() {}, note() {} };
}
