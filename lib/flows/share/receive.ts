/**
 * `receive`: resolve, verify both signatures and every binding, check the TTL, decrypt, ask the
 * UI port to confirm (the CLI shows the acceptance screen and wants the sender's key typed back
 * or `--accept`), write the output atomically, record the acceptance, and publish a signed
 * receipt (protocol digest §7.1, plus the checks v1.1 lacks, §11.4). Nothing from the Envelope
 * reaches the UI before every check passes.
 *
 * @module
 */

import { ageDecrypt } from "../../crypto/age.ts";
import { txtText } from "../../pkarr/dns.ts";
import { b64decode, bytesEqual, toHex } from "../../util/encoding.ts";
import { CipherpostError, signatureError } from "../../util/errors.ts";
import { checkOutputTarget, writeOutputFile } from "../../util/fsutil.ts";
import { pinKey } from "../../crypto/kdf.ts";
import { ageIdentityOf, ageIdentityOfSeed, type Keypair } from "../../crypto/keys.ts";
import { armorMaterial, type MaterialType } from "../../material/material.ts";
import { encodeZ32, parsePublicKey } from "../../pkarr/public_key.ts";
import {
  checkShareTimes,
  type Envelope,
  parseAndVerifyOuterRecord,
  parseEnvelope,
  receiptJson,
  sha256Hex,
  shareRef as computeShareRef,
  signReceipt,
} from "../../protocol/record.ts";
import { shareRecords, textNamesShare } from "../../protocol/labels.ts";
import type { ShareUri } from "../../protocol/share_uri.ts";
import type { SignedPacket } from "../../pkarr/signed_packet.ts";
import { isoSeconds, type State } from "../../state/state.ts";
import type { Transport } from "../../pkarr/transport.ts";
import type { FlowUi, ReceiveUi } from "./ui.ts";
import { fetchV2Share } from "./v2_transfer.ts";
import { keepPending, pendingOf, type PendingReceipt, publishPending } from "./pending_receipts.ts";
import { isPointerEnvelope } from "../../protocol/large_manifest.ts";

/** The verified pointer share, handed over by `receive`. */
export interface LargeContext {
  sender: string;
  recipient: string | null;
  shareRef: string;
  createdAt: number;
  ttlSeconds: bigint;
  /** the decrypted pointer Envelope */
  plaintext: Uint8Array;
  locator: Uint8Array;
}

/** How to receive. */
export interface ReceiveRequest {
  uri: ShareUri;
  /** path, "-" or undefined (stdout) */
  output?: string;
  force: boolean;
  armor: boolean;
  /** obtains the PIN when the share needs one (called again after a wrong PIN) */
  pin: () => Promise<string>;
  /** how many PINs to try before failing with `wrong PIN` (default 1; a terminal gets 3) */
  pinTries?: number;
  /**
   * Refuse binary material on the default output (set by the CLI when stdout is a terminal and
   * no `-o` was given): written raw, it would garble the terminal.
   */
  refuseBinaryOnStdout?: boolean;
  /** multi-packet fetch progress: (parts fetched, parts) */
  progress?: (done: number, total: number) => void;
  /** takes over when the share is a large-share pointer (docs/PROTOCOL.md §5) */
  large?: (ctx: LargeContext) => Promise<ReceiveResult>;
  /**
   * Material-specific delivery (`claude pickup`): called after every check and the decryption,
   * before the acceptance screen; its lines replace the material preview, and its `deliver`
   * replaces writing the output (it runs only after acceptance). A throw aborts the receive
   * with nothing written and nothing recorded.
   */
  handler?: (material: Envelope["material"]) => Promise<MaterialHandler>;
}

/** What a {@link ReceiveRequest.handler} returns. */
export interface MaterialHandler {
  lines: string[];
  deliver: () => Promise<void>;
}

/** What was received. */
export interface ReceiveResult {
  /**
   * `rewritten`: an accepted share written again (no prompt, no new receipt);
   * `already_accepted`: an accepted large share, not written again
   */
  status: "received" | "rewritten" | "already_accepted";
  shareRef: string;
  receiptPublished?: boolean;
}

/** The verified, not yet decrypted share. */
interface VerifiedShare {
  protocol: 1 | 2;
  sender: string;
  recipient: string | null;
  shareRef: string;
  createdAt: number;
  ttlSeconds: bigint;
  pinRequired: boolean;
  blob: Uint8Array;
}

/** v1: resolve the sender's packet and verify the `_cipherpost` record. */
async function fetchV1(
  t: Transport,
  sender: Uint8Array,
  senderZ32: string,
  ref: string,
): Promise<VerifiedShare> {
  const shareText = (p: SignedPacket) => {
    const rr = shareRecords(p).find((r) => txtText(r) !== null);
    return rr ? txtText(rr) : null;
  };
  const resolved = await t.resolve(sender, (p) => textNamesShare(shareText(p), ref));
  const text = resolved ? shareText(resolved.packet) : null;
  if (text === null) throw new CipherpostError("not_found", "record not found on DHT");
  const r = parseAndVerifyOuterRecord(text);
  if (r.pubkey !== senderZ32) throw signatureError("record pubkey is not the URI's sender");
  if (r.protocolVersion !== 1) throw signatureError("unknown protocol version");
  if (r.shareRef !== ref) {
    throw new CipherpostError(
      "share_ref_mismatch",
      "share_ref in URI does not match resolved record",
    );
  }
  let blob: Uint8Array;
  try {
    blob = b64decode(r.blob);
  } catch {
    throw signatureError("blob is not base64");
  }
  return {
    protocol: 1,
    sender: r.pubkey,
    recipient: r.recipient,
    shareRef: r.shareRef,
    createdAt: r.createdAt,
    ttlSeconds: r.ttlSeconds,
    pinRequired: r.pinRequired,
    blob,
  };
}

/** v2: fetch the manifest and every part, verified (PROTOCOL.md §3.5 steps 1–5). */
async function fetchV2(
  t: Transport,
  senderZ32: string,
  locator: Uint8Array,
  progress?: (done: number, total: number) => void,
): Promise<VerifiedShare> {
  const { manifest, blob } = await fetchV2Share(t, senderZ32, locator, undefined, progress);
  return {
    protocol: 2,
    sender: manifest.pubkey,
    recipient: manifest.recipient,
    shareRef: manifest.shareRef,
    createdAt: manifest.createdAt,
    ttlSeconds: manifest.ttlSeconds,
    pinRequired: manifest.pinRequired,
    blob,
  };
}

/** What the ledger says before any network access: done, a receipt to publish, or go on. */
export type Consumed = { kind: "accepted"; ref: string } | { kind: "pending"; ref: string } | null;

/**
 * The ledger check that runs before any network access or passphrase prompt, on the parsed and
 * canonical URI (the ledger matches share_ref and sender): a burned share is exit 7; an accepted
 * share is "pending" when its receipt was never published (the caller unlocks the identity and
 * calls {@link publishPendingReceipt}), else "accepted" (receive then writes it again while it
 * can be fetched, with no second confirmation and no second receipt).
 */
export async function checkConsumed(
  state: State,
  uri: ShareUri,
  ui: FlowUi,
): Promise<Consumed> {
  const ref = uri.version === 1 ? uri.shareRef : await state.refForLocator(toHex(uri.locator));
  if (!ref) return null;
  const c = await state.consumption(ref, uri.sender);
  if (c.kind === "accepted") {
    if (await pendingOf(state, ref)) {
      ui.status(`already accepted at ${c.at}; its receipt was never published: publishing it now`);
      return { kind: "pending", ref };
    }
    ui.status(`already accepted at ${c.at}; fetching it again to write it (no new receipt)`);
    return { kind: "accepted", ref };
  }
  if (c.kind === "burned") {
    throw new CipherpostError(
      "declined",
      `share already consumed: it was burned after reading at ${c.at}`,
      "burn-after-read shares are shown once; ask the sender for a new share",
    );
  }
  return null;
}

/** Publish the pending receipt of an accepted share (see {@link checkConsumed}). */
export async function publishPendingReceipt(
  t: Transport,
  state: State,
  me: Keypair,
  ref: string,
  ui: FlowUi,
): Promise<void> {
  const p = await pendingOf(state, ref);
  if (!p) return;
  ui.status("Publishing receipt to DHT...");
  await publishPending(t, state, me, p, ui);
}

/** True when bytes would not display as text (binary formats, control characters, not UTF-8). */
export function isBinary(bytes: Uint8Array): boolean {
  for (const b of bytes) {
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return true;
    if (b === 0x7f) return true;
  }
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return false;
  } catch {
    return true;
  }
}

/**
 * Remove the PIN layer. Both signatures and the share_ref are already verified, so a failure
 * here is a wrong PIN; it is asked again up to `req.pinTries` times, then `wrong PIN` (exit 4).
 */
async function openPinLayer(
  inner: Uint8Array,
  salt: Uint8Array,
  req: ReceiveRequest,
  ui: FlowUi,
): Promise<Uint8Array> {
  const tries = Math.max(1, req.pinTries ?? 1);
  for (let i = 1;; i++) {
    const pin = await req.pin();
    try {
      return await ageDecrypt(inner, ageIdentityOf(await pinKey(pin, salt)));
    } catch {
      if (i >= tries) throw new CipherpostError("decrypt", "wrong PIN");
      ui.status(`wrong PIN; try again (${tries - i} ${tries - i === 1 ? "try" : "tries"} left)`);
    }
  }
}

/** Receive a share. */
export async function receive(
  t: Transport,
  state: State,
  me: Keypair,
  req: ReceiveRequest,
  ui: ReceiveUi,
  writeStdout: (b: Uint8Array) => Promise<void>,
): Promise<ReceiveResult> {
  const myZ32 = encodeZ32(me.publicKey);
  const senderZ32 = req.uri.sender;
  // The output target is checked before anything is fetched, decrypted or shown.
  const toFile = req.output !== undefined && req.output !== "-";
  if (toFile) await checkOutputTarget(req.output!, req.force);
  let senderPk: Uint8Array;
  try {
    senderPk = parsePublicKey(senderZ32);
  } catch {
    throw new CipherpostError("invalid_uri", "invalid share URI: sender is not a valid public key");
  }

  ui.status("Resolving from DHT...");
  const share = req.uri.version === 1
    ? await fetchV1(t, senderPk, senderZ32, req.uri.shareRef)
    : await fetchV2(t, senderZ32, req.uri.locator, req.progress);

  // The recipient is us: a named recipient must be our key; a self-share must be from us. Both
  // signatures are verified by now, so saying whose share it is reveals nothing forged; it is
  // still the signature lane (exit 3).
  if (share.recipient === null) {
    if (share.sender !== myZ32) {
      const e = new CipherpostError(
        "signature",
        `this share is not for you: the sender sent it to themselves (--self), so only the identity ${share.sender} can open it`,
      );
      e.cause = "self-share of another identity";
      throw e;
    }
  } else {
    let rpk: Uint8Array;
    try {
      rpk = parsePublicKey(share.recipient);
    } catch {
      throw signatureError("recipient is not a key");
    }
    if (!bytesEqual(rpk, me.publicKey)) {
      const e = new CipherpostError(
        "signature",
        `this share is addressed to someone else (${share.recipient}), not to you (${myZ32})`,
        "if you hold several identities, set CIPHERPOST_HOME to the one it was sent to",
      );
      e.cause = "share is addressed to another key";
      throw e;
    }
  }

  const release = await state.lock(share.shareRef);
  let envelope: Envelope;
  let plaintext: Uint8Array;
  let outer: Uint8Array;
  let pendingToPublish: PendingReceipt | null = null;
  let rewrite = false;
  try {
    const c = await state.consumption(share.shareRef, share.sender);
    if (c.kind === "accepted") {
      const p = await pendingOf(state, share.shareRef);
      if (p) {
        // accepted, but its receipt never reached the network: publish that one, nothing else
        ui.status(`already accepted at ${c.at}; publishing its pending receipt`);
        pendingToPublish = p;
        throw new AlreadyAccepted();
      }
      rewrite = true; // written again below: no second confirmation, no second receipt
    }
    if (c.kind === "burned") {
      throw new CipherpostError(
        "declined",
        `share already consumed: it was burned after reading at ${c.at}`,
        "burn-after-read shares are shown once; ask the sender for a new share",
      );
    }

    const now = new Date();
    checkShareTimes(share.createdAt, share.ttlSeconds, Math.floor(now.getTime() / 1000));

    // Bindings that need the ciphertext: share_ref recomputes (v1.1 never checked it).
    outer = share.blob;
    let salt: Uint8Array | null = null;
    if (share.pinRequired) {
      if (share.blob.length < 32) throw signatureError("PIN blob shorter than its salt");
      salt = share.blob.subarray(0, 32);
      outer = share.blob.subarray(32);
    }
    if (computeShareRef(outer, share.createdAt) !== share.shareRef) {
      throw signatureError("share_ref mismatch");
    }

    let inner = await ageDecrypt(outer, ageIdentityOfSeed(me.seed));
    if (salt) inner = await openPinLayer(inner, salt, req, ui);
    plaintext = inner;
    if (isPointerEnvelope(plaintext)) {
      if (req.uri.version !== 2 || !req.large) throw signatureError("large pointer outside v2");
      if (rewrite) {
        // a large share is not fetched and written again (nor receipted again) once accepted
        ui.note("a large share is written once: it was accepted before and is not written again");
        return { status: "already_accepted", shareRef: share.shareRef };
      }
      return await req.large({ ...share, plaintext, locator: req.uri.locator });
    }
    envelope = parseEnvelope(plaintext);
    if (envelope.createdAt !== share.createdAt || envelope.protocolVersion !== share.protocol) {
      throw signatureError("envelope does not match its record");
    }

    // --armor applicability is checked before the banner (v1.1 order).
    let out = envelope.material.bytes;
    if (req.armor) out = armorMaterial(envelope.material.type as MaterialType, out);

    const handler = req.handler ? await req.handler(envelope.material) : undefined;
    if (!handler && req.refuseBinaryOnStdout && isBinary(out)) {
      throw new CipherpostError(
        "config",
        `configuration error: the material is binary (${out.length} bytes, ${envelope.material.type}); not writing it to the terminal`,
        "write it to a file with -o FILE, or pass -o - to print it anyway" +
          (envelope.material.type === "x509_cert" || envelope.material.type === "pgp_key"
            ? " (--armor gives a text form)"
            : ""),
      );
    }

    // an accepted share written again: no second confirmation (and, below, no second receipt)
    if (!rewrite) {
      const accepted = await ui.confirm({
        protocol: share.protocol,
        sender: share.sender,
        shareRef: share.shareRef,
        createdAt: share.createdAt,
        ttlSeconds: share.ttlSeconds,
        envelope,
        now,
        preview: handler?.lines,
      });
      if (!accepted) throw new CipherpostError("declined", "user declined acceptance");
    }

    if (handler) {
      await handler.deliver();
    } else if (toFile) {
      try {
        await writeOutputFile(req.output!, out, req.force);
      } catch (e) {
        if (e instanceof CipherpostError) throw e;
        throw new CipherpostError("io", `io error: cannot write ${req.output}`);
      }
      ui.status(
        `wrote ${out.length} bytes (${envelope.material.type}) to ${req.output} (mode 0600)`,
      );
    } else {
      try {
        await writeStdout(out);
      } catch (e) {
        if (e instanceof CipherpostError) throw e;
        throw new CipherpostError(
          "io",
          "io error: cannot write to standard output (closed, full or a broken pipe)",
          "nothing was accepted; receive again with -o <file>",
        );
      }
    }
    if (rewrite) return { status: "rewritten", shareRef: share.shareRef };
    // The output is whole: from here on nothing may fail the delivery. The signed receipt is
    // kept before the share is marked accepted, so that a crash or a network failure leaves a
    // receipt to publish (by the next receive of this share, or `republish`), never none.
    try {
      const receipt = signReceipt({
        acceptedAt: Math.floor(Date.now() / 1000),
        ciphertextHash: sha256Hex(outer),
        cleartextHash: sha256Hex(plaintext),
        nonce: toHex(crypto.getRandomValues(new Uint8Array(16))),
        protocolVersion: share.protocol,
        purpose: envelope.purpose,
        recipientPubkey: myZ32,
        senderPubkey: share.sender,
        shareRef: share.shareRef,
      }, me.seed);
      pendingToPublish = {
        shareRef: share.shareRef,
        receipt: receiptJson(receipt),
        protocol: share.protocol,
        locator: req.uri.version === 2 ? toHex(req.uri.locator) : undefined,
        ciphertextSha256: share.protocol === 1 ? sha256Hex(outer) : undefined,
      };
      await keepPending(state, pendingToPublish);
    } catch (e) {
      pendingToPublish = null;
      ui.note(`no receipt: ${e instanceof CipherpostError ? e.message : "it could not be signed"}`);
    }
    await state.markAccepted(share.shareRef);
    if (req.uri.version === 2) await state.indexLocator(toHex(req.uri.locator), share.shareRef);
    await state.append({
      acceptedAt: isoSeconds(),
      ciphertextHash: sha256Hex(outer),
      cleartextHash: sha256Hex(plaintext),
      purpose: envelope.purpose,
      sender: share.sender,
      shareRef: share.shareRef,
      state: envelope.burnAfterRead ? "burned" : undefined,
    });
  } catch (e) {
    if (!(e instanceof AlreadyAccepted)) throw e;
  } finally {
    release();
  }

  // Receipt: a failure here is a warning, never a lost delivery (it stays pending).
  if (!pendingToPublish) return { status: "received", shareRef: share.shareRef };
  try {
    ui.status("Publishing receipt to DHT...");
    await publishPending(t, state, me, pendingToPublish, ui);
    return { status: "received", shareRef: share.shareRef, receiptPublished: true };
  } catch (e) {
    ui.status(
      `receipt publish failed: ${
        e instanceof CipherpostError ? e.message : "unexpected error"
      }; it is kept, and published by the next receive of this share or \`cipherpost republish\``,
    );
    return { status: "received", shareRef: share.shareRef, receiptPublished: false };
  }
}

/** Control flow: the share was accepted before, but its receipt is still to be published. */
class AlreadyAccepted extends Error {}
