/**
 * `receive`: resolve, verify both signatures and every binding, check the TTL, decrypt, ask the
 * UI port to confirm (the CLI shows the acceptance screen and wants the sender's key typed back
 * or `--accept`), write the output atomically, record the acceptance, and publish a signed
 * receipt (protocol digest §7.1, plus the checks v1.1 lacks, §11.4). Nothing from the Envelope
 * reaches the UI before every check passes.
 *
 * @module
 */

import { ageDecrypt } from "../crypto/age.ts";
import { txtText } from "../pkarr/dns.ts";
import { b64decode, bytesEqual, toHex } from "../util/encoding.ts";
import { CipherpostError, signatureError } from "../util/errors.ts";
import { checkOutputTarget, writeOutputFile } from "../util/fsutil.ts";
import { pinKey } from "../crypto/kdf.ts";
import { ageIdentityOf, ageIdentityOfSeed, type Keypair } from "../crypto/keys.ts";
import { armorMaterial, type MaterialType } from "../material/material.ts";
import { encodeZ32, parsePublicKey } from "../pkarr/public_key.ts";
import {
  checkShareTimes,
  type Envelope,
  parseAndVerifyOuterRecord,
  parseEnvelope,
  receiptJson,
  sha256Hex,
  shareRef as computeShareRef,
  signReceipt,
} from "../protocol/record.ts";
import { shareRecords, textNamesShare } from "../protocol/labels.ts";
import type { ShareUri } from "../protocol/share_uri.ts";
import type { SignedPacket } from "../pkarr/signed_packet.ts";
import { isoSeconds, type State } from "../state/state.ts";
import type { Transport } from "../pkarr/transport.ts";
import type { FlowUi, ReceiveUi } from "./ui.ts";
import { fetchV2Share } from "./v2_transfer.ts";
import { keepPending, pendingOf, type PendingReceipt, publishPending } from "./pending_receipts.ts";

/** How to receive. */
export interface ReceiveRequest {
  uri: ShareUri;
  /** path, "-" or undefined (stdout) */
  output?: string;
  force: boolean;
  armor: boolean;
  /** obtains the PIN when the share needs one */
  pin: () => Promise<string>;
}

/** What was received. */
export interface ReceiveResult {
  status: "received" | "already_accepted";
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
): Promise<VerifiedShare> {
  const { manifest, blob } = await fetchV2Share(t, senderZ32, locator);
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
export type Consumed = { kind: "done"; ref: string } | { kind: "pending"; ref: string } | null;

/**
 * The ledger check that runs before any network access or passphrase prompt, on the parsed and
 * canonical URI (the ledger matches share_ref and sender): an accepted share is "done" (the
 * caller reports and exits 0), or "pending" when its receipt was never published (the caller
 * unlocks the identity and calls {@link publishPendingReceipt}); a burned share is exit 7.
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
    ui.status(`already accepted at ${c.at}; not re-decrypting`);
    return { kind: "done", ref };
  }
  if (c.kind === "burned") {
    ui.status(`share already consumed (burned at ${c.at})`);
    throw new CipherpostError("declined", "user declined acceptance");
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
    : await fetchV2(t, senderZ32, req.uri.locator);

  // The recipient is us: a named recipient must be our key; a self-share must be from us.
  if (share.recipient === null) {
    if (share.sender !== myZ32) throw signatureError("self-share of another identity");
  } else {
    let rpk: Uint8Array;
    try {
      rpk = parsePublicKey(share.recipient);
    } catch {
      throw signatureError("recipient is not a key");
    }
    if (!bytesEqual(rpk, me.publicKey)) throw signatureError("share is addressed to another key");
  }

  const release = await state.lock(share.shareRef);
  let envelope: Envelope;
  let plaintext: Uint8Array;
  let outer: Uint8Array;
  let pendingToPublish: PendingReceipt | null = null;
  try {
    const c = await state.consumption(share.shareRef, share.sender);
    if (c.kind === "accepted") {
      ui.status(`already accepted at ${c.at}; not re-decrypting`);
      const p = await pendingOf(state, share.shareRef);
      if (!p) return { status: "already_accepted", shareRef: share.shareRef };
      pendingToPublish = p;
      throw new AlreadyAccepted();
    }
    if (c.kind === "burned") {
      ui.status(`share already consumed (burned at ${c.at})`);
      throw new CipherpostError("declined", "user declined acceptance");
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
    if (salt) {
      const pin = await req.pin();
      inner = await ageDecrypt(inner, ageIdentityOf(await pinKey(pin, salt)));
    }
    plaintext = inner;
    envelope = parseEnvelope(plaintext);
    if (envelope.createdAt !== share.createdAt || envelope.protocolVersion !== share.protocol) {
      throw signatureError("envelope does not match its record");
    }

    // --armor applicability is checked before the banner (v1.1 order).
    let out = envelope.material.bytes;
    if (req.armor) out = armorMaterial(envelope.material.type as MaterialType, out);

    const accepted = await ui.confirm({
      protocol: share.protocol,
      sender: share.sender,
      shareRef: share.shareRef,
      createdAt: share.createdAt,
      ttlSeconds: share.ttlSeconds,
      envelope,
      now,
    });
    if (!accepted) throw new CipherpostError("declined", "user declined acceptance");

    if (toFile) {
      try {
        await writeOutputFile(req.output!, out, req.force);
      } catch (e) {
        if (e instanceof CipherpostError) throw e;
        throw new CipherpostError("io", `io error: cannot write ${req.output}`);
      }
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
