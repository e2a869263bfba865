/**
 * The one receive pipeline (docs/PROTOCOL.md §2.2, §2.3, §3.5): resolve, verify both signatures
 * and every binding, check the recipient, the ledger and the TTL, decrypt, let the product's
 * payload handler parse and describe the share, ask the UI port to confirm (the CLI shows the
 * acceptance screen and wants the sender's key typed back or `--accept`), deliver, keep the
 * signed receipt as pending, record the acceptance, and publish the receipt. Nothing from the
 * Envelope reaches the UI before every check passes. Large shares (lib/flows/large/) and Claude
 * Code hand-offs (lib/flows/handoff/) are payload handlers of this pipeline, never copies of it.
 *
 * @module
 */

import { ageDecrypt } from "../../crypto/age.ts";
import { txtText } from "../../pkarr/dns.ts";
import { b64decode, bytesEqual, toHex } from "../../util/encoding.ts";
import { CipherpostError, signatureError } from "../../util/errors.ts";
import { checkOutputTarget, writeOutputFile } from "../../util/fsutil.ts";
import { openPinLayer, splitPinBlob } from "../../crypto/pin.ts";
import { ageIdentityOfSeed, type Keypair } from "../../crypto/keys.ts";
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
import { Contacts } from "../../state/contacts.ts";
import type { FlowContext, FlowUi, PayloadSummary } from "./ui.ts";
import { fetchV2Share } from "./v2_transfer.ts";
import { keepPending, pendingOf, type PendingReceipt, publishPending } from "./pending_receipts.ts";
import { isPointerEnvelope } from "../../protocol/large_manifest.ts";

/** A verified and decrypted share, handed to a {@link PayloadHandler}. */
export interface OpenedShare {
  protocol: 1 | 2;
  /** z32 sender key (both signatures verified) */
  sender: string;
  recipient: string | null;
  shareRef: string;
  createdAt: number;
  ttlSeconds: bigint;
  /** the decrypted Envelope bytes (a material Envelope or a large-share pointer Envelope) */
  plaintext: Uint8Array;
  /** the outer age ciphertext (what `ciphertext_hash` of a DHT share's receipt covers) */
  outer: Uint8Array;
  /** v2: the share's locator */
  locator?: Uint8Array;
}

/** What a receipt binds of a delivered payload (docs/PROTOCOL.md §2.3). */
export interface DeliveredHashes {
  ciphertextHash: string;
  cleartextHash: string;
}

/** A parsed payload: what the acceptance screen shows, and how to deliver it once accepted. */
export interface OpenedPayload {
  purpose: string;
  burnAfterRead: boolean;
  payload: PayloadSummary;
  /**
   * Deliver the payload (write it, place it); runs only after the user accepted, or for a share
   * accepted before (`again`). Must leave nothing half-written when it throws.
   */
  deliver(again: boolean): Promise<DeliveredHashes>;
}

/**
 * Turns a verified, decrypted share into an {@link OpenedPayload}. One per product: the
 * material handler of {@link materialPayload}, the large-share handler, the session handler.
 */
export interface PayloadHandler {
  /** Runs before anything is fetched (e.g. the output target is free). */
  check?(): Promise<void>;
  /**
   * Parse the share (throw a signature error when it is malformed) and describe it. Nothing
   * is written here.
   */
  open(share: OpenedShare, ui: FlowUi): Promise<OpenedPayload>;
}

/** How to receive. */
export interface ReceiveRequest {
  uri: ShareUri;
  /** obtains the PIN when the share needs one (called again after a wrong PIN) */
  pin: () => Promise<string>;
  /** how many PINs to try before failing with `wrong PIN` (default 1; a terminal gets 3) */
  pinTries?: number;
  /** what the share may hold and how it is delivered */
  payload: PayloadHandler;
}

/** What was received. */
export interface ReceiveResult {
  /**
   * `received`: accepted now; `rewritten`: an accepted share delivered again (no prompt, no new
   * receipt); `receipt_published`: accepted before, only its pending receipt went out now
   */
  status: "received" | "rewritten" | "receipt_published";
  /** The share's 32-hex reference. */
  shareRef: string;
  /** the payload as the acceptance screen showed it */
  payload?: PayloadSummary;
  /** false: the receipt is kept and goes out with the next receive or `republish` */
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
  if (c.kind === "burned") throw burnedError(c.at);
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
async function askPin(
  inner: Uint8Array,
  salt: Uint8Array,
  req: ReceiveRequest,
  ui: FlowUi,
): Promise<Uint8Array> {
  const tries = Math.max(1, req.pinTries ?? 1);
  for (let i = 1;; i++) {
    const pin = await req.pin();
    try {
      return await openPinLayer(inner, salt, pin);
    } catch {
      if (i >= tries) throw new CipherpostError("decrypt", "wrong PIN");
      ui.status(`wrong PIN; try again (${tries - i} ${tries - i === 1 ? "try" : "tries"} left)`);
    }
  }
}

/**
 * Receive a share: resolve it, verify both signatures and every binding, check the recipient,
 * the ledger and the TTL, decrypt, let `req.payload` parse and describe it, ask `ui.confirm`,
 * deliver, and keep then publish a signed receipt. This is the one acceptance path: DHT shares,
 * large shares and Claude Code hand-offs differ only in their {@link PayloadHandler}.
 *
 * Nothing from the share reaches the UI before every check passes. A share accepted before is
 * delivered again without a prompt and without a second receipt (its pending receipt, if any,
 * is published instead); a burned one is refused.
 *
 * @throws CipherpostError: `signature` (exit 3: any check, nothing written), `expired`,
 *   `declined` (the user did not accept, or a burned share), `decrypt` (wrong PIN), `network`,
 *   `not_found`, and the payload handler's errors.
 */
export async function receiveShare(
  ctx: FlowContext,
  req: ReceiveRequest,
  ui: FlowUi,
): Promise<ReceiveResult> {
  const { transport: t, state, me } = ctx;
  const myZ32 = encodeZ32(me.publicKey);
  const senderZ32 = req.uri.sender;
  // The output target is checked before anything is fetched, decrypted or shown.
  await req.payload.check?.();
  let senderPk: Uint8Array;
  try {
    senderPk = parsePublicKey(senderZ32);
  } catch {
    throw new CipherpostError("invalid_uri", "invalid share URI: sender is not a valid public key");
  }

  ui.status("Resolving from DHT...");
  const share = req.uri.version === 1
    ? await fetchV1(t, senderPk, senderZ32, req.uri.shareRef)
    : await fetchV2(t, senderZ32, req.uri.locator, (d, n) => ui.progress?.("fetch", d, n));
  checkRecipient(share, me, myZ32);

  const release = await state.lock(share.shareRef);
  let pendingToPublish: PendingReceipt | null = null;
  let shown: PayloadSummary | undefined;
  try {
    const c = await state.consumption(share.shareRef, share.sender);
    if (c.kind === "accepted") {
      const p = await pendingOf(state, share.shareRef);
      if (p) {
        // accepted, but its receipt never reached the network: publish that one, nothing else
        ui.status(`already accepted at ${c.at}; publishing its pending receipt`);
        pendingToPublish = p;
      }
    }
    if (c.kind === "burned") throw burnedError(c.at);
    if (pendingToPublish === null) {
      const again = c.kind === "accepted";
      const now = new Date();
      checkShareTimes(share.createdAt, share.ttlSeconds, Math.floor(now.getTime() / 1000));

      // Bindings that need the ciphertext: share_ref recomputes (v1.1 never checked it).
      const { salt, outer } = splitPinBlob(share.blob, share.pinRequired);
      if (computeShareRef(outer, share.createdAt) !== share.shareRef) {
        throw signatureError("share_ref mismatch");
      }
      let plaintext = await ageDecrypt(outer, ageIdentityOfSeed(me.seed));
      if (salt) plaintext = await askPin(plaintext, salt, req, ui);

      const opened = await req.payload.open({
        protocol: share.protocol,
        sender: share.sender,
        recipient: share.recipient,
        shareRef: share.shareRef,
        createdAt: share.createdAt,
        ttlSeconds: share.ttlSeconds,
        plaintext,
        outer,
        locator: req.uri.version === 2 ? req.uri.locator : undefined,
      }, ui);
      shown = opened.payload;

      // an accepted share delivered again: no second confirmation, no second receipt
      if (!again) {
        if (!ui.confirm) {
          throw new CipherpostError("declined", "user declined acceptance: nobody to ask");
        }
        const accepted = await ui.confirm({
          protocol: share.protocol,
          sender: share.sender,
          senderContact: await contactNameOf(state, share.sender),
          shareRef: share.shareRef,
          createdAt: share.createdAt,
          ttlSeconds: share.ttlSeconds,
          purpose: opened.purpose,
          burnAfterRead: opened.burnAfterRead,
          now,
          payload: opened.payload,
        });
        if (!accepted) throw new CipherpostError("declined", "user declined acceptance");
      }
      const hashes = await opened.deliver(again);
      if (again) return { status: "rewritten", shareRef: share.shareRef, payload: shown };
      // The payload is delivered: from here on nothing may fail the delivery. The signed
      // receipt is kept before the share is marked accepted, so that a crash or a network
      // failure leaves a receipt to publish (by the next receive of this share, or
      // `republish`), never none.
      pendingToPublish = await keepReceipt(state, me, share, req.uri, opened.purpose, hashes, ui);
      await state.markAccepted(share.shareRef);
      if (req.uri.version === 2) await state.indexLocator(toHex(req.uri.locator), share.shareRef);
      await state.append({
        acceptedAt: isoSeconds(),
        ciphertextHash: hashes.ciphertextHash,
        cleartextHash: hashes.cleartextHash,
        purpose: opened.purpose,
        sender: share.sender,
        shareRef: share.shareRef,
        state: opened.burnAfterRead ? "burned" : undefined,
      });
    }
  } finally {
    release();
  }

  const result = (status: ReceiveResult["status"], published?: boolean): ReceiveResult => ({
    status,
    shareRef: share.shareRef,
    payload: shown,
    receiptPublished: published,
  });
  // a share accepted before: only its pending receipt was to go out
  const status = shown === undefined ? "receipt_published" : "received";
  // Receipt: a failure here is a warning, never a lost delivery (it stays pending).
  if (!pendingToPublish) return result(status);
  try {
    ui.status("Publishing receipt to DHT...");
    await publishPending(t, state, me, pendingToPublish, ui);
    return result(status, true);
  } catch (e) {
    ui.status(
      `receipt publish failed: ${
        e instanceof CipherpostError ? e.message : "unexpected error"
      }; it is kept, and published by the next receive of this share or by republish`,
    );
    return result(status, false);
  }
}

/**
 * The recipient is us: a named recipient must be our key; a self-share must be from us. Both
 * signatures are verified by now, so saying whose share it is reveals nothing forged; it is
 * still the signature lane (exit 3).
 */
function checkRecipient(share: VerifiedShare, me: Keypair, myZ32: string): void {
  if (share.recipient === null) {
    if (share.sender !== myZ32) {
      const e = new CipherpostError(
        "signature",
        `this share is not for you: the sender sent it to themselves, so only the identity ${share.sender} can open it`,
      );
      e.cause = "self-share of another identity";
      throw e;
    }
    return;
  }
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

function burnedError(at: string): CipherpostError {
  return new CipherpostError(
    "declined",
    `share already consumed: it was burned after reading at ${at}`,
    "burn-after-read shares are shown once; ask the sender for a new share",
  );
}

/** The contact name this home gives a key, or null (a damaged contacts file counts as none). */
export async function contactNameOf(state: State, z32: string): Promise<string | null> {
  try {
    const hits = await new Contacts(state.home).byKey(z32);
    return hits.length > 0 ? hits[0].name : null;
  } catch {
    return null;
  }
}

/**
 * Sign the receipt of a delivered share and keep it as pending (published afterwards). A
 * receipt that cannot be signed is a note, never a lost delivery.
 */
async function keepReceipt(
  state: State,
  me: Keypair,
  share: VerifiedShare,
  uri: ShareUri,
  purpose: string,
  hashes: DeliveredHashes,
  ui: FlowUi,
): Promise<PendingReceipt | null> {
  try {
    const receipt = signReceipt({
      acceptedAt: Math.floor(Date.now() / 1000),
      ciphertextHash: hashes.ciphertextHash,
      cleartextHash: hashes.cleartextHash,
      nonce: toHex(crypto.getRandomValues(new Uint8Array(16))),
      protocolVersion: share.protocol,
      purpose,
      recipientPubkey: encodeZ32(me.publicKey),
      senderPubkey: share.sender,
      shareRef: share.shareRef,
    }, me.seed);
    const pending: PendingReceipt = {
      shareRef: share.shareRef,
      receipt: receiptJson(receipt),
      protocol: share.protocol,
      locator: uri.version === 2 ? toHex(uri.locator) : undefined,
      ciphertextSha256: share.protocol === 1 ? hashes.ciphertextHash : undefined,
    };
    await keepPending(state, pending);
    return pending;
  } catch (e) {
    ui.note(`no receipt: ${e instanceof CipherpostError ? e.message : "it could not be signed"}`);
    return null;
  }
}

/** How a DHT share's material is written. */
export interface MaterialOutput {
  /** path, "-" or undefined (the `writeStdout` sink) */
  output?: string;
  /** replace an existing regular file */
  force: boolean;
  /** PEM/ASCII armor for x509_cert and pgp_key material */
  armor: boolean;
  /**
   * Refuse binary material on the default output (set by the CLI when stdout is a terminal and
   * no `-o` was given): written raw, it would garble the terminal.
   */
  refuseBinaryOnStdout?: boolean;
  /** where material goes when `output` is "-" or undefined */
  writeStdout: (bytes: Uint8Array) => Promise<void>;
}

/**
 * The payload handler of DHT shares: the material Envelope, written to a file (atomically,
 * 0600, never through a symlink) or to the stdout sink. A large-share pointer is refused
 * (the large layer's handler takes those).
 */
export function materialPayload(o: MaterialOutput): PayloadHandler {
  const toFile = o.output !== undefined && o.output !== "-";
  return {
    check: toFile ? () => checkOutputTarget(o.output!, o.force) : undefined,
    open: (share, ui) => Promise.resolve(openMaterial(share, o, ui)),
  };
}

/** Parse a material Envelope and check it against its record (the share-level rules). */
export function parseShareEnvelope(share: OpenedShare): Envelope {
  if (isPointerEnvelope(share.plaintext)) {
    throw signatureError("a large-share pointer where a material envelope belongs");
  }
  const envelope = parseEnvelope(share.plaintext);
  if (envelope.createdAt !== share.createdAt || envelope.protocolVersion !== share.protocol) {
    throw signatureError("envelope does not match its record");
  }
  return envelope;
}

/** The receipt hashes of a DHT share: its outer ciphertext and its Envelope. */
export function shareHashes(share: OpenedShare): DeliveredHashes {
  return { ciphertextHash: sha256Hex(share.outer), cleartextHash: sha256Hex(share.plaintext) };
}

function openMaterial(share: OpenedShare, o: MaterialOutput, ui: FlowUi): OpenedPayload {
  const envelope = parseShareEnvelope(share);
  // --armor applicability is checked before the banner (v1.1 order).
  let out = envelope.material.bytes;
  if (o.armor) out = armorMaterial(envelope.material.type as MaterialType, out);
  if (o.refuseBinaryOnStdout && isBinary(out)) {
    throw new CipherpostError(
      "config",
      `configuration error: the material is binary (${out.length} bytes, ${envelope.material.type}); not writing it to the terminal`,
      {
        step: "binary_output",
        data: envelope.material.type === "x509_cert" || envelope.material.type === "pgp_key"
          ? { armor: "yes" }
          : {},
      },
    );
  }
  return {
    purpose: envelope.purpose,
    burnAfterRead: envelope.burnAfterRead,
    payload: { kind: "material", type: envelope.material.type, bytes: envelope.material.bytes },
    deliver: async () => {
      await writeMaterial(out, envelope.material.type, o, ui);
      return shareHashes(share);
    },
  };
}

async function writeMaterial(
  out: Uint8Array,
  type: string,
  o: MaterialOutput,
  ui: FlowUi,
): Promise<void> {
  if (o.output !== undefined && o.output !== "-") {
    try {
      await writeOutputFile(o.output, out, o.force);
    } catch (e) {
      if (e instanceof CipherpostError) throw e;
      throw new CipherpostError("io", `io error: cannot write ${o.output}`);
    }
    ui.status(`wrote ${out.length} bytes (${type}) to ${o.output} (mode 0600)`);
    return;
  }
  try {
    await o.writeStdout(out);
  } catch (e) {
    if (e instanceof CipherpostError) throw e;
    throw new CipherpostError(
      "io",
      "io error: cannot write to standard output (closed, full or a broken pipe)",
      { step: "give_output_path", data: { also: "nothing was accepted" } },
    );
  }
}
