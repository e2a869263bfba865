/**
 * `cipherpost room drop|files|fetch`: file drops (docs/PROTOCOL.md §9.8). A drop is a large
 * share's parts on your homeserver whose pointer is posted as a signed room message; members
 * list the drops and fetch one, verified part by part.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { escapeControl } from "../util/encoding.ts";
import { encodeZ32 } from "../pkarr/public_key.ts";
import { formatBytes } from "../util/human.ts";
import { describeProblem } from "../flows/rooms/read.ts";
import { dropFile, fetchDrop, listDrops } from "../flows/rooms/drop.ts";
import type { Io } from "./io.ts";
import { cliUi, interruptibleSend, partSizeOverride, partWorkers } from "./large.ts";
import { Exit } from "./exit_codes.ts";
import { NETWORK_HELP, withNetwork, withPassphrase } from "./options.ts";
import { hhmmss, namer, runRoom } from "./room_common.ts";

/** Register these `room` subcommands on the `room` command group. */
export function registerRoomDrops(room: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);

  withNetwork(withPassphrase(
    room.command("drop")
      .description("share a file with the room's members (a large share posted as a message)")
      .argument("<room>", "the room's id or name")
      .argument("<file>", "the file to drop (one regular file)")
      .option(
        "--allow-sensitive",
        "drop it even when its path looks like keys or secrets (~/.ssh, .env*, *.pem, …)",
      )
      .option("--json", "print {room, id, name, size, parts}"),
  )).addHelpText(
    "after",
    `
The file's parts are encrypted to a fresh key and uploaded to your homeserver, and its pointer
(name, size, part hashes, that key) is posted as a signed message encrypted to the room's
current epoch: exactly the members of the room now can fetch it (cipherpost room fetch). A
removed member cannot fetch a drop made after the removal. Paths that usually hold keys or
secrets are refused (~/.ssh, ~/.aws, ~/.gnupg, ~/.kube, ~/.docker, ~/.config/gcloud, .git/,
.env*, id_*, .netrc, *.pem, *.key, *.p12, the cipherpost home, …; symbolic links resolved
first) unless --allow-sensitive. An interrupted drop resumes when run again.
${NETWORK_HELP}`,
  ).action(async (roomArg: string, file: string, o) => {
    const ui = cliUi(log);
    const release = interruptibleSend(ui, log, Deno.exit, Exit.interrupted);
    try {
      const r = await runRoom(o, io, (ctx) =>
        dropFile(ctx, roomArg, {
          path: file,
          allowSensitive: o.allowSensitive === true,
          partSize: partSizeOverride(),
          workers: partWorkers(),
        }, ui));
      ui.end();
      if (o.json) {
        io.out(
          `${
            JSON.stringify({ room: r.room, id: r.id, name: r.name, size: r.size, parts: r.parts })
          }\n`,
        );
      } else {
        log(`dropped ${escapeControl(r.name)} (${formatBytes(r.size)}) into the room`);
        io.out(`${r.id}\n`);
      }
    } finally {
      ui.end();
      release();
    }
  });

  withNetwork(withPassphrase(
    room.command("files")
      .description("list the room's file drops, verified")
      .argument("<room>", "the room's id or name")
      .option("--json", "one object per drop: {id, name, size, author, time}"),
  )).addHelpText("after", NETWORK_HELP).action(async (roomArg: string, o) => {
    await runRoom(o, io, async (ctx, home) => {
      const r = await listDrops(ctx, roomArg, {
        status: log,
        note: (n) => log(`note: ${escapeControl(n)}`),
      });
      const nameOf = await namer(home, encodeZ32(ctx.me.publicKey));
      for (const d of r.drops) {
        const m = d.message;
        io.out(
          o.json
            ? `${
              JSON.stringify({
                room: r.room,
                id: d.id,
                name: d.name,
                size: d.size,
                author: m.author,
                time: new Date(m.hlc).toISOString(),
              })
            }\n`
            : `${d.id}  ${formatBytes(d.size).padStart(10)}  ${hhmmss(m.hlc)}  ${
              escapeControl(nameOf(m.author))
            }  ${escapeControl(d.name)}\n`,
        );
      }
      if (r.unreadable > 0) log(`warning: ${r.unreadable} file drops cannot be read`);
      for (const p of r.problems) log(`warning: ${describeProblem(p, nameOf)}`);
    });
  });

  withNetwork(withPassphrase(
    room.command("fetch")
      .description("fetch a file drop, verified part by part")
      .argument("<room>", "the room's id or name")
      .argument("<id>", "the drop id (or its first 8+ characters), as room files shows it")
      .option("-o, --output <path>", "where to write it (default: the drop's name, here)")
      .option("--force", "replace an existing file"),
  )).addHelpText(
    "after",
    `
The drop is looked up among the room's verified messages; its parts come from the dropper's
homeserver and each is checked against the hashes in the signed message before the file
appears (one rename; nothing is written when a part fails, exit 3). An interrupted fetch
resumes when run again. Without -o the drop's name is used when it is a plain file name.
${NETWORK_HELP}`,
  ).action(async (roomArg: string, id: string, o) => {
    const ui = cliUi(log);
    try {
      await runRoom(o, io, (ctx) =>
        fetchDrop(ctx, roomArg, id, {
          output: o.output,
          force: o.force === true,
          workers: partWorkers(),
        }, ui));
    } finally {
      ui.end();
    }
  });
}
