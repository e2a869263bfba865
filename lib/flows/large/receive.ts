/**
 * Receiving a large share (docs/PROTOCOL.md §5.5), called by `receive` once the v2 pointer share
 * is verified and decrypted: check the pointer, show the acceptance screen, fetch and verify the
 * parts in workers into a temporary file next to the target, make the result appear by one
 * rename, record it and publish the receipt. Resumable per part.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { sshFingerprint } from "../../crypto/keys.ts";
import type { Keypair } from "../../crypto/keys.ts";
import { endpointOf } from "../../homeserver/discovery.ts";
import { encodeZ32, parsePublicKey } from "../../pkarr/public_key.ts";
import type { Transport } from "../../pkarr/transport.ts";
import {
  type BlobStatus,
  envelopeHash,
  type LargePointer,
  maxCipherLength,
  parseBlobStatus,
  parsePointerEnvelope,
  partLength,
  partPath,
  statusPath,
} from "../../protocol/large_manifest.ts";
import { expiresAt, receiptJson, signReceipt } from "../../protocol/record.ts";
import { publishV2Receipt } from "../share/v2_transfer.ts";
import { isoSeconds, type State } from "../../state/state.ts";
import { canonicalize, type JsonValue, parseJson } from "../../util/canonical_json.ts";
import { stripControl, toHex, utf8 } from "../../util/encoding.ts";
import { CipherpostError, signatureError } from "../../util/errors.ts";
import { readStreamCapped } from "../../util/bounded_read.ts";
import { ensurePrivateDir, writeFileAtomic } from "../../util/fsutil.ts";
import { eachLimited, PartFailure, PartPool } from "./pool.ts";
import { extractTar } from "./tar_fs.ts";
import type { LargeUi } from "./send.ts";

export type { LargeContext } from "../share/receive.ts";
import type { LargeContext } from "../share/receive.ts";

/** How to receive. */
export interface LargeReceiveRequest {
  /** target path (required) */
  output: string | undefined;
  force: boolean;
  accept?: string;
  promptLine: (() => Promise<string | null>) | null;
  /** Web Workers fetching and decrypting parts; 0 (the default) runs them as streams here */
  workers?: number;
  /**
   * How long to wait for missing parts while the sender is still uploading them (§5.5 step 4):
   * milliseconds without any part arriving; default {@link DEFAULT_PART_WAIT_MS}, 0 = never.
   */
  waitMs?: number;
}

/** The default wait for parts still being uploaded: 10 minutes without one arriving. */
export const DEFAULT_PART_WAIT_MS = 10 * 60_000;
/** How often a part that is not there yet is asked for again. */
const RETRY_MISSING_MS = 1000;

/** What was received. */
export interface LargeReceiveResult {
  status: "received";
  shareRef: string;
  receiptPublished: boolean;
  /** parts fetched by this run (the others were verified on disk before) */
  fetched: number;
}

interface RecvRecord {
  ciphertext_hash: string;
  temp: string;
  verified: number[];
}

function human(n: number): string {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < u.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${x.toFixed(1)} ${u[i]}`;
}

/** The acceptance screen of a large share. */
export function largeBanner(
  ctx: LargeContext,
  e: { burnAfterRead: boolean; purpose: string; pointer: LargePointer },
  now: Date,
): string[] {
  const p = e.pointer;
  const exp = Number(expiresAt(ctx.createdAt, ctx.ttlSeconds));
  const left = Math.max(0, exp - Math.floor(now.getTime() / 1000));
  const lines = ["=== CIPHERPOST ACCEPTANCE ==============================="];
  if (e.burnAfterRead) lines.push("[BURN — you will only see this once]");
  lines.push(
    `Purpose:     "${stripControl(e.purpose)}"`,
    `Sender:      ${sshFingerprint(parsePublicKey(ctx.sender))}`,
    `             ${ctx.sender}`,
    `Share ref:   ${ctx.shareRef}`,
    `Type:        large ${p.kind} "${stripControl(p.name)}" (on homeserver ${p.homeserver})`,
    `Size:        ${p.size} bytes (${human(p.size)}) in ${p.parts} part(s)`,
  );
  if (p.kind === "directory") {
    lines.push(`Files:       ${p.fileCount}`);
    const shown = p.topEntries.map((x) => stripControl(x)).join(", ");
    lines.push(`Entries:     ${shown}${p.topEntries.length >= 20 ? ", …" : ""}`);
  }
  lines.push(
    `TTL:         ${Math.floor(left / 3600)}h ${
      String(Math.floor((left % 3600) / 60)).padStart(2, "0")
    }m remaining (expires ${utcMinute(exp)} / ${localMinute(exp)})`,
    `Protocol:    v2 + homeserver`,
    "=========================================================",
  );
  return lines;
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
 * Receive the large share `ctx` (its pointer share already verified, decrypted, and found not
 * consumed; the share lock is held by the caller).
 *
 * @throws signature (exit 3: pointer or any part check, nothing written), declined (7),
 *   network (6: missing parts named, or homeserver unreachable), config (1).
 */
export async function largeReceive(
  t: Transport,
  state: State,
  me: Keypair,
  ctx: LargeContext,
  req: LargeReceiveRequest,
  ui: LargeUi,
): Promise<LargeReceiveResult> {
  const env = parsePointerEnvelope(ctx.plaintext);
  if (env.createdAt !== ctx.createdAt || env.protocolVersion !== 2) {
    throw signatureError("pointer envelope does not match its manifest");
  }
  const p = env.pointer;
  const now = new Date();
  const target = req.output;
  if (target === undefined || target === "-") {
    throw new CipherpostError(
      "config",
      "configuration error: a large share needs -o PATH (it is not written to standard output)",
      `e.g. cipherpost receive <uri> -o ${p.kind === "directory" ? "folder" : "file"}`,
    );
  }
  for (const line of largeBanner(ctx, env, now)) ui.log(line);
  let typed: string | null;
  if (req.accept !== undefined) typed = req.accept;
  else if (req.promptLine) {
    ui.log("To accept, paste the sender's z32 pubkey and press Enter:");
    typed = await req.promptLine();
  } else {
    throw new CipherpostError(
      "declined",
      "user declined acceptance: no terminal to confirm on",
      `to accept without a terminal, pass --accept ${ctx.sender}`,
    );
  }
  if (typed === null || typed.trim() !== ctx.sender) {
    throw new CipherpostError("declined", "user declined acceptance");
  }
  let targetExists = false;
  try {
    await Deno.lstat(target);
    targetExists = true;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (targetExists && !req.force) {
    throw new CipherpostError(
      "config",
      `configuration error: ${target} already exists; refusing to overwrite it`,
      "choose another path, or pass --force",
    );
  }

  // Resume record: which parts are verified in which temporary file.
  await ensurePrivateDir(`${state.dir}/large`);
  const key = toHex(sha256(utf8(`recv\n${toHex(ctx.locator)}`))).slice(0, 32);
  const recordPath = `${state.dir}/large/recv-${key}.json`;
  const dir = dirName(target);
  let rec: RecvRecord | null = null;
  try {
    const o = parseJson(await Deno.readTextFile(recordPath)) as unknown as RecvRecord;
    const st = await Deno.stat(o.temp);
    if (
      o.ciphertext_hash === p.ciphertextHash && dirName(o.temp) === dir && st.isFile &&
      st.size === p.size
    ) rec = o;
    else await removeAny(o.temp);
  } catch { /* none */ }
  if (!rec) {
    const temp = `${dir}/.${leaf(target)}.cipherpost-${
      toHex(crypto.getRandomValues(new Uint8Array(6)))
    }`;
    try {
      const f = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
      await f.truncate(p.size);
      f.close();
    } catch {
      throw new CipherpostError("io", `io error: cannot create a temporary file in ${dir}`);
    }
    rec = { ciphertext_hash: p.ciphertextHash, temp, verified: [] };
  }
  const record = rec;
  let saving = Promise.resolve();
  const save = () => {
    saving = saving.then(() =>
      writeFileAtomic(recordPath, canonicalize(record as unknown as JsonValue), 0o600)
    );
    return saving;
  };
  await save();
  const discard = async () => {
    await removeAny(record.temp);
    await Deno.remove(recordPath).catch(() => {});
  };

  let baseUrl: string;
  try {
    baseUrl = await endpointOf(t, p.homeserver);
  } catch (e) {
    if (e instanceof CipherpostError) throw e;
    throw new CipherpostError("network", "network error: the sender's homeserver is unreachable");
  }
  const verified = new Set(record.verified);
  const todo = Array.from({ length: p.parts }, (_, i) => i).filter((i) => !verified.has(i));
  let done = p.size - todo.reduce((n, i) => n + partLength(p, i), 0);
  ui.progress(done, p.size);
  const pp = new PartPool(Math.max(0, req.workers ?? 0), (n) => {
    done = Math.min(p.size, done + n);
    ui.progress(done, p.size);
  });
  const missing: number[] = [];
  const unreachable: number[] = [];
  let bad: PartFailure | null = null;
  let netDetail: string | null = null;
  // parts still being uploaded (§5.5 step 4): wait while the status file says so and parts
  // keep arriving
  const waitMs = Math.max(0, req.waitMs ?? DEFAULT_PART_WAIT_MS);
  let lastArrival = Date.now();
  let told = false;
  let status: { at: number; value: Promise<BlobStatus | null> } | null = null;
  const blobStatus = () => {
    if (!status || Date.now() - status.at >= RETRY_MISSING_MS) {
      status = { at: Date.now(), value: readBlobStatus(baseUrl, ctx.sender, p) };
    }
    return status.value;
  };
  const stillComing = async (i: number): Promise<boolean> => {
    if (waitMs === 0 || Date.now() - lastArrival >= waitMs) return false;
    if ((await blobStatus()) !== "uploading") return false;
    if (!told) {
      told = true;
      ui.log(
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
      if (bad) return;
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
        } else bad ??= e;
      }
    });
  } finally {
    pp.close();
    await saving;
  }
  if (bad) {
    await discard();
    throw signatureError(`part check: ${(bad as PartFailure).kind}`);
  }
  if (missing.length > 0) {
    missing.sort((a, b) => a - b);
    const shown = missing.length > 10 ? [...missing.slice(0, 10), "…"] : missing;
    throw new CipherpostError(
      "network",
      `share incomplete: ${missing.length} of ${p.parts} parts missing on the homeserver (parts ${
        shown.join(", ")
      })`,
      "ask the sender to send again (it uploads only the missing parts); receive again afterwards",
    );
  }
  if (unreachable.length > 0) {
    throw new CipherpostError(
      "network",
      `network error: ${unreachable.length} of ${p.parts} parts could not be fetched (${
        stripControl(netDetail ?? "unknown").slice(0, 200)
      })`,
      "receive again: verified parts are kept",
    );
  }

  // Every part verified: make the result appear by one rename.
  try {
    if (p.kind === "file") {
      if (targetExists) await removeAny(target);
      await Deno.rename(record.temp, target);
    } else {
      const tmpDir = `${record.temp}.d`;
      await removeAny(tmpDir);
      const f = await Deno.open(record.temp, { read: true });
      try {
        await extractTar(f.readable, tmpDir);
      } catch (e) {
        await removeAny(tmpDir);
        await discard();
        throw signatureError(`tar: ${(e as Error).message}`);
      }
      if (targetExists) await removeAny(target);
      await Deno.rename(tmpDir, target);
      await removeAny(record.temp);
    }
  } catch (e) {
    if (e instanceof CipherpostError) throw e;
    throw new CipherpostError("io", `io error: cannot write ${target}`);
  }
  await Deno.remove(recordPath).catch(() => {});

  const clear = envelopeHash(ctx.plaintext);
  await state.markAccepted(ctx.shareRef);
  await state.indexLocator(toHex(ctx.locator), ctx.shareRef);
  await state.append({
    acceptedAt: isoSeconds(),
    ciphertextHash: p.ciphertextHash,
    cleartextHash: clear,
    purpose: env.purpose,
    sender: ctx.sender,
    shareRef: ctx.shareRef,
    state: env.burnAfterRead ? "burned" : undefined,
  });
  const receipt = signReceipt({
    acceptedAt: Math.floor(Date.now() / 1000),
    ciphertextHash: p.ciphertextHash,
    cleartextHash: clear,
    nonce: toHex(crypto.getRandomValues(new Uint8Array(16))),
    protocolVersion: 2,
    purpose: env.purpose,
    recipientPubkey: encodeZ32(me.publicKey),
    senderPubkey: ctx.sender,
    shareRef: ctx.shareRef,
  }, me.seed);
  try {
    ui.log("Publishing receipt to DHT...");
    await publishV2Receipt(t, ctx.locator, receiptJson(receipt));
    await state.append({
      acceptedAt: isoSeconds(),
      ciphertextHash: p.ciphertextHash,
      cleartextHash: clear,
      purpose: env.purpose,
      receiptPublishedAt: isoSeconds(),
      sender: ctx.sender,
      shareRef: ctx.shareRef,
    });
    return {
      status: "received",
      shareRef: ctx.shareRef,
      receiptPublished: true,
      fetched: todo.length,
    };
  } catch (e) {
    ui.log(
      `receipt publish failed: ${e instanceof CipherpostError ? e.message : "unexpected error"}`,
    );
    return {
      status: "received",
      shareRef: ctx.shareRef,
      receiptPublished: false,
      fetched: todo.length,
    };
  }
}

/** A blob's status file, read anonymously (§5.3); null when absent, unreadable or invalid. */
async function readBlobStatus(
  baseUrl: string,
  sender: string,
  p: LargePointer,
): Promise<BlobStatus | null> {
  try {
    const res = await fetch(`${baseUrl}${statusPath(p.blobId)}`, {
      headers: { "pubky-host": sender },
    });
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel();
      return null;
    }
    return parseBlobStatus(await readStreamCapped(res.body, 1024), p.parts);
  } catch {
    return null;
  }
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/** `YYYY-MM-DD HH:MM UTC` of Unix seconds (as the acceptance screen of receive shows it). */
function utcMinute(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${
    pad2(d.getUTCHours())
  }:${pad2(d.getUTCMinutes())} UTC`;
}

/** `YYYY-MM-DD HH:MM local` of Unix seconds. */
function localMinute(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${
    pad2(d.getMinutes())
  } local`;
}
