/**
 * `claude pickup`: find the hand-off (the given URI, or the pickup pointer from `from`),
 * receive it with every check of an ordinary share, show the session on the acceptance screen,
 * and place it for `claude --resume` (PROTOCOL.md §6; lib/claude/place.ts). Launching Claude
 * Code is the CLI's job.
 *
 * @module
 */

import { WorkFiles } from "../../state/work_files.ts";
import type { Keypair } from "../../crypto/keys.ts";
import { parsePublicKey } from "../../pkarr/public_key.ts";
import type { Transport } from "../../pkarr/transport.ts";
import { fetchPointer } from "./pointer.ts";
import { parseShareUri, type ShareUri } from "../../protocol/share_uri.ts";
import { isPointerEnvelope, parsePointerEnvelope } from "../../protocol/large_manifest.ts";
import { CipherpostError, configError, signatureError } from "../../util/errors.ts";
import { type Bundle, MAX_UNPACKED, parseBundle, parseBundleFile } from "../../claude/bundle.ts";
import {
  applyPlacement,
  type PlaceAction,
  type Placement,
  planPlacement,
} from "../../claude/place.ts";
import { summarizeBundle } from "../../claude/summary.ts";
import {
  checkConsumed,
  contactNameOf,
  type OpenedPayload,
  type OpenedShare,
  parseShareEnvelope,
  publishPendingReceipt,
  receiveShare,
  shareHashes,
} from "../share/receive.ts";
import type { FlowContext, FlowUi, SessionSummaryView } from "../share/ui.ts";
import { openLarge } from "../large/receive.ts";
import { toHex } from "../../util/encoding.ts";

/** How to pick up. */
export interface ClaudePickupRequest {
  /** the share URI; absent = the newest pointer from `from` (default: our own key) */
  uri?: string;
  /** without a URI: the sender whose newest hand-off pointer is looked up (z32 or pk:) */
  from?: string;
  /** Claude Code's config folder (`$CLAUDE_CONFIG_DIR` or `~/.claude`) */
  configDir: string;
  /** the directory the session would be placed for when nothing else decides */
  cwd: string;
  /** place the session for this directory */
  project?: string;
  /** a diverged local copy: place the received one under a new ID */
  fork: boolean;
  /** obtains the PIN when the share needs one */
  pin: () => Promise<string>;
  /** how many PINs to try (default 1) */
  pinTries?: number;
  /** Web Workers for a session that travels as a large share (default 0: this thread) */
  workers?: number;
}

/** Where a session was placed (what `claude --resume` needs). */
export interface PlacedSession {
  /** The ID `claude --resume` takes (a new one when forked). */
  sessionId: string;
  /** The session's ID as it arrived. */
  originalId: string;
  /** The directory the session belongs to (where `claude` runs). */
  targetDir: string;
  /** Its folder under Claude Code's `projects/`. */
  folder: string;
  /** What placing did to a local copy of the same session. */
  action: PlaceAction;
  /** Transcript paths were rewritten to `targetDir`. */
  rewritten: boolean;
}

function placedOf(p: Placement): PlacedSession {
  return {
    sessionId: p.sessionId,
    originalId: p.originalId,
    targetDir: p.targetDir,
    folder: p.folder,
    action: p.action,
    rewritten: p.rewritten,
  };
}

/** What happened. */
export interface ClaudePickupResult {
  /** `placed` now; `already_accepted`: this hand-off was picked up here before */
  status: "placed" | "already_accepted";
  /** The share's 32-hex reference. */
  shareRef: string;
  /** Where and how the session was placed (absent when nothing was placed). */
  placement?: PlacedSession;
  /** False: the signed receipt is kept and goes out with the next receive or `republish`. */
  receiptPublished?: boolean;
}

/**
 * The largest compressed session accepted through the homeserver tier: the unpacked cap of a
 * bundle (its gzip cannot be larger in practice). Checked before the acceptance screen.
 */
export const MAX_SESSION_SHARE = MAX_UNPACKED;

/** The share URI to receive: the argument, or the one the pointer names. */
export async function pickupUri(
  t: Transport,
  me: Keypair,
  req: Pick<ClaudePickupRequest, "uri" | "from">,
  log: (line: string) => void,
): Promise<ShareUri> {
  if (req.uri !== undefined) {
    if (req.from !== undefined) {
      throw configError("give a URI or the sender to look up, not both");
    }
    return parseShareUri(req.uri);
  }
  let senderPk = me.publicKey;
  if (req.from !== undefined) {
    try {
      senderPk = parsePublicKey(req.from);
    } catch {
      throw configError("the sender to look up must be a z-base-32 key");
    }
  }
  log("Looking up the newest session hand-off...");
  const p = await fetchPointer(t, me, senderPk);
  const uri = parseShareUri(p.uri);
  if (uri.sender !== p.sender) {
    throw signatureError("pointer names another sender");
  }
  return uri;
}

/**
 * Receive and place a session: the one receive pipeline with the session payload handler. A
 * session that travelled as a DHT share is shown (what, where, what placing does) on the one
 * acceptance screen; one that travelled as a large share is accepted as a large share of a
 * session (its size and type checked first), fetched and verified into the home, and then shown
 * again with what is placed and where, and placed only if that screen is confirmed too. The
 * share counts as accepted (and is receipted) only once the session is placed. Launching Claude
 * Code is the caller's job.
 *
 * @throws CipherpostError: the receive pipeline's errors, `invalid_material` (not a session),
 *   `config` (the session cannot be placed: see `placement`), `declined`
 */
export async function claudePickup(
  ctx: FlowContext,
  req: ClaudePickupRequest,
  ui: FlowUi,
): Promise<ClaudePickupResult> {
  const { transport: t, state, me } = ctx;
  const uri = await pickupUri(t, me, req, (l) => ui.status(l));
  const consumed = await checkConsumed(state, uri, ui);
  if (consumed) {
    // a session is placed once: an accepted hand-off only publishes a pending receipt
    if (consumed.kind === "pending") await publishPendingReceipt(t, state, me, consumed.ref, ui);
    return { status: "already_accepted", shareRef: consumed.ref };
  }
  let placement: Placement | undefined;
  const place = (bundle: Bundle) =>
    planPlacement(bundle, {
      configDir: req.configDir,
      cwd: req.cwd,
      project: req.project,
      fork: req.fork,
    });
  const r = await receiveShare(ctx, {
    uri,
    pin: req.pin,
    pinTries: req.pinTries,
    payload: {
      open: async (share, ui) => {
        if (isPointerEnvelope(share.plaintext)) {
          return await openLargeSession(ctx, share, req, ui, async (plan) => {
            placement = plan;
            await applyPlacement(plan);
          }, place);
        }
        const envelope = parseShareEnvelope(share);
        notASession(envelope.material.type);
        const bundle = await parseBundle(envelope.material.bytes);
        const plan = await place(bundle);
        return {
          purpose: envelope.purpose,
          burnAfterRead: envelope.burnAfterRead,
          payload: sessionView(bundle, envelope.material.bytes.length, plan),
          deliver: async () => {
            await applyPlacement(plan);
            placement = plan;
            return shareHashes(share);
          },
        };
      },
    },
  }, ui);
  return {
    status: "placed",
    shareRef: r.shareRef,
    placement: placement ? placedOf(placement) : undefined,
    receiptPublished: r.receiptPublished,
  };
}

function notASession(type: string): void {
  if (type !== "claude_session") {
    throw new CipherpostError(
      "invalid_material",
      `invalid material: this share holds ${type}, not a Claude Code session`,
      { step: "receive_general" },
    );
  }
}

/**
 * A session that travelled as a large share: the large share's screen first (refused before it
 * when it is no single file or over {@link MAX_SESSION_SHARE}); once accepted, the bundle is
 * fetched into the home (kept until placed), checked, planned, shown, and placed only when that
 * second screen is confirmed.
 */
async function openLargeSession(
  ctx: FlowContext,
  share: OpenedShare,
  req: ClaudePickupRequest,
  ui: FlowUi,
  placeIt: (plan: Placement) => Promise<void>,
  plan: (b: Bundle) => Promise<Placement>,
): Promise<OpenedPayload> {
  const pointer = parsePointerEnvelope(share.plaintext);
  if (pointer.pointer.kind !== "file") {
    throw new CipherpostError(
      "invalid_material",
      "invalid material: this large share is a folder, not a Claude Code session",
      { step: "receive_general", data: { output: "DIR" } },
    );
  }
  const size = pointer.pointer.size;
  if (size === undefined || size > MAX_SESSION_SHARE) {
    throw new CipherpostError(
      "invalid_material",
      size === undefined
        ? "invalid material: a large share of unknown size is no Claude Code session"
        : `invalid material: a ${size}-byte large share is no Claude Code session (at most ${MAX_SESSION_SHARE} bytes)`,
    );
  }
  const keptDir = await new WorkFiles(ctx.state).dir("claude");
  const kept = `${keptDir}/${toHex(share.locator!).slice(0, 32)}.tar.gz`;
  const large = await openLarge(ctx.transport, ctx.state, share, {
    output: kept,
    force: true,
    workers: req.workers,
  }, ui);
  return {
    ...large,
    deliver: async () => {
      const hashes = await large.deliver(false);
      try {
        // checked (and parsed) streaming from the kept file: never read whole
        let bundle: Bundle;
        try {
          bundle = await parseBundleFile(kept);
        } catch (e) {
          throw e instanceof CipherpostError ? e : new CipherpostError(
            "invalid_material",
            "invalid material: the large share is not a Claude Code session bundle",
          );
        }
        const p = await plan(bundle);
        const view = sessionView(bundle, size, p);
        const confirmed = ui.confirm
          ? await ui.confirm({
            protocol: share.protocol,
            sender: share.sender,
            senderContact: await contactNameOf(ctx.state, share.sender),
            shareRef: share.shareRef,
            createdAt: share.createdAt,
            ttlSeconds: share.ttlSeconds,
            purpose: pointer.purpose,
            burnAfterRead: pointer.burnAfterRead,
            now: new Date(),
            payload: {
              ...view,
              viaHomeserver: large.payload.kind === "large" ? large.payload.endpoint : undefined,
            },
          })
          : false;
        if (!confirmed) throw new CipherpostError("declined", "user declined placing the session");
        await placeIt(p);
        return hashes;
      } finally {
        await Deno.remove(kept).catch(() => {});
      }
    },
  };
}

/** What the acceptance screen shows of a session and its placement. */
function sessionView(b: Bundle, bundleBytes: number, plan: Placement): SessionSummaryView {
  return {
    ...summarizeBundle(b),
    kind: "claude_session",
    bundleBytes,
    targetDir: plan.targetDir,
    rewritten: plan.rewritten,
    action: plan.action,
    placedAs: plan.sessionId,
  };
}
