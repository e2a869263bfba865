/**
 * Byte encodings used on the wire: strict standard base64, lowercase hex, UTF-8.
 *
 * Base64 decoding is strict like Rust's `base64` 0.22 STANDARD engine: padding required,
 * no whitespace, and non-zero trailing bits rejected, so that every byte string has exactly one
 * accepted encoding (no malleability of signed fields).
 *
 * @module
 */

import { base64, base64nopad, hex } from "@scure/base";

const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard base64 with padding. */
export function b64encode(bytes: Uint8Array): string {
  return base64.encode(bytes);
}

/** Standard base64 without padding (OpenSSH-style fingerprints). */
export function b64encodeNoPad(bytes: Uint8Array): string {
  return base64nopad.encode(bytes);
}

/** Strict standard base64 decode; throws on any non-canonical input. */
export function b64decode(s: string): Uint8Array {
  if (!B64_RE.test(s)) throw new Error("invalid base64");
  const out = base64.decode(s);
  if (base64.encode(out) !== s) throw new Error("non-canonical base64");
  return out;
}

/** Lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  return hex.encode(bytes);
}

/** Hex decode (lowercase or uppercase). */
export function fromHex(s: string): Uint8Array {
  return hex.decode(s.toLowerCase());
}

const encoder = new TextEncoder();

/** UTF-8 encode. */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Fatal UTF-8 decode: throws on invalid sequences. */
export function fromUtf8(b: Uint8Array): string {
  return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(b);
}

/** Concatenate byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Equality of two byte arrays (constant-time when their lengths are equal). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** Byte-wise lexicographic comparison (negative, 0, positive); a shorter prefix is smaller. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Remove every Unicode `Cc` character (U+0000–U+001F, U+007F–U+009F), as v1.1 does to purposes. */
export function stripControl(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, "");
}

const UNSAFE =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_OR_BACKSLASH = new RegExp(`[\\\\${UNSAFE.source.slice(1)}`, "g");

/** How {@link escapeControl} escapes. */
export interface EscapeOptions {
  /**
   * Also write a backslash as `\\`, so that the output reads back unambiguously (text that
   * looks like an escape cannot be told from one otherwise; a shell's `$'…'` needs it). Default
   * false: purposes are shown as v1.1 shows them, backslashes as they are.
   */
  backslash?: boolean;
}

/**
 * The one escaper of text for a terminal (anything from the network, a transcript or a file
 * name): every Unicode `Cc` character (C0, DEL, C1), line/paragraph separator and bidirectional
 * control becomes a visible escape, `\xNN` up to U+00FF and `\uNNNN` above (`\x1b`, `\u202e`).
 * Everything else, other non-ASCII text included, stays as it is. Nothing the text holds can act
 * on the terminal or reorder what is shown.
 */
export function escapeControl(s: string, o: EscapeOptions = {}): string {
  return s.replace(o.backslash ? UNSAFE_OR_BACKSLASH : UNSAFE, (c) => {
    if (c === "\\") return "\\\\";
    const n = c.charCodeAt(0);
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u${n.toString(16)}`;
  });
}

/**
 * A purpose (or other one-line sender text) as v1.1 shows it: `Cc` controls removed
 * ({@link stripControl}), then the rest (bidirectional controls, separators) escaped
 * ({@link escapeControl}).
 */
export function displayText(s: string): string {
  return escapeControl(stripControl(s));
}

/** True when `s` holds a character {@link escapeControl} would escape (backslash aside). */
export function hasUnsafeText(s: string): boolean {
  UNSAFE.lastIndex = 0;
  const hit = UNSAFE.test(s);
  UNSAFE.lastIndex = 0;
  return hit;
}
