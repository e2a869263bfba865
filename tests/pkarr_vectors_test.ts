import assert from "node:assert/strict";
import { ed25519 } from "@noble/curves/ed25519.js";
import { CipherpostError, SIGNATURE_FAILED } from "../lib/util/errors.ts";
import {
  decodeDnsPacket,
  type DnsRecord,
  encodeDnsPacket,
  normalizeName,
  type RData,
  txtRecord,
  txtText,
} from "../lib/pkarr/dns.ts";
import { decodeZ32, dhtTarget, encodeZ32, parsePublicKey } from "../lib/pkarr/public_key.ts";
import {
  fromRelayPayload,
  RELAY_PAYLOAD_MAX_BYTES,
  RELAY_PAYLOAD_MIN_BYTES,
  toRelayPayload,
} from "../lib/pkarr/relay_payload.ts";
import {
  MAX_V_BYTES,
  moreRecentThan,
  packetFromBytes,
  packetToBytes,
  packetTtl,
  recordsNamed,
  signable,
  SIGNED_PACKET_MAX_BYTES,
  SIGNED_PACKET_MIN_BYTES,
  signPacket,
  verifyPacket,
} from "../lib/pkarr/signed_packet.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

async function vectors(file: string): Promise<Json> {
  return JSON.parse(
    await Deno.readTextFile(new URL(`./vectors/pkarr/${file}`, import.meta.url)),
  );
}

const hex = (b: Uint8Array): string =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string): Uint8Array =>
  new Uint8Array(s.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const ZERO_SEED = new Uint8Array(32);
const TS = 1697016827303000;

function assertSignatureError(fn: () => unknown, detail?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CipherpostError);
    assert.equal(e.kind, "signature");
    assert.equal(e.message, SIGNATURE_FAILED);
    if (detail) assert.match(String(e.cause), detail);
    return true;
  });
}

/** SvcParams of the vectors → wire [key, value] pairs. */
function svcParams(params: Record<string, Json>): Array<[number, Uint8Array]> {
  const out: Array<[number, Uint8Array]> = [];
  for (const [k, v] of Object.entries(params)) {
    if (k === "alpn") {
      out.push([1, new Uint8Array((v as string[]).flatMap((id) => [id.length, ...utf8(id)]))]);
    } else if (k === "port") {
      out.push([3, new Uint8Array([v >> 8, v & 0xff])]);
    } else if (k === "ipv4hint") {
      out.push([4, new Uint8Array((v as string[]).flatMap((a) => a.split(".").map(Number)))]);
    } else {
      throw new Error(`test: unsupported SvcParam ${k}`);
    }
  }
  return out;
}

/** The `inputs.records` of a vector as our records. */
function inputRecord(r: Json, oneString: boolean): DnsRecord {
  assert.equal(r.class ?? "IN", "IN");
  const base = { name: r.name, ttl: r.ttl, class: 1 };
  let data: RData;
  switch (r.type) {
    case "A":
    case "AAAA":
      data = { type: r.type, address: r.data };
      break;
    case "TXT":
      if (oneString) return txtRecord(r.name, r.ttl, (r.data as string[]).join(""));
      data = { type: "TXT", strings: (r.data as string[]).map(utf8) };
      break;
    case "CNAME":
    case "NS":
      data = { type: r.type, target: r.data };
      break;
    case "MX":
      data = { type: "MX", preference: r.data.preference, exchange: r.data.exchange };
      break;
    case "HTTPS":
    case "SVCB":
      data = {
        type: r.type,
        priority: r.data.priority,
        target: r.data.target,
        params: svcParams(r.data.params),
      };
      break;
    default:
      throw new Error(`test: unsupported type ${r.type}`);
  }
  return { ...base, data };
}

/** Compares a decoded record with the vector's input record. */
function assertSameRecord(got: DnsRecord, want: DnsRecord, name: string): void {
  assert.equal(got.name, name);
  assert.equal(got.ttl, want.ttl);
  assert.equal(got.class, 1);
  if (want.data.type === "TXT" && got.data.type === "TXT") {
    assert.deepEqual(got.data.strings.map(hex), want.data.strings.map(hex));
  } else if (want.data.type === "AAAA" && got.data.type === "AAAA") {
    assert.equal(got.data.address, want.data.address);
  } else if ("target" in want.data) {
    // names decode without a trailing dot; the root "." decodes as ""
    const target = want.data.target.replace(/\.$/, "");
    assert.deepEqual(got.data, { ...want.data, target });
  } else {
    assert.deepEqual(got.data, want.data);
  }
}

Deno.test("keys.json: seed → public key → z32 → pk: URI → DHT target", async () => {
  const v = await vectors("keys.json");
  for (const k of v.keypairs) {
    const pk = ed25519.getPublicKey(unhex(k.seed_hex));
    assert.equal(hex(pk), k.public_key_hex);
    assert.equal(encodeZ32(pk), k.public_key_z32);
    assert.equal(hex(decodeZ32(k.public_key_z32)), k.public_key_hex);
    assert.equal(`pk:${encodeZ32(pk)}`, k.uri);
    assert.equal(hex(parsePublicKey(k.uri)), k.public_key_hex);
    assert.equal(hex(dhtTarget(pk)), k.dht_target_hex);
  }
  for (const k of v.z32_known) {
    assert.equal(encodeZ32(unhex(k.public_key_hex)), k.public_key_z32);
    assert.equal(hex(parsePublicKey(k.public_key_z32)), k.public_key_hex);
  }
  for (const k of v.invalid) {
    assert.equal(decodeZ32(k.input).length, 32);
    assert.throws(() => parsePublicKey(k.input), /invalid public key: not a valid Ed25519 point/);
  }
});

Deno.test("z-base-32: non-canonical trailing bits are ignored, uppercase is rejected", () => {
  const z = "yg4gxe7z1r7mr6orids9fh95y7gxhdsxjqi6nngsxxtakqaxr5no";
  // the 52nd char carries 1 key bit and 4 fill bits: change only the fill bits
  const alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769";
  const last = alphabet.indexOf(z[51]);
  const sameBit = alphabet[(last & 0b10000) | 0b01111];
  assert.notEqual(sameBit, z[51]);
  assert.deepEqual(decodeZ32(z.slice(0, 51) + sameBit), decodeZ32(z));
  assert.throws(() => decodeZ32(z.toUpperCase()), /not z-base-32/);
  assert.equal(encodeZ32(new Uint8Array(0)), "");
});

Deno.test("public_key_parsing.json: every accepted and rejected form", async () => {
  const v = await vectors("public_key_parsing.json");
  assert.ok(v.valid.length > 0 && v.invalid.length > 0);
  for (const c of v.valid) {
    assert.equal(hex(parsePublicKey(c.input)), c.expected_public_key_hex, c.input);
  }
  const reasons: Record<string, RegExp> = {
    InvalidEd25519PublicKey: /not a valid Ed25519 point/,
    InvalidPublicKeyEncoding: /not z-base-32/,
  };
  for (const c of v.invalid) {
    const len = /^InvalidPublicKeyLength\((\d+)\)$/.exec(c.error);
    const want = len ? new RegExp(`wrong length \\(${len[1]} bytes`) : reasons[c.error];
    assert.ok(want, `test: unknown error ${c.error}`);
    assert.throws(() => parsePublicKey(c.input), (e: unknown) => {
      assert.ok(e instanceof CipherpostError);
      assert.equal(e.kind, "config");
      assert.match(e.message, /^invalid public key: /);
      assert.match(e.message, want);
      return true;
    }, c.input);
  }
});

Deno.test("name_normalization.json: normalize_name cases", async () => {
  const v = await vectors("name_normalization.json");
  for (const c of v.cases) assert.equal(normalizeName(v.origin, c.input), c.expected, c.input);
});

Deno.test("name_normalization.json: resource_records lookup with * wildcard", async () => {
  const v = await vectors("name_normalization.json");
  const look = v.resource_records_lookup;
  const records = (look.packet_names as string[]).map((n) => txtRecord(n, 30, n));
  const p = signPacket(ZERO_SEED, records, TS);
  const origin = encodeZ32(p.publicKey);
  for (const c of look.cases) {
    const got = recordsNamed(p, c.query).map((r) => r.name);
    assert.deepEqual(got, (c.matches as string[]).map((m) => `${m}.${origin}`), c.query);
  }
  // also by the TXT payload, so the match is on the right records and not just the names
  assert.deepEqual(recordsNamed(p, "*.foo").map(txtText), ["bar.foo"]);
  assert.deepEqual(recordsNamed(p, "Foo"), []);
});

Deno.test("signed_packets.json: every vector, byte for byte", async () => {
  const d = await vectors("signed_packets.json");
  assert.equal(d.vectors.length, 13);
  for (const vec of d.vectors) {
    const name = vec.name as string;
    const oneString = (vec.inputs.records as Json[]).some((r) =>
      /built from one/.test(r.note ?? "")
    );
    const records = (vec.inputs.records as Json[]).map((r) => inputRecord(r, oneString));
    const seed = unhex(vec.inputs.secret_key_seed_hex);
    const ts = vec.inputs.timestamp_us as number;

    const p = signPacket(seed, records, ts);
    assert.equal(hex(p.publicKey), vec.public_key_hex, name);
    assert.equal(encodeZ32(p.publicKey), vec.public_key_z32, name);
    assert.equal(p.v.length, vec.v_len, name);
    assert.equal(hex(p.v), vec.v_hex, name);
    assert.equal(
      new TextDecoder().decode(signable(ts, p.v)).startsWith(vec.signable_prefix_ascii),
      true,
    );
    assert.equal(hex(signable(ts, p.v)), vec.signable_hex, name);
    assert.equal(hex(p.signature), vec.signature_hex, name);
    const bytes = packetToBytes(p);
    assert.equal(hex(bytes.subarray(96, 104)), vec.timestamp_be_hex, name);
    assert.equal(bytes.length, vec.signed_packet_len, name);
    assert.equal(hex(bytes), vec.signed_packet_hex, name);
    const relay = toRelayPayload(p);
    assert.equal(relay.length, vec.relay_payload_len, name);
    assert.equal(hex(relay), vec.relay_payload_hex, name);
    // BEP44 fields
    assert.equal(hex(dhtTarget(p.publicKey)), vec.bep44.target_hex, name);
    assert.equal(hex(p.publicKey), vec.bep44.k_hex, name);
    assert.equal(p.timestamp, vec.bep44.seq, name);
    assert.equal(hex(p.signature), vec.bep44.sig_hex, name);
    assert.equal(hex(p.v), vec.bep44.v_hex, name);
    assert.equal(vec.bep44.salt, null);

    // decode: from canonical bytes and from the relay payload
    for (
      const q of [
        packetFromBytes(unhex(vec.signed_packet_hex)),
        fromRelayPayload(unhex(vec.public_key_hex), unhex(vec.relay_payload_hex)),
      ]
    ) {
      assert.equal(q.timestamp, ts, name);
      assert.equal(hex(q.v), vec.v_hex, name);
      assert.deepEqual(q.records.map((r) => r.name), vec.normalized_names, name);
      q.records.forEach((r, i) => {
        // a TXT with no strings reads back as one empty string
        const want = records[i].data.type === "TXT" && records[i].data.strings.length === 0
          ? { ...records[i], data: { type: "TXT" as const, strings: [new Uint8Array(0)] } }
          : records[i];
        assertSameRecord(r, want, vec.normalized_names[i]);
      });
      // decode → re-encode round trip, byte for byte
      assert.equal(hex(encodeDnsPacket(q.records)), vec.v_hex, name);
      assert.equal(hex(packetToBytes(q)), vec.signed_packet_hex, name);
    }
  }
});

Deno.test("legacy_js_v1.json: uncompressed JS 1.x packet is accepted and decoded", async () => {
  const v = await vectors("legacy_js_v1.json");
  const sp = await vectors("signed_packets.json");
  const rust = sp.vectors.find((x: Json) => x.name === "legacy_js_inputs_rust_encoding");
  assert.equal(v.signature_valid, true);
  const pk = unhex(v.public_key_hex);
  const fromRelay = fromRelayPayload(pk, unhex(v.relay_payload_hex));
  const fromBytes = packetFromBytes(unhex(v.signed_packet_hex));
  for (const p of [fromRelay, fromBytes]) {
    assert.equal(p.timestamp, v.inputs.timestamp_us);
    assert.equal(hex(p.v), v.v_hex);
    assert.equal(p.v.length, v.v_len);
    assert.equal(hex(p.signature), v.signature_hex);
    assert.deepEqual(p.records.map((r) => r.name), v.normalized_names);
    assert.deepEqual(p.records.map((r) => r.ttl), [0, 30]);
    assert.deepEqual(p.records[0].data, { type: "A", address: "1.1.1.1" });
    assert.equal(txtText(p.records[1]), "bar");
    assert.equal(hex(packetToBytes(p)), v.signed_packet_hex);
    assert.equal(hex(toRelayPayload(p)), v.relay_payload_hex);
    // re-encoding the same records the Rust way gives the compressed 100-byte packet
    assert.equal(hex(encodeDnsPacket(p.records)), rust.v_hex);
  }
  // and signing the legacy inputs reproduces the Rust vector, not the legacy bytes
  const p = signPacket(ZERO_SEED, [
    { name: "@", ttl: 0, data: { type: "A", address: "1.1.1.1" } },
    txtRecord("foo", 30, "bar"),
  ], v.inputs.timestamp_us);
  assert.equal(hex(p.v), rust.v_hex);
  assert.notEqual(hex(p.v), v.v_hex);
});

Deno.test("ordering.json: more_recent_than", async () => {
  const v = await vectors("ordering.json");
  const pk = (x: Json) => ({ timestamp: x.timestamp_us, v: unhex(x.v_hex) });
  for (const c of v.cases) {
    assert.equal(moreRecentThan(pk(c.a), pk(c.b)), c.a_more_recent_than_b, c.why);
    if (c.why !== "identical") {
      assert.equal(moreRecentThan(pk(c.b), pk(c.a)), !c.a_more_recent_than_b, c.why);
    } else {
      assert.equal(moreRecentThan(pk(c.b), pk(c.a)), false);
    }
  }
});

Deno.test("ttl.json: ttl(min,max), expires_in and fresh_resource_records", async () => {
  const v = await vectors("ttl.json");
  for (const c of v.cases) {
    const records = (c.record_ttls as number[]).map((t) => txtRecord("_x", t, "x"));
    const ttl = packetTtl({ records }, c.min, c.max);
    if ("ttl" in c) assert.equal(ttl, c.ttl);
    if ("expires_in" in c) {
      const expiresIn = Math.max(0, ttl - c.elapsed_s);
      assert.equal(expiresIn, c.expires_in);
      assert.equal(expiresIn === 0, c.is_expired);
    }
  }
  assert.equal(packetTtl({ records: [] }), 300);
  assert.equal(packetTtl({ records: [txtRecord("_x", 999999, "x")] }), 86400);
  const f = v.fresh_resource_records;
  const p = signPacket(
    ZERO_SEED,
    (f.records as Json[]).map((r) => txtRecord(r.name, r.ttl, "x")),
    TS,
  );
  const fresh = recordsNamed(p, f.query).filter((r) => r.ttl > f.elapsed_s);
  assert.equal(fresh.length, f.fresh_count);
});

Deno.test("limits.json: size limits in from_bytes, from_relay_payload and the builder", async () => {
  const v = await vectors("limits.json");
  assert.equal(MAX_V_BYTES, v.max_v_bytes);
  assert.equal(SIGNED_PACKET_MIN_BYTES, v.signed_packet_min_bytes);
  assert.equal(SIGNED_PACKET_MAX_BYTES, v.signed_packet_max_bytes);
  assert.equal(RELAY_PAYLOAD_MIN_BYTES, v.relay_payload_min_bytes);
  assert.equal(RELAY_PAYLOAD_MAX_BYTES, v.relay_payload_max_bytes);

  const ok = signPacket(ZERO_SEED, [txtRecord("_t", 30, "a".repeat(917))], TS);
  assert.equal(ok.v.length, 1000);
  assert.equal(packetToBytes(ok).length, 1104);
  assert.equal(toRelayPayload(ok).length, 1072);
  assert.equal(fromRelayPayload(ok.publicKey, toRelayPayload(ok)).v.length, 1000);

  assert.throws(() => signPacket(ZERO_SEED, [txtRecord("_t", 30, "a".repeat(918))], TS), {
    name: "CipherpostError",
    message: "packet too large: 1001 bytes of DNS, limit is 1000",
  });

  const pk = ok.publicKey;
  assertSignatureError(() => fromRelayPayload(pk, new Uint8Array(1073)), /too large/);
  assertSignatureError(() => fromRelayPayload(pk, new Uint8Array(71)), /too short/);
  assertSignatureError(() => packetFromBytes(new Uint8Array(103)), /too short/);
  assertSignatureError(() => packetFromBytes(new Uint8Array(1105)), /too large/);
  // 104 bytes with a valid key but a zero signature: rejected by the signature check
  const b = new Uint8Array(104);
  b.set(pk);
  assertSignatureError(() => packetFromBytes(b), /bad signature/);
  // an invalid point as key
  b.set(decodeZ32("c1bkg8tfsyy8wcedtmw4fwhdmm7bbzhgg3z58tf43m5ow8w9mbus"));
  assertSignatureError(() => packetFromBytes(b), /invalid public key/);
});

Deno.test("a 1001-byte DNS packet is refused before anything else", () => {
  const big = encodeDnsPacket([txtRecord("_t.x", 30, "a".repeat(1000))]);
  assert.ok(big.length > 1000);
  // verifyPacket: size is checked before the (here garbage) signature
  const pk = ed25519.getPublicKey(ZERO_SEED);
  assertSignatureError(() => verifyPacket(pk, new Uint8Array(64), TS, big), /too large/);
  // signPacket: refused with too_large, never signed
  assert.throws(() => signPacket(ZERO_SEED, [txtRecord("_t", 30, "a".repeat(918))], TS), (e) => {
    assert.ok(e instanceof CipherpostError);
    assert.equal(e.kind, "too_large");
    return true;
  });
});

Deno.test("bep44_krpc.json: signable and the KRPC put/get fields that carry it", async () => {
  const v = await vectors("bep44_krpc.json");
  const sp = await vectors("signed_packets.json");
  const basic = sp.vectors.find((x: Json) => x.name === "basic");
  const vBytes = unhex(basic.v_hex);
  assert.equal(hex(signable(basic.inputs.timestamp_us, vBytes)), v.signable_hex);
  const p = verifyPacket(
    unhex(basic.public_key_hex),
    unhex(basic.signature_hex),
    basic.inputs.timestamp_us,
    vBytes,
  );
  // the put request and the get response carry exactly k, seq, sig and v of our packet
  const field = (key: string, value: Uint8Array) =>
    hex(utf8(`${key.length}:${key}${value.length}:`)) + hex(value);
  const seq = hex(utf8(`3:seqi${p.timestamp}e`));
  for (const msg of [v.put_request_hex, v.put_request_with_cas_hex, v.get_response_hex]) {
    assert.ok(msg.includes(field("k", p.publicKey)));
    assert.ok(msg.includes(seq));
    assert.ok(msg.includes(field("sig", p.signature)));
    assert.ok(msg.includes(field("v", p.v)));
  }
  for (const msg of [v.get_request_hex, v.get_request_with_seq_hex]) {
    assert.ok(msg.includes(field("target", dhtTarget(p.publicKey))));
  }
});

Deno.test("records we don't own survive decode → encode byte for byte", () => {
  const unknownRaw = unhex("c00c00ff0102c0"); // looks like pointers, must stay opaque
  const records: DnsRecord[] = [
    txtRecord("_pubky", 7200, "pubky.example"),
    {
      name: "_cipherpost",
      ttl: 300,
      data: { type: "TXT", strings: [utf8("v=1"), new Uint8Array([0xff, 0xfe])] },
    },
    {
      name: ".",
      ttl: 3600,
      data: {
        type: "HTTPS",
        priority: 1,
        target: "svc.example.com",
        params: [[1, unhex("026832")], [3, unhex("01bb")], [65000, utf8("x")]],
      },
    },
    {
      name: "_svc",
      ttl: 60,
      data: { type: "SVCB", priority: 0, target: "example.com", params: [] },
    },
    {
      name: "_sip._udp",
      ttl: 60,
      data: { type: "SRV", priority: 1, weight: 2, port: 5060, target: "sip.example.com" },
    },
    { name: "odd", ttl: 1, class: 0x8001, data: { type: "UNKNOWN", code: 99, data: unknownRaw } },
    {
      name: "soa",
      ttl: 1,
      data: {
        type: "SOA",
        mname: "ns.example.com",
        rname: "host.example.com",
        serial: 0xfffffffe,
        refresh: 1,
        retry: 2,
        expire: 3,
        minimum: 4,
      },
    },
    { name: "ptr", ttl: 1, data: { type: "PTR", target: "host.example.com" } },
    { name: "v6", ttl: 1, data: { type: "AAAA", address: "::1" } },
    { name: "v6", ttl: 1, data: { type: "AAAA", address: "2001:db8::8:800:200c:417a" } },
  ];
  const p = signPacket(ZERO_SEED, records, TS);
  const again = verifyPacket(p.publicKey, p.signature, p.timestamp, p.v);
  assert.equal(hex(encodeDnsPacket(again.records)), hex(p.v));
  const odd = recordsNamed(again, "odd")[0];
  assert.equal(odd.class, 1); // cache-flush bit dropped when signing, as SignedPacket::new does
  assert.deepEqual(odd.data, { type: "UNKNOWN", code: 99, data: unknownRaw });
  assert.equal(txtText(recordsNamed(again, "_pubky")[0]), "pubky.example");
  assert.equal(txtText(recordsNamed(again, "_cipherpost")[0]), null); // invalid UTF-8
  assert.equal(
    recordsNamed(again, "v6").map((r) => (r.data as { address: string }).address).join(" "),
    "::1 2001:db8::8:800:200c:417a",
  );
  // HTTPS params come back in ascending key order and SRV/HTTPS targets are not compressed
  const https = recordsNamed(again, "@")[0].data;
  assert.equal(https.type, "HTTPS");
  assert.ok(hex(p.v).includes(hex(utf8("\x03svc\x07example\x03com\x00"))));

  // a foreign packet (unsigned DNS, with the cache-flush bit and an unknown type) round-trips
  const foreign = encodeDnsPacket(records);
  assert.equal(hex(encodeDnsPacket(decodeDnsPacket(foreign))), hex(foreign));
  assert.equal(decodeDnsPacket(foreign)[5].class, 0x8001);
});

Deno.test("TXT helpers: chunking, empty text, UTF-8 across chunk boundaries", () => {
  const e = txtRecord("_e", 1, "");
  assert.deepEqual(e.data, { type: "TXT", strings: [new Uint8Array(0)] });
  assert.equal(hex(encodeDnsPacket([e])).endsWith("000100"), true);
  const text = "é".repeat(200); // with a leading "a", the 254-byte cut falls inside an "é"
  const t = txtRecord("_t", 1, `a${text}`);
  assert.ok(t.data.type === "TXT");
  assert.deepEqual(t.data.strings.map((s) => s.length), [254, 147]);
  assert.equal(txtText(t), `a${text}`);
  assert.equal(txtText({ name: "x", ttl: 1, data: { type: "A", address: "1.2.3.4" } }), null);
});

Deno.test("DNS decoder rejects malformed packets (pointer loops, out of bounds, truncation)", () => {
  const header = (an: number) => [0, 0, 0x80, 0, 0, 0, 0, an, 0, 0, 0, 0];
  const bad = (bytes: number[]) => {
    assert.throws(() => decodeDnsPacket(new Uint8Array(bytes)), (e: unknown) => {
      assert.ok(e instanceof CipherpostError);
      assert.match(e.message, /^malformed DNS packet: /);
      return true;
    });
  };
  bad([0, 0, 0x80]); // short header
  bad(header(1)); // missing answer
  bad([...header(1), 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 1, 1, 1]); // self pointer
  bad([...header(1), 1, 0x61, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 1, 1, 1]); // loop
  bad([...header(1), 0xc0, 0xff, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 1, 1, 1]); // forward/oob
  bad([...header(1), 5, 0x61, 0, 1, 0, 1]); // label past end
  bad([...header(1), 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 9, 1, 1, 1, 1]); // rdata past end
  bad([...header(1), 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 3, 1, 1, 1]); // A of 3 bytes
  bad([...header(1), 0x40, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]); // reserved label type
  // and an honest minimal answer is fine
  assert.deepEqual(
    decodeDnsPacket(new Uint8Array([...header(1), 0, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 1, 2, 3, 4])),
    [{ name: "", ttl: 5, class: 1, data: { type: "A", address: "1.2.3.4" } }],
  );
  // a tampered v with a valid signature still fails as a signature-lane error
  const p = signPacket(ZERO_SEED, [txtRecord("_t", 30, "x")], TS);
  const v = p.v.slice(0, -1);
  assertSignatureError(
    () => verifyPacket(p.publicKey, p.signature, p.timestamp, v),
    /bad signature/,
  );
});
