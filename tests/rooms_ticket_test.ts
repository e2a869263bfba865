// Room tickets and named admins (docs/PROTOCOL.md §9.3, §9.7): the ticket codec and the sealed
// join request, then the real CLI as four people on a local testnet and the stand-in homeserver:
// create, invite one by key, one by ticket + admit; messages from each reach the others; a
// ticket past its uses or lifetime is refused; a request without admit reads nothing; an admin
// named by the creator admits; a non-admin's admit is refused (by the CLI and by every reader).
import assert from "node:assert/strict";
import { testTransport, tmpDir } from "./_helpers.ts";
import { as, ok, type Person, person, stateOf, tail, writerFor } from "./_rooms.ts";
import { startTestnet } from "../lib/testing/testnet.ts";
import { type HomeserverStandIn, startHomeserver } from "../lib/testing/homeserver.ts";
import { generateKeypair, keypairFromSeed } from "../lib/crypto/keys.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";
import { b64decode, b64encode, fromHex, fromUtf8, toHex } from "../lib/util/encoding.ts";
import { keyPath, rosterPath } from "../lib/rooms/names.ts";
import {
  checkFollows,
  createRoster,
  nextRoster,
  openRoster,
  signRoster,
} from "../lib/rooms/roster.ts";
import { recordBytes, signedBytes, signRecord } from "../lib/rooms/records.ts";
import { newEpochKey, sealKeyRecord, sealRoster } from "../lib/rooms/seal.ts";
import {
  encodeTicket,
  isOwnRequest,
  joinerTag,
  openJoinRequest,
  parseTicket,
  sealJoinRequest,
  slotSeed,
  type Ticket,
  ticketId,
} from "../lib/rooms/ticket.ts";
import { loadRoom } from "../lib/rooms/store.ts";

const vec = (name: string) =>
  JSON.parse(Deno.readTextFileSync(new URL(`./vectors/rooms/${name}`, import.meta.url)));

// ---------------------------------------------------------------------------------------------
// Pure parts

Deno.test("ticket vectors: ticket string, id, slots, tag, join request, admin update (docs/PROTOCOL.md §9.7)", async () => {
  const v = vec("tickets.json");
  const admin = keypairFromSeed(fromHex(v.admin_seed_hex));
  const joiner = keypairFromSeed(fromHex(v.joiner_seed_hex));
  const t: Ticket = {
    room: v.room,
    admin: encodeZ32(admin.publicKey),
    secret: fromHex(v.secret_hex),
    slots: v.slots,
    autoAdmit: v.auto_admit,
  };
  assert.deepStrictEqual(t.admin, v.admin);
  assert.deepStrictEqual(encodeTicket(t), v.ticket);
  assert.deepStrictEqual(encodeTicket({ ...t, autoAdmit: true }), v.ticket_auto_admit);
  assert.deepStrictEqual(parseTicket(v.ticket), t);
  assert.deepStrictEqual(ticketId(t.secret), v.ticket_id);
  assert.deepStrictEqual(toHex(slotSeed(t, 0)), v.slot0_seed_hex);
  assert.deepStrictEqual(encodeZ32(keypairFromSeed(slotSeed(t, 0)).publicKey), v.slot0_key);
  assert.deepStrictEqual(encodeZ32(keypairFromSeed(slotSeed(t, 1)).publicKey), v.slot1_key);
  assert.deepStrictEqual(encodeZ32(joiner.publicKey), v.joiner);
  assert.deepStrictEqual(toHex(joinerTag(t.secret, v.joiner)), v.joiner_tag_hex);
  const { sig: _sig, ...unsigned } = v.join_request;
  assert.deepStrictEqual(signRecord("join", unsigned, joiner.seed), v.join_request);
  assert.deepStrictEqual(
    fromUtf8(signedBytes("join", v.join_request)),
    v.join_request_signed_bytes,
  );
  const opened = await openJoinRequest(t.secret, t.room, 1, admin, v.slot1_text);
  assert.deepStrictEqual(opened.joiner, v.joiner);
  assert.deepStrictEqual(opened.at, v.join_request.at);
  assert(isOwnRequest(t.secret, v.joiner, v.slot1_text));
  // the admin update follows roster.json's epoch 2 and names bob
  const r = vec("roster.json");
  const r2 = openRoster(recordBytes(r.epoch2.record));
  assert.deepStrictEqual(r2.hash, v.admin_update.prev);
  const r3 = signRoster(
    nextRoster(
      r2,
      "admin",
      [r2.roster.members.find((k) => k !== v.admin)!],
      v.admin,
      1_800_000_180_000,
    ),
    admin.seed,
  );
  assert.deepStrictEqual(r3.record, v.admin_update.record);
  assert.deepStrictEqual(r3.hash, v.admin_update.hash);
  checkFollows(r2, openRoster(recordBytes(v.admin_update.record)));
});

Deno.test("room tickets: the string round-trips; malformed ones are refused; requests are sealed to the admin and bound to room, ticket and slot", async () => {
  const admin = keypairFromSeed(new Uint8Array(32).fill(0x41));
  const joiner = keypairFromSeed(new Uint8Array(32).fill(0x42));
  const t: Ticket = {
    room: "00112233445566778899aabbccddeeff",
    admin: encodeZ32(admin.publicKey),
    secret: new Uint8Array(32).fill(7),
    slots: 3,
    autoAdmit: true,
  };
  const s = encodeTicket(t);
  assert.match(s, /^cipherpost-ticket:[ybndrfg8ejkmcpqxot1uwisza345h769]{133}$/);
  assert.deepStrictEqual(parseTicket(` ${s}\n`), t);
  // version, flags, slots, length, alphabet
  const body = s.slice("cipherpost-ticket:".length);
  const bad = [
    "cipherpost-ticket:" + body.slice(0, -1),
    "cipherpost-ticket:" + body + "y",
    "cipherpost-ticket:" + body.toUpperCase(),
    "cipherpost://" + body,
    encodeTicket({ ...t, slots: 1 }).replace(/:./, ":o"), // version byte 2
  ];
  for (const b of bad) assert.throws(() => parseTicket(b), /not a room ticket/, b);
  assert.throws(() => encodeTicket({ ...t, slots: 17 }), /not a room ticket/);
  assert.notDeepStrictEqual(slotSeed(t, 0), slotSeed(t, 1));
  assert.match(ticketId(t.secret), /^[0-9a-f]{32}$/);

  const text = await sealJoinRequest(t, 1, joiner, 1_800_000_000_000);
  assert(text.length <= 1000, `slot text ${text.length} characters`);
  const jz = encodeZ32(joiner.publicKey);
  assert(isOwnRequest(t.secret, jz, text));
  assert(!isOwnRequest(t.secret, t.admin, text));
  const r = await openJoinRequest(t.secret, t.room, 1, admin, text);
  assert.deepStrictEqual(r, {
    room: t.room,
    ticket: ticketId(t.secret),
    slot: 1,
    joiner: jz,
    at: 1_800_000_000_000,
  });
  // another slot, another ticket, another room, not the admin, a flipped byte
  await assert.rejects(() => openJoinRequest(t.secret, t.room, 2, admin, text), /another room/);
  await assert.rejects(
    () => openJoinRequest(new Uint8Array(32).fill(8), t.room, 1, admin, text),
    /another room/,
  );
  await assert.rejects(
    () => openJoinRequest(t.secret, "ffeeddccbbaa99887766554433221100", 1, admin, text),
    /another room/,
  );
  await assert.rejects(() => openJoinRequest(t.secret, t.room, 1, joiner, text), /opened/);
  const raw = b64decode(text);
  raw[raw.length - 5] ^= 1;
  await assert.rejects(() => openJoinRequest(t.secret, t.room, 1, admin, b64encode(raw)));
});

Deno.test("room records: only the creator names admins; a named admin's admit follows, a non-admin's does not", () => {
  const a = generateKeypair(), b = generateKeypair(), c = generateKeypair(), d = generateKeypair();
  const [A, B, C, D] = [a, b, c, d].map((k) => encodeZ32(k.publicKey));
  const nonce = "00112233445566778899aabbccddeeff";
  const r1 = signRoster(createRoster({ creator: A, nonce, name: "x", at: 1 }), a.seed);
  const r2 = signRoster(nextRoster(r1, "admit", [B, C], A, 2), a.seed);
  const r3 = signRoster(nextRoster(r2, "admin", [B], A, 3), a.seed);
  checkFollows(r2, r3);
  assert.deepStrictEqual(r3.roster.admins, [A, B].sort());
  assert.deepStrictEqual(r3.roster.members, r2.roster.members);
  // b (named) admits d; c (not named) cannot
  const r4 = signRoster(nextRoster(r3, "admit", [D], B, 4), b.seed);
  checkFollows(r3, r4);
  assert.throws(() => nextRoster(r3, "admit", [D], C, 4), /only an admin/);
  const byC = signRoster({ ...nextRoster(r3, "admit", [D], A, 4), signer: C }, c.seed);
  assert.throws(() => checkFollows(r3, byC), /non-admin/);
  // only the creator names or unnames; the creator stays
  assert.throws(() => nextRoster(r3, "admin", [C], B, 4), /creator/);
  const byB = signRoster({ ...nextRoster(r3, "admin", [C], A, 4), signer: B }, b.seed);
  assert.throws(() => checkFollows(r3, byB), /only the creator/);
  assert.throws(() => nextRoster(r3, "unadmin", [A], A, 4), /creator/);
  // an admit that slips in an admin change
  const sneaky = signRoster(
    { ...nextRoster(r3, "admit", [D], B, 4), admins: [A, B, D].sort() },
    b.seed,
  );
  assert.throws(() => checkFollows(r3, sneaky), /changes the admins/);
  // unnamed: b's admits are refused again
  const r5 = signRoster(nextRoster(r4, "unadmin", [B], A, 5), a.seed);
  checkFollows(r4, r5);
  assert.deepStrictEqual(r5.roster.admins, [A]);
  assert.throws(() => nextRoster(r5, "remove", [C], B, 6), /only an admin/);
});

// ---------------------------------------------------------------------------------------------
// Through the network

/** `room join -` with `ticket` on stdin, as `p`, `--json`. */
async function joinTicket(p: Person, net: Parameters<typeof as>[1], ticket: string) {
  const r = await as(p, net, ["room", "join", "-", "--json"], `${ticket}\n`);
  return { ...r, json: r.code === 0 ? JSON.parse(r.stdout) : null };
}

Deno.test({
  name: "room tickets: invite by key, ticket + admit, named admins, refused tickets and admits",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const net = await startTestnet({ nodes: 12 });
    const tr = testTransport(net);
    let hs: HomeserverStandIn | null = null;
    const base = await tmpDir("cp-rooms-ticket-");
    try {
      hs = await startHomeserver({ signupMode: "open", transport: tr });
      const alice = await person(base, "alice", 0x1a);
      const bob = await person(base, "bob", 0x1b);
      const carol = await person(base, "carol", 0x1c);
      const dave = await person(base, "dave", 0x1d);
      for (const p of [alice, bob, carol, dave]) {
        await ok(p, net, ["homeserver", "signup", hs.key]);
      }
      await ok(bob, net, ["contacts", "add", "alice", alice.z32]);

      let room = "";
      await t.step("create; bob by key; carol by ticket: nothing until admitted", async () => {
        room = JSON.parse(await ok(alice, net, ["room", "create", "ops", "--json"])).room;
        const uri = (await ok(alice, net, ["room", "invite", "ops", bob.z32])).trim();
        await ok(bob, net, ["room", "join", uri, "--accept", "alice"]);

        const tk = JSON.parse(await ok(alice, net, ["room", "ticket", "ops", "--json"]));
        assert.match(tk.ticket, /^cipherpost-ticket:/);
        assert.deepStrictEqual(tk.room, room);
        assert.deepStrictEqual(tk.uses, 1);
        // the ticket is a secret: refused from argv, not echoed
        const argv = await as(carol, net, ["room", "join", tk.ticket]);
        assert.deepStrictEqual(argv.code, 2);
        assert.match(argv.stderr, /standard input/);
        assert(!argv.stderr.includes(tk.ticket.slice(20)));

        const asked = await joinTicket(carol, net, tk.ticket);
        assert.deepStrictEqual(asked.code, 0, asked.stderr);
        assert.deepStrictEqual(asked.json.status, "requested");
        assert.deepStrictEqual(asked.json.admin, alice.z32);
        // asking again finds the same request; still nothing to read
        const again = await joinTicket(carol, net, tk.ticket);
        assert.deepStrictEqual(again.json.status, "pending");
        assert.deepStrictEqual(await loadRoom(carol.home, carol.kp, room), null);
        const reads = await as(carol, net, ["room", "tail", room]);
        assert.deepStrictEqual(reads.code, 5);
        // no epoch of alice's holds a key for carol
        const w = await writerFor(alice, net, base);
        for (const e of (await stateOf(alice, room)).epochs) {
          assert.deepStrictEqual(await w.head(keyPath(room, alice.z32, e.epoch, carol.z32)), null);
        }
        // a second joiner finds the one slot taken: used up
        const full = await joinTicket(dave, net, tk.ticket);
        assert.deepStrictEqual(full.code, 5, full.stderr);
        assert.match(full.stderr, /used up/);

        // the admin sees the request, signed by carol's key
        const reqs = (await ok(alice, net, ["room", "requests", "ops", "--json"]))
          .trim().split("\n").map((l) => JSON.parse(l));
        assert.deepStrictEqual(reqs.map((r) => [r.key, r.status]), [[carol.z32, "pending"]]);
        assert.deepStrictEqual(reqs[0].ticket, tk.id);
        // a non-admin cannot issue tickets nor admit
        const bt = await as(bob, net, ["room", "ticket", "ops"]);
        assert.deepStrictEqual(bt.code, 1);
        assert.match(bt.stderr, /only an admin/);
        const ba = await as(bob, net, ["room", "admit", "ops", carol.z32]);
        assert.deepStrictEqual(ba.code, 1);
        assert.match(ba.stderr, /only an admin/);

        const adm = JSON.parse(await ok(alice, net, ["room", "admit", "ops", carol.z32, "--json"]));
        assert.deepStrictEqual(adm.ticket, tk.id);
        const joined = await joinTicket(carol, net, tk.ticket);
        assert.deepStrictEqual(joined.json.status, "joined", joined.stderr);
        assert.deepStrictEqual(joined.json.room, room);
        assert.deepStrictEqual(joined.json.name, "ops");
        // the ticket's one use is spent
        const twice = await as(alice, net, ["room", "admit", "ops", carol.z32]);
        assert.deepStrictEqual(twice.code, 1);
        assert.match(twice.stderr, /already a member/);
        const members = (await ok(bob, net, ["room", "members", "ops", "--json"]))
          .trim().split("\n").map((l) => JSON.parse(l).key).sort();
        assert.deepStrictEqual(members, [alice.z32, bob.z32, carol.z32].sort());
      });

      await t.step("messages from each reach the others", async () => {
        await ok(alice, net, ["room", "send", "ops", "from alice"]);
        await ok(bob, net, ["room", "send", "ops", "from bob"]);
        await ok(carol, net, ["room", "send", room, "from carol"]);
        for (const p of [alice, bob, carol]) {
          const { msgs } = await tail(p, net, "ops");
          assert.deepStrictEqual(msgs.map((m) => [m.author, m.body]), [
            [alice.z32, "from alice"],
            [bob.z32, "from bob"],
            [carol.z32, "from carol"],
          ]);
        }
      });

      await t.step("a ticket past its lifetime admits no one", async () => {
        const tk = JSON.parse(
          await ok(alice, net, ["room", "ticket", "ops", "--ttl", "1s", "--json"]),
        );
        const asked = await joinTicket(dave, net, tk.ticket);
        assert.deepStrictEqual(asked.json.status, "requested", asked.stderr);
        await new Promise((r) => setTimeout(r, 1100));
        const late = await as(alice, net, ["room", "admit", "ops", dave.z32]);
        assert.deepStrictEqual(late.code, 2, late.stderr);
        assert.match(late.stderr, /expired/);
        const reqs = (await ok(alice, net, ["room", "requests", "ops", "--json"]))
          .trim().split("\n").map((l) => JSON.parse(l));
        assert(reqs.some((r) => r.key === dave.z32 && r.status === "expired"));
        const still = await joinTicket(dave, net, tk.ticket);
        assert.deepStrictEqual(still.json.status, "pending");
        assert.deepStrictEqual(await loadRoom(dave.home, dave.kp, room), null);
      });

      await t.step("an admin named by the creator admits (auto-admit ticket)", async () => {
        // only the creator names admins
        const no = await as(bob, net, ["room", "admin", "ops", carol.z32]);
        assert.deepStrictEqual(no.code, 1);
        assert.match(no.stderr, /only an admin/);
        await ok(alice, net, ["room", "admin", "ops", bob.z32]);
        const roles = (await ok(carol, net, ["room", "members", "ops", "--json"]))
          .trim().split("\n").map((l) => JSON.parse(l));
        assert.deepStrictEqual(roles.find((r) => r.key === bob.z32).role, "admin");
        const tk = JSON.parse(
          await ok(bob, net, ["room", "ticket", "ops", "--auto-admit", "--uses", "2", "--json"]),
        );
        assert.deepStrictEqual(parseTicket(tk.ticket).autoAdmit, true);
        assert.deepStrictEqual(parseTicket(tk.ticket).admin, bob.z32);
        assert.deepStrictEqual((await joinTicket(dave, net, tk.ticket)).json.status, "requested");
        const reqs = (await ok(bob, net, ["room", "requests", "ops", "--json"]))
          .trim().split("\n").map((l) => JSON.parse(l));
        assert.deepStrictEqual(reqs.map((r) => [r.key, r.status]), [[dave.z32, "admitted"]]);
        const j = await joinTicket(dave, net, tk.ticket);
        assert.deepStrictEqual(j.json.status, "joined", j.stderr);
        await ok(dave, net, ["room", "send", "ops", "from dave"]);
        for (const p of [alice, carol, dave]) {
          const { msgs } = await tail(p, net, "ops");
          assert.deepStrictEqual(msgs.at(-1).body, "from dave");
          assert.deepStrictEqual(msgs.at(-1).author, dave.z32);
        }
        // dave holds the epochs from his admission on (bob's admit), not before
        const st = await stateOf(dave, room);
        assert.deepStrictEqual(st.epochs[0].roster.roster.signer, bob.z32);
        assert.deepStrictEqual(st.epochs[0].roster.roster.subject, [dave.z32]);
      });

      await t.step("a non-admin's admit is refused by every reader", async () => {
        await ok(alice, net, ["room", "admin", "ops", bob.z32, "--revoke"]);
        const bt = await as(bob, net, ["room", "ticket", "ops"]);
        assert.deepStrictEqual(bt.code, 1);
        assert.match(bt.stderr, /only an admin/);
        // carol (never an admin) writes an admit of a stranger into her own folder, as a
        // modified client could: key records and the update, all well signed by her
        const stranger = encodeZ32(generateKeypair().publicKey);
        await ok(carol, net, ["room", "members", "ops"]); // carol at the newest epoch
        const st = await stateOf(carol, room);
        const cur = st.epochs.at(-1)!;
        const forged = signRoster(
          {
            ...nextRoster(cur.roster, "admit", [stranger], alice.z32, Date.now()),
            signer: carol.z32,
          },
          carol.seed,
        );
        assert.throws(() => checkFollows(cur.roster, forged), /non-admin/);
        const key = newEpochKey();
        const w = await writerFor(carol, net, base);
        for (const m of forged.roster.members) {
          await w.put(
            keyPath(room, carol.z32, forged.roster.epoch, m),
            await sealKeyRecord({
              room,
              epoch: forged.roster.epoch,
              member: m,
              key,
              roster: forged.hash,
              signer: carol.z32,
            }, carol.seed),
          );
        }
        await w.put(
          rosterPath(room, carol.z32, forged.roster.epoch),
          await sealRoster(forged, key),
        );
        for (const p of [alice, bob, dave]) {
          const rows = (await ok(p, net, ["room", "members", "ops", "--json"]))
            .trim().split("\n").map((l) => JSON.parse(l));
          assert(!rows.some((r) => r.key === stranger), "the forged admit is not followed");
          assert.deepStrictEqual(rows.length, 4);
          assert.deepStrictEqual(rows[0].epoch, cur.epoch);
        }
        // and the room goes on at the real epoch
        await ok(alice, net, ["room", "send", "ops", "still fine"]);
        const { msgs } = await tail(dave, net, "ops");
        assert.deepStrictEqual(msgs.at(-1).body, "still fine");
      });
    } finally {
      await hs?.close();
      await tr.close();
      await net.close();
      await Deno.remove(base, { recursive: true }).catch(() => {});
    }
  },
});
