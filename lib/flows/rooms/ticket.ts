/**
 * Room tickets (docs/PROTOCOL.md §9.7): an admin issues a bearer ticket; whoever holds it asks
 * to join by a signed request in one of the ticket's DHT slots, sealed to the admin; the admin
 * admits it with a signed `admit` (uses, lifetime and auto-admit enforced here, on the admitting
 * side); the joiner then finds its key record on the admin's homeserver, as an invitee does.
 *
 * @module
 */

import { CipherpostError, signatureError } from "../../util/errors.ts";
import { memberDir } from "../../rooms/names.ts";
import { nextRoster } from "../../rooms/roster.ts";
import { current, findRoom, loadRoom, type RoomState, saveRoom } from "../../rooms/store.ts";
import {
  encodeTicket,
  isOwnRequest,
  JOIN_LABEL,
  MAX_JOIN_TEXT,
  MAX_TICKET_USES,
  openJoinRequest,
  parseTicket,
  sealJoinRequest,
  slotSeed,
  type Ticket,
  ticketId,
} from "../../rooms/ticket.ts";
import { type IssuedTicket, loadTickets, saveTickets } from "../../rooms/ticket_store.ts";
import { publishTxtSlot, readTxtSlot } from "../share/invite.ts";
import type { FlowUi } from "../share/ui.ts";
import { catchUp, fetchEpoch, publishEpoch } from "./epochs.ts";
import { type RoomContext, RoomNet } from "./net.ts";

/** The longest a ticket may live, in seconds (30 days). */
export const MAX_TICKET_TTL_SECONDS = 30 * 24 * 3600;
/** Epochs of the admin's roster folder a joiner looks at for its admission. */
export const ADMISSION_EPOCHS = 16;
/** An expired ticket's requests are still read (to say why they are refused) this long, ms. */
const EXPIRED_READ_MS = 7 * 24 * 3600 * 1000;
/** Tickets of one room whose slots one listing reads at most (newest first). */
const MAX_TICKETS_READ = 32;

/** How to issue a ticket. */
export interface TicketRequest {
  /** The room's id or name. */
  room: string;
  /** Keys it may admit, 1–16 (also its number of request slots). */
  uses: number;
  /** Its lifetime in seconds (at most 30 days). */
  ttlSeconds: number;
  /** Admit requests without asking, when the admin lists them. */
  autoAdmit: boolean;
}

/** An issued ticket. */
export interface IssuedTicketResult {
  /** The ticket string (a bearer secret: give it only to those who may ask to join). */
  ticket: string;
  /** The room's id. */
  room: string;
  /** The ticket id (public). */
  id: string;
  /** Unix ms after which it admits no one. */
  expiresAt: number;
  /** Keys it may admit. */
  uses: number;
}

/**
 * Issue a ticket for `req.room`, of which we must be an admin. It is kept (with its secret) in
 * this home, encrypted, for {@link listJoinRequests} and {@link admitJoiner}.
 *
 * @throws CipherpostError("usage") for uses or a lifetime out of range, ("config") when we are
 *   not an admin, ("not_found") for an unknown room
 */
export async function issueTicket(
  ctx: RoomContext,
  req: TicketRequest,
): Promise<IssuedTicketResult> {
  if (!Number.isInteger(req.uses) || req.uses < 1 || req.uses > MAX_TICKET_USES) {
    throw new CipherpostError("usage", `a ticket has 1 to ${MAX_TICKET_USES} uses`);
  }
  if (
    !Number.isInteger(req.ttlSeconds) || req.ttlSeconds < 1 ||
    req.ttlSeconds > MAX_TICKET_TTL_SECONDS
  ) {
    throw new CipherpostError("usage", "a ticket lives 1 second to 30 days");
  }
  const net = new RoomNet(ctx);
  const st = await findRoom(ctx.state.home, ctx.me, req.room);
  await catchUp(ctx, net, st);
  await saveRoom(ctx.state.home, ctx.me, st);
  if (!isAdmin(st, net.me)) {
    throw new CipherpostError("config", "configuration error: only an admin can issue tickets");
  }
  const secret = crypto.getRandomValues(new Uint8Array(32));
  const now = Date.now();
  const issued: IssuedTicket = {
    room: st.room,
    id: ticketId(secret),
    secret,
    uses: req.uses,
    expiresAt: now + req.ttlSeconds * 1000,
    autoAdmit: req.autoAdmit,
    admitted: [],
    at: now,
  };
  const all = await loadTickets(ctx.state.home, ctx.me);
  all.push(issued);
  await saveTickets(ctx.state.home, ctx.me, all, now);
  const ticket = encodeTicket({
    room: st.room,
    admin: net.me,
    secret,
    slots: req.uses,
    autoAdmit: req.autoAdmit,
  });
  return { ticket, room: st.room, id: issued.id, expiresAt: issued.expiresAt, uses: req.uses };
}

/** What {@link joinByTicket} did. */
export interface TicketJoinResult {
  /**
   * `joined`: admitted and the room stored (or it was already); `requested`: the request was
   * published now; `pending`: it was published before and no admit is there yet.
   */
  status: "joined" | "requested" | "pending";
  /** The room's id. */
  room: string;
  /** z32 of the admin who issued the ticket (who admits). */
  admin: string;
  /** The room's name (from the signed roster), once joined. */
  name?: string;
  /** The newest epoch held, once joined. */
  epoch?: number;
  /** The request's slot, when requested or pending. */
  slot?: number;
}

/**
 * Join with a ticket (§9.7): when the issuing admin has admitted us, fetch and check our key
 * record and its roster update from the admin's homeserver and store the room; otherwise publish
 * our signed join request in the ticket's first free slot (once). Run again to finish.
 *
 * @throws CipherpostError("usage") for a malformed ticket or our own, ("not_found") when every
 *   slot holds another's request (used up), ("signature") when what the admin's homeserver holds
 *   for us does not verify
 */
export async function joinByTicket(
  ctx: RoomContext,
  ticketText: string,
  ui: FlowUi,
): Promise<TicketJoinResult> {
  const t = parseTicket(ticketText);
  const net = new RoomNet(ctx);
  if (t.admin === net.me) {
    throw new CipherpostError("usage", "that ticket is your own: give it to whoever joins");
  }
  const have = await loadRoom(ctx.state.home, ctx.me, t.room);
  if (have) {
    const cur = current(have);
    return { status: "joined", room: t.room, admin: t.admin, name: have.name, epoch: cur.epoch };
  }
  ui.status("Looking for an admission on the admin's homeserver...");
  const st = await findAdmission(ctx, net, t);
  if (st) {
    try {
      await catchUp(ctx, net, st);
    } catch { /* the next command catches up */ }
    await saveRoom(ctx.state.home, ctx.me, st);
    return {
      status: "joined",
      room: st.room,
      admin: t.admin,
      name: st.name,
      epoch: current(st).epoch,
    };
  }
  ui.status("Asking to join (a signed request in the ticket's DHT slot)...");
  for (let i = 0; i < t.slots; i++) {
    const seed = slotSeed(t, i);
    const text = await readTxtSlot(ctx.transport, seed, JOIN_LABEL, MAX_JOIN_TEXT);
    if (text !== null) {
      if (isOwnRequest(t.secret, net.me, text)) {
        return { status: "pending", room: t.room, admin: t.admin, slot: i };
      }
      continue;
    }
    await publishTxtSlot(
      ctx.transport,
      seed,
      await sealJoinRequest(t, i, ctx.me, Date.now()),
      JOIN_LABEL,
    );
    return { status: "requested", room: t.room, admin: t.admin, slot: i };
  }
  throw new CipherpostError("not_found", "that ticket is used up: every slot holds a request");
}

/** Our admission by the ticket's admin: the newest epoch it signed that has a key for us. */
async function findAdmission(
  ctx: RoomContext,
  net: RoomNet,
  t: Ticket,
): Promise<RoomState | null> {
  const client = await net.reader(t.admin);
  let entries;
  try {
    entries = await client.list(`${memberDir(t.room, t.admin)}roster/`, {
      reverse: true,
      limit: ADMISSION_EPOCHS,
      shallow: true,
    });
  } catch (e) {
    if (e instanceof CipherpostError && e.kind === "not_found") return null;
    throw e;
  }
  const epochs = entries.slice(0, ADMISSION_EPOCHS)
    .map((e) => /\/roster\/([0-9]{10})$/.exec(e.path))
    .filter((m) => m !== null)
    .map((m) => Number(m[1]))
    .filter((n) => n >= 1);
  for (const epoch of epochs) {
    const held = await fetchEpoch(ctx, net, t.room, epoch, t.admin);
    if (!held) continue;
    const r = held.roster.roster;
    if (r.room !== t.room || !r.admins.includes(t.admin) || !r.members.includes(net.me)) {
      throw signatureError("roster does not match the ticket");
    }
    return {
      room: r.room,
      name: r.name,
      creator: r.creator,
      nonce: r.nonce,
      epochs: [held],
      seq: {},
      hlc: null,
    };
  }
  return null;
}

/** A join request as its admin sees it. */
export interface SeenRequest {
  /** z32 of whoever asks (its signature verified). */
  joiner: string;
  /** The ticket id it came with. */
  ticket: string;
  /** Its slot. */
  slot: number;
  /** When the joiner signed it (its clock), Unix ms. */
  at: number;
  /**
   * `pending`: waits for an admit; `admitted`: admitted now (auto-admit); `member`: already a
   * member; `expired`: the ticket expired; `used_up`: the ticket admitted its keys already.
   */
  status: "pending" | "admitted" | "member" | "expired" | "used_up";
}

/** What {@link listJoinRequests} found. */
export interface JoinRequests {
  /** The room's id. */
  room: string;
  /** The requests, by ticket (newest first) and slot. */
  requests: SeenRequest[];
  /** Slots holding something that is not a valid request for them (reported, not shown). */
  refused: number;
}

/**
 * The join requests in the slots of our tickets of `room` (live ones, and those expired in the
 * last 7 days, to say why they are refused). Requests on an auto-admit ticket with uses left are
 * admitted at once (one epoch each).
 */
export async function listJoinRequests(
  ctx: RoomContext,
  room: string,
  ui: FlowUi,
): Promise<JoinRequests> {
  const net = new RoomNet(ctx);
  const st = await findRoom(ctx.state.home, ctx.me, room);
  await catchUp(ctx, net, st);
  await saveRoom(ctx.state.home, ctx.me, st);
  const tickets = await loadTickets(ctx.state.home, ctx.me);
  const seen = await readRequests(ctx, st, tickets, ui);
  const out: SeenRequest[] = [];
  for (const s of seen.found) {
    let status = statusOf(st, s.t, s.req.joiner);
    // auto-admit only while we are still an admin (otherwise the request waits, listed)
    if (status === "pending" && s.t.autoAdmit && isAdmin(st, net.me)) {
      await admit(ctx, net, st, s.t, s.req.joiner, ui);
      await saveTickets(ctx.state.home, ctx.me, tickets);
      status = "admitted";
    }
    out.push({ ...s.req, status });
  }
  return { room: st.room, requests: out, refused: seen.refused };
}

/** What {@link admitJoiner} did. */
export interface AdmitResult {
  /** The room's id. */
  room: string;
  /** The epoch the admit opened. */
  epoch: number;
  /** The ticket id whose use it took. */
  ticket: string;
}

/**
 * Admit `joiner` (z32), who asked with one of our tickets of `room`: a signed `admit` update and
 * its key records (§9.3); the ticket loses one use.
 *
 * @throws CipherpostError("not_found") when no ticket of ours holds a request from that key,
 *   ("expired") when its ticket has expired or is used up, ("config") when it is a member
 *   already or we are no longer an admin
 */
export async function admitJoiner(
  ctx: RoomContext,
  room: string,
  joiner: string,
  ui: FlowUi,
): Promise<AdmitResult> {
  const net = new RoomNet(ctx);
  const st = await findRoom(ctx.state.home, ctx.me, room);
  await catchUp(ctx, net, st);
  await saveRoom(ctx.state.home, ctx.me, st);
  if (!isAdmin(st, net.me)) {
    throw new CipherpostError("config", "configuration error: only an admin can admit");
  }
  const tickets = await loadTickets(ctx.state.home, ctx.me);
  const mine = (await readRequests(ctx, st, tickets, ui)).found.filter((s) =>
    s.req.joiner === joiner
  );
  if (mine.length === 0) {
    throw new CipherpostError(
      "not_found",
      "no join request from that key on a ticket of yours for this room",
    );
  }
  const statuses = mine.map((s) => statusOf(st, s.t, joiner));
  const i = statuses.indexOf("pending");
  if (i < 0) {
    if (statuses.includes("member")) {
      throw new CipherpostError("config", "configuration error: already a member of the room");
    }
    throw new CipherpostError(
      "expired",
      statuses.includes("used_up")
        ? "that request's ticket is used up"
        : "that request's ticket has expired",
    );
  }
  const epoch = await admit(ctx, net, st, mine[i].t, joiner, ui);
  await saveTickets(ctx.state.home, ctx.me, tickets);
  return { room: st.room, epoch, ticket: mine[i].t.id };
}

function isAdmin(st: RoomState, me: string): boolean {
  return current(st).roster.roster.admins.includes(me);
}

function statusOf(st: RoomState, t: IssuedTicket, joiner: string): SeenRequest["status"] {
  if (current(st).roster.roster.members.includes(joiner)) return "member";
  if (Date.now() >= t.expiresAt) return "expired";
  if (t.admitted.length >= t.uses) return "used_up";
  return "pending";
}

async function admit(
  ctx: RoomContext,
  net: RoomNet,
  st: RoomState,
  t: IssuedTicket,
  joiner: string,
  ui: FlowUi,
): Promise<number> {
  ui.status("Admitting (new epoch key)...");
  const held = await publishEpoch(
    ctx,
    net,
    nextRoster(current(st).roster, "admit", [joiner], net.me, Date.now()),
  );
  st.epochs.push(held);
  await saveRoom(ctx.state.home, ctx.me, st);
  t.admitted.push(joiner);
  return held.epoch;
}

async function readRequests(
  ctx: RoomContext,
  st: RoomState,
  tickets: IssuedTicket[],
  ui: FlowUi,
) {
  const now = Date.now();
  const ours = tickets
    .filter((t) => t.room === st.room && t.expiresAt + EXPIRED_READ_MS > now)
    .sort((a, b) => b.at - a.at)
    .slice(0, MAX_TICKETS_READ);
  const found: { t: IssuedTicket; req: Omit<SeenRequest, "status"> }[] = [];
  let refused = 0;
  ui.status(`Reading the request slots of ${ours.length} ticket(s)...`);
  for (const t of ours) {
    for (let slot = 0; slot < t.uses; slot++) {
      const text = await readTxtSlot(
        ctx.transport,
        slotSeed({ room: st.room, secret: t.secret }, slot),
        JOIN_LABEL,
        MAX_JOIN_TEXT,
      );
      if (text === null) continue;
      try {
        const r = await openJoinRequest(t.secret, st.room, slot, ctx.me, text);
        found.push({ t, req: { joiner: r.joiner, ticket: r.ticket, slot, at: r.at } });
      } catch (e) {
        if (!(e instanceof CipherpostError)) throw e;
        refused++;
      }
    }
  }
  return { found, refused };
}
