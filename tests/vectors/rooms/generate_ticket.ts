// Makes the ticket vectors of docs/PROTOCOL.md §9.3 (`admin`) and §9.7 from fixed seeds:
//   deno run -P=cipherpost --no-prompt tests/vectors/rooms/generate_ticket.ts
// Everything but the slot text's age file is deterministic; that file is an example that
// tests/rooms_ticket_test.ts opens and checks. Do not edit tickets.json by hand.
import { keypairFromSeed } from "../../../lib/crypto/keys.ts";
import { encodeZ32 } from "../../../lib/pkarr/public_key.ts";
import { fromUtf8, toHex } from "../../../lib/util/encoding.ts";
import { signedBytes, signRecord } from "../../../lib/rooms/records.ts";
import { createRoster, nextRoster, signRoster } from "../../../lib/rooms/roster.ts";
import {
  encodeTicket,
  joinerTag,
  sealJoinRequest,
  slotSeed,
  type Ticket,
  ticketId,
} from "../../../lib/rooms/ticket.ts";

const dir = new URL(".", import.meta.url).pathname;
const alice = keypairFromSeed(new Uint8Array(32).fill(0xa1));
const bob = keypairFromSeed(new Uint8Array(32).fill(0xb0));
const A = encodeZ32(alice.publicKey), B = encodeZ32(bob.publicKey);
const nonce = "000102030405060708090a0b0c0d0e0f";

// the room of names.json / roster.json: create, admit bob, then name bob an admin
const r1 = signRoster(
  createRoster({ creator: A, nonce, name: "ops", at: 1_800_000_000_000 }),
  alice.seed,
);
const r2 = signRoster(nextRoster(r1, "admit", [B], A, 1_800_000_060_000), alice.seed);
const r3 = signRoster(nextRoster(r2, "admin", [B], A, 1_800_000_180_000), alice.seed);
const room = r1.roster.room;

const t: Ticket = {
  room,
  admin: A,
  secret: new Uint8Array(32).fill(0x5e),
  slots: 2,
  autoAdmit: false,
};
const joiner = keypairFromSeed(new Uint8Array(32).fill(0xc0));
const J = encodeZ32(joiner.publicKey);
const at = 1_800_000_120_000;
const request = signRecord("join", {
  at,
  joiner: J,
  room,
  slot: 1,
  ticket: ticketId(t.secret),
  v: 1,
}, joiner.seed);

Deno.writeTextFileSync(
  `${dir}tickets.json`,
  JSON.stringify(
    {
      admin_seed_hex: toHex(alice.seed),
      admin: A,
      room,
      secret_hex: toHex(t.secret),
      slots: t.slots,
      auto_admit: t.autoAdmit,
      ticket: encodeTicket(t),
      ticket_auto_admit: encodeTicket({ ...t, autoAdmit: true }),
      ticket_id: ticketId(t.secret),
      slot0_seed_hex: toHex(slotSeed(t, 0)),
      slot0_key: encodeZ32(keypairFromSeed(slotSeed(t, 0)).publicKey),
      slot1_key: encodeZ32(keypairFromSeed(slotSeed(t, 1)).publicKey),
      joiner_seed_hex: toHex(joiner.seed),
      joiner: J,
      joiner_tag_hex: toHex(joinerTag(t.secret, J)),
      join_request: request,
      join_request_signed_bytes: fromUtf8(signedBytes("join", request)),
      slot1_text: await sealJoinRequest(t, 1, joiner, at),
      admin_update: { record: r3.record, hash: r3.hash, prev: r2.hash },
    },
    null,
    2,
  ) + "\n",
);
