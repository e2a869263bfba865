/**
 * `cipherpost room ticket|requests|admit|admin`, and `room join -` with a ticket: bearer tickets
 * for people whose key the admin does not have yet, and the admins the creator names
 * (docs/PROTOCOL.md §9.3, §9.7; docs/rooms.md).
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { escapeControl } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import { Contacts } from "../state/contacts.ts";
import { MAX_TICKET_USES } from "../rooms/ticket.ts";
import { admitJoiner, issueTicket, joinByTicket, listJoinRequests } from "../flows/rooms/ticket.ts";
import { setRoomAdmin } from "../flows/rooms/manage.ts";
import { cipherpostHome } from "./home.ts";
import type { Io } from "./io.ts";
import { NETWORK_HELP, withNetwork, withPassphrase } from "./options.ts";
import { cliUi } from "./large.ts";
import { resolveRecipient } from "./recipient.ts";
import { DURATION_FORMS, parseDuration } from "./duration.ts";
import { namer, runRoom } from "./room_common.ts";

/** The options `room join` passes on to a ticket join. */
export type TicketJoinFlags = Parameters<typeof runRoom>[0] & { json?: boolean };

/**
 * `room join -` with a ticket on standard input: joined (the room id, or `{status, room, name,
 * epoch}`), or asked to join and waiting for an admit (`{status, room, admin, slot}` with
 * `--json`; a line on stderr otherwise).
 */
export async function joinWithTicket(ticket: string, o: TicketJoinFlags, io: Io): Promise<void> {
  const log = (l: string) => io.err(`${l}\n`);
  const ui = cliUi(log);
  const r = await runRoom(o, io, (ctx) => joinByTicket(ctx, ticket, ui)).finally(() => ui.end());
  if (r.status === "joined") {
    if (o.json) {
      io.out(
        `${JSON.stringify({ status: r.status, room: r.room, name: r.name, epoch: r.epoch })}\n`,
      );
    } else io.out(`${r.room}\n`);
    log(`Joined "${escapeControl(r.name ?? "")}" (epoch ${r.epoch})`);
    return;
  }
  if (o.json) {
    io.out(`${JSON.stringify({ status: r.status, room: r.room, admin: r.admin, slot: r.slot })}\n`);
  }
  log(
    `${
      r.status === "requested" ? "Asked to join" : "Your request is out"
    }; the ticket's admin (${r.admin}) admits you with: cipherpost room admit ${r.room} YOUR-KEY`,
  );
  log("Then run the same join again to get the room's key.");
}

/** Register these `room` subcommands on the `room` command group. */
export function registerRoomTickets(room: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);

  withNetwork(withPassphrase(
    room.command("ticket")
      .description("issue a bearer ticket for people whose key you do not have yet")
      .argument("<room>", "the room's id or name")
      .option("--uses <n>", `keys it may admit, 1 to ${MAX_TICKET_USES}`, "1")
      .option("--ttl <duration>", `how long it admits: ${DURATION_FORMS}; at most 30d`, "24h")
      .option("--auto-admit", "admit its requests without asking, whenever you run room requests")
      .option("--json", "print {ticket, room, id, expires_at, uses}"),
  )).addHelpText(
    "after",
    `
The ticket (printed on stdout) is a bearer secret: whoever holds it can ask to join. It holds no
key of the room: a joiner reads nothing until you admit it (room requests, room admit), unless
you gave --auto-admit. Uses and lifetime are enforced by you, when admitting. Give it over a
channel you trust; the joiner passes it on standard input: cipherpost room join - < ticket
${NETWORK_HELP}`,
  ).action(async (roomArg: string, o) => {
    if (!/^[1-9][0-9]?$/.test(o.uses)) {
      throw new CipherpostError("usage", `--uses takes a number from 1 to ${MAX_TICKET_USES}`);
    }
    const ttl = parseDuration(o.ttl);
    const r = await runRoom(o, io, (ctx) =>
      issueTicket(ctx, {
        room: roomArg,
        uses: Number(o.uses),
        ttlSeconds: ttl,
        autoAdmit: o.autoAdmit === true,
      }));
    const expires = new Date(r.expiresAt).toISOString();
    io.out(
      o.json
        ? `${
          JSON.stringify({
            ticket: r.ticket,
            room: r.room,
            id: r.id,
            expires_at: expires,
            uses: r.uses,
          })
        }\n`
        : `${r.ticket}\n`,
    );
    log(`Ticket ${r.id}: ${r.uses} use(s) until ${expires}. It is a secret: share it carefully.`);
    log("They ask to join with: cipherpost room join - (the ticket on standard input)");
  });

  withNetwork(withPassphrase(
    room.command("requests")
      .description("the join requests on your tickets of a room (auto-admit tickets admit them)")
      .argument("<room>", "the room's id or name")
      .option("--json", "one object per request"),
  )).addHelpText("after", NETWORK_HELP).action(async (roomArg: string, o) => {
    const ui = cliUi(log);
    await runRoom(o, io, async (ctx, home) => {
      const r = await listJoinRequests(ctx, roomArg, ui).finally(() => ui.end());
      const name = await namer(home, "");
      for (const q of r.requests) {
        const at = new Date(q.at).toISOString();
        if (o.json) {
          io.out(
            `${
              JSON.stringify({
                key: q.joiner,
                status: q.status,
                ticket: q.ticket,
                slot: q.slot,
                at,
              })
            }\n`,
          );
        } else {
          const n = name(q.joiner);
          io.out(
            `${q.joiner}  ${q.status}  ticket ${q.ticket}  ${at}${
              n === `${q.joiner.slice(0, 8)}…` ? "" : `  ${n}`
            }\n`,
          );
        }
      }
      if (r.refused > 0) log(`warning: ${r.refused} slot(s) hold no valid request (refused)`);
    });
  });

  withNetwork(withPassphrase(
    room.command("admit")
      .description("admit a key that asked to join with one of your tickets (a signed admit)")
      .argument("<room>", "the room's id or name")
      .argument("<key>", "the joiner: a public key or a contact name")
      .option("--json", "print {room, epoch, ticket}"),
  )).addHelpText("after", NETWORK_HELP).action(async (roomArg: string, key: string, o) => {
    const joiner = (await resolveRecipient(key, new Contacts(cipherpostHome()), "KEY")).z32;
    const ui = cliUi(log);
    const r = await runRoom(o, io, (ctx) => admitJoiner(ctx, roomArg, joiner, ui)).finally(() =>
      ui.end()
    );
    if (o.json) {
      io.out(`${JSON.stringify({ room: r.room, epoch: r.epoch, ticket: r.ticket })}\n`);
    }
    log(`Admitted; the room is at epoch ${r.epoch}. They finish with the same room join.`);
  });

  withNetwork(withPassphrase(
    room.command("admin")
      .description("name a member an admin of a room (creator only); --revoke unnames")
      .argument("<room>", "the room's id or name")
      .argument("<key>", "the member: a public key or a contact name")
      .option("--revoke", "unname the admin instead"),
  )).addHelpText("after", NETWORK_HELP).action(async (roomArg: string, key: string, o) => {
    const member = (await resolveRecipient(key, new Contacts(cipherpostHome()), "KEY")).z32;
    const ui = cliUi(log);
    const r = await runRoom(
      o,
      io,
      (ctx) => setRoomAdmin(ctx, roomArg, member, o.revoke !== true, ui),
    ).finally(() => ui.end());
    log(`${o.revoke ? "Unnamed" : "Named"}; the room is at epoch ${r.epoch}`);
  });
}
