/**
 * Streaming age files whose payload runs on the runtime's native ChaCha20-Poly1305.
 *
 * An age file is a header (recipient stanzas and an HMAC over them, made and checked by
 * typage, `npm:age-encryption`), a 16-byte nonce, then the payload in age's STREAM layout:
 * 64 KiB chunks, each sealed with ChaCha20-Poly1305 under `HKDF-SHA-256(file key, nonce,
 * "payload")` with a 12-byte nonce of an 11-byte big-endian chunk counter and a last-chunk
 * flag byte. typage seals those chunks in JavaScript (~90 MiB/s here); this module seals them
 * with `node:crypto`'s ChaCha20-Poly1305 (native code, ~600 MiB/s here), so the large-share
 * parts (docs/PROTOCOL.md §5.2) are the same age files, made 6× faster. The primitives are the
 * runtime's and typage's; only the chunk framing is here, checked against the C2SP/CCTV age
 * vectors and the `age` CLI in `tests/age_stream_test.ts`.
 *
 * @module
 */

import { Decrypter, Encrypter, type Recipient } from "age-encryption";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { createCipheriv, createDecipheriv } from "node:crypto";

const CHUNK = 64 * 1024;
const TAG = 16;
const SEALED = CHUNK + TAG;
const NONCE = 16;
/** A header longer than this is refused (one X25519 stanza is ~200 bytes). */
const MAX_HEADER = 64 * 1024;
const PAYLOAD = new TextEncoder().encode("payload");
const MAC_LINE = new TextEncoder().encode("\n--- ");

/** Why a file did not decrypt. */
export class AgeStreamError extends Error {
  /** @param stage `header`: not an age file for this identity; `payload`: a bad chunk */
  constructor(readonly stage: "header" | "payload", message: string) {
    super(message);
    this.name = "AgeStreamError";
  }
}

/** STREAM nonce: 11-byte big-endian chunk counter, then 1 for the last chunk, else 0. */
function chunkNonce(counter: number, last: boolean): Uint8Array {
  const n = new Uint8Array(12);
  // 11-byte big-endian counter; a part never reaches 2^53 chunks
  let c = counter;
  for (let i = 10; i >= 0 && c > 0; i--) {
    n[i] = c % 256;
    c = Math.floor(c / 256);
  }
  n[11] = last ? 1 : 0;
  return n;
}

/**
 * Bytes handed to one `update` call. node:crypto returns a fresh buffer per call; at 64 KiB
 * those were 60 MiB of garbage outside the JS heap at a time (measured: 1 GiB sealed in 64 KiB
 * calls peaked at 118 MiB RSS, in 16 KiB calls at 68 MiB, and ran 15 % faster).
 */
const UPDATE = 16 * 1024;

function seal(key: Uint8Array, counter: number, last: boolean, plain: Uint8Array, out: Uint8Array) {
  const c = createCipheriv("chacha20-poly1305", key, chunkNonce(counter, last), {
    authTagLength: TAG,
  });
  let o = 0;
  for (let p = 0; p < plain.length; p += UPDATE) {
    const body = c.update(plain.subarray(p, p + UPDATE));
    out.set(body, o);
    o += body.length;
  }
  c.final();
  out.set(c.getAuthTag(), o);
}

/** The last `n` bytes of consecutive `pieces`. */
function tail(pieces: Uint8Array[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  let need = n;
  for (let i = pieces.length - 1; i >= 0 && need > 0; i--) {
    const p = pieces[i];
    const k = Math.min(p.length, need);
    out.set(p.subarray(p.length - k), need - k);
    need -= k;
  }
  return out;
}

/**
 * Open one sealed chunk, given as consecutive `pieces` (their total is `dst.length` + 16), into
 * `dst`. `dst` holds unauthenticated bytes until this returns; on failure it throws and the
 * caller releases nothing of `dst`.
 */
function open(
  key: Uint8Array,
  counter: number,
  last: boolean,
  pieces: Uint8Array[],
  dst: Uint8Array,
): void {
  const d = createDecipheriv("chacha20-poly1305", key, chunkNonce(counter, last), {
    authTagLength: TAG,
  });
  d.setAuthTag(tail(pieces, TAG));
  let left = dst.length;
  let o = 0;
  for (const piece of pieces) {
    if (left === 0) break;
    const body = piece.subarray(0, Math.min(piece.length, left));
    left -= body.length;
    for (let p = 0; p < body.length; p += UPDATE) {
      const plain = d.update(body.subarray(p, p + UPDATE));
      dst.set(plain, o);
      o += plain.length;
    }
  }
  try {
    d.final();
  } catch {
    throw new AgeStreamError("payload", `chunk ${counter} failed to authenticate`);
  }
}

/** Bytes of an age file (header and nonce excluded) for `plainLength` bytes of payload. */
export function sealedLength(plainLength: number): number {
  return plainLength + TAG * Math.max(1, Math.ceil(plainLength / CHUNK));
}

/**
 * The STREAM payload sealer of an age file whose file key is `fileKey` and whose payload nonce
 * is `nonce`: plaintext in ({@link PayloadSealer.push}, any sizes), sealed chunks out, all
 * synchronous (no stream machinery on the hot path: a part job calls it in a plain loop).
 */
export class PayloadSealer {
  private readonly key: Uint8Array;
  private readonly buf = new Uint8Array(CHUNK);
  private used = 0;
  private counter = 0;

  constructor(fileKey: Uint8Array, nonce: Uint8Array) {
    this.key = hkdf(sha256, fileKey, nonce, PAYLOAD, 32);
  }

  /** Seal what `chunk` completes; returns the sealed bytes (empty while a chunk fills). */
  push(chunk: Uint8Array): Uint8Array {
    const out = new Uint8Array(this.sealedBy(chunk.length));
    this.pushInto(chunk, out);
    return out;
  }

  /** How many sealed bytes a {@link push} of `n` more bytes gives. */
  sealedBy(n: number): number {
    // a full buffer is sealed only once more bytes arrive: the last chunk may be full
    const full = Math.floor((this.used + n - 1) / CHUNK);
    return full > 0 ? full * SEALED : 0;
  }

  /**
   * {@link push} into `out` (at least {@link sealedBy} bytes), with no allocation: a caller
   * seals a whole part into one buffer it reuses. Returns the bytes written.
   */
  pushInto(chunk: Uint8Array, out: Uint8Array): number {
    let o = 0;
    while (chunk.length > 0) {
      if (this.used === CHUNK) {
        seal(this.key, this.counter++, false, this.buf, out.subarray(o, o + SEALED));
        o += SEALED;
        this.used = 0;
      }
      const n = Math.min(CHUNK - this.used, chunk.length);
      this.buf.set(chunk.subarray(0, n), this.used);
      this.used += n;
      chunk = chunk.subarray(n);
    }
    return o;
  }

  /** Seal the last chunk (possibly empty) and forget the key. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.used + TAG);
    this.finishInto(out);
    return out;
  }

  /** {@link finish} into `out` (at least the bytes left + 16); returns the bytes written. */
  finishInto(out: Uint8Array): number {
    const n = this.used + TAG;
    seal(this.key, this.counter, true, this.buf.subarray(0, this.used), out.subarray(0, n));
    this.key.fill(0);
    return n;
  }
}

/**
 * {@link PayloadSealer} as a stream: plaintext in, sealed chunks out. {@link ageStreamEncrypt}
 * uses it with typage's key and nonce; the tests use it with the CCTV vectors' to compare bytes.
 */
export function payloadEncryptor(
  fileKey: Uint8Array,
  nonce: Uint8Array,
): TransformStream<Uint8Array, Uint8Array> {
  return payloadStream(new PayloadSealer(fileKey, nonce));
}

/** A {@link PayloadSealer} as a stream: plaintext in, sealed chunks out. */
export function payloadStream(s: PayloadSealer): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, ctl) {
      const out = s.push(chunk);
      if (out.length > 0) ctl.enqueue(out);
    },
    flush(ctl) {
      ctl.enqueue(s.finish());
    },
  });
}

/** An age file being written: its header (with the nonce) and the payload transform. */
export interface AgeStreamEncryption {
  /** the header and the 16-byte payload nonce: the file's first bytes */
  readonly head: Uint8Array;
  /** plaintext in, sealed chunks out (the file's remaining bytes); {@link payloadStream} makes
   * it a stream */
  readonly sealer: PayloadSealer;
  /** the whole file's length for `plainLength` bytes of plaintext */
  fileLength(plainLength: number): number;
}

/**
 * Start an age file to one `age1…` X25519 recipient. The header is typage's (a fresh file key
 * and nonce every call); the file key is taken from typage through a second `Recipient` that
 * adds no stanza.
 */
export async function ageStreamEncrypt(recipient: string): Promise<AgeStreamEncryption> {
  let fileKey: Uint8Array | undefined;
  const capture: Recipient = {
    wrapFileKey(k) {
      fileKey = k.slice();
      return [];
    },
  };
  const e = new Encrypter();
  e.addRecipient(recipient);
  e.addRecipient(capture);
  // an empty file: header ‖ nonce ‖ one empty sealed last chunk (16 bytes)
  const empty = await e.encrypt(new Uint8Array(0));
  if (!fileKey || empty.length < NONCE + TAG) throw new Error("age header not produced");
  const head = empty.slice(0, empty.length - TAG);
  const sealer = new PayloadSealer(fileKey, head.subarray(head.length - NONCE));
  fileKey.fill(0);
  return {
    head,
    sealer,
    fileLength: (plainLength) => head.length + sealedLength(plainLength),
  };
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Opens a whole age file (header, nonce, payload) with one `AGE-SECRET-KEY-1…` identity, fed
 * in pieces of any size: {@link AgeFileOpener.push} each, then {@link AgeFileOpener.finish}.
 * Plaintext goes to `emit` as it authenticates. The header and its HMAC are checked by typage
 * before any payload is read; each chunk is released only after it authenticates, and the
 * first bad, missing or extra chunk throws an {@link AgeStreamError} (as age requires, the
 * plaintext released before that point is a prefix of the real one).
 */
export class AgeFileOpener {
  private head: Uint8Array | null = new Uint8Array(0);
  private key: Uint8Array | null = null;
  private nonce: Uint8Array | null = null;
  private readonly pending: Uint8Array[] = [];
  private pendingLength = 0;
  private counter = 0;

  constructor(private readonly identity: string, private readonly emit: (b: Uint8Array) => void) {}

  /** The next `n` pending bytes as consecutive pieces (views, not copies). */
  private take(n: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let got = 0;
    while (got < n) {
      const c = this.pending[0];
      const k = Math.min(c.length, n - got);
      out.push(c.subarray(0, k));
      got += k;
      if (k === c.length) this.pending.shift();
      else this.pending[0] = c.subarray(k);
    }
    this.pendingLength -= n;
    return out;
  }

  private async headerFrom(bytes: Uint8Array): Promise<Uint8Array | null> {
    const at = indexOf(bytes, MAC_LINE);
    const end = at < 0 ? -1 : bytes.indexOf(0x0a, at + MAC_LINE.length);
    if (end < 0) {
      if (bytes.length > MAX_HEADER) throw new AgeStreamError("header", "no age header");
      return null;
    }
    const d = new Decrypter();
    d.addIdentity(this.identity);
    let fileKey: Uint8Array;
    try {
      fileKey = await d.decryptHeader(bytes.subarray(0, end + 1));
    } catch (e) {
      throw new AgeStreamError("header", (e as Error).message);
    }
    this.pending.push(bytes.subarray(end + 1));
    this.pendingLength += bytes.length - end - 1;
    return fileKey;
  }

  /** Take the next bytes of the file; awaits only while the header is still being read. */
  async push(chunk: Uint8Array): Promise<void> {
    if (this.head !== null) {
      const all = new Uint8Array(this.head.length + chunk.length);
      all.set(this.head);
      all.set(chunk, this.head.length);
      const fileKey = await this.headerFrom(all);
      if (fileKey === null) {
        this.head = all;
        return;
      }
      this.head = null;
      this.key = fileKey; // the file key; the payload key is derived once the nonce is in
    } else {
      this.pending.push(chunk);
      this.pendingLength += chunk.length;
    }
    this.openReady();
  }

  private openReady(): void {
    if (this.nonce === null) {
      if (this.pendingLength < NONCE) return;
      this.nonce = tail(this.take(NONCE), NONCE);
      const fk = this.key!;
      this.key = hkdf(sha256, fk, this.nonce, PAYLOAD, 32);
      fk.fill(0);
    }
    // a sealed chunk is opened as "not last" only once bytes after it have arrived
    const n = Math.floor((this.pendingLength - 1) / SEALED);
    if (n <= 0) return;
    const out = new Uint8Array(n * CHUNK);
    for (let i = 0; i < n; i++) {
      const sealed = this.take(SEALED);
      const dst = out.subarray(i * CHUNK, (i + 1) * CHUNK);
      try {
        open(this.key!, this.counter, false, sealed, dst);
      } catch (e) {
        // a full final chunk with bytes after it: release it, as age's reference
        // implementation does (CCTV `stream_trailing_garbage_long`), then fail for the rest
        try {
          open(this.key!, this.counter, true, sealed, dst);
        } catch {
          if (i > 0) this.emit(out.subarray(0, i * CHUNK));
          throw e;
        }
        this.emit(out.subarray(0, (i + 1) * CHUNK));
        throw new AgeStreamError("payload", "data after the final chunk");
      }
      this.counter++;
    }
    this.emit(out);
  }

  /** The end of the file: open the final chunk, or throw why the file is incomplete. */
  finish(): void {
    if (this.head !== null) throw new AgeStreamError("header", "no age header");
    if (this.nonce === null) throw new AgeStreamError("payload", "missing payload nonce");
    if (this.pendingLength < TAG) throw new AgeStreamError("payload", "missing final chunk");
    const size = this.pendingLength;
    const sealed = this.take(size);
    const last = new Uint8Array(size - TAG);
    try {
      open(this.key!, this.counter, true, sealed, last);
    } catch (e) {
      // a full chunk that authenticates as a middle chunk: release it, as age's reference
      // implementation does (CCTV `stream_no_final_full`), then fail for the missing end
      if (size !== SEALED) throw e;
      open(this.key!, this.counter, false, sealed, last);
      this.emit(last);
      throw new AgeStreamError("payload", "missing final chunk");
    }
    if (last.length === 0 && this.counter > 0) {
      throw new AgeStreamError("payload", "final chunk is empty");
    }
    this.key!.fill(0);
    if (last.length > 0) this.emit(last);
  }
}

/** {@link AgeFileOpener} as a stream: age file bytes in, plaintext out. */
export function ageStreamDecrypt(identity: string): TransformStream<Uint8Array, Uint8Array> {
  let ctl: TransformStreamDefaultController<Uint8Array> | null = null;
  const opener = new AgeFileOpener(identity, (b) => ctl!.enqueue(b));
  return new TransformStream<Uint8Array, Uint8Array>({
    start(c) {
      ctl = c;
    },
    transform: (chunk) => opener.push(chunk),
    flush: () => opener.finish(),
  });
}
