// Regression tests for parser-level attacks (hostile text and times, prototype keys, malformed
// share URIs, forged receipts, capped reads, atomic writes, unreadable state): each one failed
// before its fix. The flow-level attacks are tested with the real CLI in their own files.
import assert from "node:assert/strict";
import {
  canonicalize,
  compactJson,
  type JsonValue,
  parseJson,
} from "../lib/util/canonical_json.ts";
import {
  b64encode,
  displayText,
  escapeControl,
  hasUnsafeText,
  utf8,
} from "../lib/util/encoding.ts";
import { CipherpostError } from "../lib/util/errors.ts";
import { writeFileAtomic } from "../lib/util/fsutil.ts";
import { State } from "../lib/state/state.ts";
import { readFileCapped, readStreamCapped } from "../lib/util/bounded_read.ts";
import { generateKeypair, sign } from "../lib/crypto/keys.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";
import {
  checkShareTimes,
  parseAndVerifyOuterRecord,
  parseAndVerifyReceipt,
  parseEnvelope,
  receiptJson,
  signReceipt,
} from "../lib/protocol/record.ts";
import { parseShareUri } from "../lib/protocol/share_uri.ts";
import { receiptMismatch } from "../lib/protocol/receipt_binding.ts";
import { previewMaterial } from "../lib/material/material.ts";
import { formatReceiptSummary } from "../lib/cli/format.ts";
import { certWithName, sshKeyWithComment } from "./fuzz/targets.ts";
import { tmpDir } from "./_helpers.ts";

const isKind = (kind: string) => (e: unknown) => e instanceof CipherpostError && e.kind === kind;
const isSig = isKind("signature");
const NOW = Math.floor(Date.now() / 1000);

/** Sign `fields` (without `signature`) canonically and return the compact JSON. */
function signed(fields: Record<string, JsonValue>, seed: Uint8Array): string {
  const sig = b64encode(sign(seed, canonicalize(fields)));
  return compactJson({ ...fields, signature: sig });
}

function receiptFields(
  kp: { publicKey: Uint8Array },
  over: Record<string, JsonValue> = {},
): Record<string, JsonValue> {
  return {
    accepted_at: NOW - 60,
    ciphertext_hash: "a1".repeat(32),
    cleartext_hash: "b2".repeat(32),
    nonce: "0123456789abcdef".repeat(2),
    protocol_version: 1,
    purpose: "fine",
    recipient_pubkey: encodeZ32(kp.publicKey),
    sender_pubkey: encodeZ32(generateKeypair().publicKey),
    share_ref: "fedcba9876543210".repeat(2),
    ...over,
  };
}

Deno.test("the strict JSON parser refuses the key __proto__", () => {
  for (
    const text of [
      '{"__proto__":{"a":1}}',
      '{"b":1,"__proto__":null}',
      '[{"__proto__":1,"__proto__":2}]',
    ]
  ) {
    assert.throws(() => parseJson(text), isKind("invalid_material"), text);
  }
  // other keys of Object.prototype are ordinary members
  const v = parseJson('{"constructor":1,"toString":2}') as Record<string, JsonValue>;
  assert.equal(Object.hasOwn(v, "constructor") && Object.hasOwn(v, "toString"), true);
});

Deno.test("a validly signed receipt or record with __proto__ prepended is refused", () => {
  const kp = generateKeypair();
  const good = signed(receiptFields(kp), kp.seed);
  assert.ok(parseAndVerifyReceipt(good));
  const evil = `{"__proto__":{"x":1},${good.slice(1)}`;
  assert.throws(() => parseAndVerifyReceipt(evil), isSig);
  const rec = signed({
    blob: "AAAA",
    created_at: NOW,
    protocol_version: 1,
    pubkey: encodeZ32(kp.publicKey),
    recipient: null,
    share_ref: "0123456789abcdef".repeat(2),
    ttl_seconds: 3600,
  }, kp.seed);
  assert.ok(parseAndVerifyOuterRecord(rec));
  assert.throws(() => parseAndVerifyOuterRecord(`{"__proto__":{},${rec.slice(1)}`), isSig);
});

Deno.test("receipts with out-of-range or malformed fields fail verification", () => {
  const kp = generateKeypair();
  const cases: Array<[string, Record<string, JsonValue>]> = [
    ["accepted_at 2^53-1", { accepted_at: Number.MAX_SAFE_INTEGER }],
    ["accepted_at an hour ahead", { accepted_at: NOW + 3600 }],
    ["accepted_at negative", { accepted_at: -1 }],
    ["protocol_version 99", { protocol_version: 99 }],
    ["share_ref ../../x", { share_ref: "../../x" }],
    ["share_ref upper case", { share_ref: "FEDCBA9876543210".repeat(2) }],
    ["ciphertext_hash zz", { ciphertext_hash: "zz" }],
    ["cleartext_hash short", { cleartext_hash: "ab" }],
    ["nonce empty", { nonce: "" }],
    ["sender_pubkey not a key", { sender_pubkey: "sender" }],
  ];
  for (const [label, over] of cases) {
    const text = signed(receiptFields(kp, over), kp.seed);
    assert.throws(() => parseAndVerifyReceipt(text), isSig, label);
  }
  // within the skew bound is fine
  assert.ok(parseAndVerifyReceipt(signed(receiptFields(kp, { accepted_at: NOW + 60 }), kp.seed)));
});

Deno.test("share times: future beyond the skew bound, undisplayable expiry", () => {
  // ten years ahead: refused (not valid yet), with a message saying so
  assert.throws(
    () => checkShareTimes(NOW + 10 * 365 * 86400, 86400n, NOW),
    (e) => isKind("expired")(e) && /not valid yet/.test((e as Error).message),
  );
  assert.doesNotThrow(() => checkShareTimes(NOW + 120, 86400n, NOW));
  // ttl 2^64-1 and created_at ±2^53 can never be shown as a date
  assert.throws(() => checkShareTimes(NOW, (1n << 64n) - 1n, NOW), isSig);
  assert.throws(() => checkShareTimes(Number.MAX_SAFE_INTEGER, 1n, NOW), isSig);
  assert.throws(() => checkShareTimes(-Number.MAX_SAFE_INTEGER, 1n, NOW), isSig);
  assert.throws(() => checkShareTimes(NOW - 100, 50n, NOW), isKind("expired"));
  // the longest --ttl send accepts still gives a real date
  assert.doesNotThrow(() => checkShareTimes(NOW, 999_999_999_999n, NOW));
});

Deno.test("a v1 record's fields are format-checked before anything is shown", () => {
  const kp = generateKeypair();
  const base = {
    blob: "AAAA",
    created_at: NOW,
    protocol_version: 1,
    pubkey: encodeZ32(kp.publicKey),
    recipient: null,
    share_ref: "0123456789abcdef".repeat(2),
    ttl_seconds: 3600,
  };
  assert.ok(parseAndVerifyOuterRecord(signed(base, kp.seed)));
  for (
    const [label, over] of [
      ["share_ref ../../x", { share_ref: "../../x" }],
      ["recipient not a key", { recipient: "bob" }],
      ["blob not base64", { blob: "!!!!" }],
      ["created_at negative", { created_at: -5 }],
    ] as Array<[string, Record<string, JsonValue>]>
  ) {
    assert.throws(
      () => parseAndVerifyOuterRecord(signed({ ...base, ...over }, kp.seed)),
      isSig,
      label,
    );
  }
});

Deno.test("an envelope whose purpose holds a C0 control is refused before display", () => {
  const env = (purpose: string) =>
    utf8(compactJson({
      created_at: NOW,
      material: { bytes: "AAAA", type: "generic_secret" },
      protocol_version: 1,
      purpose,
    }));
  assert.equal(parseEnvelope(env("ok \u00e9")).purpose, "ok \u00e9");
  for (const p of ["ring\u0007", "\u001b]0;title\u0007", "nul\u0000"]) {
    assert.throws(() => parseEnvelope(env(p)), isSig, JSON.stringify(p));
  }
});

Deno.test("SSH comments and X.509 names reach the acceptance screen escaped", () => {
  const hostile = "\u001b]0;pwned\u0007\u001b[2J\u202e";
  const ssh = previewMaterial("ssh_key", sshKeyWithComment(utf8(hostile)), new Date());
  const comment = ssh.find((l) => l.startsWith("Comment:"))!;
  assert.ok(!hasUnsafeText(comment), JSON.stringify(comment));
  assert.ok(comment.includes("\\x1b]0;pwned\\x07"), comment);
  const der = Deno.readFileSync(
    new URL("vectors/cipherpost/x509_cert_fixture.der", import.meta.url),
  );
  const x = previewMaterial("x509_cert", certWithName(der, hostile), new Date());
  for (const l of x.filter((l) => /^(Subject|Issuer):/.test(l))) {
    assert.ok(!hasUnsafeText(l), JSON.stringify(l));
    assert.ok(l.includes("\\x1b[2J"), l);
  }
});

Deno.test("escapeControl makes every control visible", () => {
  assert.equal(escapeControl("a\u0007b"), "a\\x07b");
  assert.equal(escapeControl("a\\b"), "a\\b"); // backslashes stay (as v1.1 shows them)
  assert.equal(escapeControl("\u009b\u202e\u2066"), "\\x9b\\u202e\\u2066");
  assert.equal(escapeControl("caf\u00e9 \u65e5\u672c"), "caf\u00e9 \u65e5\u672c");
  // with backslashes too (transcript text, shell quoting): nothing reads as an escape it is not
  assert.equal(escapeControl("a\\x07\u0007", { backslash: true }), "a\\\\x07\\x07");
  // a purpose as v1.1 shows it: Cc removed, bidi escaped, backslashes kept
  assert.equal(displayText("pay\u0007 \u202eoot\\n"), "pay \\u202eoot\\n");
});

Deno.test("a receipt purpose with bidi controls is shown escaped", () => {
  const kp = generateKeypair();
  const r = signReceipt({
    acceptedAt: NOW,
    ciphertextHash: "a".repeat(64),
    cleartextHash: "b".repeat(64),
    nonce: "c".repeat(32),
    protocolVersion: 1,
    purpose: "pay \u202eoot",
    recipientPubkey: encodeZ32(kp.publicKey),
    senderPubkey: encodeZ32(kp.publicKey),
    shareRef: "d".repeat(32),
  }, kp.seed);
  assert.ok(parseAndVerifyReceipt(receiptJson(r)));
  assert.match(formatReceiptSummary(r), /"pay \\u202eoot"/);
});

Deno.test("share URIs are validated and canonicalised before anything else", () => {
  const kp = generateKeypair();
  const z = encodeZ32(kp.publicKey);
  const ref = "0123456789abcdef".repeat(2);
  assert.equal(parseShareUri(`cipherpost://${z}/${ref}`).sender, z);
  assert.throws(
    () => parseShareUri(`cipherpost://${z.toUpperCase()}/${ref}`),
    isKind("invalid_uri"),
  );
  // a non-canonical last character (the 4 spare bits set) names the same key: canonicalised
  const ALPHA = "ybndrfg8ejkmcpqxot1uwisza345h769";
  const last = ALPHA.indexOf(z[51]);
  const alt = ALPHA[last ^ 1];
  const spelled = `${z.slice(0, 51)}${alt}`;
  assert.notEqual(spelled, z);
  assert.equal(parseShareUri(`cipherpost://${spelled}/${ref}`).sender, z);
  // a sender that is no point on the curve is refused here, not by the network later
  let bad = "";
  for (const c of ALPHA) {
    const cand = c.repeat(52);
    try {
      parseShareUri(`cipherpost://${cand}/${ref}`);
    } catch (e) {
      if (isKind("invalid_uri")(e) && /valid public key/.test((e as Error).message)) {
        bad = cand;
        break;
      }
    }
  }
  assert.ok(bad !== "", "some repeated character is not a valid point");
});

Deno.test("an atomic write to a name of NAME_MAX bytes works (short temp name)", async () => {
  const dir = await tmpDir("cp-attacks-");
  const name = "n".repeat(255);
  await writeFileAtomic(`${dir}/${name}`, utf8("x"));
  assert.equal(await Deno.readTextFile(`${dir}/${name}`), "x");
  assert.deepEqual(await listNames(dir), [name]);
});

Deno.test("crash leftovers: the next atomic write sweeps temp files of dead writers only", async () => {
  const dir = await tmpDir("cp-attacks-");
  // a temp file whose writer is gone (nobody holds its lock), one a live writer holds locked,
  // and a foreign file
  const dead = ".cipherpost-0badf00d.tmp";
  const alive = ".cipherpost-00c0ffee.tmp";
  for (const n of [dead, alive, "keep.tmp"]) await Deno.writeTextFile(`${dir}/${n}`, "partial");
  const holder = await Deno.open(`${dir}/${alive}`, { read: true, write: true });
  await holder.lock(true);
  await writeFileAtomic(`${dir}/out`, utf8("whole"));
  assert.deepEqual(await listNames(dir), [alive, "keep.tmp", "out"].sort());
  holder.close();
});

async function listNames(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("capped reads stop at cap + 1 bytes: /dev/zero, a sparse file, an endless stream", async () => {
  const cap = 65536;
  await assert.rejects(() => readFileCapped("/dev/zero", cap), isKind("too_large"));
  const dir = await tmpDir("cp-attacks-");
  const sparse = `${dir}/sparse`;
  const f = await Deno.open(sparse, { write: true, create: true });
  await f.truncate(3 * 1024 ** 3);
  f.close();
  await assert.rejects(() => readFileCapped(sparse, cap), isKind("too_large"));
  let pulled = 0;
  const endless = new ReadableStream<Uint8Array>({
    pull(c) {
      pulled += 4096;
      c.enqueue(new Uint8Array(4096));
    },
  });
  await assert.rejects(() => readStreamCapped(endless, cap), isKind("too_large"));
  assert.ok(pulled <= cap + 3 * 4096, `pulled ${pulled} bytes`);
  // at the cap exactly: fine
  await Deno.writeFile(`${dir}/exact`, new Uint8Array(cap));
  assert.equal((await readFileCapped(`${dir}/exact`, cap)).length, cap);
  await assert.rejects(() => readFileCapped(dir, cap), isKind("io"));
  await assert.rejects(() => readFileCapped(`${dir}/missing`, cap), isKind("io"));
});

Deno.test("a receipt counts only when signed by the share's recipient and bound to it", () => {
  const alice = generateKeypair();
  const bob = generateKeypair();
  const mallory = generateKeypair();
  const share = {
    shareRef: "ab".repeat(16),
    sender: encodeZ32(alice.publicKey),
    recipient: encodeZ32(bob.publicKey),
    ciphertextSha256: "cd".repeat(32),
  };
  const receipt = (signer: typeof bob, over: Record<string, string> = {}) =>
    signReceipt({
      acceptedAt: NOW,
      ciphertextHash: over.ciphertextHash ?? share.ciphertextSha256,
      cleartextHash: "0".repeat(64),
      nonce: "1".repeat(32),
      protocolVersion: 1,
      purpose: "",
      recipientPubkey: encodeZ32(signer.publicKey),
      senderPubkey: over.senderPubkey ?? share.sender,
      shareRef: over.shareRef ?? share.shareRef,
    }, signer.seed);
  assert.equal(receiptMismatch(receipt(bob), share), null);
  assert.equal(receiptMismatch(receipt(mallory), share), "not signed by the recipient");
  assert.equal(receiptMismatch(receipt(bob, { shareRef: "ef".repeat(16) }), share), "share_ref");
  assert.equal(
    receiptMismatch(receipt(bob, { senderPubkey: encodeZ32(mallory.publicKey) }), share),
    "sender_pubkey",
  );
  assert.equal(
    receiptMismatch(receipt(bob, { ciphertextHash: "00".repeat(32) }), share),
    "ciphertext_hash",
  );
  // a self share: the receipt is the sender's own
  const self = { ...share, recipient: null };
  assert.equal(receiptMismatch(receipt(alice), self), null);
  assert.equal(receiptMismatch(receipt(bob), self), "not signed by the recipient");
});

Deno.test("state reads report unreadable files instead of treating them as absent", async () => {
  const home = await tmpDir("cp-attacks-");
  const state = new State(home);
  assert.equal(await state.loadOwnPacket(), null);
  await Deno.mkdir(`${home}/state/packet.bin`, { recursive: true });
  await assert.rejects(() => state.loadOwnPacket(), isKind("io"));
  await Deno.mkdir(`${home}/state/sent/${"a".repeat(32)}.json`, { recursive: true });
  assert.deepEqual(await state.listSent(), []); // a directory there is not a record: skipped
  await Deno.mkdir(`${home}/state/accepted.jsonl`, { recursive: true });
  await assert.rejects(() => state.rows(), isKind("io"));
});
