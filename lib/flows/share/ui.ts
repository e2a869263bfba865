/**
 * The small UI port the flows talk through: they report what they do and ask for the one
 * decision they need, and never print, format for humans or read a terminal themselves. The
 * CLI (`lib/cli/`) implements it on stderr and the TTY.
 *
 * @module
 */

import type { Envelope } from "../../protocol/record.ts";

/** What every flow may tell the user. */
export interface FlowUi {
  /** A status line: what the flow does now, or what it found ("Publishing to DHT..."). */
  status(line: string): void;
  /** An advisory the user should know about (the CLI shows it as `note: <text>`). */
  note(text: string): void;
}

/** Everything the acceptance screen shows of a verified, decrypted share. */
export interface AcceptanceSummary {
  protocol: 1 | 2;
  /** z32 sender key (verified) */
  sender: string;
  shareRef: string;
  createdAt: number;
  ttlSeconds: bigint;
  envelope: Envelope;
  /** the moment the TTL was checked */
  now: Date;
  /** lines that replace the material preview (a material handler's, e.g. a Claude session's) */
  preview?: string[];
}

/** The UI of `receive`: it also asks the user to accept. */
export interface ReceiveUi extends FlowUi {
  /**
   * Show the acceptance screen and ask the user to accept the share; true only when the user
   * confirmed (in cipherpost: typed the sender's key back). May throw a CipherpostError
   * ("declined") when nobody can be asked.
   */
  confirm(summary: AcceptanceSummary): Promise<boolean>;
}
