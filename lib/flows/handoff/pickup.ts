/**
 * `claude pickup`: find the hand-off (the given URI, or the pickup pointer from `from`),
 * receive it with every check of an ordinary share, show the session on the acceptance screen,
 * and place it for `claude --resume` (PROTOCOL.md §6; lib/claude/place.ts). Launching Claude
 * Code is the CLI's job.
 *
 * @module
 */

import type { Keypair } from "../../crypto/keys.ts";
import { parsePublicKey } from "../../pkarr/public_key.ts";
import type { Transport } from "../../pkarr/transport.ts";
import { fetchPointer } from "./pointer.ts";
import { parseShareUri, type ShareUri } from "../../protocol/share_uri.ts";
import type { State } from "../../state/state.ts";
import { CipherpostError, signatureError } from "../../util/errors.ts";
import { type Bundle, parseBundle } from "../../claude/bundle.ts";
import { applyPlacement, type Placement, planPlacement } from "../../claude/place.ts";
import { escapeText, summarizeBundle, summaryLines } from "../../claude/summary.ts";
import {
  checkConsumed,
  publishPendingReceipt,
  receive,
  type ReceiveResult,
} from "../share/receive.ts";
import type { AcceptanceSummary, FlowUi } from "../share/ui.ts";
import type { LargeContext } from "../large/receive.ts";
import { ensurePrivateDir } from "../../util/fsutil.ts";
import { toHex } from "../../util/encoding.ts";

/** How to pick up. */
export interface ClaudePickupRequest {
  /** the share URI; absent = the newest pointer from `from` (default: our own key) */
  uri?: string;
  from?: string;
  configDir: string;
  cwd: string;
  project?: string;
  fork: boolean;
  pin: () => Promise<string>;
  /** shows the acceptance screen and asks the user (see ReceiveUi.confirm) */
  confirm: (summary: AcceptanceSummary) => Promise<boolean>;
  /**
   * Receives a session that travelled through the homeserver tier (a large share, PROTOCOL.md
   * §5) into `output`, with that flow's acceptance screen; absent = such shares are refused.
   */
  large?: (ctx: LargeContext, output: string) => Promise<ReceiveResult>;
}

/** What happened. */
export interface ClaudePickupResult {
  status: "placed" | "already_accepted";
  shareRef: string;
  placement?: Placement;
  receiptPublished?: boolean;
}

/** The share URI to receive: the argument, or the one the pointer names. */
export async function pickupUri(
  t: Transport,
  me: Keypair,
  req: Pick<ClaudePickupRequest, "uri" | "from">,
  log: (line: string) => void,
): Promise<ShareUri> {
  if (req.uri !== undefined) {
    if (req.from !== undefined) {
      throw new CipherpostError("config", "configuration error: give a URI or --from, not both");
    }
    return parseShareUri(req.uri);
  }
  let senderPk = me.publicKey;
  if (req.from !== undefined) {
    try {
      senderPk = parsePublicKey(req.from);
    } catch {
      throw new CipherpostError("config", "configuration error: --from needs a z-base-32 key");
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

/** Receive and place a session. */
export async function claudePickup(
  t: Transport,
  state: State,
  me: Keypair,
  req: ClaudePickupRequest,
  log: (line: string) => void,
): Promise<ClaudePickupResult> {
  const uri = await pickupUri(t, me, req, log);
  // A session that came through the homeserver is kept here until it is placed (so a refused
  // placement can be retried, e.g. with --fork, after the share was accepted).
  const keptDir = `${state.dir}/claude`;
  const kept = uri.version === 2 ? `${keptDir}/${toHex(uri.locator).slice(0, 32)}.tar.gz` : null;
  const placeKept = async (shareRef: string): Promise<ClaudePickupResult> => {
    const bytes = await Deno.readFile(kept!);
    const bundle = await parseBundle(bytes);
    const plan = await planPlacement(bundle, {
      configDir: req.configDir,
      cwd: req.cwd,
      project: req.project,
      fork: req.fork,
    });
    for (const l of screenLines(bundle, bytes.length, plan)) log(l);
    await applyPlacement(plan);
    await Deno.remove(kept!).catch(() => {});
    return { status: "placed", shareRef, placement: plan };
  };
  const ui: FlowUi = { status: log, note: (text) => log(`note: ${text}`) };
  const consumed = await checkConsumed(state, uri, ui);
  if (consumed) {
    // a session is placed once: an accepted hand-off only publishes a pending receipt
    if (consumed.kind === "pending") await publishPendingReceipt(t, state, me, consumed.ref, ui);
    if (kept && await exists(kept)) return await placeKept(consumed.ref);
    return { status: "already_accepted", shareRef: consumed.ref };
  }
  let placement: Placement | undefined;
  let viaLarge = false;
  const r = await receive(
    t,
    state,
    me,
    {
      uri,
      force: false,
      armor: false,
      pin: req.pin,
      large: req.large && kept
        ? async (ctx) => {
          await ensurePrivateDir(keptDir);
          const res = await req.large!(ctx, kept);
          viaLarge = true;
          return res;
        }
        : undefined,
      handler: async (material) => {
        if (material.type !== "claude_session") {
          throw new CipherpostError(
            "invalid_material",
            `invalid material: this share holds ${material.type}, not a Claude Code session`,
            "receive it with: cipherpost receive URI",
          );
        }
        const bundle = await parseBundle(material.bytes);
        const plan = await planPlacement(bundle, {
          configDir: req.configDir,
          cwd: req.cwd,
          project: req.project,
          fork: req.fork,
        });
        placement = plan;
        return {
          lines: screenLines(bundle, material.bytes.length, plan),
          deliver: () => applyPlacement(plan),
        };
      },
    },
    { ...ui, confirm: req.confirm },
    () => Promise.resolve(),
  );
  if (r.status !== "received") {
    if (kept && await exists(kept)) return await placeKept(r.shareRef);
    return { status: "already_accepted", shareRef: r.shareRef };
  }
  if (viaLarge) {
    const placed = await placeKept(r.shareRef);
    return { ...placed, receiptPublished: r.receiptPublished };
  }
  return {
    status: "placed",
    shareRef: r.shareRef,
    placement,
    receiptPublished: r.receiptPublished,
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** The session part of the acceptance screen, with where it goes and what happens. */
function screenLines(b: Bundle, bundleBytes: number, plan: Placement): string[] {
  const lines = summaryLines(summarizeBundle(b), bundleBytes);
  lines.push(
    `Place in:    ${escapeText(plan.targetDir)}${plan.rewritten ? " (paths rewritten)" : ""}`,
  );
  const what = {
    new: "new session",
    replace: "replaces the shorter local copy",
    keep: "the local copy is longer and is kept",
    same: "identical to the local copy",
    fork: `diverged from the local copy: placed as new session ${plan.sessionId}`,
  }[plan.action];
  lines.push(`Action:      ${what}`);
  return lines;
}
