// Makes the room vectors of docs/PROTOCOL.md §8 from fixed seeds:
//   deno run -P=cipherpost --no-prompt tests/vectors/rooms/generate.ts
// Everything but the age files is deterministic (Ed25519 signatures are); the age files are
// examples that tests/rooms_test.ts opens and checks. Do not edit the JSON by hand.
import { keypairFromSeed } from "../../../lib/crypto/keys.ts";
import { encodeZ32 } from "../../../lib/pkarr/public_key.ts";
import { b64encode, fromUtf8, toHex } from "../../../lib/util/encoding.ts";
import { folderTag, keyPath, keyTag, messagePath, rosterPath } from "../../../lib/rooms/names.ts";
import {
  messageObject,
  recordBytes,
  signedBytes,
  signRecord,
} from "../../../lib/rooms/records.ts";
import { createRoster, nextRoster, signRoster } from "../../../lib/rooms/roster.ts";
import { sealKeyRecord, sealMessage, sealRoster } from "../../../lib/rooms/seal.ts";
import { ageIdentityOf } from "../../../lib/crypto/keys.ts";

const dir = new URL(".", import.meta.url).pathname;
const alice = keypairFromSeed(new Uint8Array(32).fill(0xa1));
const bob = keypairFromSeed(new Uint8Array(32).fill(0xb0));
const A = encodeZ32(alice.publicKey), B = encodeZ32(bob.publicKey);
const nonce = "000102030405060708090a0b0c0d0e0f";
const key1 = ageIdentityOf(new Uint8Array(32).fill(0x11));
const key2 = ageIdentityOf(new Uint8Array(32).fill(0x22));

const r1 = signRoster(createRoster({ creator: A, nonce, name: "ops", at: 1_800_000_000_000 }), alice.seed);
const r2 = signRoster(nextRoster(r1, "admit", [B], A, 1_800_000_060_000), alice.seed);
const room = r1.roster.room;

const write = (name: string, v: unknown) =>
  Deno.writeTextFileSync(`${dir}${name}`, JSON.stringify(v, null, 2) + "\n");

write("names.json", {
  creator_seed_hex: toHex(alice.seed),
  creator: A,
  member: B,
  nonce,
  room,
  folder_tag_creator: folderTag(room, A),
  folder_tag_member: folderTag(room, B),
  key_tag_member_epoch2: keyTag(room, 2, B),
  roster_path_epoch2: rosterPath(room, A, 2),
  key_path_member_epoch2: keyPath(room, A, 2, B),
  message_path_member_epoch2_seq1: messagePath(room, B, 2, 1),
});

write("roster.json", {
  epoch1: { record: r1.record, signed_bytes: fromUtf8(signedBytes("roster", r1.record)), hash: r1.hash },
  epoch2: { record: r2.record, signed_bytes: fromUtf8(signedBytes("roster", r2.record)), hash: r2.hash },
  epoch2_key: key2,
  epoch2_file_b64: b64encode(await sealRoster(r2, key2)),
});

const kr = { room, epoch: 2, member: B, key: key2, roster: r2.hash, signer: A };
const krSigned = signRecord("key", {
  epoch: 2, key: key2, member: B, room, roster: r2.hash, signer: A, v: 1,
}, alice.seed);
write("key_record.json", {
  member_seed_hex: toHex(bob.seed),
  record: krSigned,
  canonical: fromUtf8(recordBytes(krSigned)),
  file_b64: b64encode(await sealKeyRecord(kr, alice.seed)),
});

const msg = {
  room, epoch: 2, author: B, seq: 1, hlc: 1_800_000_061_000, hlcC: 0,
  kind: "chat" as const, body: "hello\nroom",
};
const msgSigned = signRecord("msg", messageObject(msg), bob.seed);
write("message.json", {
  message: { ...msg },
  record: msgSigned,
  signed_bytes: fromUtf8(signedBytes("msg", msgSigned)),
  epoch_key: key2,
  file_b64: b64encode(await sealMessage(msg, bob.seed, key2)),
  epoch1_key: key1,
});
console.log(`room ${room}`);
