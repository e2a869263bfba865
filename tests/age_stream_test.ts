/**
 * The native-AEAD age STREAM (lib/crypto/age_stream.ts) against the C2SP/CCTV age vectors
 * (tests/vectors/cctv-age, copied unchanged), typage and the real `age` CLI.
 */

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import {
  ageStreamDecrypt,
  ageStreamEncrypt,
  AgeStreamError,
  payloadEncryptor,
  payloadStream,
  sealedLength,
} from "../lib/crypto/age_stream.ts";
import { tmpDir } from "./_helpers.ts";
import { concat } from "../lib/util/encoding.ts";

const VECTORS = new URL("./vectors/cctv-age/", import.meta.url);

interface Vector {
  name: string;
  expect: string;
  payload?: string;
  fileKey?: string;
  identities: string[];
  file: Uint8Array;
}

async function inflate(b: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([b as BlobPart]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

async function loadVectors(): Promise<Vector[]> {
  const out: Vector[] = [];
  for await (const e of Deno.readDir(VECTORS)) {
    const raw = await Deno.readFile(new URL(e.name, VECTORS));
    let cut = -1;
    for (let i = 0; i + 1 < raw.length; i++) {
      if (raw[i] === 0x0a && raw[i + 1] === 0x0a) {
        cut = i;
        break;
      }
    }
    assert.ok(cut > 0, e.name);
    const v: Vector = { name: e.name, expect: "", identities: [], file: raw.subarray(cut + 2) };
    let compressed = false;
    for (const line of new TextDecoder().decode(raw.subarray(0, cut)).split("\n")) {
      const [k, val] = [line.slice(0, line.indexOf(": ")), line.slice(line.indexOf(": ") + 2)];
      if (k === "expect") v.expect = val;
      else if (k === "payload") v.payload = val;
      else if (k === "file key") v.fileKey = val;
      else if (k === "identity") v.identities.push(val);
      else if (k === "compressed") compressed = val === "zlib";
    }
    if (compressed) v.file = await inflate(v.file);
    out.push(v);
  }
  return out.sort((a, b) => a.name < b.name ? -1 : 1);
}

/** Feed `file` in pieces of `split` bytes; the released plaintext and the error, if any. */
async function decryptAll(
  identity: string,
  file: Uint8Array,
  split = 4096,
): Promise<{ plain: Uint8Array; error?: unknown }> {
  let at = 0;
  const src = new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= file.length) return c.close();
      c.enqueue(file.slice(at, at + split));
      at += split;
    },
  });
  const parts: Uint8Array[] = [];
  try {
    for await (const p of src.pipeThrough(ageStreamDecrypt(identity))) parts.push(p);
    return { plain: concat(...parts) };
  } catch (error) {
    return { plain: concat(...parts), error };
  }
}

const sha256hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function encryptAll(recipient: string, plain: Uint8Array, split = 7000) {
  const enc = await ageStreamEncrypt(recipient);
  let at = 0;
  const src = new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= plain.length) return c.close();
      c.enqueue(plain.slice(at, at + split));
      at += split;
    },
  });
  const parts = [enc.head];
  for await (const p of src.pipeThrough(payloadStream(enc.sealer))) parts.push(p);
  const file = concat(...parts);
  assert.equal(file.length, enc.fileLength(plain.length), "fileLength predicts the size");
  return file;
}

Deno.test("age STREAM: every CCTV X25519 vector decrypts, or fails, as it says", async () => {
  const vectors = await loadVectors();
  assert.ok(vectors.length >= 60, `${vectors.length} vectors`);
  const seen = new Map<string, number>();
  for (const v of vectors) {
    seen.set(v.expect, (seen.get(v.expect) ?? 0) + 1);
    const identity = v.identities[0] ?? (await generateX25519Identity());
    // two splits: the whole file at once, and 1-byte pieces for the small ones
    const splits = v.file.length < 4096 ? [v.file.length || 1, 1] : [v.file.length, 999];
    for (const split of splits) {
      const what = `${v.name} (pieces of ${split})`;
      const r = await decryptAll(identity, v.file, split);
      if (v.expect === "success") {
        assert.equal(r.error, undefined, `${what}: ${r.error}`);
        assert.equal(sha256hex(r.plain), v.payload, what);
        continue;
      }
      assert.ok(r.error instanceof AgeStreamError, `${what}: ${v.expect} but ${r.error}`);
      if (v.expect === "payload failure") {
        assert.equal(r.error.stage, "payload", what);
        // whatever was released is the vector's (authenticated) prefix
        assert.equal(sha256hex(r.plain), v.payload, `${what}: released plaintext`);
      } else {
        // header, HMAC and no-match failures release nothing; a missing or short nonce is a
        // "header failure" in CCTV and a payload-stage one here (nothing released either way)
        assert.equal(r.plain.length, 0, what);
        if (!v.name.includes("nonce")) assert.equal(r.error.stage, "header", what);
      }
    }
    // typage agrees on success and failure
    const d = new Decrypter();
    for (const id of v.identities) d.addIdentity(id);
    const typage = await d.decrypt(v.file).then(() => true, () => false);
    if (v.identities.length > 0) assert.equal(typage, v.expect === "success", `typage: ${v.name}`);
  }
  for (const e of ["success", "payload failure", "header failure", "HMAC failure", "no match"]) {
    assert.ok((seen.get(e) ?? 0) > 0, `vectors expecting ${e}`);
  }
});

Deno.test("age STREAM: the payload of every CCTV success vector re-encrypts byte for byte", async () => {
  let checked = 0;
  for (const v of await loadVectors()) {
    if (v.expect !== "success" || !v.fileKey) continue;
    const text = v.file;
    const mac = new TextEncoder().encode("\n--- ");
    let at = -1;
    for (let i = 0; i + mac.length <= text.length && at < 0; i++) {
      if (mac.every((b, j) => text[i + j] === b)) at = i;
    }
    const headerEnd = text.indexOf(0x0a, at + mac.length) + 1;
    const nonce = text.subarray(headerEnd, headerEnd + 16);
    const payload = text.subarray(headerEnd + 16);
    const { plain } = await decryptAll(v.identities[0], v.file);
    const fileKey = Uint8Array.from(v.fileKey.match(/../g)!.map((h) => parseInt(h, 16)));
    const sealed: Uint8Array[] = [];
    const src = new Blob([plain as BlobPart]).stream();
    for await (const p of src.pipeThrough(payloadEncryptor(fileKey, nonce))) sealed.push(p);
    assert.deepEqual(concat(...sealed), payload, v.name);
    assert.equal(payload.length, sealedLength(plain.length), `${v.name}: sealedLength`);
    checked++;
  }
  assert.ok(checked >= 10, `${checked} success vectors re-encrypted`);
});

const SIZES = [0, 1, 65535, 65536, 65537, 2 * 65536, 3 * 65536 + 17, (1 << 20) + 5];

Deno.test("age STREAM: our files decrypt with the age CLI and typage; theirs with ours", async () => {
  const dir = await tmpDir();
  const identity = await generateX25519Identity();
  const recipient = await identityToRecipient(identity);
  await Deno.writeTextFile(`${dir}/key.txt`, `${identity}\n`, { mode: 0o600 });
  for (const size of SIZES) {
    const plain = new Uint8Array(randomBytes(size));
    // ours → age -d
    const ours = await encryptAll(recipient, plain);
    await Deno.writeFile(`${dir}/ours.age`, ours);
    const d = await new Deno.Command("age", {
      args: ["-d", "-i", `${dir}/key.txt`, `${dir}/ours.age`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(d.code, 0, `age -d of ${size} bytes: ${new TextDecoder().decode(d.stderr)}`);
    assert.deepEqual(new Uint8Array(d.stdout), plain, `age -d, ${size} bytes`);
    // ours → typage
    const td = new Decrypter();
    td.addIdentity(identity);
    assert.deepEqual(await td.decrypt(ours), plain, `typage, ${size} bytes`);
    // age -e → ours, and typage → ours
    await Deno.writeFile(`${dir}/plain`, plain);
    const e = await new Deno.Command("age", {
      args: ["-e", "-r", recipient, "-o", `${dir}/theirs.age`, `${dir}/plain`],
      stderr: "piped",
    }).output();
    assert.equal(e.code, 0);
    const theirs = await Deno.readFile(`${dir}/theirs.age`);
    const r = await decryptAll(identity, theirs, 1000);
    assert.equal(r.error, undefined, String(r.error));
    assert.deepEqual(r.plain, plain, `ours of age -e, ${size} bytes`);
    const te = new Encrypter();
    te.addRecipient(recipient);
    const r2 = await decryptAll(identity, await te.encrypt(plain));
    assert.deepEqual(r2.plain, plain, `ours of typage, ${size} bytes`);
  }
});

Deno.test("age STREAM: a changed, cut or extended file fails; only an authenticated prefix is released", async () => {
  const identity = await generateX25519Identity();
  const recipient = await identityToRecipient(identity);
  const plain = new Uint8Array(randomBytes(5 * 65536 + 100));
  const file = await encryptAll(recipient, plain);
  const headLen = file.length - sealedLength(plain.length);
  const SEALED = 65536 + 16;
  // a byte of chunk k changed: chunks before k come out, then the error
  for (const k of [0, 2, 5]) {
    const bad = file.slice();
    bad[headLen + k * SEALED + 10] ^= 0x40;
    const r = await decryptAll(identity, bad, 10_000);
    assert.ok(r.error instanceof AgeStreamError && r.error.stage === "payload", `chunk ${k}`);
    assert.ok(r.plain.length <= k * 65536, `chunk ${k}: ${r.plain.length} bytes released`);
    assert.deepEqual(r.plain, plain.subarray(0, r.plain.length));
  }
  // cut at a chunk boundary (a non-final chunk then looks final), cut mid-chunk, extended
  const cuts = [
    file.subarray(0, headLen + 2 * SEALED),
    file.subarray(0, file.length - 1),
    file.subarray(0, headLen + 16),
    file.subarray(0, headLen),
    new Uint8Array([...file, 0]),
    new Uint8Array([...file, ...new Uint8Array(SEALED)]),
  ];
  for (const [i, c] of cuts.entries()) {
    const r = await decryptAll(identity, c, 8192);
    assert.ok(r.error instanceof AgeStreamError, `case ${i}: ${r.error}`);
    assert.deepEqual(r.plain, plain.subarray(0, r.plain.length), `case ${i}: a prefix`);
    assert.ok(r.plain.length < plain.length, `case ${i}: not all of it`);
  }
  // another identity, and a header that never ends
  const other = await decryptAll(await generateX25519Identity(), file);
  assert.ok(other.error instanceof AgeStreamError && other.error.stage === "header");
  assert.equal(other.plain.length, 0);
  const junk = await decryptAll(identity, new Uint8Array(70_000).fill(0x41));
  assert.ok(junk.error instanceof AgeStreamError && junk.error.stage === "header");
  // a fresh file key and nonce every time: two encryptions of the same bytes differ
  const again = await encryptAll(recipient, plain);
  assert.notDeepEqual(again.subarray(0, headLen), file.subarray(0, headLen));
  assert.notDeepEqual(again.subarray(headLen, headLen + 64), file.subarray(headLen, headLen + 64));
});
