/**
 * Canonical JSON exactly as cipherpost v1.1 produces it (serde_canonical_json 1.0.0, protocol
 * docs/PROTOCOL.md §1.2), plus a strict JSON parser for records arriving from the network.
 *
 * Canonical form: object members sorted by the bytes of their quoted keys, no whitespace,
 * integers only, and only `"` and `\` escaped. Because Rust re-parses the canonical bytes with
 * serde_json, a string holding a C0 control character can never verify there; we refuse to
 * produce such bytes at all.
 *
 * The parser rejects duplicate keys (serde does), keeps integers beyond 2^53 exact as `bigint`,
 * and rejects fractions and exponents (no v1 field is a float). It refuses the key `__proto__`:
 * whether `obj["__proto__"] = v` makes an own member or replaces the object's prototype depends
 * on the runtime, and no record of ours has that field.
 *
 * @module
 */

import { CipherpostError } from "./errors.ts";
import { compareBytes } from "./encoding.ts";

/** A JSON value as this module models it. */
export type JsonValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

const encoder = new TextEncoder();

function canonString(s: string): string {
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f]/.test(s)) throw new Error("control character in signed string");
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function canon(v: JsonValue): string {
  if (v === null) return "null";
  switch (typeof v) {
    case "boolean":
      return v ? "true" : "false";
    case "bigint":
      return v.toString();
    case "number":
      if (!Number.isSafeInteger(v)) throw new Error("canonical JSON allows integers only");
      return String(v);
    case "string":
      return canonString(v);
  }
  if (Array.isArray(v)) return `[${v.map(canon).join(",")}]`;
  const entries = Object.entries(v).map(([k, val]) => {
    const key = canonString(k);
    return { key, bytes: encoder.encode(key), val };
  });
  entries.sort((a, b) => compareBytes(a.bytes, b.bytes));
  return `{${entries.map((e) => `${e.key}:${canon(e.val)}`).join(",")}}`;
}

/** The canonical bytes of a value. Throws on floats and on C0 controls in strings. */
export function canonicalize(value: JsonValue): Uint8Array {
  return encoder.encode(canon(value));
}

/**
 * Compact JSON with standard escaping and keys in the given object's own order: the form of
 * v1.1's TXT payloads (`serde_json::to_string` of a struct whose fields are declared
 * alphabetically). Callers pass objects whose keys are already in that order.
 */
export function compactJson(value: JsonValue): string {
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? rawJson(v.toString()) : v));
}

/** `JSON.rawJSON` (ES2025), which this TypeScript lib does not declare yet; typed locally. */
function rawJson(text: string): unknown {
  return (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON(text);
}

/**
 * Strict JSON parse: duplicate keys, the key `__proto__`, floats, nesting deeper than 64,
 * trailing data and bad escapes are errors.
 *
 * @throws CipherpostError("invalid_material", "invalid JSON: …") on any of them
 */
export function parseJson(text: string): JsonValue {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const fail = (what: string): never => {
    throw new CipherpostError("invalid_material", `invalid JSON: ${what} at ${i}`);
  };
  const str = (): string => {
    i++; // opening quote
    let out = "";
    while (true) {
      if (i >= text.length) fail("unterminated string");
      const c = text[i++];
      if (c === '"') return out;
      if (c === "\\") {
        const e = text[i++];
        const simple: Record<string, string> = {
          '"': '"',
          "\\": "\\",
          "/": "/",
          b: "\b",
          f: "\f",
          n: "\n",
          r: "\r",
          t: "\t",
        };
        if (e in simple) out += simple[e];
        else if (e === "u") {
          const h = text.slice(i, i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(h)) fail("bad \\u escape");
          out += String.fromCharCode(parseInt(h, 16));
          i += 4;
        } else fail("bad escape");
      } else if (c < " ") fail("raw control character in string");
      else out += c;
    }
  };
  const value = (depth: number): JsonValue => {
    if (depth > 64) fail("nesting too deep");
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const obj: Record<string, JsonValue> = {};
      ws();
      if (text[i] === "}") {
        i++;
        return obj;
      }
      while (true) {
        ws();
        if (text[i] !== '"') fail("expected key");
        const k = str();
        if (k === "__proto__") fail("key __proto__ refused");
        if (Object.hasOwn(obj, k)) fail("duplicate key");
        ws();
        if (text[i++] !== ":") fail("expected ':'");
        obj[k] = value(depth + 1);
        ws();
        const d = text[i++];
        if (d === "}") return obj;
        if (d !== ",") fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      const arr: JsonValue[] = [];
      ws();
      if (text[i] === "]") {
        i++;
        return arr;
      }
      while (true) {
        arr.push(value(depth + 1));
        ws();
        const d = text[i++];
        if (d === "]") return arr;
        if (d !== ",") fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    for (const [lit, v] of [["true", true], ["false", false], ["null", null]] as const) {
      if (text.startsWith(lit, i)) {
        i += lit.length;
        return v;
      }
    }
    const m = /^-?(?:0|[1-9][0-9]*)/.exec(text.slice(i, i + 32));
    if (!m) fail("unexpected character");
    const numText = m![0];
    i += numText.length;
    if (i < text.length && ".eE".includes(text[i])) fail("only integers are allowed");
    const big = BigInt(numText);
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(big)
      : big;
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail("trailing data");
  return v;
}

/** Field readers for parsed records: each throws on the wrong type (callers map to exit 3). */
export const field = {
  /** A JSON object (not an array, not null). */
  isObject(v: unknown): v is Record<string, JsonValue> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
  },
  /** A safe integer. */
  int(v: JsonValue | undefined): number {
    if (typeof v !== "number" || !Number.isSafeInteger(v)) throw new Error("not an integer");
    return v;
  },
  /** A string. */
  str(v: JsonValue | undefined): string {
    if (typeof v !== "string") throw new Error("not a string");
    return v;
  },
  /** An unsigned 64-bit integer, exact. */
  u64(v: JsonValue | undefined): bigint {
    if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
    if (typeof v === "bigint" && v >= 0n && v < 1n << 64n) return v;
    throw new Error("not a u64");
  },
};
