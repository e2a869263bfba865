/**
 * `receive`: resolve, verify both signatures and every binding, check the TTL, decrypt, show the
 * acceptance screen, require the sender's key typed back (or `--accept`), write the output
 * atomically, record the acceptance, and publish a signed receipt (protocol digest §7.1, plus
 * the checks v1.1 lacks, §11.4). Nothing from the Envelope is shown before every check passes.
 *
 * @module
 */

import { ageDecrypt } from "../crypto/age.ts";
import { txtRecord, txtText } from "../pkarr/dns.ts";
import { b64decode, bytesEqual, stripControl, toHex } from "../util/encoding.ts";
import { CipherpostError, signatureError } from "../util/errors.ts";
import { writeFileAtomic } from "../util/fsutil.ts";
import { pinKey } from "../crypto/kdf.ts";
import { ageIdentityOf, ageIdentityOfSeed, type Keypair, sshFingerprint } from "../crypto/keys.ts";
import { armorMaterial, type MaterialType, previewMaterial } from "../material/material.ts";
import { encodeZ32, parsePublicKey } from "../pkarr/public_key.ts";
import {
  type Envelope,
  expiresAt,
  parseAndVerifyOuterRecord,
  parseEnvelope,
  receiptJson,
  sha256Hex,
  shareRef as computeShareRef,
  signReceipt,
} from "../protocol/record.ts";
import { localMinute, utcMinute } from "../protocol/receipts.ts";
import { overflowSlotOf, publishToSlot } from "../protocol/receipt_slot.ts";
import { SHARE_LABEL } from "./send.ts";
import type { ShareUri } from "../protocol/share_uri.ts";
import { isoSeconds, type State } from "../state/state.ts";
import type { Transport } from "../pkarr/transport.ts";
import { fetchV2Share, publishV2Receipt } from "../protocol/v2.ts";
import { isPointerEnvelope } from "../protocol/large_manifest.ts";
import type { LargeContext } from "./large_receive.ts";

/** How to receive. */
export interface ReceiveRequest {
  uri: ShareUri;
  /** path, "-" or undefined (stdout) */
  output?: string;
  force: boolean;
  armor: boolean;
  /** the sender key typed in advance (non-interactive acceptance) */
  accept?: string;
  /** obtains the PIN when the share needs one */
  pin: () => Promise<string>;
  /** reads the typed acceptance line; null when no TTY is available */
  promptLine: (() => Promise<string | null>) | null;
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
  const name = `${SHARE_LABEL}.${senderZ32}`;
  const shareText = (p: { records: Parameters<typeof txtText>[0][] }) => {
    const rr = p.records.find((r) => r.name === name && txtText(r) !== null);
    return rr ? txtText(rr) : null;
  };
  const resolved = await t.resolve(
    sender,
    (p) => shareText(p)?.includes(`"share_ref":"${ref}"`) === true,
  );
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

/** The acceptance screen (stderr). */
export function acceptanceBanner(
  s: VerifiedShare,
  env: Envelope,
  now: Date,
  preview?: string[],
): string[] {
  const exp = Number(expiresAt(s.createdAt, s.ttlSeconds));
  const left = Math.max(0, exp - Math.floor(now.getTime() / 1000));
  const lines = ["=== CIPHERPOST ACCEPTANCE ==============================="];
  if (env.burnAfterRead) lines.push("[BURN — you will only see this once]");
  const pk = parsePublicKey(s.sender);
  lines.push(
    `Purpose:     "${stripControl(env.purpose)}"`,
    `Sender:      ${sshFingerprint(pk)}`,
    `             ${s.sender}`,
    `Share ref:   ${s.shareRef}`,
    `Type:        ${env.material.type}`,
    `Size:        ${env.material.bytes.length} bytes`,
    ...(preview ?? previewMaterial(env.material.type, env.material.bytes, now)),
    `TTL:         ${Math.floor(left / 3600)}h ${
      String(Math.floor((left % 3600) / 60)).padStart(2, "0")
    }m remaining (expires ${utcMinute(exp)} / ${localMinute(exp)})`,
    `Protocol:    v${s.protocol}`,
    "=========================================================",
  );
  return lines;
}

/**
 * The ledger check that runs before any network access or passphrase prompt: an accepted share
 * returns its ref (the caller reports and exits 0); a burned share is exit 7.
 */
export async function checkConsumed(
  state: State,
  uri: ShareUri,
  log: (l: string) => void,
): Promise<string | null> {
  const ref = uri.version === 1 ? uri.shareRef : await state.refForLocator(toHex(uri.locator));
  if (!ref) return null;
  const c = await state.consumption(ref);
  if (c.kind === "accepted") {
    log(`already accepted at ${c.at}; not re-decrypting`);
    return ref;
  }
  if (c.kind === "burned") {
    log(`share already consumed (burned at ${c.at})`);
    throw new CipherpostError("declined", "user declined acceptance");
  }
  return null;
}

/** Receive a share. */
export async function receive(
  t: Transport,
  state: State,
  me: Keypair,
  req: ReceiveRequest,
  log: (line: string) => void,
  writeStdout: (b: Uint8Array) => Promise<void>,
): Promise<ReceiveResult> {
  const myZ32 = encodeZ32(me.publicKey);
  const senderZ32 = req.uri.sender;
  let senderPk: Uint8Array;
  try {
    senderPk = parsePublicKey(senderZ32);
  } catch {
    throw new CipherpostError("invalid_uri", "invalid share URI: sender is not a valid public key");
  }

  log("Resolving from DHT...");
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
  try {
    const c = await state.consumption(share.shareRef);
    if (c.kind === "accepted") {
      log(`already accepted at ${c.at}; not re-decrypting`);
      return { status: "already_accepted", shareRef: share.shareRef };
    }
    if (c.kind === "burned") {
      log(`share already consumed (burned at ${c.at})`);
      throw new CipherpostError("declined", "user declined acceptance");
    }

    const now = new Date();
    if (BigInt(Math.floor(now.getTime() / 1000)) >= expiresAt(share.createdAt, share.ttlSeconds)) {
      throw new CipherpostError("expired", "share expired");
    }

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
    if (isPointerEnvelope(plaintext)) {
      if (req.uri.version !== 2 || !req.large) throw signatureError("large pointer outside v2");
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
    for (const line of acceptanceBanner(share, envelope, now, handler?.lines)) log(line);
    let typed: string | null;
    if (req.accept !== undefined) {
      typed = req.accept;
    } else if (req.promptLine) {
      log("To accept, paste the sender's z32 pubkey and press Enter:");
      typed = await req.promptLine();
    } else {
      throw new CipherpostError(
        "declined",
        "user declined acceptance: no terminal to confirm on",
        `to accept without a terminal, pass --accept ${share.sender}`,
      );
    }
    if (typed === null || typed.trim() !== share.sender) {
      throw new CipherpostError("declined", "user declined acceptance");
    }

    if (handler) {
      await handler.deliver();
    } else if (req.output && req.output !== "-") {
      if (!req.force) {
        try {
          await Deno.lstat(req.output);
          throw new CipherpostError(
            "config",
            `configuration error: ${req.output} already exists; refusing to overwrite it`,
            "choose another path, or pass --force",
          );
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
      }
      try {
        await writeFileAtomic(req.output, out, 0o600);
      } catch (e) {
        if (e instanceof CipherpostError) throw e;
        throw new CipherpostError("io", `io error: cannot write ${req.output}`);
      }
    } else {
      await writeStdout(out);
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
  } finally {
    release();
  }

  // Receipt: a failure here is a warning, never a lost delivery.
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
  try {
    log("Publishing receipt to DHT...");
    if (req.uri.version === 2) {
      await publishV2Receipt(t, req.uri.locator, receiptJson(receipt));
    } else {
      const label = `_cprcpt-${share.shareRef}`;
      try {
        await t.update(me.seed, me.publicKey, (records) => [
          ...records.filter((r) =>
            r.name.replace(/\.+$/, "") !== `${label}.${myZ32}` && r.name !== label
          ),
          txtRecord(label, 300, receiptJson(receipt)),
        ]);
      } catch (e) {
        if (!(e instanceof CipherpostError && e.kind === "too_large")) throw e;
        log("note: your packet is full; receipt published to the share's overflow slot");
        await publishToSlot(t, overflowSlotOf(outer), receiptJson(receipt));
      }
    }
    await state.append({
      acceptedAt: isoSeconds(),
      ciphertextHash: sha256Hex(outer),
      cleartextHash: sha256Hex(plaintext),
      purpose: envelope.purpose,
      receiptPublishedAt: isoSeconds(),
      sender: share.sender,
      shareRef: share.shareRef,
    });
    return { status: "received", shareRef: share.shareRef, receiptPublished: true };
  } catch (e) {
    log(`receipt publish failed: ${e instanceof CipherpostError ? e.message : "unexpected error"}`);
    return { status: "received", shareRef: share.shareRef, receiptPublished: false };
  }
}
