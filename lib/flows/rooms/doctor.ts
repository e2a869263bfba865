/**
 * The checks behind `doctor`: is this home safe and working? Each check returns
 * {@link DoctorFinding}s as data (a status, what was seen, and which fix applies); the CLI words
 * the fixes and prints them. Checked: the modes of the home folder, the identity file and the
 * other private files (0700 / 0600); the homeserver (our `_pubky` record or stored session, the
 * homeserver answering, a signed-in session working); the clock against the homeserver's `Date`
 * header. Every request has a timeout; nothing is written except a fresh session after a
 * successful sign-in (as any command that writes would store it).
 *
 * @module
 */

import { CipherpostError } from "../../util/errors.ts";
import { encodeZ32 } from "../../pkarr/public_key.ts";
import type { Transport } from "../../pkarr/transport.ts";
import { identityPath } from "../../state/identity.ts";
import { isoSeconds } from "../../state/state.ts";
import { discover, type HomeserverEndpoint } from "../../homeserver/discovery.ts";
import { checkEndpoint, homeserverHttpOf } from "../../homeserver/endpoint_policy.ts";
import { homeserverGet } from "../../homeserver/request.ts";
import { sessionAlive, signIn } from "../../homeserver/session.ts";
import { homeserverDir, loadSession, saveSession } from "../../homeserver/session_store.ts";

/** How a check came out. */
export type DoctorStatus = "ok" | "warn" | "fail";

/** What was checked. */
export type DoctorCheck =
  | "home"
  | "identity"
  | "private_file"
  | "homeserver"
  | "session"
  | "clock"
  | "room_hook"
  | "mcp_server"
  | "sync_hooks";

/** The fix that applies to a finding (the CLI words it). */
export type DoctorFix =
  /** set `path`'s mode to `mode` */
  | { step: "chmod"; path: string; mode: number }
  /** there is no identity in this home */
  | { step: "identity_generate" }
  /** no homeserver account (or record): sign up with one */
  | { step: "homeserver_signup" }
  /** the homeserver or the DHT could not be reached */
  | { step: "check_network" }
  /** the identity could not be unlocked, so no new session could be made */
  | { step: "unlock" }
  /** the clock is off */
  | { step: "sync_clock" }
  /** the rooms prompt hook or MCP server is not registered in Claude Code */
  | { step: "install_rooms" }
  /** the session sync hooks are not in Claude Code's settings */
  | { step: "sync_auto_enable" };

/** One result of a check. */
export interface DoctorFinding {
  /** what was checked */
  check: DoctorCheck;
  /** ok, warn or fail */
  status: DoctorStatus;
  /** what was seen, one line (paths and URLs as they are; the CLI escapes them) */
  detail: string;
  /** the fix, when something is to be done */
  fix?: DoctorFix;
}

const octal = (m: number) => `0${(m & 0o777).toString(8)}`;

async function modeOf(path: string): Promise<number | null> {
  try {
    const st = await Deno.stat(path);
    return st.mode === null ? null : st.mode & 0o777;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * The modes of the home (0700), its identity file (0600) and the other private files this home
 * keeps (the files of its homeserver and rooms folders: 0600; those folders 0700). A missing home or
 * identity is a failure; a file looser than it should be is a failure with a `chmod` fix.
 */
export async function checkLocalFiles(home: string): Promise<DoctorFinding[]> {
  const out: DoctorFinding[] = [];
  const homeMode = await modeOf(home);
  if (homeMode === null) {
    return [{
      check: "home",
      status: "fail",
      detail: `no home folder at ${home}`,
      fix: { step: "identity_generate" },
    }];
  }
  out.push(
    (homeMode & 0o077) === 0
      ? { check: "home", status: "ok", detail: `${home} is ${octal(homeMode)}` }
      : {
        check: "home",
        status: "fail",
        detail: `${home} is ${octal(homeMode)}: others can read or enter it`,
        fix: { step: "chmod", path: home, mode: 0o700 },
      },
  );
  const id = identityPath(home);
  const idMode = await modeOf(id);
  if (idMode === null) {
    out.push({
      check: "identity",
      status: "fail",
      detail: `no identity file at ${id}`,
      fix: { step: "identity_generate" },
    });
  } else {
    out.push(
      idMode === 0o600 ? { check: "identity", status: "ok", detail: `${id} is 0600` } : {
        check: "identity",
        status: "fail",
        detail: `${id} is ${octal(idMode)}, not 0600: it is refused until fixed`,
        fix: { step: "chmod", path: id, mode: 0o600 },
      },
    );
  }
  // the other private files: one finding per file that is too open (bounded: these folders)
  for (const dir of [homeserverDir(home), `${home}/rooms`]) {
    const dirMode = await modeOf(dir);
    if (dirMode === null) continue;
    if ((dirMode & 0o077) !== 0) {
      out.push({
        check: "private_file",
        status: "fail",
        detail: `${dir} is ${octal(dirMode)}`,
        fix: { step: "chmod", path: dir, mode: 0o700 },
      });
    }
    let n = 0;
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || ++n > 10_000) break;
      const p = `${dir}/${e.name}`;
      const m = await modeOf(p);
      if (m !== null && (m & 0o077) !== 0) {
        out.push({
          check: "private_file",
          status: "fail",
          detail: `${p} is ${octal(m)}`,
          fix: { step: "chmod", path: p, mode: 0o600 },
        });
      }
    }
  }
  return out;
}

/** Options of {@link checkHomeserver}. */
export interface HomeserverCheckOptions {
  /** the cipherpost home (where the session is stored) */
  home: string;
  /** our public key */
  user: Uint8Array;
  /** our seed, when the identity could be unlocked: lets the check sign in */
  seed?: Uint8Array;
  /** longest wait for each answer (default 10 000 ms) */
  timeoutMs?: number;
  /** clock skew that is only a warning up to this (default 10 000 ms; sign-in allows 45 s) */
  warnSkewMs?: number;
}

/** Skew beyond which sign-in fails (the AuthToken window). */
const FAIL_SKEW_MS = 45_000;

/**
 * Our homeserver: found (stored session, else our `_pubky` record), answering (`GET /`, whose
 * `Date` header gives the clock check), and a session that works (the stored one, or a fresh
 * sign-in when `seed` is given).
 */
export async function checkHomeserver(
  transport: Transport,
  o: HomeserverCheckOptions,
): Promise<DoctorFinding[]> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const http = {
    ...homeserverHttpOf(transport),
    firstByteTimeoutMs: timeoutMs,
    idleTimeoutMs: timeoutMs,
  };
  const user = encodeZ32(o.user);
  const out: DoctorFinding[] = [];
  const noClock = (why: string): DoctorFinding => ({
    check: "clock",
    status: "warn",
    detail: `not checked: ${why}`,
  });
  const stored = await loadSession(o.home, user);
  let endpoint: HomeserverEndpoint;
  try {
    if (stored) {
      checkEndpoint(stored.baseUrl, http);
      endpoint = { homeserver: stored.homeserver, baseUrl: stored.baseUrl };
    } else endpoint = await discover(transport, o.user, http);
  } catch (e) {
    if (!(e instanceof CipherpostError)) throw e;
    const none = e.kind === "no_homeserver" || e.kind === "not_found";
    out.push({
      check: "homeserver",
      status: "fail",
      detail: none
        ? "no homeserver: no session stored and no _pubky record found for your key"
        : `could not find your homeserver: ${e.message}`,
      fix: { step: none ? "homeserver_signup" : "check_network" },
    });
    out.push(noClock("no homeserver to compare with"));
    return out;
  }
  const where = `${endpoint.homeserver.slice(0, 8)}… at ${endpoint.baseUrl}`;
  // reachable, and its clock
  let serverDate: number | null = null;
  let midpoint = 0;
  try {
    const before = Date.now();
    const res = await homeserverGet(new URL("/", endpoint.baseUrl), {
      tenant: user,
      http,
      pass: [400, 401, 403, 404, 405],
      signal: AbortSignal.timeout(timeoutMs),
    });
    midpoint = (before + Date.now()) / 2;
    await res.body?.cancel().catch(() => {});
    const d = res.headers.get("date");
    const parsed = d === null ? NaN : Date.parse(d);
    serverDate = Number.isFinite(parsed) ? parsed : null;
    out.push({ check: "homeserver", status: "ok", detail: `${where} answers` });
  } catch (e) {
    if (!(e instanceof CipherpostError)) throw e;
    out.push({
      check: "homeserver",
      status: "fail",
      detail: `${where} is unreachable: ${e.message}`,
      fix: { step: "check_network" },
    });
    out.push(noClock("the homeserver did not answer"));
    return out;
  }
  // a session that works
  try {
    const alive = stored !== null &&
      await sessionAlive(endpoint.baseUrl, stored.cookie, { http });
    if (alive) {
      out.push({ check: "session", status: "ok", detail: "the stored session works" });
    } else if (o.seed) {
      const r = await signIn({
        baseUrl: endpoint.baseUrl,
        homeserver: endpoint.homeserver,
        seed: o.seed,
        signup: false,
        http,
      });
      await saveSession(o.home, {
        homeserver: endpoint.homeserver,
        baseUrl: endpoint.baseUrl,
        cookie: r.cookie,
        createdAt: isoSeconds(),
      });
      out.push({ check: "session", status: "ok", detail: "signed in (a new session is stored)" });
    } else {
      out.push({
        check: "session",
        status: "warn",
        detail: stored
          ? "the stored session has expired, and the identity is locked: cannot sign in"
          : "no session stored, and the identity is locked: cannot sign in",
        fix: { step: "unlock" },
      });
    }
  } catch (e) {
    if (!(e instanceof CipherpostError)) throw e;
    const account = e.kind === "homeserver_auth" || e.kind === "homeserver_forbidden";
    out.push({
      check: "session",
      status: "fail",
      detail: `sign-in failed: ${e.message}`,
      fix: { step: account ? "homeserver_signup" : "check_network" },
    });
  }
  // the clock
  if (serverDate === null) {
    out.push(noClock("the homeserver sent no Date header"));
  } else {
    const skew = midpoint - serverDate; // ours minus theirs, when it answered
    const abs = Math.abs(skew);
    const s = `${skew >= 0 ? "+" : "-"}${(abs / 1000).toFixed(0)} s`;
    // the Date header has whole seconds: up to 1 s is noise
    if (abs <= (o.warnSkewMs ?? 10_000)) {
      out.push({ check: "clock", status: "ok", detail: `${s} against the homeserver` });
    } else {
      out.push({
        check: "clock",
        status: abs > FAIL_SKEW_MS ? "fail" : "warn",
        detail: `${s} against the homeserver${
          abs > FAIL_SKEW_MS ? ": sign-in fails beyond 45 s" : ""
        }`,
        fix: { step: "sync_clock" },
      });
    }
  }
  return out;
}
