/**
 * `cipherpost homeserver signup|status`: the account on a Pubky homeserver that holds large
 * payloads (docs/PROTOCOL.md §4). `homeserver gc` belongs to the large-share CLI.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { HomeserverClient } from "../homeserver/client.ts";
import { endpointOf, homeserverOf, isZ32Key, withPubkyRecord } from "../homeserver/discovery.ts";
import { checkEndpoint, homeserverHttpOf } from "../homeserver/endpoint_policy.ts";
import { blobIdOfPath } from "../protocol/large_manifest.ts";
import { sessionAlive, signIn } from "../homeserver/session.ts";
import { readStoredSession, saveSession, sessionFile } from "../homeserver/session_store.ts";
import { CIPHERPOST_ROOT } from "../homeserver/capabilities.ts";
import { decodeZ32, encodeZ32 } from "../pkarr/public_key.ts";
import type { Transport } from "../pkarr/transport.ts";
import { isoSeconds, State } from "../state/state.ts";
import { CipherpostError, configError } from "../util/errors.ts";
import { formatBytes } from "../util/human.ts";
import { cipherpostHome } from "./home.ts";
import { readSecretFile } from "./passphrase.ts";
import type { Io } from "./io.ts";
import { cliUi, gcSummary } from "./large.ts";
import { blobJudge, type BlobVerdict, collectGarbage } from "../flows/large/gc.ts";
import { updateOwnPacket } from "../flows/share/own_packet.ts";
import {
  NETWORK_HELP,
  unlockIdentity,
  withNetwork,
  withPassphrase,
  withTransport,
} from "./options.ts";

const TOKEN_RE = /^[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}$/;

async function readSignupToken(file: string | undefined): Promise<string | undefined> {
  let raw: string | undefined;
  if (file !== undefined) {
    // a token file is a secret file: mode 0600 or 0400, like a passphrase file
    raw = await readSecretFile(file, "signup token");
  } else raw = Deno.env.get("CIPHERPOST_SIGNUP_TOKEN") || undefined;
  if (raw === undefined) return undefined;
  const t = raw.trim();
  if (!TOKEN_RE.test(t)) {
    throw configError(
      "a signup token looks like XXXX-XXXX-XXXX",
    );
  }
  return t;
}

function homeserverArg(key: string | undefined): string {
  const k = key ?? Deno.env.get("CIPHERPOST_HOMESERVER");
  if (!k) {
    throw new CipherpostError(
      "usage",
      "name the homeserver: cipherpost homeserver signup <homeserver-key>",
    );
  }
  const z = k.replace(/^pk:/, "").replace(/^pubky(?=.{52}$)/, "");
  if (!isZ32Key(z)) {
    throw new CipherpostError(
      "usage",
      "not a homeserver key (52-character z-base-32 expected)",
    );
  }
  return z;
}

/** What we keep on the homeserver: per blob folder, files and bytes (HEAD of every file). */
async function inventory(client: HomeserverClient): Promise<{
  files: number;
  bytes: number;
  blobs: Map<string, { files: number; bytes: number }>;
  other: number;
}> {
  const paths: string[] = [];
  for await (const e of client.listAll(CIPHERPOST_ROOT)) paths.push(e.path);
  const blobs = new Map<string, { files: number; bytes: number }>();
  let bytes = 0, other = 0;
  let next = 0;
  const sizes = new Array<number>(paths.length).fill(0);
  await Promise.all(Array.from({ length: Math.min(8, paths.length) }, async () => {
    while (next < paths.length) {
      const i = next++;
      sizes[i] = Math.max(0, (await client.head(paths[i]))?.size ?? 0);
    }
  }));
  paths.forEach((p, i) => {
    bytes += sizes[i];
    const id = blobIdOfPath(p);
    if (!id) {
      other++;
      return;
    }
    const s = blobs.get(id) ?? { files: 0, bytes: 0 };
    s.files++;
    s.bytes += sizes[i];
    blobs.set(id, s);
  });
  return { files: paths.length, bytes, blobs, other };
}

/** What `homeserver status` says of a blob folder: gc's verdict, in words. */
const VERDICT_TEXT: Record<BlobVerdict, string> = {
  live: "a live share sent from this home",
  sending: "a send in progress from this home (run it again to resume)",
  unknown: "not sent from this home (gc keeps it; gc --delete-unknown deletes it)",
  expired: "its share expired (gc deletes it)",
  revoked: "its share was revoked (gc deletes it)",
  "burned and receipted": "burned and received (gc deletes it)",
};

/** Register `homeserver …` on the program. */
export function registerHomeserverCommands(program: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);
  const hs = program.command("homeserver")
    .description("your account on a Pubky homeserver (stores large payloads, ciphertext only)")
    .exitOverride();

  withNetwork(withPassphrase(
    hs.command("signup")
      .description(
        "sign up (or in) at a homeserver and point your _pubky record at it; other records kept",
      )
      .argument(
        "[homeserver-key]",
        "the homeserver's z-base-32 key (default $CIPHERPOST_HOMESERVER)",
      )
      .option(
        "--signup-token-file <path>",
        "file holding the signup token XXXX-XXXX-XXXX (or env CIPHERPOST_SIGNUP_TOKEN)",
      ),
  ))
    .addHelpText(
      "after",
      `
The session is limited to /pub/cipherpost/ and stored in $CIPHERPOST_HOME/homeserver/session.json
(mode 0600), so later commands (republish, homeserver gc) need no passphrase.
Example:
  cipherpost homeserver signup <homeserver-z32> --signup-token-file token.txt
${NETWORK_HELP}`,
    )
    .action(async (key, o) => {
      const homeserver = homeserverArg(key);
      const signupToken = await readSignupToken(o.signupTokenFile);
      const me = await unlockIdentity(o, io);
      const home = cipherpostHome();
      const user = encodeZ32(me.publicKey);
      await withTransport(o, async (t) => {
        const baseUrl = await endpointOf(t, homeserver);
        const http = homeserverHttpOf(t);
        const r = await signIn({ baseUrl, homeserver, seed: me.seed, signupToken, http });
        await saveSession(home, {
          homeserver,
          baseUrl,
          cookie: r.cookie,
          createdAt: isoSeconds(),
        });
        log(`${r.signedUp ? "signed up" : "signed in"} at ${homeserver} (${baseUrl})`);
        try {
          const rep = await updateOwnPacket(
            t,
            new State(home),
            me,
            (records) => withPubkyRecord(user, records, homeserver),
            cliUi(log),
          );
          log(rep ? "published _pubky record" : "_pubky record already points there");
        } catch (e) {
          if (!(e instanceof CipherpostError) || e.kind !== "too_large") throw e;
          // the session is stored and works from this home; only others' discovery needs it
          log(
            "warning: the _pubky record did not fit in your PKARR packet (v1 shares sent with " +
              "--protocol 1, or records of another tool, fill its 1000 bytes); large shares from this " +
              "home work, but other clients cannot find your homeserver until you run this " +
              "signup again once those records have expired or been revoked",
          );
        }
      });
      io.out(`${homeserver}\n`);
    });

  withNetwork(withPassphrase(
    hs.command("status")
      .description("which homeserver, the session's state, what we store there and how much")
      .option("--json", "machine-readable output"),
  ))
    .addHelpText(
      "after",
      `
Uses the stored session when there is one (no passphrase); otherwise unlocks the identity to
learn your key. Each blob folder (a random blob id, one per large share) is judged as
\`homeserver gc\` judges it: a live share of this home, a send in progress, not sent from this
home (kept), or expired / revoked / burned and received (gc deletes it).
${NETWORK_HELP}`,
    )
    .action(async (o) => {
      const home = cipherpostHome();
      const stored = await readStoredSession(home);
      const user = stored?.cookie.user ?? encodeZ32((await unlockIdentity(o, io)).publicKey);
      const out = await withTransport(o, (t) => status(t, home, user, stored));
      if (o.json) {
        io.out(JSON.stringify(out, null, 2) + "\n");
        return;
      }
      io.out(`user:        ${out.user}\n`);
      io.out(`homeserver:  ${out.homeserver ?? "none"}${out.note ? ` (${out.note})` : ""}\n`);
      if (out.base_url) io.out(`endpoint:    ${out.base_url}\n`);
      io.out(`session:     ${out.session}\n`);
      if (out.stored) {
        io.out(
          `stored:      ${out.stored.files} file(s), ${
            formatBytes(out.stored.bytes)
          } in ${out.stored.blobs.length} blob folder(s)\n`,
        );
        for (const b of out.stored.blobs) {
          const ref = b.share_ref ? ` (share ${b.share_ref})` : "";
          io.out(
            `  ${b.blob_id}  ${b.files} file(s)  ${formatBytes(b.bytes)}  ${
              VERDICT_TEXT[b.state]
            }${ref}\n`,
          );
        }
      }
    });

  withNetwork(withPassphrase(
    hs.command("gc")
      .description(
        "delete your large-share blobs that expired, were revoked, or were burned and receipted",
      )
      .option(
        "--delete-unknown",
        "also delete blob folders this home did not send (by default they are kept)",
      ),
  ))
    .addHelpText(
      "after",
      `
Uses the stored homeserver session (no passphrase) when there is one. Blobs of sends still in
progress are kept, and so are folders this home has no record of: another machine with the
same identity may have sent them (--delete-unknown deletes those too). republish runs the same
collection when a homeserver session is stored.
${NETWORK_HELP}`,
    )
    .action(async (o) => {
      const home = cipherpostHome();
      const r = await withTransport(
        o,
        (t) =>
          collectGarbage(t, new State(home), () => unlockIdentity(o, io), cliUi(log), {
            deleteUnknown: o.deleteUnknown === true,
          }),
      );
      io.out(`${gcSummary(r!)}\n`);
    });
}

interface StatusReport {
  user: string;
  homeserver: string | null;
  base_url: string | null;
  note?: string;
  session: string;
  stored?: {
    files: number;
    bytes: number;
    other_files: number;
    /** one entry per blob folder (random blob ids), judged as `homeserver gc` judges them */
    blobs: {
      blob_id: string;
      files: number;
      bytes: number;
      state: BlobVerdict;
      share_ref?: string;
    }[];
  };
}

async function status(
  t: Transport,
  home: string,
  user: string,
  stored: Awaited<ReturnType<typeof readStoredSession>>,
): Promise<StatusReport> {
  let published: string | null = null;
  let note: string | undefined;
  try {
    published = await homeserverOf(t, decodeZ32(user));
  } catch (e) {
    if (!(e instanceof CipherpostError) || e.kind !== "no_homeserver") throw e;
  }
  const homeserver = published ?? stored?.homeserver ?? null;
  if (stored && published && stored.homeserver !== published) {
    note = `your _pubky record names it; the stored session is for ${stored.homeserver}`;
  } else if (stored && !published) note = "from the stored session; no _pubky record published";
  else if (!stored && published) note = "from your _pubky record";
  if (!homeserver) return { user, homeserver: null, base_url: null, session: "none" };
  const http = homeserverHttpOf(t);
  let baseUrl: string;
  if (stored && stored.homeserver === homeserver) {
    checkEndpoint(stored.baseUrl, http);
    baseUrl = stored.baseUrl;
  } else baseUrl = await endpointOf(t, homeserver);
  let session = "none stored";
  if (stored && stored.homeserver === homeserver) {
    session = await sessionAlive(baseUrl, stored.cookie, { http })
      ? `valid (${stored.cookie.capabilities}, since ${stored.createdAt}; ${sessionFileNote()})`
      : "expired or signed out (run: cipherpost homeserver signup)";
  }
  const client = new HomeserverClient({ baseUrl, user, http });
  const inv = await inventory(client);
  const judge = await blobJudge(t, new State(home));
  const blobs: NonNullable<StatusReport["stored"]>["blobs"] = [];
  for (const [id, b] of [...inv.blobs].sort()) {
    const ref = judge.shareRefOf(id);
    blobs.push({
      blob_id: id,
      files: b.files,
      bytes: b.bytes,
      state: await judge.judge(id),
      ...(ref ? { share_ref: ref } : {}),
    });
  }
  return {
    user,
    homeserver,
    base_url: baseUrl,
    note,
    session,
    stored: { files: inv.files, bytes: inv.bytes, other_files: inv.other, blobs },
  };
}

function sessionFileNote(): string {
  return `stored in ${sessionFile("$CIPHERPOST_HOME")}`;
}
