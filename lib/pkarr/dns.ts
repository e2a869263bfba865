/**
 * DNS packet codec for PKARR signed packets, byte-compatible with what Rust pkarr 7 emits via
 * simple-dns 0.11 (`Packet::new_reply(0)` + `build_bytes_vec_compressed`).
 *
 * Only answers are modelled. Names are rendered as labels joined by `.` with no trailing dot.
 * Record types we don't model keep their raw rdata (`UNKNOWN`). Types whose rdata holds names that
 * may be compressed (NS, CNAME, SOA, MX, …) are always decoded into fields, so a re-encode never
 * copies a compression pointer that points into another message.
 *
 * @module
 */

import { CipherpostError } from "../util/errors.ts";

/** Record data. */
export type RData =
  | { type: "A"; address: string }
  | { type: "AAAA"; address: string }
  | { type: "TXT"; strings: Uint8Array[] }
  | { type: NameType; target: string }
  | { type: PrefNameType; preference: number; exchange: string }
  | { type: "MINFO" | "RP"; first: string; second: string }
  | {
    type: "SOA";
    mname: string;
    rname: string;
    serial: number;
    refresh: number;
    retry: number;
    expire: number;
    minimum: number;
  }
  | { type: "SRV"; priority: number; weight: number; port: number; target: string }
  | {
    type: "HTTPS" | "SVCB";
    priority: number;
    target: string;
    params: Array<[number, Uint8Array]>;
  }
  | { type: "UNKNOWN"; code: number; data: Uint8Array };

/** Types whose rdata is a single (compressed) domain name. */
export type NameType = "CNAME" | "NS" | "PTR" | "MD" | "MF" | "MB" | "MG" | "MR" | "NSAP-PTR";
/** Types whose rdata is a 16-bit number followed by a (compressed) domain name. */
export type PrefNameType = "MX" | "AFSDB" | "RT";

/** One resource record. `class` defaults to 1 (IN); it is kept verbatim (all 16 bits). */
export interface DnsRecord {
  /**
   * The owner name. Decoded records carry the full name (`_foo.<key>`); when a packet is signed,
   * a name is taken relative to its key: `.` or `@` is the key itself, `_foo` becomes
   * `_foo.<key>`, a name whose last label is the key stays as it is.
   */
  name: string;
  /** Time to live, in seconds. */
  ttl: number;
  /** The DNS class (default 1, IN). */
  class?: number;
  /** The record's type and data. */
  data: RData;
}

const CODES: Record<Exclude<RData["type"], "UNKNOWN">, number> = {
  A: 1,
  NS: 2,
  MD: 3,
  MF: 4,
  CNAME: 5,
  SOA: 6,
  MB: 7,
  MG: 8,
  MR: 9,
  PTR: 12,
  MINFO: 14,
  MX: 15,
  TXT: 16,
  RP: 17,
  AFSDB: 18,
  RT: 21,
  "NSAP-PTR": 23,
  AAAA: 28,
  SRV: 33,
  SVCB: 64,
  HTTPS: 65,
};
const TYPES = new Map<number, keyof typeof CODES>(
  Object.entries(CODES).map(([k, v]) => [v, k as keyof typeof CODES]),
);

/** Largest character-string chunk simple-dns makes from a `&str`. */
const TXT_CHUNK = 254;

const enc = new TextEncoder();

function bad(reason: string): CipherpostError {
  return new CipherpostError("invalid_material", `malformed DNS packet: ${reason}`);
}
function badRecord(reason: string): CipherpostError {
  return new CipherpostError("invalid_material", `invalid DNS record: ${reason}`);
}

// ---------------------------------------------------------------------------------------------
// Names

/**
 * `normalize_name(origin, name)` from pkarr: drop one trailing `.`; if the last label is the origin
 * keep the name, if it is `@` or empty the name becomes the origin, else append `.<origin>`.
 */
export function normalizeName(origin: string, name: string): string {
  const n = name.endsWith(".") ? name.slice(0, -1) : name;
  const last = n.slice(n.lastIndexOf(".") + 1);
  if (last === origin) return n;
  if (last === "@" || last === "") return origin;
  return `${n}.${origin}`;
}

/** Splits a name into labels, dropping empty ones (`a..b` = `a.b`, `.` = root). */
function labelsOf(name: string): string[] {
  return name.split(".").filter((l) => l !== "");
}

// ---------------------------------------------------------------------------------------------
// Encoding

class Writer {
  buf = new Uint8Array(512);
  len = 0;
  /** label-suffix (labels joined by ".") → offset of its first occurrence */
  readonly names = new Map<string, number>();

  private grow(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  u8(v: number): void {
    this.grow(1);
    this.buf[this.len++] = v & 0xff;
  }
  u16(v: number): void {
    this.u8(v >>> 8);
    this.u8(v);
  }
  u32(v: number): void {
    this.u16(Math.floor(v / 0x10000));
    this.u16(v);
  }
  bytes(b: Uint8Array): void {
    this.grow(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  setU16(at: number, v: number): void {
    this.buf[at] = (v >>> 8) & 0xff;
    this.buf[at + 1] = v & 0xff;
  }

  /**
   * Writes a name. With `compress`, a suffix already in the message becomes a pointer, and every
   * suffix written is registered (offsets ≤ 0x3FFF only), as simple-dns `write_compressed_to`.
   */
  name(name: string, compress: boolean): void {
    const labels = labelsOf(name);
    const raw = labels.map((l) => enc.encode(l));
    let wire = 1;
    for (const r of raw) {
      if (r.length > 63) throw badRecord("label longer than 63 bytes");
      wire += r.length + 1;
    }
    if (wire > 255) throw badRecord("name longer than 255 bytes");
    for (let i = 0; i < labels.length; i++) {
      if (compress) {
        const key = labels.slice(i).join(".");
        const off = this.names.get(key);
        if (off !== undefined) {
          this.u16(0xc000 | off);
          return;
        }
        if (this.len <= 0x3fff) this.names.set(key, this.len);
      }
      this.u8(raw[i].length);
      this.bytes(raw[i]);
    }
    this.u8(0);
  }
}

function checkUint(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw badRecord(`${what} out of range`);
}

function parseIPv4(s: string): Uint8Array {
  const parts = s.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw badRecord("bad IPv4 address");
  }
  return new Uint8Array(parts.map(Number));
}

function parseIPv6(s: string): Uint8Array {
  const halves = s.split("::");
  if (halves.length > 2) throw badRecord("bad IPv6 address");
  const groups = (part: string): number[] => {
    if (part === "") return [];
    const out: number[] = [];
    const items = part.split(":");
    items.forEach((g, i) => {
      if (i === items.length - 1 && g.includes(".")) {
        const v4 = parseIPv4(g);
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) {
        out.push(parseInt(g, 16));
      } else {
        throw badRecord("bad IPv6 address");
      }
    });
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) throw badRecord("bad IPv6 address");
  const all = [...head, ...new Array(halves.length === 2 ? fill : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

function writeRData(w: Writer, d: RData): void {
  switch (d.type) {
    case "A":
      w.bytes(parseIPv4(d.address));
      return;
    case "AAAA":
      w.bytes(parseIPv6(d.address));
      return;
    case "TXT": {
      if (d.strings.length === 0) w.u8(0);
      for (const s of d.strings) {
        if (s.length > 255) throw badRecord("TXT character-string longer than 255 bytes");
        w.u8(s.length);
        w.bytes(s);
      }
      return;
    }
    case "MX":
    case "AFSDB":
    case "RT":
      checkUint(d.preference, 0xffff, "preference");
      w.u16(d.preference);
      w.name(d.exchange, true);
      return;
    case "MINFO":
    case "RP":
      w.name(d.first, true);
      w.name(d.second, true);
      return;
    case "SOA":
      w.name(d.mname, true);
      w.name(d.rname, true);
      for (const v of [d.serial, d.refresh, d.retry, d.expire, d.minimum]) {
        checkUint(v, 0xffffffff, "SOA field");
        w.u32(v);
      }
      return;
    case "SRV":
      for (const v of [d.priority, d.weight, d.port]) {
        checkUint(v, 0xffff, "SRV field");
        w.u16(v);
      }
      w.name(d.target, false);
      return;
    case "HTTPS":
    case "SVCB": {
      checkUint(d.priority, 0xffff, "priority");
      w.u16(d.priority);
      w.name(d.target, false);
      const params = [...d.params].sort((a, b) => a[0] - b[0]);
      for (const [key, value] of params) {
        checkUint(key, 0xffff, "SvcParamKey");
        checkUint(value.length, 0xffff, "SvcParamValue length");
        w.u16(key);
        w.u16(value.length);
        w.bytes(value);
      }
      return;
    }
    case "UNKNOWN":
      w.bytes(d.data);
      return;
    default:
      w.name(d.target, true); // CNAME, NS, PTR, MD, MF, MB, MG, MR, NSAP-PTR
  }
}

/**
 * Encodes records as the answers of a DNS reply (id 0, flags 0x8000) with simple-dns name
 * compression: one suffix map for the whole message, first-occurrence offsets, byte-exact
 * (case-sensitive) suffixes; owner names and NS/CNAME/PTR/MX/SOA/… rdata names are compressed and
 * registered; SRV/SVCB/HTTPS targets are written plain and not registered.
 */
export function encodeDnsPacket(records: DnsRecord[]): Uint8Array {
  checkUint(records.length, 0xffff, "record count");
  const w = new Writer();
  w.u16(0); // id
  w.u16(0x8000); // QR=1
  w.u16(0); // qdcount
  w.u16(records.length); // ancount
  w.u16(0); // nscount
  w.u16(0); // arcount
  for (const r of records) {
    const code = r.data.type === "UNKNOWN" ? r.data.code : CODES[r.data.type];
    const klass = r.class ?? 1;
    checkUint(code, 0xffff, "type");
    checkUint(klass, 0xffff, "class");
    checkUint(r.ttl, 0xffffffff, "ttl");
    w.name(r.name, true);
    w.u16(code);
    w.u16(klass);
    w.u32(r.ttl);
    const at = w.len;
    w.u16(0);
    writeRData(w, r.data);
    const rdlen = w.len - at - 2;
    checkUint(rdlen, 0xffff, "rdata length");
    w.setU16(at, rdlen);
  }
  return w.buf.slice(0, w.len);
}

// ---------------------------------------------------------------------------------------------
// Decoding

const lossy = new TextDecoder();

class Reader {
  pos = 0;
  constructor(readonly v: Uint8Array) {}

  need(n: number, end = this.v.length): void {
    if (this.pos + n > end) throw bad("truncated");
  }
  u8(): number {
    this.need(1);
    return this.v[this.pos++];
  }
  u16(): number {
    return (this.u8() << 8) | this.u8();
  }
  u32(): number {
    return this.u16() * 0x10000 + this.u16();
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const b = this.v.slice(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /** Reads a (possibly compressed) name. Pointers must point backwards; ≤ 255 bytes. */
  name(): string {
    const labels: string[] = [];
    let pos = this.pos;
    let jumped = false;
    let wire = 1;
    for (;;) {
      if (pos >= this.v.length) throw bad("truncated name");
      const len = this.v[pos];
      if ((len & 0xc0) === 0xc0) {
        if (pos + 1 >= this.v.length) throw bad("truncated pointer");
        const target = ((len & 0x3f) << 8) | this.v[pos + 1];
        if (target >= pos) throw bad("forward compression pointer");
        if (!jumped) this.pos = pos + 2;
        jumped = true;
        pos = target;
        continue;
      }
      if ((len & 0xc0) !== 0) throw bad("bad label type");
      if (len === 0) {
        if (!jumped) this.pos = pos + 1;
        return labels.join(".");
      }
      wire += len + 1;
      if (wire > 255) throw bad("name too long");
      if (pos + 1 + len > this.v.length) throw bad("truncated label");
      labels.push(lossy.decode(this.v.subarray(pos + 1, pos + 1 + len)));
      pos += 1 + len;
    }
  }
}

function readRData(r: Reader, code: number, end: number): RData {
  const type = TYPES.get(code);
  const rest = () => r.bytes(end - r.pos);
  switch (type) {
    case undefined:
      return { type: "UNKNOWN", code, data: rest() };
    case "A":
      if (end - r.pos !== 4) throw bad("bad A rdata");
      return { type: "A", address: [...rest()].join(".") };
    case "AAAA":
      if (end - r.pos !== 16) throw bad("bad AAAA rdata");
      return { type: "AAAA", address: formatIPv6(rest()) };
    case "TXT": {
      const strings: Uint8Array[] = [];
      while (r.pos < end) {
        const n = r.u8();
        r.need(n, end);
        strings.push(r.bytes(n));
      }
      return { type: "TXT", strings };
    }
    case "MX":
    case "AFSDB":
    case "RT":
      return { type, preference: r.u16(), exchange: r.name() };
    case "MINFO":
    case "RP":
      return { type, first: r.name(), second: r.name() };
    case "SOA":
      return {
        type,
        mname: r.name(),
        rname: r.name(),
        serial: r.u32(),
        refresh: r.u32(),
        retry: r.u32(),
        expire: r.u32(),
        minimum: r.u32(),
      };
    case "SRV":
      return { type, priority: r.u16(), weight: r.u16(), port: r.u16(), target: r.name() };
    case "HTTPS":
    case "SVCB": {
      const priority = r.u16();
      const target = r.name();
      const params: Array<[number, Uint8Array]> = [];
      while (r.pos < end) {
        const key = r.u16();
        const n = r.u16();
        r.need(n, end);
        params.push([key, r.bytes(n)]);
      }
      return { type, priority, target, params };
    }
    default:
      return { type, target: r.name() }; // CNAME, NS, PTR, MD, MF, MB, MG, MR, NSAP-PTR
  }
}

function formatIPv6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i] << 8) | b[i + 1]);
  // RFC 5952: compress the first longest run of ≥ 2 zero groups.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

function readRecord(r: Reader): DnsRecord {
  const name = r.name();
  const code = r.u16();
  const klass = r.u16();
  const ttl = r.u32();
  const rdlen = r.u16();
  const end = r.pos + rdlen;
  if (end > r.v.length) throw bad("rdata past end of packet");
  const data = readRData(r, code, end);
  if (r.pos !== end) throw bad("rdata length mismatch");
  return { name, ttl, class: klass, data };
}

/**
 * Decodes a DNS packet (compressed or not) and returns its answers. Question, authority and
 * additional sections are parsed for validity and dropped. Throws
 * `CipherpostError("invalid_material", "malformed DNS packet: …")` on malformed input.
 */
export function decodeDnsPacket(v: Uint8Array): DnsRecord[] {
  const r = new Reader(v);
  r.need(12);
  r.pos = 4;
  const qd = r.u16();
  const an = r.u16();
  const ns = r.u16();
  const ar = r.u16();
  for (let i = 0; i < qd; i++) {
    r.name();
    r.bytes(4);
  }
  const answers: DnsRecord[] = [];
  for (let i = 0; i < an; i++) answers.push(readRecord(r));
  for (let i = 0; i < ns + ar; i++) readRecord(r);
  return answers;
}

// ---------------------------------------------------------------------------------------------
// TXT helpers

/**
 * A TXT record from one string, split into character-strings of at most 254 bytes of UTF-8 (as
 * simple-dns `TXT::try_from(&str)`). An empty text gives one empty string (wire: a single `00`).
 */
export function txtRecord(name: string, ttl: number, text: string): DnsRecord {
  const bytes = enc.encode(text);
  const strings: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += TXT_CHUNK) {
    strings.push(bytes.slice(i, i + TXT_CHUNK));
  }
  if (strings.length === 0) strings.push(new Uint8Array(0));
  return { name, ttl, class: 1, data: { type: "TXT", strings } };
}

/** The character-strings of a TXT record joined and decoded as UTF-8; null if not TXT or invalid. */
export function txtText(r: DnsRecord): string | null {
  if (r.data.type !== "TXT") return null;
  const total = r.data.strings.reduce((n, s) => n + s.length, 0);
  const all = new Uint8Array(total);
  let at = 0;
  for (const s of r.data.strings) {
    all.set(s, at);
    at += s.length;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(all);
  } catch {
    return null;
  }
}
