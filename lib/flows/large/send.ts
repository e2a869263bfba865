/**
 * Sending a large share (docs/PROTOCOL.md §5.3): stage the source as one file, encrypt its
 * parts in workers to a per-share content key, upload them to our homeserver, and only then
 * publish the pointer as a v2 share. Resumable: a re-run with the same source and recipient
 * uploads only the parts the server does not hold with our hash.
 *
 * @module
 */

import { WorkFiles } from "../../state/work_files.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { identityToRecipient } from "age-encryption";
import { createHash } from "node:crypto";
import { createBLAKE3, type IHasher } from "hash-wasm";
import { ageDecrypt, ageEncrypt } from "../../crypto/age.ts";
import { newPinLayer, sealShare } from "../../crypto/pin.ts";
import {
  ageIdentityOf,
  ageIdentityOfSeed,
  ageRecipientOfEd,
  type Keypair,
  keypairFromSeed,
  sign,
} from "../../crypto/keys.ts";
import { ageStreamEncrypt } from "../../crypto/age_stream.ts";
import type { HomeserverClient } from "../../homeserver/client.ts";
import { connect } from "../../homeserver/connect.ts";
import { encodeZ32 } from "../../pkarr/public_key.ts";
import { packetToBytes } from "../../pkarr/signed_packet.ts";
import type { Transport } from "../../pkarr/transport.ts";
import {
  type AnyPointer,
  choosePartSize,
  ciphertextHashOf,
  closeJson,
  closePath,
  closeSigMessage,
  DEFAULT_STREAM_PART_SIZE,
  encodeBlobStatus,
  encodePointerEnvelope,
  type LargePointer,
  MAX_LARGE_SIZE,
  maxCipherLength,
  PART_SIG_BYTES,
  partCount,
  partLength,
  partPath,
  partSigMessage,
  statusPath,
  type StreamPointer,
} from "../../protocol/large_manifest.ts";
import { expiresAt, shareRef } from "../../protocol/record.ts";
import { formatV2Uri } from "../../protocol/share_uri.ts";
import { buildV2Share } from "../../protocol/v2.ts";
import { publishPackets } from "../share/v2_transfer.ts";
import type { State } from "../../state/state.ts";
import type { JsonValue } from "../../util/canonical_json.ts";
import {
  b64decode,
  b64encode,
  concat,
  fromHex,
  fromUtf8,
  toHex,
  utf8,
} from "../../util/encoding.ts";
import { CipherpostError } from "../../util/errors.ts";
import { fileChunks } from "../../util/file_stream.ts";
import { eachLimited, PartPool } from "./pool.ts";
import { writeTreeTar } from "./tar_fs.ts";
import { recipientOf } from "../share/recipient.ts";
import type { FlowContext, FlowUi } from "../share/ui.ts";
import type { SendResult } from "../share/send.ts";

/** Where the payload comes from. */
export type LargeSource =
  | { kind: "path"; path: string }
  | {
    kind: "stream";
    stream: ReadableStream<Uint8Array>;
    name?: string;
    /** the stream's exact length when known: shown to the receiver before the first part */
    size?: number;
  };

/** What to send. */
export interface LargeSendRequest {
  /** null = to self */
  recipient: string | null;
  /** What the share is for, shown to the recipient (not secret; C0 controls are refused). */
  purpose: string;
  /** What to send: a file or folder path, or a stream. */
  source: LargeSource;
  /** The share's lifetime in seconds. */
  ttlSeconds: bigint;
  /** A PIN the recipient must also type (Argon2id), or null. */
  pin: string | null;
  /** Burn after read: the recipient's tool shows it once. */
  burn: boolean;
  /** Web Workers encrypting parts; 0 (the default) runs them as concurrent streams here */
  workers?: number;
  /** plaintext part size (tests); default by size (§5.1), or 8 MiB for a streaming share */
  partSize?: number;
  /**
   * true (the default): a streaming pointer (§5.7), published before the first part is sealed,
   * and a standard input goes through as it is read; false: a version-1 pointer (§5.1–5.3),
   * published once every part is sealed, for receivers that predate §5.7.
   */
  streaming?: boolean;
  /**
   * Called once the pointer is published (every part sealed, uploads still going on, §5.3 step
   * 4): the receiver can start from here. Not called for a share that fails before that.
   * `log` writes a line to the same place as the UI's (clearing a progress bar first).
   */
  onPublished?: (share: PublishedShare, log: (line: string) => void) => void | Promise<void>;
  /**
   * @ignore How the pointer goes out instead of a v2 share on the DHT: a room's file drop
   * posts it in a signed room message (docs/PROTOCOL.md §9.8). `recipient`, `pin`, `burn` and
   * `ttlSeconds` are then unused.
   */
  announce?: PointerAnnounce;
}

/** Another way out for the pointer of a large send than a v2 share (see {@link LargeSendRequest}). */
export interface PointerAnnounce {
  /** keeps this send's resume record apart from a share's of the same source (e.g. `room:<id>`) */
  tag: string;
  /**
   * Post the pointer (every part sealed, its hashes fixed; uploads still going on). Called once
   * per pointer: a re-run of an interrupted send that had posted it does not call it again.
   * Returns how the result is named ({@link PublishedShare}: `uri` and `shareRef` are the
   * announcement's own names, `packets` 0).
   */
  publish: (pointer: LargePointer) => Promise<PublishedShare>;
}

/** A large share whose pointer is out. */
export interface PublishedShare {
  /** The `cipherpost://` URI to give the recipient. */
  uri: string;
  /** The share's 32-hex reference. */
  shareRef: string;
  /** Unix seconds when the share expires. */
  expiresAt: number;
  /** DHT packets the share took. */
  packets: number;
}

/** What was sent: a v2 share ({@link SendResult}) whose payload is on the homeserver. */
export interface LargeSendResult extends SendResult {
  /** A large share is a v2 share. */
  protocol: 2;
  /** Parts on the homeserver. */
  parts: number;
  /** parts uploaded by this run */
  uploaded: number;
  /** parts found on the homeserver with our hash and kept */
  reused: number;
  /** DHT packets the share took. */
  packets: number;
}

interface Staged {
  file: string;
  size: number;
  kind: "file" | "directory";
  name: string;
  fileCount: number;
  topEntries: string[];
  /** identifies the content for the resume key */
  id: string;
  /** remove the staged copy when done */
  temporary: boolean;
  /** release the lock on this source (see {@link lockSource}) */
  release: () => void;
}

interface ResumeRecord {
  blob_id: string;
  part_size: number;
  size: number;
  /** content identity, age-encrypted to the sender's own key, base64 */
  sealed_identity: string;
  /** part index → SHA-256 hex of its kept ciphertext (`up-<blob_id>/part-i`) */
  sealed: Record<string, string>;
  /** part index → SHA-256 hex of the uploaded part */
  done: Record<string, string>;
  /** set once the pointer is published (its part hashes are then fixed) */
  published?: { share_ref: string; uri: string; expires_at: number; packets: number };
}

const hex = (b: Uint8Array) => toHex(b);

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  const f = await Deno.open(path, { read: true });
  for await (const c of f.readable) h.update(c);
  return h.digest("hex");
}

/**
 * SHA-256 (hex) and the homeserver's ETag (quoted base64 BLAKE3) of a stream; null if longer.
 * The SHA-256 leaves out the first `skip` bytes (a streaming part's signature, §5.7).
 */
async function hashStream(
  s: ReadableStream<Uint8Array>,
  max: number,
  skip = 0,
  etag = true,
): Promise<{ sha256: string; etag: string; length: number } | null> {
  const h = createHash("sha256");
  const b = etag ? await createBLAKE3() : null;
  let n = 0;
  for await (const c of s) {
    const before = n;
    n += c.length;
    if (n > max) return null;
    h.update(before >= skip ? c : c.subarray(Math.min(c.length, skip - before)));
    b?.update(c);
  }
  return { sha256: h.digest("hex"), etag: b ? etagOf(b) : "", length: n };
}

/** The ETag a homeserver gives content whose BLAKE3 is `b` (docs/PROTOCOL.md §4.4). */
function etagOf(b: IHasher): string {
  return `"${b64encode(b.digest("binary"))}"`;
}

function baseName(p: string): string {
  const parts = p.replace(/\/+$/, "").split("/");
  const b = parts[parts.length - 1] || "payload";
  const bytes = utf8(b);
  return bytes.length <= 255 ? b : fromUtf8(bytes.subarray(0, 200)).replace(/\uFFFD+$/, "");
}

/**
 * Take the lock of one source (a real path, or a standard input's content hash): two sends of
 * one source from one home would share its resume records, kept ciphertexts and staged copy,
 * and each would overwrite what the other publishes. The second says so at once (it does not
 * wait: a send can take hours).
 */
async function lockSource(state: State, source: string, shown: string): Promise<() => void> {
  const release = await state.tryLock(`send-${hex(sha256(utf8(source))).slice(0, 32)}`);
  if (release) return release;
  throw new CipherpostError(
    "config",
    `configuration error: another send of ${shown} is running from this home`,
    "wait for it to finish (or stop it), then run this send again",
  );
}

async function stage(state: State, src: LargeSource, warn: (l: string) => void): Promise<Staged> {
  const dir = await new WorkFiles(state).dir("large");
  if (src.kind === "path") {
    let real: string;
    try {
      real = await Deno.realPath(src.path);
    } catch {
      throw new CipherpostError("io", `io error: cannot read ${src.path}`);
    }
    const release = await lockSource(state, `path:${real}`, src.path);
    try {
      return await stagePath(dir, src.path, real, release, warn);
    } catch (e) {
      release();
      throw e;
    }
  }
  return await stageStream(state, dir, src);
}

async function stagePath(
  dir: string,
  shown: string,
  real: string,
  release: () => void,
  warn: (l: string) => void,
): Promise<Staged> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(real);
  } catch {
    throw new CipherpostError("io", `io error: cannot read ${shown}`);
  }
  if (st.isFile) {
    return {
      file: real,
      size: st.size,
      kind: "file",
      name: baseName(real),
      fileCount: 1,
      topEntries: [],
      id: `file:${real}:${st.size}:${st.mtime?.getTime() ?? 0}`,
      temporary: false,
      release,
    };
  }
  if (!st.isDirectory) {
    throw new CipherpostError("io", `io error: ${shown} is not a file or a directory`);
  }
  const file = `${dir}/stage-${hex(sha256(utf8(real))).slice(0, 32)}.tar`;
  await Deno.remove(file).catch(() => {});
  const out = await Deno.open(file, { write: true, createNew: true, mode: 0o600 });
  let summary;
  try {
    summary = await writeTreeTar(real, out, warn);
    await out.sync();
  } catch (e) {
    await Deno.remove(file).catch(() => {});
    if (e instanceof CipherpostError) throw e;
    throw new CipherpostError(
      "io",
      `io error: cannot read the tree ${shown}: ${(e as Error).message}`,
    );
  } finally {
    out.close();
  }
  return {
    file,
    size: summary.size,
    kind: "directory",
    name: baseName(real),
    fileCount: summary.fileCount,
    topEntries: summary.topEntries,
    id: `dir:${real}:${await sha256File(file)}`,
    temporary: true,
    release,
  };
}

async function stageStream(
  state: State,
  dir: string,
  src: Extract<LargeSource, { kind: "stream" }>,
): Promise<Staged> {
  const file = `${dir}/stage-${hex(crypto.getRandomValues(new Uint8Array(16)))}.bin`;
  const out = await Deno.open(file, { write: true, createNew: true, mode: 0o600 });
  const h = createHash("sha256");
  let size = 0;
  try {
    for await (const c of src.stream) {
      size += c.length;
      if (size > MAX_LARGE_SIZE) {
        throw new CipherpostError("too_large", `input exceeds ${MAX_LARGE_SIZE} bytes`);
      }
      h.update(c);
      let off = 0;
      while (off < c.length) off += await out.write(c.subarray(off));
    }
    await out.sync();
  } catch (e) {
    out.close();
    await Deno.remove(file).catch(() => {});
    throw e;
  }
  out.close();
  const id = `stream:${h.digest("hex")}`;
  let release: () => void;
  try {
    release = await lockSource(state, id, "this standard input");
  } catch (e) {
    await Deno.remove(file).catch(() => {});
    throw e;
  }
  // name the staged copy by its content, so a re-run finds the same file
  const named = `${dir}/stage-${hex(sha256(utf8(id))).slice(0, 32)}.bin`;
  try {
    await Deno.rename(file, named);
  } catch (e) {
    release();
    throw e;
  }
  return {
    file: named,
    size,
    kind: "file",
    name: src.name ?? "stdin",
    fileCount: 1,
    topEntries: [],
    id,
    temporary: true,
    release,
  };
}

/**
 * Send a large share from `ctx.me` through its homeserver: connect with the session stored in
 * the home (or sign in with the identity and store the session), then {@link largeSend}.
 *
 * @throws CipherpostError: "io" (source), "too_large", homeserver errors (no homeserver, no
 *   session), "network" (DHT).
 */
export async function sendLarge(
  ctx: FlowContext,
  req: LargeSendRequest,
  ui: FlowUi,
): Promise<LargeSendResult> {
  const { transport: t, state, me } = ctx;
  const conn = await connect(t, { home: state.home, user: me.publicKey, seed: me.seed });
  ui.status(`Uploading to homeserver ${conn.endpoint.homeserver}...`);
  return await largeSend(t, conn.client, conn.endpoint.homeserver, state, me, req, ui);
}

/**
 * Send a large share through `store` (a client for our own files on `homeserver`).
 *
 * @throws CipherpostError: "io" (source), "too_large", homeserver errors, "network" (DHT).
 */
export async function largeSend(
  t: Transport,
  store: HomeserverClient,
  homeserver: string,
  state: State,
  sender: Keypair,
  req: LargeSendRequest,
  ui: FlowUi,
): Promise<LargeSendResult> {
  recipientOf(sender, req.recipient); // a bad recipient fails before any staging
  const c = { t, store, homeserver, state, sender, req, ui };
  // a room drop carries a version-1 pointer in its message (§9.8): never streaming
  const streaming = req.announce ? false : (req.streaming ?? true);
  // a stream goes through as it is read (§5.7): never staged, never resumed
  if (streaming && req.source.kind === "stream") {
    return await sendStreaming(c, req.source);
  }
  const staged = await stage(state, req.source, (l) => ui.status(l));
  try {
    if (staged.size > MAX_LARGE_SIZE) {
      throw new CipherpostError(
        "too_large",
        `payload of ${staged.size} bytes exceeds ${MAX_LARGE_SIZE}`,
      );
    }
    return streaming ? await sendStreaming(c, { staged }) : await sendStaged(c, staged);
  } finally {
    staged.release();
  }
}

/** What {@link largeSend} was given. */
interface SendContext {
  t: Transport;
  store: HomeserverClient;
  homeserver: string;
  state: State;
  sender: Keypair;
  req: LargeSendRequest;
  ui: FlowUi;
}

/** {@link largeSend} once the source is staged (a restart as a new share comes back here). */
async function sendStaged(c: SendContext, staged: Staged): Promise<LargeSendResult> {
  const { sender, req, store, ui } = c;
  const { z32: recipientStr } = recipientOf(sender, req.recipient);
  const partSize = req.partSize ?? choosePartSize(staged.size);
  const parts = partCount(staged.size, partSize);
  const run = await openSendResume(c, staged, partSize, parts, recipientStr);
  const { etags, reused } = await recheckParts(c, run);
  const { record, work, key, tmpDir } = run;
  const todo = Array.from({ length: parts }, (_, i) => i).filter((i) => !record.done[String(i)]);
  const toSeal = todo.filter((i) => !record.sealed[String(i)]);
  if (record.published && toSeal.length > 0) {
    // the published pointer fixed every part's hash, and a part's ciphertext is gone
    ui.status(
      `the share ${record.published.uri} sent before cannot be completed (the kept ciphertext of ` +
        `part ${toSeal[0]} is gone); sending the payload again as a new share`,
    );
    // its receivers must not wait for parts that will never come (§5.5 step 4): no status file
    await store.delete(statusPath(record.blob_id)).catch(() => false);
    await work.removeRecord("send", key);
    await Deno.remove(tmpDir, { recursive: true }).catch(() => {});
    // the staged source is reused: a standard input cannot be read twice
    return await sendStaged(c, staged);
  }

  const published = await sealAndUpload(c, run, { todo, toSeal, etags });
  await finishSend(c, run, published, etags);
  return {
    uri: published.uri,
    shareRef: published.shareRef,
    expiresAt: published.expiresAt,
    size: staged.size,
    protocol: 2,
    parts,
    uploaded: todo.length,
    reused,
    packets: published.packets,
  };
}

/** A large send in progress: its resume record and where its kept ciphertext lives. */
interface SendRun {
  staged: Staged;
  partSize: number;
  parts: number;
  layout: { size: number; partSize: number };
  /** the record's key: who, to whom, how and what */
  key: string;
  work: WorkFiles;
  record: ResumeRecord;
  /** the content identity (age) of the parts */
  identity: string;
  contentRecipient: string;
  /** save the record (serialised) */
  save(): Promise<void>;
  /** resolves when every save started so far is written */
  saved(): Promise<void>;
  tmpDir: string;
  keptFile(i: number): string;
}

/** Stage 1: the resume record, kept (same sender, recipient, mode, source and part size) or new. */
async function openSendResume(
  c: SendContext,
  staged: Staged,
  partSize: number,
  parts: number,
  recipientStr: string | null,
): Promise<SendRun> {
  const { state, sender, req, ui } = c;
  const senderZ32 = encodeZ32(sender.publicKey);
  const key = hex(
    sha256(
      utf8(
        [
          senderZ32,
          req.announce ? `announce:${req.announce.tag}` : recipientStr ?? "self",
          req.pin ? "pin" : "",
          staged.id,
          partSize,
        ].join("\n"),
      ),
    ),
  ).slice(0, 32);
  const work = new WorkFiles(state);
  let rec: ResumeRecord | null = null;
  try {
    const o = (await work.readRecord("send", key)) as unknown as ResumeRecord;
    if (o.size === staged.size && o.part_size === partSize && /^[0-9a-f]{32}$/.test(o.blob_id)) {
      rec = { ...o, sealed: o.sealed ?? {} };
    }
  } catch { /* none or damaged: start afresh */ }
  let identity: string;
  if (rec) {
    identity = fromUtf8(
      await ageDecrypt(
        b64decode(rec.sealed_identity),
        ageIdentityOfSeed(sender.seed),
      ),
    );
    ui.status(`resuming: ${Object.keys(rec.done).length} of ${parts} parts were uploaded before`);
  } else {
    const secret = crypto.getRandomValues(new Uint8Array(32));
    identity = ageIdentityOf(secret);
    rec = {
      blob_id: hex(crypto.getRandomValues(new Uint8Array(16))),
      part_size: partSize,
      size: staged.size,
      sealed_identity: b64encode(
        await ageEncrypt(utf8(identity), ageRecipientOfEd(sender.publicKey)),
      ),
      sealed: {},
      done: {},
    };
  }
  const record = rec;
  const layout = { size: staged.size, partSize };
  let saving = Promise.resolve();
  const save = () => {
    saving = saving.then(() => work.saveRecord("send", key, record as unknown as JsonValue));
    return saving;
  };
  await save();
  const contentRecipient = await identityToRecipient(identity);
  const tmpDir = await work.subdir("large", `up-${record.blob_id}`);
  const keptFile = (i: number) => `${tmpDir}/part-${i}`;

  return {
    staged,
    partSize,
    parts,
    layout,
    key,
    work,
    record,
    identity,
    contentRecipient,
    save,
    saved: () => saving,
    tmpDir,
    keptFile,
  };
}

/**
 * Stage 2: parts recorded as uploaded must be on the homeserver with our hash (GET + SHA-256,
 * never the ETag alone), and parts sealed before must still hash as recorded; the others are
 * done again.
 */
async function recheckParts(
  c: SendContext,
  run: SendRun,
): Promise<{ etags: Map<number, string>; reused: number }> {
  const { store, ui } = c;
  const { record, layout, keptFile, save } = run;
  /** part index → the ETag of what we uploaded or found (for the check at the end) */
  const etags = new Map<number, string>();
  let reused = 0;
  for (const [k, h] of Object.entries(record.done)) {
    const i = Number(k);
    let ok = false;
    try {
      const got = await store.get(partPath(record.blob_id, i));
      const hashed = got && await hashStream(got.body, partLength(layout, i) + (1 << 20));
      if (hashed && hashed.sha256 === h) {
        ok = true;
        etags.set(i, hashed.etag);
      }
    } catch (e) {
      if (!(e instanceof CipherpostError && e.kind === "not_found")) throw e;
    }
    if (ok) reused++;
    else {
      ui.status(`part ${i} is not on the homeserver with our hash; uploading it again`);
      delete record.done[k];
    }
  }
  // Parts sealed before and not uploaded: their kept ciphertext must still hash as recorded.
  for (const [k, h] of Object.entries(record.sealed)) {
    const ok = !record.done[k] &&
      await sha256File(keptFile(Number(k))).then((x) => x === h, () => false);
    if (!ok) delete record.sealed[k];
  }
  await save();

  return { etags, reused };
}

/**
 * Stage 3: seal the parts ahead, in part order, into kept ciphertext files, and upload the
 * sealed ones 2 at a time (§5.6); the pointer goes out once every part is sealed (§5.3 step 4).
 * Returns the published share.
 */
async function sealAndUpload(
  c: SendContext,
  run: SendRun,
  w: { todo: number[]; toSeal: number[]; etags: Map<number, string> },
): Promise<PublishedShare> {
  const { t, store, homeserver, state, sender, req, ui } = c;
  const { staged, record, layout, parts, partSize, identity, contentRecipient, keptFile, save } =
    run;
  const { todo, toSeal, etags } = w;
  const senderZ32 = encodeZ32(sender.publicKey);
  const { publicKey: recipientPk, z32: recipientStr } = recipientOf(sender, req.recipient);
  let done = staged.size - todo.reduce((n, i) => n + partLength(layout, i), 0);
  ui.progress?.("upload", done, staged.size);
  const report = (n: number) => {
    done = Math.min(staged.size, Math.max(0, done + n));
    ui.progress?.("upload", done, staged.size);
  };
  const workers = Math.max(0, req.workers ?? 0);
  const pp = new PartPool(workers, () => {});

  // Sealing runs ahead, in part order; uploads take sealed parts in order, 2 at a time (§5.6).
  const ready = todo.filter((i) => record.sealed[String(i)]);
  let sealing = toSeal.length > 0;
  let failed: { e: unknown } | null = null;
  const waiting: (() => void)[] = [];
  const poke = () => {
    for (const w of waiting.splice(0)) w();
  };
  let published: PublishedShare | null = record.published
    ? {
      uri: record.published.uri,
      shareRef: record.published.share_ref,
      expiresAt: record.published.expires_at,
      packets: record.published.packets,
    }
    : null;
  const publish = async () => {
    const hashes = Array.from(
      { length: parts },
      (_, i) => record.done[String(i)] ?? record.sealed[String(i)],
    );
    await store.put(statusPath(record.blob_id), encodeBlobStatus(parts, "uploading"));
    ui.status(req.announce ? "Posting the pointer..." : "Publishing the pointer to DHT...");
    const share = await publishPointer(t, state, sender, req, {
      senderZ32,
      recipientPk,
      recipientStr,
      pointer: {
        blobId: record.blob_id,
        ciphertextHash: ciphertextHashOf(hashes),
        compression: "none",
        contentIdentity: identity,
        fileCount: staged.fileCount,
        homeserver,
        kind: staged.kind,
        name: staged.name,
        partHashes: hashes,
        partSize,
        parts: hashes.length,
        size: staged.size,
        topEntries: staged.topEntries,
        version: 1,
      },
    });
    record.published = {
      share_ref: share.shareRef,
      uri: share.uri,
      expires_at: share.expiresAt,
      packets: share.packets,
    };
    await save();
    published = share;
    await req.onPublished?.(share, (l) => ui.status(l));
  };

  const sealAll = async () => {
    try {
      await eachLimited(toSeal, Math.max(1, workers), async (i) => {
        if (failed) return;
        await Deno.remove(keptFile(i)).catch(() => {});
        const r = await pp.run({
          op: "encrypt",
          src: staged.file,
          offset: i * partSize,
          length: partLength(layout, i),
          dst: keptFile(i),
          recipient: contentRecipient,
        });
        record.sealed[String(i)] = r.hash!;
        await save();
        ready.push(i);
        ready.sort((a, b) => a - b);
        poke();
      });
    } finally {
      sealing = false;
      poke();
    }
    if (!published && !failed) await publish();
  };

  const upload = async (i: number) => {
    const file = keptFile(i);
    const cipherLength = (await Deno.stat(file)).size;
    const plain = partLength(layout, i);
    let counted = 0;
    let blake: IHasher | null = null;
    const body = async () => {
      report(-counted); // a retried PUT starts over
      counted = 0;
      let sent = 0;
      const b = blake = await createBLAKE3();
      // 64 KiB reads (larger ones raised peak RSS by ~30 MiB with parts in flight), counted as
      // they go out, and hashed for the ETag check at the end
      return fileChunks(await Deno.open(file), 64 << 10, (n) => {
        sent += n;
        const now = Math.min(plain, Math.floor(sent * plain / cipherLength));
        report(now - counted);
        counted = now;
      }).pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(c, out) {
            b.update(c);
            out.enqueue(c);
          },
        }),
      );
    };
    await store.put(partPath(record.blob_id, i), body, { contentLength: cipherLength });
    etags.set(i, etagOf(blake!));
    report(plain - counted);
    record.done[String(i)] = record.sealed[String(i)];
    delete record.sealed[String(i)];
    await save();
    await Deno.remove(file).catch(() => {});
  };

  const uploader = async () => {
    while (!failed) {
      const i = ready.shift();
      if (i === undefined) {
        if (!sealing) return;
        await new Promise<void>((r) => waiting.push(r));
        continue;
      }
      await upload(i);
    }
  };
  const guard = (p: Promise<void>) =>
    p.catch((e) => {
      failed ??= { e };
      poke();
    });

  try {
    if (published) await req.onPublished?.(published, (l) => ui.status(l));
    else if (toSeal.length === 0) await publish();
    await Promise.all([guard(sealAll()), guard(uploader()), guard(uploader())]);
    if (failed) throw (failed as { e: unknown }).e;
  } catch (e) {
    const err = e instanceof CipherpostError
      ? e
      : new CipherpostError("io", `io error: part upload failed: ${(e as Error).message}`);
    if (!published) throw err;
    // the pointer is out: say that the share waits for this send to be run again
    const out = published as PublishedShare;
    const incomplete = `the share ${out.shareRef} is published but incomplete: ` +
      "run the same send again to finish it (it uploads only the missing parts), or revoke it";
    throw withAlso(err, incomplete);
  } finally {
    pp.close();
    await run.saved();
  }
  return published!;
}

/** Stage 4: check what the homeserver holds, mark the blob complete, and clean up. */
async function finishSend(
  c: SendContext,
  run: SendRun,
  published: PublishedShare,
  etags: Map<number, string>,
): Promise<void> {
  const { store } = c;
  const { record, parts, layout, save, work, key, tmpDir, staged } = run;
  // Every part is up: check that the homeserver holds what we published (§5.3 step 5).
  try {
    await checkUploaded(store, record, parts, layout, etags);
  } catch (e) {
    await save();
    if (!(e instanceof CipherpostError)) throw e;
    throw new CipherpostError(
      e.kind,
      e.message,
      `the share ${published.shareRef} cannot be completed: run the same send again (it sends ` +
        "the payload again as a new share), and revoke this one",
    );
  }
  await store.put(statusPath(record.blob_id), encodeBlobStatus(parts, "complete"));
  await work.removeRecord("send", key);
  await Deno.remove(tmpDir, { recursive: true }).catch(() => {});
  if (staged.temporary) await Deno.remove(staged.file).catch(() => {});
}

/**
 * After the last PUT of a streaming send (§5.7 step 3): every part must be on the homeserver
 * with the length this send left it (a HEAD each). Its content is bound by its signature, which
 * every receiver checks before decrypting; the BLAKE3 ETag comparison of version 1 is not
 * repeated (BLAKE3 in WebAssembly hashed ~4× slower than the native SHA-256 here).
 */
async function checkStreamParts(
  store: HomeserverClient,
  blobId: string,
  parts: number,
  lengths: Map<number, number>,
): Promise<void> {
  const wrong: number[] = [];
  await eachLimited(Array.from({ length: parts }, (_, i) => i), 4, async (i) => {
    const info = await store.head(partPath(blobId, i));
    if (!info || (info.size !== -1 && info.size !== lengths.get(i))) wrong.push(i);
  });
  if (wrong.length === 0) return;
  wrong.sort((a, b) => a - b);
  throw new CipherpostError(
    "io",
    `io error: ${wrong.length} of ${parts} parts on the homeserver are not what this send ` +
      `uploaded (parts ${wrong.slice(0, 10).join(", ")}${wrong.length > 10 ? ", …" : ""})`,
  );
}

/**
 * After the last PUT: every part must be on the homeserver as this send left it. A HEAD gives
 * its ETag (BLAKE3 of the content, §4.4), compared with the BLAKE3 of what we sent or found; a
 * part without a usable ETag is read back and its SHA-256 compared. A part that differs (another
 * writer of this blob folder) is dropped from the resume record, and the send fails: a share
 * whose parts are not what its pointer names is never reported sent.
 */
async function checkUploaded(
  store: HomeserverClient,
  record: ResumeRecord,
  parts: number,
  layout: { size: number; partSize: number },
  etags: Map<number, string>,
): Promise<void> {
  const wrong: number[] = [];
  await eachLimited(Array.from({ length: parts }, (_, i) => i), 4, async (i) => {
    const path = partPath(record.blob_id, i);
    const info = await store.head(path);
    let ok: boolean;
    if (!info) ok = false;
    else if (info.etag && /^"[A-Za-z0-9+/]{43}="$/.test(info.etag) && etags.has(i)) {
      ok = info.etag === etags.get(i);
    } else {
      const got = await store.get(path).catch(() => null);
      const hashed = got && await hashStream(got.body, partLength(layout, i) + (1 << 20));
      ok = hashed?.sha256 === record.done[String(i)];
    }
    if (!ok) wrong.push(i);
  });
  if (wrong.length === 0) return;
  wrong.sort((a, b) => a - b);
  for (const i of wrong) delete record.done[String(i)];
  throw new CipherpostError(
    "io",
    `io error: ${wrong.length} of ${parts} parts on the homeserver are not what this send ` +
      `uploaded (parts ${wrong.slice(0, 10).join(", ")}${wrong.length > 10 ? ", …" : ""}); ` +
      "another writer changed them",
  );
}

// ---------------------------------------------------------------------------------------------
// Streaming sends (§5.7)

/** The resume record of a streaming send of a path source (§5.7; 0600 like every record). */
interface StreamRecord {
  streaming: 2;
  blob_id: string;
  part_size: number;
  size: number;
  /** content identity, age-encrypted to the sender's own key, base64 */
  sealed_identity: string;
  /** the part-signing key's seed (hex), age-encrypted to the sender's own key, base64 */
  sealed_signing: string;
  /** part index → SHA-256 hex of its age file (the signature's 64 bytes left out) */
  done: Record<string, string>;
  published?: { share_ref: string; uri: string; expires_at: number; packets: number };
}

/**
 * Seal, hash and sign one part into `slot` (§5.7): `signature ‖ age file`, the age file sealed
 * 256 KiB at a time straight into the slot and hashed while in the cache (no allocation per
 * chunk: slots are reused, so nothing large outlives a young-generation collection).
 * Returns the stored length and the age file's SHA-256 (hex).
 */
async function sealStreamPart(
  recipient: string,
  signingSeed: Uint8Array,
  blobId: string,
  index: number,
  plain: Uint8Array,
  slot: Uint8Array,
): Promise<{ length: number; hash: string }> {
  const age = await ageStreamEncrypt(recipient);
  const h = createHash("sha256");
  let o = PART_SIG_BYTES;
  const put = (n: number) => {
    h.update(slot.subarray(o, o + n));
    o += n;
  };
  slot.set(age.head, o);
  put(age.head.length);
  // 256 KiB at a time (measured: 1 MiB steps sealed and hashed 2.5× slower, 64 KiB a little)
  for (let p = 0; p < plain.length; p += 256 << 10) {
    put(age.sealer.pushInto(plain.subarray(p, p + (256 << 10)), slot.subarray(o)));
    // let the PUTs in flight take their next chunks between two MiB sealed
    if (p % (1 << 20) === 0) await new Promise((r) => setTimeout(r, 0));
  }
  put(age.sealer.finishInto(slot.subarray(o)));
  const digest = new Uint8Array(h.digest());
  slot.set(sign(signingSeed, partSigMessage(blobId, index, o - PART_SIG_BYTES, digest)), 0);
  return { length: o, hash: hex(digest) };
}

/** Fill `buf` from `f` (synchronous reads, as the part jobs do); a short read = the source shrank. */
function readFullSync(f: Deno.FsFile, buf: Uint8Array): void {
  let n = 0;
  while (n < buf.length) {
    const r = f.readSync(buf.subarray(n));
    if (r === null) {
      throw new CipherpostError("io", "io error: the source file shrank while sending");
    }
    n += r;
  }
}

/**
 * A streaming send (§5.7): the pointer first, then the parts, read in order into memory,
 * sealed, signed and PUT from memory with at most 2 PUTs in flight, then the closing record.
 * A path source (`staged`) keeps a resume record; a stream is read once and cannot resume.
 */
async function sendStreaming(
  c: SendContext,
  src: { staged: Staged } | { stream: ReadableStream<Uint8Array>; name?: string; size?: number },
): Promise<LargeSendResult> {
  const { t, store, homeserver, state, sender, req, ui } = c;
  const staged = "staged" in src ? src.staged : null;
  const { publicKey: recipientPk, z32: recipientStr } = recipientOf(sender, req.recipient);
  const senderZ32 = encodeZ32(sender.publicKey);
  const partSize = req.partSize ?? DEFAULT_STREAM_PART_SIZE;
  const work = new WorkFiles(state);
  const key = staged
    ? hex(
      sha256(
        utf8(
          [senderZ32, recipientStr ?? "self", req.pin ? "pin" : "", staged.id, partSize, "stream"]
            .join("\n"),
        ),
      ),
    ).slice(0, 32)
    : null;
  let rec: StreamRecord | null = null;
  if (key) {
    try {
      const o = (await work.readRecord("send", key)) as unknown as StreamRecord;
      if (
        o.streaming === 2 && o.size === staged!.size && o.part_size === partSize &&
        /^[0-9a-f]{32}$/.test(o.blob_id) && typeof o.sealed_signing === "string"
      ) rec = o;
    } catch { /* none or damaged: start afresh */ }
  }
  const mine = ageIdentityOfSeed(sender.seed);
  let identity: string;
  let seed: Uint8Array;
  if (rec) {
    identity = fromUtf8(await ageDecrypt(b64decode(rec.sealed_identity), mine));
    seed = fromHex(fromUtf8(await ageDecrypt(b64decode(rec.sealed_signing), mine)));
    ui.status(`resuming: ${Object.keys(rec.done).length} parts were uploaded before`);
  } else {
    identity = ageIdentityOf(crypto.getRandomValues(new Uint8Array(32)));
    seed = crypto.getRandomValues(new Uint8Array(32));
    const self = ageRecipientOfEd(sender.publicKey);
    rec = {
      streaming: 2,
      blob_id: hex(crypto.getRandomValues(new Uint8Array(16))),
      part_size: partSize,
      size: staged?.size ?? 0,
      sealed_identity: b64encode(await ageEncrypt(utf8(identity), self)),
      sealed_signing: b64encode(await ageEncrypt(utf8(hex(seed)), self)),
      done: {},
    };
  }
  const record = rec;
  const blobId = record.blob_id;
  let saving = Promise.resolve();
  const save = () => {
    if (key) {
      saving = saving.then(() => work.saveRecord("send", key, record as unknown as JsonValue));
    }
    return saving;
  };
  await save();
  const contentRecipient = await identityToRecipient(identity);

  // parts recorded as uploaded must be on the homeserver with our hash (a resumed send)
  /** part index → stored length (signature included), for the check at the end */
  const lengths = new Map<number, number>();
  let reused = 0;
  for (const [k, h] of Object.entries(record.done)) {
    const i = Number(k);
    let ok = false;
    try {
      const got = await store.get(partPath(blobId, i));
      const hashed = got &&
        await hashStream(
          got.body,
          maxCipherLength(partSize) + PART_SIG_BYTES,
          PART_SIG_BYTES,
          false,
        );
      if (hashed && hashed.sha256 === h) {
        ok = true;
        lengths.set(i, hashed.length);
      }
    } catch (e) {
      if (!(e instanceof CipherpostError && e.kind === "not_found")) throw e;
    }
    if (ok) reused++;
    else {
      ui.status(`part ${i} is not on the homeserver with our hash; uploading it again`);
      delete record.done[k];
    }
  }
  await save();

  // the pointer first (§5.7 step 1): the receiver can start with the first part
  let published: PublishedShare;
  if (record.published) {
    published = {
      uri: record.published.uri,
      shareRef: record.published.share_ref,
      expiresAt: record.published.expires_at,
      packets: record.published.packets,
    };
  } else {
    await store.put(statusPath(blobId), encodeBlobStatus(0, "uploading"));
    ui.status("Publishing the pointer to DHT...");
    const pointer: StreamPointer = {
      blobId,
      compression: "none",
      contentIdentity: identity,
      fileCount: staged?.fileCount ?? 1,
      homeserver,
      kind: staged?.kind ?? "file",
      name: staged?.name ?? ("name" in src ? src.name : undefined) ?? "stdin",
      partSize,
      signingKey: encodeZ32(keypairFromSeed(seed).publicKey),
      topEntries: staged?.topEntries ?? [],
      version: 2,
    };
    const known = staged ? staged.size : "size" in src ? src.size : undefined;
    if (known !== undefined) pointer.size = known;
    published = await publishPointer(t, state, sender, req, {
      senderZ32,
      recipientPk,
      recipientStr,
      pointer,
    });
    record.published = {
      share_ref: published.shareRef,
      uri: published.uri,
      expires_at: published.expiresAt,
      packets: published.packets,
    };
    await save();
  }
  await req.onPublished?.(published, (l) => ui.status(l));

  // the parts: read in order, sealed in memory, PUT from memory (at most 2 in flight)
  let done = staged
    ? Object.keys(record.done).reduce(
      (n, k) => n + partLength({ size: staged.size, partSize }, Number(k)),
      0,
    )
    : 0;
  if (staged) ui.progress?.("upload", done, staged.size);
  const inflight = new Set<Promise<void>>();
  let failed: { e: unknown } | null = null;
  let uploaded = 0;
  const buf = new Uint8Array(partSize);
  // at most 3 sealed parts: 2 PUTs in flight and the one being sealed, in reused slots
  const slots: Uint8Array[] = [];
  const slotSize = PART_SIG_BYTES + maxCipherLength(partSize);
  const launch = async (i: number, plainLength: number) => {
    if (failed) throw (failed as { e: unknown }).e;
    // sealed while the 2 PUTs in flight go on (a third slot), then PUT when one of them ends
    const slot = slots.pop() ?? new Uint8Array(slotSize);
    let sealed;
    try {
      sealed = await sealStreamPart(
        contentRecipient,
        seed,
        blobId,
        i,
        buf.subarray(0, plainLength),
        slot,
      );
      while (inflight.size >= 2 && !failed) await Promise.race(inflight);
      if (failed) throw (failed as { e: unknown }).e;
    } catch (e) {
      slots.push(slot);
      throw e;
    }
    const job = (async () => {
      await store.put(
        partPath(blobId, i),
        () =>
          new ReadableStream<Uint8Array>({
            start(ctl) {
              for (let o = 0; o < sealed.length; o += 1 << 20) {
                ctl.enqueue(slot.subarray(o, Math.min(sealed.length, o + (1 << 20))));
              }
              ctl.close();
            },
          }),
        { contentLength: sealed.length },
      );
      lengths.set(i, sealed.length);
      record.done[String(i)] = sealed.hash;
      uploaded++;
      await save();
      done += plainLength;
      if (staged) ui.progress?.("upload", done, staged.size);
    })().catch((e) => {
      failed ??= { e };
    }).finally(() => {
      inflight.delete(job);
      slots.push(slot);
    });
    inflight.add(job);
  };
  let parts = 0;
  let size = 0;
  try {
    if (staged) {
      parts = partCount(staged.size, partSize);
      size = staged.size;
      const f = await Deno.open(staged.file, { read: true });
      try {
        for (let i = 0; i < parts; i++) {
          if (record.done[String(i)]) continue;
          const n = partLength({ size: staged.size, partSize }, i);
          f.seekSync(i * partSize, Deno.SeekMode.Start);
          readFullSync(f, buf.subarray(0, n));
          await launch(i, n);
        }
      } finally {
        f.close();
      }
    } else if ("stream" in src) {
      let fill = 0;
      for await (const chunk of src.stream) {
        size += chunk.length;
        if (size > MAX_LARGE_SIZE) {
          throw new CipherpostError("too_large", `input exceeds ${MAX_LARGE_SIZE} bytes`);
        }
        for (let c = chunk; c.length > 0;) {
          const k = Math.min(partSize - fill, c.length);
          buf.set(c.subarray(0, k), fill);
          fill += k;
          c = c.subarray(k);
          if (fill === partSize) {
            await launch(parts++, fill);
            fill = 0;
          }
        }
      }
      if (fill > 0 || parts === 0) await launch(parts++, fill);
      if (src.size !== undefined && src.size !== size) {
        throw new CipherpostError(
          "io",
          `io error: the input gave ${size} bytes, ${src.size} were announced`,
        );
      }
    }
    await Promise.all(inflight);
    if (failed) throw (failed as { e: unknown }).e;
    await checkStreamParts(store, blobId, parts, lengths);
  } catch (e) {
    await Promise.all(inflight);
    await saving;
    const err = e instanceof CipherpostError
      ? e
      : new CipherpostError("io", `io error: part upload failed: ${(e as Error).message}`);
    let also: string;
    if (key) {
      also = `the share ${published.shareRef} is published but incomplete: run the same send ` +
        "again to finish it (it uploads only the missing parts), or revoke it";
    } else {
      // a stream is read once: its receivers must stop waiting (no status file, §5.5 step 4)
      await store.delete(statusPath(blobId)).catch(() => false);
      also = `the share ${published.shareRef} cannot be completed: a standard input cannot ` +
        "resume; send it again as a new share";
    }
    throw withAlso(err, also);
  }

  // the closing record (§5.7 step 3), then the status, then the receipt's hash in the sent record
  const hashes = Array.from({ length: parts }, (_, i) => record.done[String(i)]);
  const close = closeJson({
    blobId,
    ciphertextHash: ciphertextHashOf(hashes),
    parts,
    size,
  });
  await store.put(closePath(blobId), concat(sign(seed, closeSigMessage(close)), close));
  await store.put(statusPath(blobId), encodeBlobStatus(0, "complete"));
  const sent = (await state.listSent()).find((x) => x.shareRef === published.shareRef);
  if (sent && sent.version === 2) {
    await state.saveSent({
      ...sent,
      ciphertextSha256: ciphertextHashOf(hashes),
      large: { ...sent.large, parts, size, ciphertext_hash: ciphertextHashOf(hashes) },
    });
  }
  if (key) await work.removeRecord("send", key);
  if (staged?.temporary) await Deno.remove(staged.file).catch(() => {});
  seed.fill(0);
  return {
    uri: published.uri,
    shareRef: published.shareRef,
    expiresAt: published.expiresAt,
    size,
    protocol: 2,
    parts,
    uploaded,
    reused,
    packets: published.packets,
  };
}

/**
 * Build, publish and record the pointer share of a large send: a version-1 pointer once every
 * part is sealed (§5.3), or a streaming pointer before the first part (§5.7; its sent record
 * gets the whole-ciphertext hash when the blob is closed).
 */
async function publishPointer(
  t: Transport,
  state: State,
  sender: Keypair,
  req: LargeSendRequest,
  s: {
    senderZ32: string;
    recipientPk: Uint8Array;
    recipientStr: string | null;
    pointer: AnyPointer;
  },
): Promise<PublishedShare> {
  const { pointer } = s;
  // a room drop posts its (version-1) pointer itself (§9.8)
  if (req.announce) return await req.announce.publish(pointer as LargePointer);
  const createdAt = Math.floor(Date.now() / 1000);
  const env = encodePointerEnvelope({
    burnAfterRead: req.burn,
    createdAt,
    purpose: req.purpose,
    pointer,
  });
  const recipientAge = ageRecipientOfEd(s.recipientPk);
  const pin = req.pin === null ? null : await newPinLayer(req.pin);
  const { blob, outer } = await sealShare(env, recipientAge, pin);
  const ref = shareRef(outer, createdAt);
  const built = await buildV2Share({
    sender,
    recipient: s.recipientStr,
    blob,
    shareRef: ref,
    createdAt,
    ttlSeconds: req.ttlSeconds,
    pinRequired: req.pin !== null,
  });
  await publishPackets(t, built.packets);
  const uri = formatV2Uri(s.senderZ32, built.locator);
  const exp = Number(expiresAt(createdAt, req.ttlSeconds));
  const large: Record<string, JsonValue> = {
    homeserver: pointer.homeserver,
    blob_id: pointer.blobId,
    burn: req.burn,
  };
  if (pointer.version === 1) {
    large.parts = pointer.parts;
    large.size = pointer.size;
    large.ciphertext_hash = pointer.ciphertextHash;
  } else large.streaming = true;
  await state.saveSent({
    version: 2,
    shareRef: ref,
    uri,
    sender: s.senderZ32,
    recipient: s.recipientStr,
    createdAt,
    expiresAt: exp,
    // a large share's receipt names the whole-ciphertext hash of its parts (PROTOCOL.md §5);
    // a streaming share's is known when it is closed (§5.7)
    ...(pointer.version === 1 ? { ciphertextSha256: pointer.ciphertextHash } : {}),
    purpose: req.purpose,
    locator: toHex(built.locator),
    packets: built.packets.map((p) => b64encode(packetToBytes(p))),
    large,
  });
  return { uri, shareRef: ref, expiresAt: exp, packets: built.packets.length };
}

/** The blob ids of sends that are still in progress (their resume records), for gc. */
export async function pendingBlobIds(state: State): Promise<Set<string>> {
  const out = new Set<string>();
  for (const { value: o } of await new WorkFiles(state).listRecords("send")) {
    if (o && typeof o === "object" && !Array.isArray(o) && typeof o.blob_id === "string") {
      out.add(o.blob_id);
    }
  }
  return out;
}

/** `err` with one more thing to tell the user (`also`, after any it carries already). */
function withAlso(err: CipherpostError, also: string): CipherpostError {
  return new CipherpostError(
    err.kind,
    err.message,
    err.remedy
      ? {
        step: err.remedy.step,
        data: {
          ...err.remedy.data,
          also: [err.remedy.data?.also, also].filter(Boolean).join("; "),
        },
      }
      : `${err.hint ? `${err.hint}; ` : ""}${also}`,
  );
}
