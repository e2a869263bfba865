/**
 * Receiving a large share (docs/PROTOCOL.md §5.5): the payload handler that the one receive
 * pipeline (lib/flows/share/receive.ts) runs on a verified, decrypted v2 pointer share. It checks
 * the pointer Envelope, resolves the sender's homeserver for the acceptance screen, and, once
 * accepted, fetches and verifies the parts (on this thread, or in Web Workers when asked) into
 * a temporary file next to the target and makes the result appear by one rename. Resumable per
 * part. Acceptance, the ledger and the receipt are the pipeline's.
 *
 * @module
 */

import { WorkFiles } from "../../state/work_files.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { endpointOf } from "../../homeserver/discovery.ts";
import { readBlobStatus } from "../../homeserver/blob_status.ts";
import { serverText } from "../../homeserver/http.ts";
import { type HomeserverHttp, homeserverHttpOf } from "../../homeserver/endpoint_policy.ts";
import type { Transport } from "../../pkarr/transport.ts";
import {
  type AnyPointer,
  type BlobStatus,
  ciphertextHashOf,
  closePath,
  type CloseRecord,
  closeSigMessage,
  envelopeHash,
  type LargePointer,
  MAX_CLOSE_BYTES,
  MAX_LARGE_SIZE,
  MAX_STREAM_PARTS,
  maxCipherLength,
  parseCloseJson,
  parsePointerEnvelope,
  PART_SIG_BYTES,
  partCount,
  partLength,
  partPath,
  partSigMessage,
  type StreamPointer,
} from "../../protocol/large_manifest.ts";
import type { State } from "../../state/state.ts";
import { field, type JsonValue } from "../../util/canonical_json.ts";
import { concat, fromUtf8, stripControl, toHex, utf8 } from "../../util/encoding.ts";
import { createHash } from "node:crypto";
import { AgeFileOpener } from "../../crypto/age_stream.ts";
import { verifyStrictNative } from "../../crypto/keys.ts";
import { parsePublicKey } from "../../pkarr/public_key.ts";
import { readStreamCapped } from "../../util/bounded_read.ts";
import { Fail, getPart } from "./part.ts";
import { expiresAt } from "../../protocol/record.ts";
import { CipherpostError, signatureError } from "../../util/errors.ts";
import { localIoCause } from "../../util/fsutil.ts";
import { eachLimited, PartFailure, PartPool } from "./pool.ts";
import { extractTar } from "./tar_fs.ts";
import type { OpenedPayload, OpenedShare } from "../share/receive.ts";
import type { FlowUi } from "../share/ui.ts";

/** How a large share is written. */
export interface LargeOutput {
  /** the target path (a large share is never written to standard output) */
  output?: string;
  /** replace an existing file or folder at the target */
  force: boolean;
  /** Web Workers fetching and decrypting parts; 0 (the default) runs them as streams here */
  workers?: number;
  /**
   * How long to wait for missing parts while the sender is still uploading them (§5.5 step 4):
   * milliseconds without any part arriving; default {@link DEFAULT_PART_WAIT_MS}, 0 = never.
   */
  waitMs?: number;
  /**
   * Where a streaming file share (§5.7) goes when `output` is "-": each part's plaintext as
   * soon as it is verified, in order. Without it, "-" is refused as for every large share.
   */
  writeStdout?: (bytes: Uint8Array) => Promise<void>;
}

/** The default wait for parts still being uploaded: 10 minutes without one arriving. */
export const DEFAULT_PART_WAIT_MS = 10 * 60_000;
/** How often a part that is not there yet is asked for again. */
const RETRY_MISSING_MS = 1000;
/**
 * The same for a streaming share, whose receiver usually waits on the sender (§5.7): 25 ms
 * after the first miss, doubling to 250 ms (a receiver in step with its sender gets each part
 * within ~25 ms of its upload; a fixed 250 ms measured a receiver falling seconds behind).
 */
const STREAM_RETRY_MS = 250;
const STREAM_RETRY_FIRST_MS = 25;

interface RecvRecord {
  /** the pointer's whole-ciphertext hash, or `stream:<blob_id>` for a streaming pointer */
  ciphertext_hash: string;
  temp: string;
  verified: number[];
  /** streaming (§5.7): the hashes of the verified parts, in order, and their plaintext bytes */
  hashes?: string[];
  bytes?: number;
  /** when the share expires (Unix seconds): then the record and its temporary file are swept */
  expires_at?: number;
}

function dirName(p: string): string {
  const i = p.replace(/\/+$/, "").lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i);
}

function leaf(p: string): string {
  const s = p.replace(/\/+$/, "");
  return s.slice(s.lastIndexOf("/") + 1);
}

async function removeAny(p: string): Promise<void> {
  await Deno.remove(p, { recursive: true }).catch(() => {});
}

/**
 * The payload handler of a large share: parse the pointer Envelope (the share-level Envelope
 * rules, §5.2), check the target, and resolve the homeserver endpoint the parts will come from
 * (shown on the acceptance screen). `deliver` fetches, verifies and writes.
 *
 * @throws signature (a malformed pointer), config (no target, or it exists without `force`),
 *   homeserver/network (the endpoint cannot be resolved)
 */
export async function openLarge(
  t: Transport,
  state: State,
  share: OpenedShare,
  o: LargeOutput,
  ui: FlowUi,
): Promise<OpenedPayload> {
  if (share.protocol !== 2 || !share.locator) throw signatureError("large pointer outside v2");
  const env = parsePointerEnvelope(share.plaintext);
  if (env.createdAt !== share.createdAt || env.protocolVersion !== 2) {
    throw signatureError("pointer envelope does not match its manifest");
  }
  const p = env.pointer;
  const target = o.output;
  const toStdout = p.version === 2 && p.kind === "file" && target === "-" &&
    o.writeStdout !== undefined;
  if (!toStdout && (target === undefined || target === "-")) {
    throw new CipherpostError(
      "config",
      "configuration error: a large share needs an output path (it is not written to standard output)",
      { step: "give_output_path", data: { example: p.kind === "directory" ? "folder" : "file" } },
    );
  }
  if (!toStdout) await refuseExisting(target!, o.force);
  let baseUrl: string;
  try {
    baseUrl = await endpointOf(t, p.homeserver);
  } catch (e) {
    if (e instanceof CipherpostError) throw e;
    throw new CipherpostError("network", "network error: the sender's homeserver is unreachable");
  }
  const locator = share.locator;
  const fetch: LargeFetch<AnyPointer> = {
    sender: share.sender,
    locator,
    pointer: p,
    baseUrl,
    target: target!,
    http: homeserverHttpOf(t),
    expiresAt: Number(expiresAt(share.createdAt, share.ttlSeconds)),
  };
  return {
    purpose: env.purpose,
    burnAfterRead: env.burnAfterRead,
    payload: {
      kind: "large",
      content: p.kind,
      name: p.name,
      size: p.size ?? null,
      parts: p.version === 1 ? p.parts : null,
      homeserver: p.homeserver,
      endpoint: baseUrl,
      fileCount: p.kind === "directory" ? p.fileCount : undefined,
      topEntries: p.kind === "directory" ? p.topEntries : undefined,
      target: target!,
    },
    deliver: async () => {
      if (p.version === 2) {
        const close = await fetchStreaming(
          state,
          { ...fetch, pointer: p },
          o,
          ui,
          toStdout ? o.writeStdout! : null,
        );
        return {
          ciphertextHash: close.record.ciphertextHash,
          cleartextHash: toHex(sha256(concat(share.plaintext, close.stored))),
        };
      }
      await fetchLarge(state, { ...fetch, pointer: p }, o, ui);
      return { ciphertextHash: p.ciphertextHash, cleartextHash: envelopeHash(share.plaintext) };
    },
  };
}

/**
 * Refuse to write over `target` unless `force` (checked before anything is fetched).
 *
 * @throws config (remedy `replace_target`) when it exists and `force` is off
 */
export async function refuseExisting(target: string, force: boolean): Promise<void> {
  if ((await exists(target)) && !force) {
    throw new CipherpostError(
      "config",
      `cannot write ${target}: it already exists (refusing to overwrite it)`,
      { step: "replace_target" },
    );
  }
}

/** What {@link fetchLarge} fetches: a verified pointer, from where, to where. */
export interface LargeFetch<P = LargePointer> {
  /** when the share expires (Unix seconds): the resume record is swept after that */
  expiresAt: number;
  /** z32 of the owner of the blob folder (the `pubky-host` of every GET) */
  sender: string;
  /** names this receive's resume record: a share's locator, or any bytes unique to the payload */
  locator: Uint8Array;
  /** The pointer, already checked (§5.1) and signed by `sender`. */
  pointer: P;
  /** the homeserver endpoint of `pointer.homeserver` (from `endpointOf`) */
  baseUrl: string;
  /** where the result appears (an existing one is replaced: check with {@link refuseExisting}) */
  target: string;
  /** the endpoint policy and timeouts of every homeserver request */
  http: HomeserverHttp;
}

/**
 * Fetch every part, verify it, and make the target appear by one rename (§5.5 steps 3–6):
 * three stages, {@link openResume}, {@link fetchParts} and {@link placeResult}. Verified parts
 * are kept in a temporary file for a re-run. Used by a large share's `deliver` and by a room's
 * file drop (§9.8).
 *
 * @throws signature (any part check: nothing written), network (missing parts named, or the
 *   homeserver unreachable), io
 */
export async function fetchLarge(
  state: State,
  f: LargeFetch,
  req: LargeOutput,
  ui: FlowUi,
): Promise<{ fetched: number }> {
  const p = f.pointer;
  const resume = await openResume(state, f, p.ciphertextHash, p.size);
  const fetched = await fetchParts(f, req, ui, resume);
  await placeResult(f, resume, req.force);
  ui.status(
    `wrote ${p.size} bytes (${p.kind === "file" ? "file" : `folder of ${p.fileCount} files`}) ` +
      `to ${f.target}`,
  );
  await resume.finish();
  return { fetched };
}

/** A receive's resume record and its temporary file, saved as parts are verified. */
interface Resume {
  record: RecvRecord;
  /** save the record (serialised: one write at a time) */
  save(): Promise<void>;
  /** the payload failed its checks: remove the temporary file and the record */
  discard(): Promise<void>;
  /** the target is written: remove the record */
  finish(): Promise<void>;
  /** resolves when every save started so far is written */
  saved(): Promise<void>;
}

/** Stage 1: the resume record (which parts are verified in which temporary file), kept or new. */
async function openResume(
  state: State,
  f: LargeFetch<AnyPointer>,
  id: string,
  maxSize: number,
): Promise<Resume> {
  const { target } = f;
  const ctx = { locator: f.locator };
  const work = new WorkFiles(state);
  const key = toHex(sha256(utf8(`recv\n${toHex(ctx.locator)}`))).slice(0, 32);
  const dir = dirName(target);
  await sweepReceives(state, Math.floor(Date.now() / 1000), key);
  let rec: RecvRecord | null = null;
  try {
    const o = (await work.readRecord("recv", key)) as unknown as RecvRecord;
    const st = await Deno.stat(o.temp);
    if (
      o.ciphertext_hash === id && dirName(o.temp) === dir && st.isFile && st.size <= maxSize
    ) rec = { ...o, expires_at: f.expiresAt };
    else await removeAny(o.temp);
  } catch { /* none */ }
  if (!rec) {
    // named after the target, cut so that it fits in a name of 255 bytes; it grows as parts
    // arrive (no full-size file before any part is verified)
    const temp = `${dir}/.${cutName(leaf(target), 200)}.cipherpost-${
      toHex(crypto.getRandomValues(new Uint8Array(6)))
    }`;
    try {
      (await Deno.open(temp, { write: true, createNew: true, mode: 0o600 })).close();
    } catch (e) {
      const cause = localIoCause(e);
      throw new CipherpostError(
        "io",
        `io error: cannot create a temporary file in ${dir}${cause ? `: ${cause}` : ""}`,
      );
    }
    rec = { ciphertext_hash: id, temp, verified: [], expires_at: f.expiresAt };
  }
  const record = rec;
  let saving = Promise.resolve();
  const save = () => {
    saving = saving.then(() => work.saveRecord("recv", key, record as unknown as JsonValue));
    return saving;
  };
  await save();
  const discard = async () => {
    await removeAny(record.temp);
    await work.removeRecord("recv", key);
  };

  return {
    record,
    save,
    discard,
    finish: () => work.removeRecord("recv", key),
    saved: () => saving,
  };
}

/**
 * Stage 2: fetch and verify the parts not yet verified, waiting for parts the sender is still
 * uploading (§5.5 step 4). Returns how many parts this run fetched.
 */
async function fetchParts(
  f: LargeFetch,
  req: LargeOutput,
  ui: FlowUi,
  resume: Resume,
): Promise<number> {
  const { pointer: p, baseUrl } = f;
  const ctx = { sender: f.sender };
  const { record, save, discard } = resume;
  const verified = new Set(record.verified);
  const todo = Array.from({ length: p.parts }, (_, i) => i).filter((i) => !verified.has(i));
  if (verified.size > 0) {
    ui.status(`resuming: ${verified.size} of ${p.parts} parts already here and verified`);
  }
  let done = p.size - todo.reduce((n, i) => n + partLength(p, i), 0);
  ui.progress?.("download", done, p.size);
  const pp = new PartPool(Math.max(0, req.workers ?? 0), (n) => {
    done = Math.min(p.size, done + n);
    ui.progress?.("download", done, p.size);
  });
  const missing: number[] = [];
  const unreachable: number[] = [];
  let bad: PartFailure | null = null;
  /** a write that failed on this machine (no space, …): stop, keep what is verified */
  let ioFail: PartFailure | null = null;
  let netDetail: string | null = null;
  // parts still being uploaded (§5.5 step 4): wait while the status file says so and parts
  // keep arriving
  const waitMs = Math.max(0, req.waitMs ?? DEFAULT_PART_WAIT_MS);
  let lastArrival = Date.now();
  let told = false;
  let status: { at: number; value: Promise<BlobStatus | null> } | null = null;
  const blobStatus = () => {
    if (!status || Date.now() - status.at >= RETRY_MISSING_MS) {
      status = {
        at: Date.now(),
        value: readBlobStatus(baseUrl, ctx.sender, p.blobId, p.parts, { http: f.http }),
      };
    }
    return status.value;
  };
  const stillComing = async (i: number): Promise<boolean> => {
    if (waitMs === 0 || Date.now() - lastArrival >= waitMs) return false;
    if ((await blobStatus()) !== "uploading") return false;
    if (!told) {
      told = true;
      ui.status(
        `part ${i} is not on the homeserver yet: the sender is still uploading; waiting ` +
          `(up to ${Math.round(waitMs / 1000)} s without a new part)`,
      );
    }
    await new Promise((r) => setTimeout(r, RETRY_MISSING_MS));
    return true;
  };
  const fetchPart = (i: number) =>
    pp.run({
      op: "decrypt",
      url: `${baseUrl}${partPath(p.blobId, i)}`,
      http: f.http,
      headers: { "pubky-host": ctx.sender },
      identity: p.contentIdentity,
      expectHash: p.partHashes[i],
      maxCipher: maxCipherLength(partLength(p, i)),
      dst: record.temp,
      offset: i * p.partSize,
      plainLength: partLength(p, i),
    });
  /** {@link fetchPart}, asked again while the part is missing and still coming. */
  const fetchWhenThere = async (i: number) => {
    for (;;) {
      try {
        return await fetchPart(i);
      } catch (e) {
        if (!(e instanceof PartFailure && e.kind === "missing" && await stillComing(i))) throw e;
      }
    }
  };
  try {
    await eachLimited(todo, Math.max(2, req.workers ?? 2), async (i) => {
      if (bad || ioFail) return;
      try {
        await fetchWhenThere(i);
        lastArrival = Date.now();
        record.verified.push(i);
        await save();
      } catch (e) {
        if (!(e instanceof PartFailure)) throw e;
        if (e.kind === "missing") missing.push(i);
        else if (e.kind === "network") {
          unreachable.push(i);
          netDetail ??= e.message;
        } else if (e.kind === "io") ioFail ??= e;
        else bad ??= e;
      }
    });
  } finally {
    pp.close();
    await resume.saved();
  }
  if (bad) {
    await discard();
    throw signatureError(`part check: ${(bad as PartFailure).kind}`);
  }
  if (ioFail) {
    throw new CipherpostError(
      "io",
      `io error: cannot write the temporary file ${record.temp}: ${
        stripControl((ioFail as PartFailure).message).slice(0, 200)
      }`,
      `free space or fix the cause, then receive again: the ${record.verified.length} ` +
        `verified parts of ${p.parts} are kept`,
    );
  }
  if (missing.length > 0) {
    missing.sort((a, b) => a - b);
    const shown = missing.length > 10 ? [...missing.slice(0, 10), "…"] : missing;
    // an upload that stopped (status `uploading`) is finished by the same send run again; with
    // no status file (deleted by gc, or the sender abandoned this share for a new one) or
    // `complete`, the parts are gone and only a new share brings the payload
    const resumable = (await blobStatus()) === "uploading";
    throw new CipherpostError(
      "network",
      `share incomplete: ${missing.length} of ${p.parts} parts missing on the homeserver (parts ${
        shown.join(", ")
      })`,
      resumable
        ? "ask the sender to run the same send again (it uploads only the missing parts); " +
          "receive again afterwards (verified parts are kept)"
        : "the sender's homeserver no longer has them: ask the sender for a new share",
    );
  }
  if (unreachable.length > 0) {
    throw new CipherpostError(
      "network",
      `network error: ${unreachable.length} of ${p.parts} parts could not be fetched (${
        serverText(netDetail ?? "unknown")
      })`,
      "receive again: verified parts are kept",
    );
  }

  return todo.length;
}

/**
 * Stage 3: every part verified: make the target appear by one rename (or extraction). An
 * existing target is replaced only with `replace` (the user's --force, asked for when the receive
 * started); without it the target is claimed exclusively here, so one that appeared during the
 * receive (another receive into the same path) is left as it is.
 */
async function placeResult(
  f: LargeFetch<{ kind: "file" | "directory"; size: number; fileCount: number }>,
  resume: Resume,
  replace: boolean,
): Promise<void> {
  const { pointer: p, target } = f;
  const targetExists = replace && await exists(target);
  const { record, discard } = resume;
  // Every part verified (the file grew as they came; a last hole would be a zero-length part)
  try {
    if ((await Deno.stat(record.temp)).size !== p.size) await Deno.truncate(record.temp, p.size);
  } catch (e) {
    throw new CipherpostError(
      "io",
      `io error: cannot write the temporary file ${record.temp}: ${
        localIoCause(e) ?? "unexpected error"
      }`,
    );
  }
  // Make the result appear by one rename. A target that did not exist is
  // claimed exclusively (a hard link for a file, mkdir for a folder), so two receives into the
  // same new path cannot both write it (the second is refused, nothing replaced).
  const taken = () =>
    new CipherpostError(
      "config",
      `cannot write ${target}: it appeared while this share was being received; it is left as it is`,
      { step: "replace_target", data: { also: "the verified parts are kept for the re-run" } },
    );
  try {
    if (p.kind === "file") {
      if (targetExists) {
        await removeAny(target);
        await Deno.rename(record.temp, target);
      } else {
        try {
          await Deno.link(record.temp, target);
        } catch (e) {
          if (e instanceof Deno.errors.AlreadyExists) throw taken();
          throw e;
        }
        await Deno.remove(record.temp);
      }
    } else {
      const tmpDir = `${record.temp}.d`;
      await removeAny(tmpDir);
      const f = await Deno.open(record.temp, { read: true });
      try {
        const { fileCount } = await extractTar(f.readable, tmpDir);
        // the file count on the acceptance screen is the sender's signed claim: it must be true
        if (fileCount !== p.fileCount) {
          throw new Error(`${fileCount} files, the signed pointer says ${p.fileCount}`);
        }
      } catch (e) {
        await removeAny(tmpDir);
        const cause = localIoCause(e);
        if (cause !== null) {
          // this machine's condition (no space, a name too long for its file system): every
          // part is verified and kept, a re-run only extracts
          throw new CipherpostError(
            "io",
            `io error: cannot extract the folder next to ${target}: ${cause}${
              ioPath(e) ? ` (${stripControl(ioPath(e)!).slice(0, 300)})` : ""
            }`,
            "free space or fix the cause, then receive again: the verified parts are kept",
          );
        }
        await discard();
        throw signatureError(`tar: ${(e as Error).message}`);
      }
      if (targetExists) await removeAny(target);
      else {
        try {
          await Deno.mkdir(target, { mode: 0o700 });
        } catch (e) {
          await removeAny(tmpDir);
          if (e instanceof Deno.errors.AlreadyExists) throw taken();
          throw e;
        }
      }
      await Deno.rename(tmpDir, target); // replaces the empty folder claimed above
      await removeAny(record.temp);
    }
  } catch (e) {
    if (e instanceof CipherpostError) throw e;
    const cause = localIoCause(e);
    throw new CipherpostError(
      "io",
      `io error: cannot write ${target}${cause ? `: ${cause}` : ""}`,
      "receive again once fixed: the verified parts are kept",
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Streaming pointers (§5.7)

/** A streaming part as fetched: its stored bytes in pieces, the SHA-256 of its age file. */
type Fetched =
  | { kind: "part"; slot: Uint8Array; length: number; hash: Uint8Array }
  | { kind: "missing" };

/** A verified closing record: its fields and its stored bytes (for the receipt). */
interface VerifiedClose {
  record: CloseRecord;
  stored: Uint8Array;
}

/**
 * Receive a streaming share (§5.7 "Receiving"): parts in order, 2 ahead at most, each one's
 * signature verified before it is decrypted, its plaintext written at once (to `sink`, or to
 * the temporary file next to the target), until the signed closing record says the payload
 * is complete; then the target appears by one rename. Returns the verified closing record.
 *
 * @throws signature (exit 3: a signature, length, hash or closing-record check), network (6: a
 *   part missing past the wait, or the homeserver unreachable), io
 */
async function fetchStreaming(
  state: State,
  f: LargeFetch<StreamPointer>,
  req: LargeOutput,
  ui: FlowUi,
  sink: ((bytes: Uint8Array) => Promise<void>) | null,
): Promise<VerifiedClose> {
  const p = f.pointer;
  const signer = parsePublicKey(p.signingKey);
  const maxStored = PART_SIG_BYTES + maxCipherLength(p.partSize);
  /** reused part buffers: the part being opened and the one fetched ahead */
  const slots: Uint8Array[] = [];
  const total = p.size ?? null;
  const resume = sink
    ? null
    : await openResume(state, f, `stream:${p.blobId}`, p.size ?? MAX_LARGE_SIZE);
  const hashes: string[] = [];
  let bytes = 0;
  let out: Deno.FsFile | null = null;
  if (resume) {
    const r = resume.record;
    if (Array.isArray(r.hashes) && typeof r.bytes === "number" && r.hashes.length > 0) {
      hashes.push(...r.hashes);
      bytes = r.bytes;
      ui.status(`resuming: ${hashes.length} parts already here and verified`);
    }
    r.hashes = hashes;
    r.bytes = bytes;
    r.verified = hashes.map((_, k) => k);
    try {
      out = await Deno.open(r.temp, { write: true });
      // anything written after the last saved part is fetched again
      await out.truncate(bytes);
      await out.seek(bytes, Deno.SeekMode.Start);
    } catch (e) {
      out?.close();
      throw new CipherpostError(
        "io",
        `io error: cannot write the temporary file ${r.temp}: ${
          localIoCause(e) ?? "unexpected error"
        }`,
      );
    }
  }
  const fail = async (why: string): Promise<never> => {
    out?.close();
    out = null;
    await resume?.discard();
    throw signatureError(`streaming share: ${why}`);
  };
  const request = (path: string) => ({
    url: `${f.baseUrl}${path}`,
    headers: { "pubky-host": f.sender },
    http: f.http,
  });
  /** GET part i: its pieces, hashed after the signature as they arrive (bounded). */
  const fetchRaw = async (i: number): Promise<Fetched> => {
    const res = await getPart(request(partPath(p.blobId, i)));
    if (res.status === 404) {
      await res.body?.cancel();
      return { kind: "missing" };
    }
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel();
      throw new Fail("network", `GET status ${res.status}`);
    }
    const h = createHash("sha256");
    // copied into a reused slot as it arrives: the body's chunks die young
    const slot = slots.pop() ?? new Uint8Array(maxStored);
    let length = 0;
    const reader = res.body.getReader();
    try {
      for (;;) {
        let r;
        try {
          r = await reader.read();
        } catch (e) {
          throw new Fail("network", `GET broke off: ${(e as Error).message}`);
        }
        if (r.done) break;
        const c = r.value;
        const before = length;
        length += c.length;
        if (length > maxStored) {
          await reader.cancel().catch(() => {});
          throw new Fail("length", "part longer than its bound");
        }
        slot.set(c, before);
        h.update(
          before >= PART_SIG_BYTES ? c : c.subarray(Math.min(c.length, PART_SIG_BYTES - before)),
        );
      }
    } catch (e) {
      slots.push(slot);
      throw e;
    }
    return { kind: "part", slot, length, hash: new Uint8Array(h.digest()) };
  };
  /** GET and verify the closing record; null when there is none (yet). */
  const fetchClose = async (): Promise<VerifiedClose | null> => {
    const res = await getPart(request(closePath(p.blobId)));
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel();
      throw new Fail("network", `GET status ${res.status}`);
    }
    let stored: Uint8Array;
    try {
      stored = await readStreamCapped(res.body, MAX_CLOSE_BYTES);
    } catch {
      return await fail("closing record too long or cut off");
    }
    const sig = stored.subarray(0, PART_SIG_BYTES);
    const json = stored.subarray(PART_SIG_BYTES);
    if (
      stored.length <= PART_SIG_BYTES || !verifyStrictNative(signer, closeSigMessage(json), sig)
    ) {
      return await fail("closing record signature");
    }
    try {
      return { record: parseCloseJson(json, p), stored };
    } catch (e) {
      return await fail((e as Error).message);
    }
  };

  const waitMs = Math.max(0, req.waitMs ?? DEFAULT_PART_WAIT_MS);
  let lastArrival = Date.now();
  let told = false;
  const ahead = new Map<number, Promise<Fetched>>();
  /** Part i, fetched ahead or now; one fetched ahead and missing then is asked again now. */
  const take = async (i: number): Promise<Fetched> => {
    const early = ahead.get(i);
    ahead.delete(i);
    if (early) {
      const got = await early;
      if (got.kind === "part") return got;
    }
    return await fetchRaw(i);
  };
  const prefetch = (i: number) => {
    if (i < MAX_STREAM_PARTS && !ahead.has(i)) {
      const got = fetchRaw(i);
      got.catch(() => {}); // a failure is seen when the part is taken
      ahead.set(i, got);
    }
  };
  let closed: VerifiedClose | null = null;
  let lastShort = false;
  /** the part asked again after a closing record naming more parts was read */
  let askedAfterClose = -1;
  /** part i was missing at the last try: no part is fetched ahead */
  let waiting = false;
  let endCheckAt = 0;
  let retryMs = STREAM_RETRY_FIRST_MS;
  ui.progress?.("download", bytes, total ?? bytes);
  let i = hashes.length;
  try {
    for (;;) {
      if (i > MAX_STREAM_PARTS) await fail("too many parts");
      if (!lastShort && !waiting) prefetch(i + 1);
      const got = lastShort ? { kind: "missing" as const } : await take(i);
      if (got.kind === "missing") {
        // the closing record says whether part i is the end, or is still to come (asked, with
        // the status file, at once and then once a second while waiting; the part 4 times)
        if (lastShort || !waiting || Date.now() - endCheckAt >= 1000) {
          endCheckAt = Date.now();
          closed = await fetchClose();
          if (closed) {
            if (closed.record.parts === i) break;
            if (closed.record.parts < i) await fail("more parts than the closing record says");
            if (lastShort) await fail("a short part that is not the last");
            // part i was asked before the closing record was read (the sender may have put
            // both since): it is asked once more before it counts as missing
            if (askedAfterClose === i) throw new Fail("missing", String(i));
            askedAfterClose = i;
            continue;
          }
          // a short part is the last one: the closing record follows it (the sender writes it
          // once every part is up), so it is waited for as a part is
          if (!await stillComing(f, p, waitMs, lastArrival, i, told, ui)) {
            throw new Fail("missing", String(i));
          }
          told = true;
        }
        waiting = true;
        await new Promise((r) => setTimeout(r, retryMs));
        retryMs = Math.min(STREAM_RETRY_MS, retryMs * 2);
        continue;
      }
      waiting = false;
      retryMs = STREAM_RETRY_FIRST_MS;
      // the signature first: nothing of a part is decrypted before it verifies
      const ageLength = got.length - PART_SIG_BYTES;
      if (
        ageLength < 0 ||
        !verifyStrictNative(
          signer,
          partSigMessage(p.blobId, i, ageLength, got.hash),
          got.slot.subarray(0, PART_SIG_BYTES),
        )
      ) await fail(`part ${i} signature`);
      // then opened 64 KiB at a time, each piece of plaintext written as it authenticates
      // (measured: 1 MiB pushes opened 3× slower, their 1 MiB outputs costing more GC)
      let plainLength = 0;
      let plain: Uint8Array[] = [];
      const opener = new AgeFileOpener(p.contentIdentity, (c) => {
        plainLength += c.length;
        if (plainLength > p.partSize || bytes + plainLength > (total ?? MAX_LARGE_SIZE)) {
          throw new Fail("length", "part decrypts to too many bytes");
        }
        plain.push(c);
      });
      const write = async () => {
        try {
          for (const c of plain) {
            if (sink) await sink(c);
            else writeAllSync(out!, c);
          }
          plain = [];
        } catch (e) {
          const cause = localIoCause(e);
          throw new CipherpostError(
            "io",
            sink
              ? `io error: cannot write the output: ${cause ?? (e as Error).message}`
              : `io error: cannot write the temporary file ${resume!.record.temp}: ${
                cause ?? "unexpected error"
              }`,
            sink
              ? undefined
              : `free space or fix the cause, then receive again: the ${hashes.length} verified ` +
                `parts${
                  p.size === undefined ? "" : ` of ${partCount(p.size, p.partSize)}`
                } are kept`,
          );
        }
      };
      try {
        for (let o = PART_SIG_BYTES; o < got.length; o += 64 << 10) {
          try {
            await opener.push(got.slot.subarray(o, Math.min(got.length, o + (64 << 10))));
          } catch (e) {
            await fail(`part ${i} ${e instanceof Fail ? e.message : "decryption"}`);
          }
          if (plain.length > 0) await write();
        }
        try {
          opener.finish();
        } catch (e) {
          await fail(`part ${i} ${e instanceof Fail ? e.message : "decryption"}`);
        }
        await write();
      } finally {
        slots.push(got.slot);
      }
      if (plainLength === 0 && i > 0) await fail(`part ${i} is empty`);
      bytes += plainLength;
      hashes.push(toHex(got.hash));
      lastShort = plainLength < p.partSize;
      lastArrival = Date.now();
      if (resume) {
        resume.record.bytes = bytes;
        resume.record.verified.push(i);
        await resume.save();
      }
      ui.progress?.("download", bytes, total ?? bytes);
      i++;
    }
  } catch (e) {
    out?.close();
    if (e instanceof Fail) {
      if (e.kind === "missing") {
        // a closed blob, or one no longer `uploading`, will not get the part: only a new share
        const coming = closed === null &&
          (await readBlobStatus(f.baseUrl, f.sender, p.blobId, 0, { http: f.http })) ===
            "uploading";
        throw new CipherpostError(
          "network",
          `share incomplete: part ${i} is missing on the homeserver`,
          !coming
            ? "the sender's homeserver no longer has it: ask the sender for a new share"
            : resume
            ? "ask the sender to run the same send again (it uploads only the missing parts); " +
              "receive again afterwards (verified parts are kept)"
            : "ask the sender to run the same send again, then receive again",
        );
      }
      if (e.kind === "network") {
        throw new CipherpostError(
          "network",
          `network error: from part ${i} on, parts could not be fetched (${serverText(e.message)})`,
          resume ? "receive again: verified parts are kept" : undefined,
        );
      }
      await resume?.discard();
      throw signatureError(`part check: ${e.kind}`);
    }
    throw e;
  }
  out?.close();
  // the closing record binds the whole (§5.7 Receiving step 4)
  const c = closed!.record;
  if (
    c.parts !== hashes.length || c.size !== bytes || c.ciphertextHash !== ciphertextHashOf(hashes)
  ) {
    await fail("the closing record does not match the parts");
  }
  if (resume) {
    await placeResult(
      { ...f, pointer: { kind: p.kind, size: bytes, fileCount: p.fileCount } },
      resume,
      req.force,
    );
    ui.status(
      `wrote ${bytes} bytes (${p.kind === "file" ? "file" : `folder of ${p.fileCount} files`}) ` +
        `to ${f.target}`,
    );
    await resume.finish();
  }
  return closed!;
}

/** Is part i still coming (§5.7 Receiving step 3)? */
async function stillComing(
  f: LargeFetch<StreamPointer>,
  p: StreamPointer,
  waitMs: number,
  lastArrival: number,
  i: number,
  told: boolean,
  ui: FlowUi,
): Promise<boolean> {
  if (waitMs === 0 || Date.now() - lastArrival >= waitMs) return false;
  if ((await readBlobStatus(f.baseUrl, f.sender, p.blobId, 0, { http: f.http })) !== "uploading") {
    return false;
  }
  if (!told) {
    ui.status(
      `part ${i} is not on the homeserver yet: the sender is still sending; waiting ` +
        `(up to ${Math.round(waitMs / 1000)} s without a new part)`,
    );
  }
  return true;
}

function writeAllSync(f: Deno.FsFile, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += f.writeSync(b.subarray(off));
}

/** The path a file-system error names (Deno's messages end in `: op 'path'`), if any. */
function ioPath(e: unknown): string | null {
  const m = /: \w+ '([^']*)'/.exec((e as Error)?.message ?? "");
  return m ? m[1] : null;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw new CipherpostError("io", `io error: cannot check ${path}`);
  }
}

/** `s` cut to at most `max` UTF-8 bytes, on a character boundary. */
function cutName(s: string, max: number): string {
  const b = utf8(s);
  return b.length <= max ? s : fromUtf8(b.subarray(0, max)).replace(/\uFFFD+$/, "");
}

/**
 * Remove the resume records (and their temporary files) of large receives whose share has
 * expired: an abandoned receive leaves nothing behind for longer than its share lives. Run by
 * every large receive and by `homeserver gc` (so `republish` too). `keep` is a record to leave.
 *
 * @returns how many records were removed
 */
export async function sweepReceives(state: State, nowSec: number, keep?: string): Promise<number> {
  const work = new WorkFiles(state);
  let n = 0;
  for (const { key, value: o } of await work.listRecords("recv")) {
    if (key === keep) continue;
    try {
      if (!field.isObject(o) || typeof o.expires_at !== "number" || o.expires_at > nowSec) continue;
      // only a temporary file of ours: `.<name>.cipherpost-<12 hex>`
      if (typeof o.temp === "string" && /\/\.[^/]*\.cipherpost-[0-9a-f]{12}$/.test(o.temp)) {
        await removeAny(o.temp);
        await removeAny(`${o.temp}.d`);
      }
      await work.removeRecord("recv", key);
      n++;
    } catch { /* damaged or gone: left as it is */ }
  }
  return n;
}
