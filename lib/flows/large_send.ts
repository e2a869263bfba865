/**
 * Sending a large share (docs/PROTOCOL.md §5.3): stage the source as one file, encrypt its
 * parts in workers to a per-share content key, upload them to our homeserver, and only then
 * publish the pointer as a v2 share. Resumable: a re-run with the same source and recipient
 * uploads only the parts the server does not hold with our hash.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { identityToRecipient } from "age-encryption";
import { createHash } from "node:crypto";
import { ageDecrypt, ageEncrypt } from "../crypto/age.ts";
import { pinKey } from "../crypto/kdf.ts";
import {
  ageIdentityOf,
  ageIdentityOfSeed,
  ageRecipientOf,
  ageRecipientOfEd,
  type Keypair,
  x25519PublicFromSecret,
} from "../crypto/keys.ts";
import type { HomeserverClient } from "../homeserver/client.ts";
import { encodeZ32 } from "../pkarr/public_key.ts";
import { packetToBytes } from "../pkarr/signed_packet.ts";
import type { Transport } from "../pkarr/transport.ts";
import {
  choosePartSize,
  ciphertextHashOf,
  encodePointerEnvelope,
  type LargePointer,
  MAX_LARGE_SIZE,
  partCount,
  partLength,
  partPath,
} from "../protocol/large_manifest.ts";
import { expiresAt, shareRef } from "../protocol/record.ts";
import { formatV2Uri } from "../protocol/share_uri.ts";
import { buildV2Share } from "../protocol/v2.ts";
import { publishPackets } from "./v2_transfer.ts";
import type { State } from "../state/state.ts";
import { canonicalize, type JsonValue, parseJson } from "../util/canonical_json.ts";
import { b64decode, b64encode, concat, fromUtf8, toHex, utf8 } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import { ensurePrivateDir, writeFileAtomic } from "../util/fsutil.ts";
import { eachLimited, PartPool } from "./large_pool.ts";
import { writeTreeTar } from "./large_tar_fs.ts";
import { recipientOf } from "./recipient.ts";

/** Where the payload comes from. */
export type LargeSource =
  | { kind: "path"; path: string }
  | { kind: "stream"; stream: ReadableStream<Uint8Array>; name?: string };

/** What to send. */
export interface LargeSendRequest {
  /** null = to self */
  recipient: string | null;
  purpose: string;
  source: LargeSource;
  ttlSeconds: bigint;
  pin: string | null;
  burn: boolean;
  /** Web Workers encrypting parts; 0 (the default) runs them as concurrent streams here */
  workers?: number;
  /** plaintext part size (tests); default by size (§5.1) */
  partSize?: number;
}

/** The small UI port of the large flows. */
export interface LargeUi {
  log(line: string): void;
  /** bytes done of total (both growing monotonically) */
  progress(done: number, total: number): void;
}

/** What was sent. */
export interface LargeSendResult {
  uri: string;
  shareRef: string;
  expiresAt: number;
  size: number;
  parts: number;
  /** parts uploaded by this run */
  uploaded: number;
  /** parts found on the homeserver with our hash and kept */
  reused: number;
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
}

interface ResumeRecord {
  blob_id: string;
  part_size: number;
  size: number;
  /** content identity, age-encrypted to the sender's own key, base64 */
  sealed_identity: string;
  /** part index → SHA-256 hex of the uploaded part */
  done: Record<string, string>;
}

const hex = (b: Uint8Array) => toHex(b);

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  const f = await Deno.open(path, { read: true });
  for await (const c of f.readable) h.update(c);
  return h.digest("hex");
}

async function sha256Stream(s: ReadableStream<Uint8Array>, max: number): Promise<string | null> {
  const h = createHash("sha256");
  let n = 0;
  for await (const c of s) {
    n += c.length;
    if (n > max) return null;
    h.update(c);
  }
  return h.digest("hex");
}

function baseName(p: string): string {
  const parts = p.replace(/\/+$/, "").split("/");
  const b = parts[parts.length - 1] || "payload";
  const bytes = utf8(b);
  return bytes.length <= 255 ? b : fromUtf8(bytes.subarray(0, 200)).replace(/\uFFFD+$/, "");
}

async function stage(state: State, src: LargeSource, warn: (l: string) => void): Promise<Staged> {
  const dir = `${state.dir}/large`;
  await ensurePrivateDir(dir);
  if (src.kind === "path") {
    let st: Deno.FileInfo;
    let real: string;
    try {
      real = await Deno.realPath(src.path);
      st = await Deno.stat(real);
    } catch {
      throw new CipherpostError("io", `io error: cannot read ${src.path}`);
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
      };
    }
    if (!st.isDirectory) {
      throw new CipherpostError("io", `io error: ${src.path} is not a file or a directory`);
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
        `io error: cannot read the tree ${src.path}: ${(e as Error).message}`,
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
    };
  }
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
  // name the staged copy by its content, so a re-run finds the same file
  const named = `${dir}/stage-${hex(sha256(utf8(id))).slice(0, 32)}.bin`;
  await Deno.rename(file, named);
  return {
    file: named,
    size,
    kind: "file",
    name: src.name ?? "stdin",
    fileCount: 1,
    topEntries: [],
    id,
    temporary: true,
  };
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
  ui: LargeUi,
): Promise<LargeSendResult> {
  const senderZ32 = encodeZ32(sender.publicKey);
  const { publicKey: recipientPk, z32: recipientStr } = recipientOf(sender, req.recipient);
  const staged = await stage(state, req.source, ui.log);
  if (staged.size > MAX_LARGE_SIZE) {
    throw new CipherpostError(
      "too_large",
      `payload of ${staged.size} bytes exceeds ${MAX_LARGE_SIZE}`,
    );
  }
  const partSize = req.partSize ?? choosePartSize(staged.size);
  const parts = partCount(staged.size, partSize);

  // Resume record: keyed by who, to whom, how and what.
  const key = hex(
    sha256(
      utf8(
        [senderZ32, recipientStr ?? "self", req.pin ? "pin" : "", staged.id, partSize].join("\n"),
      ),
    ),
  ).slice(0, 32);
  const recordPath = `${state.dir}/large/send-${key}.json`;
  let rec: ResumeRecord | null = null;
  try {
    const o = parseJson(await Deno.readTextFile(recordPath)) as unknown as ResumeRecord;
    if (o.size === staged.size && o.part_size === partSize && /^[0-9a-f]{32}$/.test(o.blob_id)) {
      rec = o;
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
    ui.log(`resuming: ${Object.keys(rec.done).length} of ${parts} parts were uploaded before`);
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
      done: {},
    };
  }
  const record = rec;
  const layout = { size: staged.size, partSize };
  let saving = Promise.resolve();
  const save = () => {
    saving = saving.then(() =>
      writeFileAtomic(recordPath, canonicalize(record as unknown as JsonValue), 0o600)
    );
    return saving;
  };
  await save();
  const contentRecipient = await identityToRecipient(identity);

  // Parts recorded as uploaded must be there with our hash (GET + SHA-256, never the ETag alone).
  let reused = 0;
  for (const [k, h] of Object.entries(record.done)) {
    const i = Number(k);
    let ok = false;
    try {
      const got = await store.get(partPath(record.blob_id, i));
      if (got) ok = (await sha256Stream(got.body, partLength(layout, i) + (1 << 20))) === h;
    } catch (e) {
      if (!(e instanceof CipherpostError && e.kind === "not_found")) throw e;
    }
    if (ok) reused++;
    else {
      ui.log(`part ${i} is not on the homeserver with our hash; uploading it again`);
      delete record.done[k];
    }
  }
  await save();

  const hashes: string[] = Array.from({ length: parts }, (_, i) => record.done[String(i)] ?? "");
  const todo = hashes.flatMap((h, i) => (h ? [] : [i]));
  let done = staged.size - todo.reduce((n, i) => n + partLength(layout, i), 0);
  ui.progress(done, staged.size);
  const workers = Math.max(0, req.workers ?? 0);
  // progress counts ciphertext bytes the homeserver has taken (scaled to plaintext), not
  // bytes encrypted: the bar reaches its end when the last PUT does
  const pp = new PartPool(workers, () => {});
  const report = (n: number) => {
    done = Math.min(staged.size, Math.max(0, done + n));
    ui.progress(done, staged.size);
  };
  const tmpDir = `${state.dir}/large/up-${record.blob_id}`;
  await ensurePrivateDir(tmpDir);
  try {
    await eachLimited(todo, Math.max(2, workers) + 1, async (i) => {
      const tmp = `${tmpDir}/part-${i}`;
      await Deno.remove(tmp).catch(() => {});
      const r = await pp.run({
        op: "encrypt",
        src: staged.file,
        offset: i * partSize,
        length: partLength(layout, i),
        dst: tmp,
        recipient: contentRecipient,
      });
      const plain = partLength(layout, i);
      let counted = 0;
      const body = async () => {
        report(-counted); // a retried PUT starts over
        counted = 0;
        let sent = 0;
        const f = await Deno.open(tmp);
        // 64 KiB synchronous reads (what FsFile.readable reads; larger ones raised peak RSS by
        // ~30 MiB with three parts in flight), counted as they go out
        return new ReadableStream<Uint8Array>({
          pull(ctl) {
            const buf = new Uint8Array(64 << 10);
            const n = f.readSync(buf);
            if (n === null) {
              f.close();
              return ctl.close();
            }
            sent += n;
            const now = Math.min(plain, Math.floor(sent * plain / r.cipherLength!));
            report(now - counted);
            counted = now;
            ctl.enqueue(n === buf.length ? buf : buf.subarray(0, n));
          },
          cancel: () => f.close(),
        }, { highWaterMark: 1 });
      };
      try {
        await store.put(partPath(record.blob_id, i), body, { contentLength: r.cipherLength });
        report(plain - counted);
      } finally {
        await Deno.remove(tmp).catch(() => {});
      }
      hashes[i] = r.hash!;
      record.done[String(i)] = r.hash!;
      await save();
    });
  } catch (e) {
    if (e instanceof CipherpostError) throw e;
    throw new CipherpostError("io", `io error: part upload failed: ${(e as Error).message}`);
  } finally {
    pp.close();
    await Deno.remove(tmpDir, { recursive: true }).catch(() => {});
  }

  // Every part is up: publish the pointer as a v2 share (§3, every mode).
  const pointer: LargePointer = {
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
    parts,
    size: staged.size,
    topEntries: staged.topEntries,
    version: 1,
  };
  const createdAt = Math.floor(Date.now() / 1000);
  const env = encodePointerEnvelope({
    burnAfterRead: req.burn,
    createdAt,
    purpose: req.purpose,
    pointer,
  });
  const recipientAge = ageRecipientOfEd(recipientPk);
  let blob: Uint8Array;
  let outer: Uint8Array;
  if (req.pin !== null) {
    const salt = crypto.getRandomValues(new Uint8Array(32));
    const pinRecipient = ageRecipientOf(x25519PublicFromSecret(await pinKey(req.pin, salt)));
    outer = await ageEncrypt(await ageEncrypt(env, pinRecipient), recipientAge);
    blob = concat(salt, outer);
  } else {
    outer = await ageEncrypt(env, recipientAge);
    blob = outer;
  }
  const ref = shareRef(outer, createdAt);
  const built = await buildV2Share({
    sender,
    recipient: recipientStr,
    blob,
    shareRef: ref,
    createdAt,
    ttlSeconds: req.ttlSeconds,
    pinRequired: req.pin !== null,
  });
  ui.log(`Publishing the pointer (${built.packets.length} packets) to DHT...`);
  await publishPackets(t, built.packets);
  const uri = formatV2Uri(senderZ32, built.locator);
  const exp = Number(expiresAt(createdAt, req.ttlSeconds));
  await state.saveSent({
    version: 2,
    shareRef: ref,
    uri,
    sender: senderZ32,
    recipient: recipientStr,
    createdAt,
    expiresAt: exp,
    // a large share's receipt names the whole-ciphertext hash of its parts (PROTOCOL.md §5)
    ciphertextSha256: pointer.ciphertextHash,
    purpose: req.purpose,
    locator: toHex(built.locator),
    packets: built.packets.map((p) => b64encode(packetToBytes(p))),
    large: {
      homeserver,
      blob_id: record.blob_id,
      parts,
      size: staged.size,
      burn: req.burn,
      ciphertext_hash: pointer.ciphertextHash,
    },
  });
  await Deno.remove(recordPath).catch(() => {});
  if (staged.temporary) await Deno.remove(staged.file).catch(() => {});
  return {
    uri,
    shareRef: ref,
    expiresAt: exp,
    size: staged.size,
    parts,
    uploaded: todo.length,
    reused,
    packets: built.packets.length,
  };
}

/** The blob ids of sends that are still in progress (their resume records), for gc. */
export async function pendingBlobIds(state: State): Promise<Set<string>> {
  const out = new Set<string>();
  try {
    for await (const e of Deno.readDir(`${state.dir}/large`)) {
      if (!/^send-[0-9a-f]{32}\.json$/.test(e.name)) continue;
      try {
        const o = parseJson(await Deno.readTextFile(`${state.dir}/large/${e.name}`));
        if (o && typeof o === "object" && !Array.isArray(o) && typeof o.blob_id === "string") {
          out.add(o.blob_id);
        }
      } catch { /* damaged */ }
    }
  } catch { /* no folder */ }
  return out;
}
