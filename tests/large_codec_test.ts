// Pure parts of large shares: the pointer codec and its checks, the tar codec and the
// extraction refusals (docs/PROTOCOL.md §5.1, §5.4).
import assert from "node:assert/strict";
import {
  choosePartSize,
  ciphertextHashOf,
  closeJson,
  closeSigMessage,
  encodePointer,
  encodePointerEnvelope,
  isPointerEnvelope,
  type LargePointer,
  MAX_LARGE_PARTS,
  MAX_STREAM_PARTS,
  parseCloseJson,
  parsePointer,
  parsePointerEnvelope,
  partSigMessage,
  type StreamPointer,
} from "../lib/protocol/large_manifest.ts";
import {
  encodeTarHeader,
  readTar,
  TAR_END,
  type TarEntry,
  tarPadding,
} from "../lib/material/tar.ts";
import { extractTar, writeTreeTar } from "../lib/flows/large/tar_fs.ts";
import { CipherpostError } from "../lib/util/errors.ts";
import { ageIdentityOf } from "../lib/crypto/keys.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";
import { generateKeypair } from "../lib/crypto/keys.ts";
import { utf8 } from "../lib/util/encoding.ts";
import { streamOf } from "./_tar.ts";

const HS = encodeZ32(generateKeypair().publicKey);

function pointer(over: Partial<LargePointer> = {}): LargePointer {
  const hashes = ["11", "22", "33"].map((x) => x.repeat(32));
  return {
    blobId: "ab".repeat(16),
    ciphertextHash: ciphertextHashOf(hashes),
    compression: "none",
    contentIdentity: ageIdentityOf(new Uint8Array(32).fill(9)),
    fileCount: 1,
    homeserver: HS,
    kind: "file",
    name: "x.bin",
    partHashes: hashes,
    partSize: 1 << 20,
    parts: 3,
    size: (2 << 20) + 5,
    topEntries: [],
    version: 1,
    ...over,
  };
}

function isSignatureError(e: unknown): boolean {
  return e instanceof CipherpostError && e.kind === "signature";
}

Deno.test("pointer: round trip through the Envelope", () => {
  const p = pointer();
  const env = encodePointerEnvelope({
    burnAfterRead: true,
    createdAt: 1700000000,
    purpose: "p",
    pointer: p,
  });
  assert.ok(isPointerEnvelope(env));
  const back = parsePointerEnvelope(env);
  assert.deepStrictEqual(back.pointer, p);
  assert.equal(back.burnAfterRead, true);
  assert.equal(back.protocolVersion, 2);
  assert.ok(!isPointerEnvelope(utf8('{"material":{"type":"generic_secret","bytes":""}}')));
});

Deno.test("pointer: every binding is checked (exit 3)", () => {
  const good = new TextDecoder().decode(encodePointer(pointer()));
  const o = JSON.parse(good);
  const bad: Record<string, unknown>[] = [
    { ...o, ciphertext_hash: "00".repeat(32) },
    { ...o, part_hashes: [...o.part_hashes].reverse() }, // order is bound by the root
    { ...o, parts: 2 },
    { ...o, size: 5 * (1 << 20) },
    { ...o, part_size: 1000 },
    { ...o, compression: "gzip" },
    { ...o, kind: "socket" },
    { ...o, blob_id: "../../etc" },
    { ...o, homeserver: "nope" },
    { ...o, version: 2 },
    { ...o, file_count: 2 },
    { ...o, content_identity: "AGE-SECRET-KEY-1XYZ" },
  ];
  for (const b of bad) {
    assert.throws(
      () => parsePointer(utf8(JSON.stringify(b))),
      isSignatureError,
      JSON.stringify(b).slice(0, 80),
    );
  }
  assert.deepStrictEqual(parsePointer(utf8(good)), pointer());
});

Deno.test("pointer: part size keeps the part count within bounds", () => {
  assert.equal(choosePartSize(1), 16 << 20);
  assert.equal(choosePartSize(8 << 30), 16 << 20);
  const p = choosePartSize(20 << 30);
  assert.ok(Math.ceil((20 << 30) / p) <= MAX_LARGE_PARTS && p % (1 << 20) === 0);
  assert.throws(() => choosePartSize(MAX_LARGE_PARTS * (63 << 20) + 1));
});

function tarOf(entries: { e: TarEntry; body?: Uint8Array }[], end = true): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const { e, body } of entries) {
    chunks.push(encodeTarHeader(e));
    if (body) chunks.push(body, tarPadding(body.length));
  }
  if (end) chunks.push(TAR_END);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

Deno.test("tar: headers round trip, long names via pax, bodies stream", async () => {
  const long = `${"d".repeat(150)}/${"é".repeat(80)}.txt`;
  const body = utf8("hello tar");
  const tar = tarOf([
    { e: { path: "dir", type: "dir", mode: 0o750, size: 0, mtime: 1 } },
    { e: { path: long, type: "file", mode: 0o640, size: body.length, mtime: 2 }, body },
    {
      e: { path: "ln", type: "symlink", mode: 0o777, size: 0, mtime: 3, linkname: "x".repeat(130) },
    },
  ]);
  const seen: string[] = [];
  for await (const { entry, body: b } of readTar(streamOf(tar, 77))) {
    let n = 0;
    for await (const c of b) n += c.length;
    seen.push(`${entry.type} ${entry.path} ${entry.mode.toString(8)} ${n} ${entry.linkname ?? ""}`);
  }
  assert.deepStrictEqual(seen, [
    "dir dir 750 0 ",
    `file ${long} 640 9 `,
    `symlink ln 777 0 ${"x".repeat(130)}`,
  ]);
});

Deno.test("tar: unsafe archives are refused and leave nothing behind", async () => {
  const base = await Deno.makeTempDir({ prefix: "cp-tar-" });
  try {
    const file = (path: string): { e: TarEntry; body: Uint8Array } => ({
      e: { path, type: "file", mode: 0o644, size: 1, mtime: 0 },
      body: utf8("x"),
    });
    // a hand-made header with a path our encoder refuses to write
    const raw = (path: string) => {
      const h = encodeTarHeader({
        path: "p".repeat(path.length),
        type: "file",
        mode: 0o644,
        size: 0,
        mtime: 0,
      });
      h.set(utf8(path), 0);
      h.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of h) sum += b;
      h.set(utf8(sum.toString(8).padStart(6, "0")), 148);
      h[154] = 0;
      return h;
    };
    const cases: [string, Uint8Array][] = [
      ["dotdot", new Uint8Array([...raw("../evil"), ...TAR_END])],
      ["absolute", new Uint8Array([...raw("/etc/x"), ...TAR_END])],
      ["inner dotdot", new Uint8Array([...raw("a/../../x"), ...TAR_END])],
      [
        "below a link",
        tarOf([
          { e: { path: "l", type: "symlink", mode: 0o777, size: 0, mtime: 0, linkname: "/tmp" } },
          file("l/owned"),
        ]),
      ],
      ["duplicate", tarOf([file("a"), file("a")])],
      ["no end", tarOf([file("a")], false)],
      ["torn", tarOf([file("a")]).subarray(0, 700)],
    ];
    for (const [name, bytes] of cases) {
      const dest = `${base}/${name.replaceAll(" ", "_")}`;
      await assert.rejects(() => extractTar(streamOf(bytes, 77), dest), Error, name);
      await assert.rejects(() => Deno.lstat(dest), Deno.errors.NotFound, `${name}: left behind`);
    }
    // writer → extractor round trip of a real tree
    await Deno.mkdir(`${base}/src/a/b`, { recursive: true });
    await Deno.writeTextFile(`${base}/src/a/b/f.txt`, "f");
    await Deno.chmod(`${base}/src/a/b/f.txt`, 0o751);
    await Deno.symlink("a/b/f.txt", `${base}/src/link`);
    const tarPath = `${base}/t.tar`;
    const out = await Deno.open(tarPath, { write: true, createNew: true });
    const s = await writeTreeTar(`${base}/src`, out, () => {});
    out.close();
    assert.equal(s.fileCount, 1);
    assert.deepStrictEqual(s.topEntries, ["a", "link"]);
    assert.equal((await Deno.stat(tarPath)).size, s.size);
    const got = await extractTar((await Deno.open(tarPath)).readable, `${base}/dst`);
    assert.equal(got.fileCount, s.fileCount, "the count the receiver checks the pointer against");
    assert.equal(await Deno.readTextFile(`${base}/dst/a/b/f.txt`), "f");
    assert.equal((await Deno.stat(`${base}/dst/a/b/f.txt`)).mode! & 0o777, 0o751);
    assert.equal(await Deno.readLink(`${base}/dst/link`), "a/b/f.txt");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

// Streaming pointers and closing records (PROTOCOL.md §5.7)

function streamPointer(over: Partial<StreamPointer> = {}): StreamPointer {
  return {
    blobId: "cd".repeat(16),
    compression: "none",
    contentIdentity: ageIdentityOf(new Uint8Array(32).fill(7)),
    fileCount: 1,
    homeserver: HS,
    kind: "file",
    name: "stdin",
    partSize: 1 << 20,
    signingKey: encodeZ32(generateKeypair().publicKey),
    topEntries: [],
    version: 2,
    ...over,
  };
}

Deno.test("streaming pointer: round trip with and without a size; bad fields refused", () => {
  for (const p of [streamPointer(), streamPointer({ size: 5 << 20 })]) {
    assert.deepStrictEqual(parsePointer(encodePointer(p)), p);
  }
  const good = JSON.parse(new TextDecoder().decode(encodePointer(streamPointer())));
  for (
    const bad of [
      { ...good, signing_key: "nope" },
      { ...good, part_size: 1 },
      { ...good, size: -1 },
      { ...good, parts: 3 }, // a version-1 field in a version-2 pointer
      { ...good, version: 3 },
    ]
  ) {
    assert.throws(() => parsePointer(utf8(JSON.stringify(bad))), isSignatureError);
  }
});

Deno.test("closing record: bounds, size against parts and pointer, canonical bytes", () => {
  const p = streamPointer({ size: (2 << 20) + 1 });
  const c = { blobId: p.blobId, ciphertextHash: "ee".repeat(32), parts: 3, size: (2 << 20) + 1 };
  assert.deepStrictEqual(parseCloseJson(closeJson(c), p), c);
  for (
    const bad of [
      { ...c, parts: 2 }, // 2 MiB + 1 needs 3 parts of 1 MiB
      { ...c, blobId: "00".repeat(16) },
      { ...c, size: 2 << 20, parts: 2 }, // differs from the pointer's size
      { ...c, parts: MAX_STREAM_PARTS + 1 },
    ]
  ) {
    assert.throws(() => parseCloseJson(closeJson(bad), p), isSignatureError);
  }
  const spaced = utf8(new TextDecoder().decode(closeJson(c)).replace(":", ": "));
  assert.throws(() => parseCloseJson(spaced, p), isSignatureError, "not canonical");
  // the signed messages are domain-separated and bind blob, index, length and hash
  const h = new Uint8Array(32).fill(1);
  const m = partSigMessage(p.blobId, 2, 100, h);
  assert.notDeepStrictEqual(m, partSigMessage(p.blobId, 3, 100, h));
  assert.notDeepStrictEqual(m, partSigMessage(p.blobId, 2, 101, h));
  assert.notDeepStrictEqual(closeSigMessage(closeJson(c)).subarray(0, 26), m.subarray(0, 26));
});
