/**
 * The one UI port every flow talks through (shares, large shares, Claude Code hand-offs): flows
 * report what they do and ask for the one decision they need, and never print, format for
 * humans or read a terminal themselves. The CLI (`lib/cli/`) implements it on stderr and the
 * TTY; a library user implements it however they like.
 *
 * @module
 */

import type { MaterialType } from "../../material/material.ts";
import type { SessionSummary } from "../../claude/summary.ts";
import type { PlaceAction } from "../../claude/place.ts";
import type { Keypair } from "../../crypto/keys.ts";
import type { Transport } from "../../pkarr/transport.ts";
import type { State } from "../../state/state.ts";

/** What a flow runs against: the network, the home's records, and the unlocked identity. */
export interface FlowContext {
  /** The network handle (open one per task; the caller closes it). */
  transport: Transport;
  /** The home's record of sent and accepted shares. */
  state: State;
  /** The unlocked identity the flow acts as. */
  me: Keypair;
}

/** What every flow may tell the user, and the one question a receive asks. */
export interface FlowUi {
  /** A status line: what the flow does now, or what it found ("Publishing to DHT..."). */
  status(line: string): void;
  /** An advisory the user should know about (the CLI shows it as `note: <text>`). */
  note(text: string): void;
  /**
   * Transfer progress, in bytes or parts, both growing monotonically; `phase` names what moves
   * ("fetch" of DHT packets, "upload" or "download" of homeserver parts). Optional.
   */
  progress?(phase: ProgressPhase, done: number, total: number): void;
  /**
   * Show the acceptance screen of a verified share and ask the user to accept it; resolves true
   * only when the user confirmed (cipherpost's CLI wants the sender's key typed back, or
   * `--accept`). May throw a CipherpostError of kind `declined` when nobody can be asked.
   * Required by every receive; a flow that needs it and finds none declines.
   */
  confirm?(summary: AcceptanceSummary): Promise<boolean>;
}

/** What a {@link FlowUi.progress} call measures. */
export type ProgressPhase = "fetch" | "upload" | "download";

/**
 * Everything the acceptance screen shows of a verified, decrypted share. Every string in it came
 * from the sender: escape it before it reaches a terminal (the CLI's screen does).
 */
export interface AcceptanceSummary {
  /** 1 or 2 (a large share or a hand-off through the homeserver is a v2 share) */
  protocol: 1 | 2;
  /** z32 sender key (verified) */
  sender: string;
  /** the sender's contact name in this home, or null when the key is not a contact */
  senderContact: string | null;
  /** The share's 32-hex reference. */
  shareRef: string;
  /** Unix seconds when the share was made (signed). */
  createdAt: number;
  /** The share's lifetime in seconds. */
  ttlSeconds: bigint;
  /** the sender's purpose text (sender-controlled; never holds a C0 control) */
  purpose: string;
  /** the share is gone once accepted */
  burnAfterRead: boolean;
  /** the moment the TTL was checked */
  now: Date;
  /** what the share holds */
  payload: PayloadSummary;
}

/** The variants of what a share can hold, as the acceptance screen shows them. */
export type PayloadSummary = MaterialSummary | LargeSummary | SessionSummaryView;

/** A DHT share: typed material of at most 64 KiB. */
export interface MaterialSummary {
  /** The variant: a DHT share's material. */
  kind: "material";
  /** The material type. */
  type: MaterialType;
  /** The material (a secret: do not log it). */
  bytes: Uint8Array;
}

/** A large share: a file or a folder on the sender's homeserver (docs/PROTOCOL.md §5). */
export interface LargeSummary {
  /** The variant: a large share. */
  kind: "large";
  /** a single file or a folder (a tar) */
  content: "file" | "directory";
  /** the sender's name for it */
  name: string;
  /** Payload bytes; null for a streaming share whose sender did not know them (§5.7). */
  size: number | null;
  /** Parts on the homeserver; null for a streaming share (the sender's closing record says). */
  parts: number | null;
  /** z32 of the sender's homeserver */
  homeserver: string;
  /** the URL the parts will be fetched from (resolved from the homeserver's packet) */
  endpoint: string;
  /** directories: the sender's signed file count (a folder that differs is refused) */
  fileCount?: number;
  /** Directories: the sender's list of its first top-level entries (the sender's word). */
  topEntries?: string[];
  /** where it will be written */
  target: string;
}

/**
 * A Claude Code session hand-off: the session's facts (every string sender-controlled) and what
 * is placed, and where.
 */
export interface SessionSummaryView extends SessionSummary {
  /** The variant: a Claude Code session. */
  kind: "claude_session";
  /** the compressed bundle */
  bundleBytes: number;
  /** the directory the session is placed for (and `claude` would run in) */
  targetDir: string;
  /** transcript paths are rewritten to targetDir */
  rewritten: boolean;
  /** what placing does to a local copy of the same session */
  action: PlaceAction;
  /** the session ID it is placed under (a new one for a fork) */
  placedAs: string;
  /** it travelled as a large share through the sender's homeserver */
  viaHomeserver?: string;
}
