/**
 * File drops (docs/PROTOCOL.md §9.8): `room drop` sends a file as the parts of a large share on
 * our homeserver and posts its pointer as a signed `file_drop` message encrypted to the room's
 * epoch; `room files` lists the verified drops; `room fetch` fetches one through the large
 * receive's own stages (`fetchLarge`: part hashes, authenticated decryption, exact lengths, one
 * rename). Sensitive paths are refused unless the caller allows them explicitly.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { endpointOf } from "../../homeserver/discovery.ts";
import { homeserverHttpOf } from "../../homeserver/endpoint_policy.ts";
import { partCount } from "../../protocol/large_manifest.ts";
import { type Drop, dropBody, dropOf, dropPartSize, MAX_DROP_PARTS } from "../../rooms/drops.ts";
import { order } from "../../rooms/order.ts";
import { escapeControl, hasUnsafeText, utf8 } from "../../util/encoding.ts";
import { CipherpostError } from "../../util/errors.ts";
import { sensitivePathReason } from "../../util/sensitive_paths.ts";
import { fetchLarge, type LargeOutput, refuseExisting } from "../large/receive.ts";
import { sendLarge } from "../large/send.ts";
import type { FlowUi } from "../share/ui.ts";
import { type RoomContext, RoomNet } from "./net.ts";
import { type RoomProblem, RoomReader } from "./read.ts";
import { openForPosting, sendToRoom } from "./send.ts";

/** What to drop, and how. */
export interface DropRequest {
  /** The file to drop (a regular file; relative to the working folder). */
  path: string;
  /**
   * Drop it even when its path is a sensitive one (key folders, credential files, the
   * cipherpost home). Only a human's explicit choice should set this, never an agent's.
   */
  allowSensitive?: boolean;
  /** Plaintext part size (tests); default {@link dropPartSize}. */
  partSize?: number;
  /** Web Workers encrypting parts; 0 (the default) runs them here. */
  workers?: number;
}

/** What was dropped. */
export interface DropResult {
  /** The room's id. */
  room: string;
  /** The drop id (the blob folder's name, 32 hex). */
  id: string;
  /** The file's name as posted. */
  name: string;
  /** The file's size in bytes. */
  size: number;
  /** Parts on the homeserver. */
  parts: number;
  /** Parts this run uploaded (a re-run of an interrupted drop uploads only the rest). */
  uploaded: number;
}

function absolute(p: string): string {
  return p.startsWith("/") ? p : `${Deno.cwd()}/${p}`;
}

/**
 * Refuse `path` (as given and as resolved) when it is sensitive (PROTOCOL §9.8): the table of
 * {@link sensitivePathReason}, and the cipherpost home `home`. Returns the real path.
 *
 * @throws usage (a sensitive path), io (unreadable)
 */
export async function checkDropPath(
  path: string,
  home: string,
  allowSensitive = false,
): Promise<string> {
  const given = absolute(path);
  const homes = [absolute(home)];
  try {
    homes.push(await Deno.realPath(home));
  } catch { /* no home yet */ }
  const refuse = (why: string | null) => {
    if (why && !allowSensitive) {
      throw new CipherpostError(
        "usage",
        `refusing to drop ${escapeControl(path)}: ${why} (it may hold keys or secrets)`,
        { step: "allow_sensitive" },
      );
    }
  };
  refuse(sensitivePathReason(given, homes)); // as written, even when it cannot be read
  let real: string;
  try {
    real = await Deno.realPath(given);
  } catch {
    throw new CipherpostError("io", `io error: cannot read ${escapeControl(path)}`);
  }
  refuse(sensitivePathReason(real, homes)); // and where its symbolic links lead
  return real;
}

/**
 * Drop the file `req.path` into `room` (id or name): its parts go to our homeserver as a large
 * share's (§5), then its pointer is posted as a signed `file_drop` message to the room's newest
 * epoch. Resumable: the same drop run again uploads only what is missing.
 *
 * @throws usage (a sensitive path, not a regular file), too_large, io, config (not a member),
 *   homeserver and network errors
 */
export async function dropFile(
  ctx: RoomContext,
  room: string,
  req: DropRequest,
  ui: FlowUi,
): Promise<DropResult> {
  const real = await checkDropPath(req.path, ctx.state.home, req.allowSensitive === true);
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(real);
  } catch {
    throw new CipherpostError("io", `io error: cannot read ${escapeControl(req.path)}`);
  }
  if (!st.isFile) {
    throw new CipherpostError(
      "usage",
      `${escapeControl(req.path)} is not a regular file: a drop is one file`,
    );
  }
  const partSize = req.partSize ?? dropPartSize(st.size);
  if (partCount(st.size, partSize) > MAX_DROP_PARTS) {
    throw new CipherpostError("too_large", `file too large for a drop: ${st.size} bytes`);
  }
  // refused before any upload when we may not post (removed, not a member)
  const roomState = await openForPosting(ctx, new RoomNet(ctx), room);
  const r = await sendLarge(ctx, {
    recipient: null,
    purpose: "",
    source: { kind: "path", path: real },
    ttlSeconds: 0n,
    pin: null,
    burn: false,
    partSize,
    workers: req.workers,
    announce: {
      tag: `room:${roomState.room}`,
      publish: async (pointer) => {
        await sendToRoom(ctx, roomState.room, dropBody(pointer), "file_drop");
        return {
          uri: `${roomState.room}/${pointer.blobId}`,
          shareRef: pointer.blobId,
          expiresAt: 0,
          packets: 0,
        };
      },
    },
  }, ui);
  const name = real.slice(real.lastIndexOf("/") + 1);
  return {
    room: roomState.room,
    id: r.shareRef,
    name,
    size: r.size,
    parts: r.parts,
    uploaded: r.uploaded,
  };
}

/**
 * The verified drops of `room` (id or name), in the room's order, and what the read refused or
 * found missing. Drops whose body is not a valid file pointer are counted in `unreadable`.
 */
export async function listDrops(
  ctx: RoomContext,
  room: string,
  ui?: FlowUi,
): Promise<{ room: string; drops: Drop[]; unreadable: number; problems: RoomProblem[] }> {
  const reader = await RoomReader.open(ctx, room, ui);
  const { problems } = await reader.scan();
  const drops: Drop[] = [];
  let unreadable = 0;
  for (const p of order(reader.messages, Date.now())) {
    if (p.message.kind !== "file_drop") continue;
    const d = dropOf(p.message);
    if (d) drops.push(d);
    else unreadable++;
  }
  return { room: reader.st.room, drops, unreadable, problems };
}

/** The shortest drop id prefix {@link fetchDrop} takes. */
export const MIN_DROP_PREFIX = 8;

/** A resume record of a drop's fetch is swept after this long (a drop has no expiry). */
const FETCH_RECORD_MS = 30 * 24 * 3600_000;

/** A drop's name as a default file name, or null when it is not a plain name (§9.8). */
export function plainDropName(name: string): string | null {
  if (
    name === "" || name.startsWith(".") || name.includes("/") || name.includes("\\") ||
    hasUnsafeText(name) || utf8(name).length > 255
  ) return null;
  return name;
}

/**
 * Fetch drop `id` (the drop id or a unique prefix of at least 8 characters) of `room` into
 * `out.output` (default: the drop's name in the working folder when it is a plain name). The
 * parts are fetched from the pointer's homeserver as the message's author's and verified by the
 * large receive's stages (§5.5 steps 3–6).
 *
 * @throws usage (a short or ambiguous id), not_found (no such drop among the verified messages),
 *   config (no target, or it exists without `force`), signature (a part fails its checks:
 *   nothing written), network (missing parts, unreachable homeserver), io
 */
export async function fetchDrop(
  ctx: RoomContext,
  room: string,
  id: string,
  out: LargeOutput,
  ui: FlowUi,
): Promise<{ room: string; drop: Drop; target: string }> {
  const want = id.toLowerCase();
  if (!/^[0-9a-f]+$/.test(want) || want.length < MIN_DROP_PREFIX || want.length > 32) {
    throw new CipherpostError(
      "usage",
      `a drop id is ${MIN_DROP_PREFIX} to 32 hex characters (as the room's file list shows it)`,
    );
  }
  const { room: roomId, drops } = await listDrops(ctx, room, ui);
  const hits = drops.filter((d) => d.id.startsWith(want));
  if (hits.length === 0) {
    throw new CipherpostError("not_found", "no such drop among the room's verified messages");
  }
  if (hits.length > 1) {
    throw new CipherpostError("usage", `${hits.length} drops match that id: give more of it`);
  }
  const drop = hits[0];
  const target = out.output ?? plainDropName(drop.name);
  if (target === null || target === "-") {
    throw new CipherpostError(
      "config",
      "configuration error: the drop's name is not a plain file name (or a file is never " +
        "written to standard output)",
      "give the path to write it to",
    );
  }
  await refuseExisting(target, out.force);
  const author = drop.message.author;
  let baseUrl: string;
  try {
    baseUrl = await endpointOf(ctx.transport, drop.pointer.homeserver);
  } catch (e) {
    if (e instanceof CipherpostError) throw e;
    throw new CipherpostError("network", "network error: the dropper's homeserver is unreachable");
  }
  await fetchLarge(
    ctx.state,
    {
      expiresAt: Math.floor((Date.now() + FETCH_RECORD_MS) / 1000),
      sender: author,
      locator: sha256(utf8(`cipherpost/room/v1/drop\n${roomId}\n${author}\n${drop.id}`)),
      pointer: drop.pointer,
      baseUrl,
      target,
      http: homeserverHttpOf(ctx.transport),
    },
    out,
    ui,
  );
  return { room: roomId, drop, target };
}
