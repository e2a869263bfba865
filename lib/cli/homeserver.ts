/**
 * `cipherpost homeserver signup|status`: the account on a Pubky homeserver that holds large
 * payloads (docs/PROTOCOL.md §4). `homeserver gc` belongs to the large-share CLI.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { HomeserverClient } from "../homeserver/client.ts";
import { endpointOf, homeserverOf, isZ32Key, withPubkyRecord } from "../homeserver/discovery.ts";
import { shareRefOfPath } from "../homeserver/paths.ts";
import { sessionAlive, signIn } from "../homeserver/session.ts";
import { readStoredSession, saveSession, sessionFile } from "../homeserver/session_store.ts";
import { CIPHERPOST_ROOT } from "../homeserver/capabilities.ts";
import { decodeZ32, encodeZ32 } from "../pkarr/public_key.ts";
import type { Transport } from "../pkarr/transport.ts";
import { State } from "../state/state.ts";
import { CipherpostError } from "../util/errors.ts";
import { cipherpostHome } from "./home.ts";
import { readSecretFile } from "./passphrase.ts";
import type { Io } from "./io.ts";
import { cliUi, gcSummary } from "./large.ts";
import { collectGarbage } from "../flows/large/gc.ts";
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
    throw new CipherpostError(
      "config",
      "configuration error: a signup token looks like XXXX-XXXX-XXXX",
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

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const u = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${u[i]}`;
}

/** What we keep on the homeserver: per share folder, files and bytes (HEAD of every file). */
async function inventory(client: HomeserverClient): Promise<{
  files: number;
  bytes: number;
  shares: Map<string, { files: number; bytes: number }>;
  other: number;
}> {
  const paths: string[] = [];
  for await (const e of client.listAll(CIPHERPOST_ROOT)) paths.push(e.path);
  const shares = new Map<string, { files: number; bytes: number }>();
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
    const ref = shareRefOfPath(p);
    if (!ref) {
      other++;
      return;
    }
    const s = shares.get(ref) ?? { files: 0, bytes: 0 };
    s.files++;
    s.bytes += sizes[i];
    shares.set(ref, s);
  });
  return { files: paths.length, bytes, shares, other };
}

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
        const r = await signIn({ baseUrl, homeserver, seed: me.seed, signupToken });
        await saveSession(home, {
          homeserver,
          baseUrl,
          cookie: r.cookie,
          createdAt: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
        });
        log(`${r.signedUp ? "signed up" : "signed in"} at ${homeserver} (${baseUrl})`);
        try {
          const rep = await t.update(
            me.seed,
            me.publicKey,
            (records) => withPubkyRecord(user, records, homeserver),
          );
          log(rep ? "published _pubky record" : "_pubky record already points there");
        } catch (e) {
          if (!(e instanceof CipherpostError) || e.kind !== "too_large") throw e;
          // the session is stored and works from this home; only others' discovery needs it
          log(
            "warning: the _pubky record did not fit in your PKARR packet (live v1 shares and " +
              "receipts fill its 1000 bytes); large shares from this home work, but other " +
              "clients cannot find your homeserver until you run this signup again once they " +
              "have expired or been revoked",
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
learn your key.
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
            fmtBytes(out.stored.bytes)
          } in ${out.stored.shares.length} share folder(s)\n`,
        );
        for (const s of out.stored.shares) {
          io.out(
            `  ${s.share_ref}  ${s.files} file(s)  ${fmtBytes(s.bytes)}  ${
              s.sent ? "sent from here" : "not in this home"
            }\n`,
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
    shares: { share_ref: string; files: number; bytes: number; sent: boolean }[];
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
  const baseUrl = stored && stored.homeserver === homeserver
    ? stored.baseUrl
    : await endpointOf(t, homeserver);
  let session = "none stored";
  if (stored && stored.homeserver === homeserver) {
    session = await sessionAlive(baseUrl, stored.cookie)
      ? `valid (${stored.cookie.capabilities}, since ${stored.createdAt}; ${sessionFileNote()})`
      : "expired or signed out (run: cipherpost homeserver signup)";
  }
  const client = new HomeserverClient({ baseUrl, user });
  const inv = await inventory(client);
  const sentRefs = new Set(
    (await new State(home).listSent().catch(() => []))
      .map((r) => r.shareRef),
  );
  return {
    user,
    homeserver,
    base_url: baseUrl,
    note,
    session,
    stored: {
      files: inv.files,
      bytes: inv.bytes,
      other_files: inv.other,
      shares: [...inv.shares].sort().map(([ref, s]) => ({
        share_ref: ref,
        files: s.files,
        bytes: s.bytes,
        sent: sentRefs.has(ref),
      })),
    },
  };
}

function sessionFileNote(): string {
  return `stored in ${sessionFile("$CIPHERPOST_HOME")}`;
}
