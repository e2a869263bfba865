import assert from "node:assert/strict";
import { ageDecrypt, ageEncrypt } from "../lib/crypto/age.ts";
import { canonicalize, compactJson, type JsonValue } from "../lib/util/canonical_json.ts";
import { b64decode, b64encode, concat, fromUtf8, toHex, utf8 } from "../lib/util/encoding.ts";
import { CipherpostError } from "../lib/util/errors.ts";
import { exitCodeOf } from "../lib/cli/exit_codes.ts";
import { generateKeypair, type Keypair, sign, verifyStrict } from "../lib/crypto/keys.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";
import { shareRef } from "../lib/protocol/record.ts";
import { type SignedPacket, signPacket } from "../lib/pkarr/signed_packet.ts";
import { startTestnet } from "../lib/testing/testnet.ts";
import { Transport } from "../lib/pkarr/transport.ts";
import { buildV2Share, deriveV2Keys, type Manifest, PART_SIZE } from "../lib/protocol/v2.ts";
import {
  fetchV2Receipt,
  fetchV2Share,
  publishPackets,
  publishV2Receipt,
  revokeV2,
} from "../lib/flows/share/v2_transfer.ts";

const isKind = (kind: string, re?: RegExp) => (e: unknown) =>
  e instanceof CipherpostError && e.kind === kind && (!re || re.test(e.message));
const isSignature = (e: unknown) => isKind("signature")(e) && exitCodeOf(e) === 3;

/** Random bytes of any length (getRandomValues gives at most 64 KiB per call). */
function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

/** A share's args: a random "ciphertext" of `size` bytes (PIN: the first 32 are the salt). */
function shareArgs(
  sender: Keypair,
  size: number,
  opts: { pin?: boolean; createdAt?: number } = {},
) {
  const blob = randomBytes(size);
  const pin = opts.pin ?? false;
  const createdAt = opts.createdAt ?? Math.floor(Date.now() / 1000);
  return {
    sender,
    recipient: encodeZ32(generateKeypair().publicKey),
    blob,
    shareRef: shareRef(pin ? blob.subarray(32) : blob, createdAt),
    createdAt,
    ttlSeconds: 86400n,
    pinRequired: pin,
  };
}

/** The manifest JSON written independently of lib/v2.ts (spec §3.3 field order). */
function wireFields(m: Omit<Manifest, "signature">, signature?: string): Record<string, JsonValue> {
  const o: Record<string, JsonValue> = {
    ciphertext_len: m.ciphertextLen,
    ciphertext_sha256: m.ciphertextSha256,
    created_at: m.createdAt,
    manifest_key: m.manifestKey,
    part_size: m.partSize,
    parts: m.parts,
    ...(m.pinRequired ? { pin_required: true } : {}),
    protocol_version: m.protocolVersion,
    pubkey: m.pubkey,
    recipient: m.recipient,
    share_ref: m.shareRef,
    ...(signature === undefined ? {} : { signature }),
    ttl_seconds: m.ttlSeconds,
  };
  return o;
}

function txtBytes(p: SignedPacket): Uint8Array {
  const d = p.records[0].data;
  assert.equal(d.type, "TXT");
  return concat(...(d.type === "TXT" ? d.strings : []));
}

/** Seal `fields` as a manifest of `locator` and sign the packet under M, newer than `tsUs`. */
async function forgedManifestPacket(
  locator: Uint8Array,
  fields: Record<string, JsonValue>,
  tsUs: number,
): Promise<SignedPacket> {
  const keys = deriveV2Keys(locator);
  const sealed = await ageEncrypt(utf8(compactJson(fields)), keys.sealRecipient);
  const strings: Uint8Array[] = [];
  for (let i = 0; i < sealed.length; i += 255) strings.push(sealed.slice(i, i + 255));
  return signPacket(keys.manifest.seed, [{
    name: "_cpm",
    ttl: 300,
    data: { type: "TXT", strings },
  }], tsUs + 1);
}

Deno.test("v2 keys: deterministic and domain-separated", () => {
  const L = new Uint8Array(32).fill(7);
  const a = deriveV2Keys(L), b = deriveV2Keys(L.slice());
  const hexes = [a.manifest, a.receipt, a.part(0), a.part(1), a.part(10)].map((k) => toHex(k.seed));
  assert.equal(new Set(hexes).size, hexes.length);
  assert.deepEqual(
    [b.manifest, b.receipt, b.part(0), b.part(1), b.part(10)].map((k) => toHex(k.seed)),
    hexes,
  );
  assert.equal(a.sealRecipient, b.sealRecipient);
  assert.match(a.sealRecipient, /^age1[0-9a-z]{58}$/);
  assert.match(a.sealIdentity, /^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
  // the seal key is none of the Ed25519 seeds, and another locator gives other keys
  assert.ok(!hexes.some((h) => a.sealIdentity.includes(h)));
  const c = deriveV2Keys(new Uint8Array(32).fill(8));
  assert.notEqual(toHex(c.manifest.seed), hexes[0]);
  assert.notEqual(c.sealRecipient, a.sealRecipient);
  assert.throws(() => deriveV2Keys(new Uint8Array(31)));
});

Deno.test("v2 build: manifest wire form, signature and part layout", async () => {
  const sender = generateKeypair();
  const args = shareArgs(sender, 2 * PART_SIZE + 5, { pin: true });
  const ts = 1_700_000_000_000_000;
  const { locator, manifest, packets } = await buildV2Share({ ...args, timestampUs: ts });
  const keys = deriveV2Keys(locator);
  assert.equal(manifest.parts, 3);
  assert.equal(packets.length, 4);
  assert.ok(packets.every((p) => p.timestamp === ts && p.v.length <= 1000));
  assert.deepEqual(packets[0].publicKey, keys.manifest.publicKey);
  assert.equal(packets[0].records[0].name, `_cpm.${encodeZ32(keys.manifest.publicKey)}`);
  const json = fromUtf8(await ageDecrypt(txtBytes(packets[0]), keys.sealIdentity));
  assert.equal(json, compactJson(wireFields(manifest, manifest.signature)));
  assert.ok(json.includes(`"pin_required":true,"protocol_version":2`));
  assert.ok(verifyStrict(
    sender.publicKey,
    canonicalize(wireFields(manifest)),
    b64decode(manifest.signature),
  ));
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(packets[i + 1].publicKey, keys.part(i).publicKey);
    assert.equal(packets[i + 1].records[0].name, `_cpp.${encodeZ32(keys.part(i).publicKey)}`);
    assert.deepEqual(
      txtBytes(packets[i + 1]),
      args.blob.subarray(i * PART_SIZE, (i + 1) * PART_SIZE),
    );
  }
  // a full part fits a packet, and the largest manifest does too
  const big = await buildV2Share(shareArgs(sender, 98_304, { pin: true }));
  assert.equal(big.manifest.parts, 110);
  assert.ok(big.packets.every((p) => p.v.length <= 1000));
  await assert.rejects(buildV2Share(shareArgs(sender, 98_305)), isKind("too_large"));
});

Deno.test("v2 over a real testnet", async (t) => {
  const net = await startTestnet({ nodes: 20 });
  const transport = new Transport({
    bootstrap: net.bootstrap,
    relays: [net.relayUrl],
    useDht: true,
    useRelays: true,
    timeoutMs: 500,
  });
  const sender = generateKeypair();
  const senderZ32 = encodeZ32(sender.publicKey);
  /** Build and publish a share; `skip` = indexes into packets left unpublished. */
  const send = async (size: number, skip: number[] = [], opts = {}) => {
    const args = shareArgs(sender, size, opts);
    const built = await buildV2Share(args);
    // Concurrency 8, not the default 32: the whole testnet shares this process's one thread,
    // and 32 parallel lookups with 500 ms timeouts can starve it on a busy machine.
    const { stored } = await publishPackets(
      transport,
      built.packets.filter((_, i) => !skip.includes(i)),
      8,
    );
    assert.ok(stored.every((n) => n >= 1));
    return { args, ...built };
  };

  try {
    await t.step("round trip 64 KiB and 100 B", async () => {
      for (const size of [64 * 1024, 100]) {
        const s = await send(size);
        const got = await fetchV2Share(transport, senderZ32, s.locator);
        assert.deepEqual(got.blob, s.args.blob);
        assert.deepEqual(got.manifest, s.manifest);
        assert.equal(got.manifest.parts, Math.ceil(size / PART_SIZE));
        assert.equal(got.manifest.recipient, s.args.recipient);
        assert.equal(got.manifest.shareRef, s.args.shareRef);
        assert.equal(got.manifest.ttlSeconds, 86400n);
      }
    });

    await t.step("PIN share round trip (share_ref over the blob without salt)", async () => {
      const s = await send(1000, [], { pin: true });
      const got = await fetchV2Share(transport, senderZ32, s.locator);
      assert.deepEqual(got.blob, s.args.blob);
      assert.equal(got.manifest.pinRequired, true);
    });

    await t.step("a part never published: network error naming it", async () => {
      const s = await send(5 * PART_SIZE, [4]); // packets[4] = part 3
      await assert.rejects(
        fetchV2Share(transport, senderZ32, s.locator),
        isKind("network", /^share incomplete: 1 of 5 parts missing \(parts 3\)$/),
      );
    });

    await t.step("a part replaced by validly signed other bytes: exit 3", async () => {
      const s = await send(5 * PART_SIZE);
      const i = 3;
      const keys = deriveV2Keys(s.locator);
      const other = crypto.getRandomValues(new Uint8Array(PART_SIZE));
      const forged = signPacket(keys.part(i).seed, [{
        name: "_cpp",
        ttl: 300,
        data: {
          type: "TXT",
          strings: [0, 255, 510, 765].map((o) => other.slice(o, Math.min(o + 255, PART_SIZE))),
        },
      }], s.packets[i + 1].timestamp + 1);
      await publishPackets(transport, [forged]);
      await assert.rejects(fetchV2Share(transport, senderZ32, s.locator), isSignature);
    });

    await t.step("a part of the wrong length: exit 3", async () => {
      const s = await send(2 * PART_SIZE);
      const keys = deriveV2Keys(s.locator);
      const forged = signPacket(keys.part(0).seed, [{
        name: "_cpp",
        ttl: 300,
        data: { type: "TXT", strings: [new Uint8Array(10)] },
      }], s.packets[1].timestamp + 1);
      await publishPackets(transport, [forged]);
      await assert.rejects(fetchV2Share(transport, senderZ32, s.locator), isSignature);
    });

    await t.step("wrong expected sender: exit 3", async () => {
      const s = await send(300);
      const someoneElse = encodeZ32(generateKeypair().publicKey);
      await assert.rejects(fetchV2Share(transport, someoneElse, s.locator), isSignature);
      // and the right sender still works
      assert.deepEqual((await fetchV2Share(transport, senderZ32, s.locator)).blob, s.args.blob);
    });

    await t.step("manifest naming the sender but signed by another identity: exit 3", async () => {
      const s = await send(300);
      const mallory = generateKeypair();
      const sig = b64encode(sign(mallory.seed, canonicalize(wireFields(s.manifest))));
      await publishPackets(transport, [
        await forgedManifestPacket(s.locator, wireFields(s.manifest, sig), s.packets[0].timestamp),
      ]);
      await assert.rejects(fetchV2Share(transport, senderZ32, s.locator), isSignature);
    });

    await t.step("another share's valid manifest moved under this locator: exit 3", async () => {
      const a = await send(300);
      const b = await send(300);
      await publishPackets(transport, [
        await forgedManifestPacket(
          b.locator,
          wireFields(a.manifest, a.manifest.signature),
          b.packets[0].timestamp,
        ),
      ]);
      await assert.rejects(fetchV2Share(transport, senderZ32, b.locator), isSignature);
    });

    await t.step("garbage in _cpm (not sealed to S): exit 3", async () => {
      const s = await send(300);
      const keys = deriveV2Keys(s.locator);
      const junk = signPacket(keys.manifest.seed, [{
        name: "_cpm",
        ttl: 300,
        data: { type: "TXT", strings: [utf8("age-encryption.org/v1 not really")] },
      }], s.packets[0].timestamp + 1);
      await publishPackets(transport, [junk]);
      await assert.rejects(fetchV2Share(transport, senderZ32, s.locator), isSignature);
    });

    await t.step("revoke: not found, revoked", async () => {
      const s = await send(300);
      await revokeV2(transport, s.locator);
      await assert.rejects(
        fetchV2Share(transport, senderZ32, s.locator),
        isKind("not_found", /revoked by the sender/),
      );
    });

    await t.step("unknown locator: not found", async () => {
      await assert.rejects(
        fetchV2Share(transport, senderZ32, crypto.getRandomValues(new Uint8Array(32))),
        isKind("not_found"),
      );
    });

    await t.step("expired: kind expired, exit 2", async () => {
      const s = await send(300);
      const at = s.manifest.createdAt + Number(s.manifest.ttlSeconds);
      await assert.rejects(
        fetchV2Share(transport, senderZ32, s.locator, at),
        (e: unknown) => isKind("expired")(e) && exitCodeOf(e) === 2,
      );
      // one second earlier it is still live
      await fetchV2Share(transport, senderZ32, s.locator, at - 1);
    });

    await t.step("receipts: none → null; publish, fetch, replace", async () => {
      const s = await send(300);
      assert.equal(await fetchV2Receipt(transport, s.locator), null);
      const first = '{"accepted_at":1,"purpose":"first"}';
      await publishV2Receipt(transport, s.locator, first);
      assert.equal(await fetchV2Receipt(transport, s.locator), first);
      const second = '{"accepted_at":2,"purpose":"second, with a longer text ✓"}';
      await publishV2Receipt(transport, s.locator, second);
      assert.equal(await fetchV2Receipt(transport, s.locator), second);
      // the receipt slot is not the manifest slot: the share is untouched
      assert.deepEqual((await fetchV2Share(transport, senderZ32, s.locator)).blob, s.args.blob);
    });
  } finally {
    await transport.close();
    await net.close();
  }
});
