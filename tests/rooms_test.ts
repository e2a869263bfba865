// Rooms (docs/PROTOCOL.md §8): the pure codecs and their vectors, the stand-in's event stream,
// and three identities through the real CLI on a local testnet and the stand-in homeserver:
// create, invite, join, messages live and by backfill, forged files refused and reported, a
// dropped message reported missing, removal rotating the key, hostile bodies and a flood.
import assert from "node:assert/strict";
import { cli, cliArgv, makeUserWithSeed, PASS, testTransport, tmpDir, type User } from "./_helpers.ts";
import { startTestnet, type Testnet } from "../lib/testing/testnet.ts";
import { type HomeserverStandIn, startHomeserver } from "../lib/testing/homeserver.ts";
import { connect } from "../lib/homeserver/connect.ts";
import type { HomeserverClient } from "../lib/homeserver/client.ts";
import { generateKeypair, type Keypair, keypairFromSeed } from "../lib/crypto/keys.ts";
import { ageDecrypt, ageEncrypt } from "../lib/crypto/age.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";
import { b64decode, b64encode, fromHex, fromUtf8, utf8 } from "../lib/util/encoding.ts";
import {
  epochDir,
  folderTag,
  keyPath,
  keyTag,
  messagePath,
  rosterPath,
} from "../lib/rooms/names.ts";
import {
  type Message,
  messageObject,
  parseInvite,
  parseRecord,
  recordBytes,
  signedBytes,
  signRecord,
} from "../lib/rooms/records.ts";
import {
  checkFollows,
  createRoster,
  nextRoster,
  openRoster,
  signRoster,
} from "../lib/rooms/roster.ts";
import {
  epochRecipient,
  newEpochKey,
  openKeyRecord,
  openMessage,
  openSealedRoster,
  sealMessage,
} from "../lib/rooms/seal.ts";
import { floodLimit, missingRanges, order, tick } from "../lib/rooms/order.ts";
import { SseParser } from "../lib/rooms/sse.ts";
import { loadRoom, type RoomState } from "../lib/rooms/store.ts";

const vec = (name: string) =>
  JSON.parse(Deno.readTextFileSync(new URL(`./vectors/rooms/${name}`, import.meta.url)));

// ---------------------------------------------------------------------------------------------
// Pure parts

Deno.test("room vectors: names, roster, key record and message (docs/PROTOCOL.md §8)", async () => {
  const n = vec("names.json");
  const alice = keypairFromSeed(fromHex(n.creator_seed_hex));
  assert.deepStrictEqual(encodeZ32(alice.publicKey), n.creator);
  assert.deepStrictEqual(folderTag(n.room, n.creator), n.folder_tag_creator);
  assert.deepStrictEqual(folderTag(n.room, n.member), n.folder_tag_member);
  assert.notDeepStrictEqual(n.folder_tag_creator, n.folder_tag_member);
  assert.deepStrictEqual(keyTag(n.room, 2, n.member), n.key_tag_member_epoch2);
  assert.deepStrictEqual(rosterPath(n.room, n.creator, 2), n.roster_path_epoch2);
  assert.deepStrictEqual(keyPath(n.room, n.creator, 2, n.member), n.key_path_member_epoch2);
  assert.deepStrictEqual(messagePath(n.room, n.member, 2, 1), n.message_path_member_epoch2_seq1);

  const r = vec("roster.json");
  const r1 = signRoster(
    createRoster({ creator: n.creator, nonce: n.nonce, name: "ops", at: 1_800_000_000_000 }),
    alice.seed,
  );
  assert.deepStrictEqual(r1.roster.room, n.room);
  assert.deepStrictEqual(r1.record, r.epoch1.record);
  assert.deepStrictEqual(r1.hash, r.epoch1.hash);
  assert.deepStrictEqual(fromUtf8(signedBytes("roster", r1.record)), r.epoch1.signed_bytes);
  const r2 = signRoster(nextRoster(r1, "admit", [n.member], n.creator, 1_800_000_060_000), alice.seed);
  assert.deepStrictEqual(r2.record, r.epoch2.record);
  assert.deepStrictEqual(r2.hash, r.epoch2.hash);
  checkFollows(r1, openRoster(recordBytes(r.epoch2.record)));
  const opened = await openSealedRoster(b64decode(r.epoch2_file_b64), r.epoch2_key);
  assert.deepStrictEqual(opened.hash, r.epoch2.hash);

  const k = vec("key_record.json");
  const bob = keypairFromSeed(fromHex(k.member_seed_hex));
  assert.deepStrictEqual(fromUtf8(recordBytes(k.record)), k.canonical);
  const kr = await openKeyRecord(b64decode(k.file_b64), bob, {
    room: n.room,
    epoch: 2,
    signer: n.creator,
  });
  assert.deepStrictEqual(kr.key, r.epoch2_key);
  assert.deepStrictEqual(kr.roster, r.epoch2.hash);
  // the key record is for bob only
  await assert.rejects(() =>
    openKeyRecord(b64decode(k.file_b64), alice, { room: n.room, epoch: 2, signer: n.creator })
  );

  const m = vec("message.json");
  const signed = signRecord("msg", messageObject(m.message), bob.seed);
  assert.deepStrictEqual(signed, m.record);
  assert.deepStrictEqual(fromUtf8(signedBytes("msg", signed)), m.signed_bytes);
  const slot = {
    room: n.room,
    epoch: 2,
    owner: n.member,
    seq: 1,
    epochKey: m.epoch_key,
    members: [n.creator, n.member].sort(),
  };
  const got = await openMessage(b64decode(m.file_b64), slot);
  assert.deepStrictEqual(got, m.message);
  // the same file at another slot, with another key, or by a non-member
  assert.deepStrictEqual(await openMessage(b64decode(m.file_b64), { ...slot, seq: 2 }), "replayed");
  assert.deepStrictEqual(await openMessage(b64decode(m.file_b64), { ...slot, epoch: 3 }), "replayed");
  assert.deepStrictEqual(
    await openMessage(b64decode(m.file_b64), { ...slot, epochKey: m.epoch1_key }),
    "undecryptable",
  );
  assert.deepStrictEqual(
    await openMessage(b64decode(m.file_b64), { ...slot, members: [n.creator] }),
    "not_member",
  );
});

Deno.test("room records: roster rules refuse what the protocol forbids", () => {
  const a = generateKeypair(), b = generateKeypair(), c = generateKeypair();
  const [A, B, C] = [a, b, c].map((k) => encodeZ32(k.publicKey));
  const nonce = "00112233445566778899aabbccddeeff";
  const r1 = signRoster(createRoster({ creator: A, nonce, name: "x", at: 1 }), a.seed);
  const r2 = signRoster(nextRoster(r1, "admit", [B], A, 2), a.seed);
  checkFollows(r1, r2);
  // signed by a non-admin
  const byB = signRoster({ ...nextRoster(r2, "admit", [C], A, 3), signer: B }, b.seed);
  assert.throws(() => checkFollows(r2, byB), /non-admin/);
  // a signature by someone else than the signer named
  const forged = signRoster(nextRoster(r2, "admit", [C], A, 3), b.seed);
  assert.throws(() => openRoster(recordBytes(forged.record)), /signature/);
  // the creator cannot be removed; a removal drops the member
  assert.throws(() => nextRoster(r2, "remove", [A], A, 3), /creator/);
  const r3 = signRoster(nextRoster(r2, "remove", [B], A, 3), a.seed);
  checkFollows(r2, r3);
  assert.deepStrictEqual(r3.roster.members, [A]);
  // a skipped epoch, a changed name
  assert.throws(() => checkFollows(r1, r3), /next update/);
  const renamed = signRoster({ ...nextRoster(r1, "admit", [C], A, 3), name: "y" }, a.seed);
  assert.throws(() => checkFollows(r1, renamed), /identity/);
  // a room id that does not derive from creator and nonce
  const stolen = signRoster({ ...r1.roster, creator: B, signer: B, members: [B], admins: [B] }, b.seed);
  assert.throws(() => openRoster(recordBytes(stolen.record)), /derive/);
  // invites
  assert.throws(() => parseInvite(utf8('{"v":2}')), /unknown version/);
});

Deno.test("room order: HLC, far-future stamps held back, missing ranges, flood limit", () => {
  assert.deepStrictEqual(tick(null, 100), { ms: 100, c: 0 });
  assert.deepStrictEqual(tick({ ms: 100, c: 0 }, 90), { ms: 100, c: 1 });
  assert.deepStrictEqual(tick({ ms: 100, c: 4 }, 101), { ms: 101, c: 0 });
  const now = 10_000_000;
  const m = (author: string, seq: number, hlc: number): Message => ({
    room: "0".repeat(32),
    epoch: 1,
    author,
    seq,
    hlc,
    hlcC: 0,
    kind: "chat",
    body: `${author}${seq}`,
  });
  const placed = order([
    m("b", 1, now - 5000),
    m("a", 1, now - 4000),
    m("a", 2, now + 24 * 3600_000), // far future: held at a's previous key
    m("b", 2, now - 1000),
  ], now);
  assert.deepStrictEqual(placed.map((p) => p.message.body), ["b1", "a1", "a2", "b2"]);
  assert.deepStrictEqual(placed.map((p) => p.future), [false, false, true, false]);
  assert.deepStrictEqual(missingRanges([1, 2, 5, 6, 9]), [[3, 4], [7, 8]]);
  assert.deepStrictEqual(missingRanges([]), []);
  const flood = Array.from({ length: 40 }, (_, i) => m("f", i + 1, now + i));
  const { shown, hidden } = floodLimit(order([...flood, m("q", 1, now + 5)], now));
  assert.deepStrictEqual(shown.filter((p) => p.message.author === "f").length, 30);
  assert.deepStrictEqual(hidden.get("f"), 10);
  assert(shown.some((p) => p.message.author === "q"));
});

Deno.test("room sse: the event-stream parser reads events and refuses malformed streams", () => {
  const u = encodeZ32(generateKeypair().publicKey);
  const p = new SseParser();
  const text = `: keep-alive\n\nevent: PUT\ndata: pubky://${u}/pub/cipherpost/rooms/x/1\n` +
    `data: cursor: 7\ndata: content_hash: AAAA\n\nevent: DEL\r\ndata: pubky://${u}/pub/a\r\n` +
    `data: cursor: 8\r\n\r\n`;
  const bytes = utf8(text);
  const events = [...p.push(bytes.subarray(0, 20)), ...p.push(bytes.subarray(20))];
  assert.deepStrictEqual(events, [
    { type: "PUT", user: u, path: "/pub/cipherpost/rooms/x/1", cursor: "7", contentHash: "AAAA" },
    { type: "DEL", user: u, path: "/pub/a", cursor: "8", contentHash: undefined },
  ]);
  assert.throws(() => new SseParser().push(utf8("event: PUT\ndata: nope\n\n")), /malformed/);
  assert.throws(() => new SseParser().push(utf8("event: EVIL\ndata: x\n\n")), /malformed/);
  assert.throws(() => new SseParser().push(new Uint8Array(9000).fill(0x61)), /malformed/);
});
