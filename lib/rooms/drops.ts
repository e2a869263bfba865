/**
 * File drops (docs/PROTOCOL.md §9.8): the body of a `file_drop` message is the `large_pointer`
 * of a large share (§5.1) whose parts are on the dropper's homeserver. This module makes and
 * reads that body, picks a drop's part size, and says how a drop is shown (never its body, which
 * holds the content identity). Pure.
 *
 * @module
 */

import {
  DEFAULT_PART_SIZE,
  encodePointer,
  type LargePointer,
  MAX_PART_SIZE,
  parsePointer,
  partCount,
} from "../protocol/large_manifest.ts";
import { escapeControl, fromUtf8, utf8 } from "../util/encoding.ts";
import { CipherpostError } from "../util/errors.ts";
import { formatBytes } from "../util/human.ts";
import { MAX_BODY } from "./names.ts";
import type { Message } from "./records.ts";

/** Most parts a drop has: a pointer of 100 part hashes fits a message body. */
export const MAX_DROP_PARTS = 100;
/** Largest file a drop carries: 100 parts of 63 MiB. */
export const MAX_DROP_SIZE = MAX_DROP_PARTS * MAX_PART_SIZE;

/** A verified drop: the message that announced it and the pointer its body holds. */
export interface Drop {
  /** the drop id: the pointer's `blob_id` (32 hex) */
  id: string;
  /** The file's name as the dropper gave it (author-controlled: escape it before display). */
  name: string;
  /** The file's size in bytes. */
  size: number;
  /** The message that carried the drop (author, epoch, seq, time). */
  message: Message;
  /** @ignore the pointer (holds the content identity: a secret of the room) */
  pointer: LargePointer;
}

/**
 * The plaintext part size of a drop of `size` bytes: 16 MiB, raised in whole MiB so that the
 * drop has at most {@link MAX_DROP_PARTS} parts.
 *
 * @throws too_large when `size` is over {@link MAX_DROP_SIZE}
 */
export function dropPartSize(size: number): number {
  if (size > MAX_DROP_SIZE) {
    throw new CipherpostError(
      "too_large",
      `file too large for a drop: ${size} bytes (at most ${MAX_DROP_SIZE})`,
    );
  }
  let p = DEFAULT_PART_SIZE;
  while (partCount(size, p) > MAX_DROP_PARTS) p += 1 << 20;
  return p;
}

/**
 * The body of a `file_drop` message: the canonical JSON of the pointer, as text.
 *
 * @throws usage when the pointer is not a file's; too_large when the body would be over 8 KiB
 *   (too many parts, or a very long name)
 */
export function dropBody(p: LargePointer): string {
  if (p.kind !== "file") throw new CipherpostError("usage", "a drop is a single file");
  const bytes = encodePointer(p);
  if (p.parts > MAX_DROP_PARTS || bytes.length > MAX_BODY) {
    throw new CipherpostError(
      "too_large",
      `the drop's pointer is ${bytes.length} bytes (${p.parts} parts): a message holds ${MAX_BODY}`,
    );
  }
  return fromUtf8(bytes);
}

/**
 * The drop a verified message carries, or null when it is not a `file_drop` or its body is not
 * a file pointer that passes every check of §5.1 (such a drop is shown as unreadable).
 */
export function dropOf(m: Message): Drop | null {
  if (m.kind !== "file_drop") return null;
  let p: LargePointer;
  try {
    const any = parsePointer(utf8(m.body));
    if (any.version !== 1) return null; // a drop carries a version-1 pointer (§9.8)
    p = any;
  } catch {
    return null;
  }
  if (p.kind !== "file" || p.parts > MAX_DROP_PARTS) return null;
  return { id: p.blobId, name: p.name, size: p.size, message: m, pointer: p };
}

/**
 * What a message shows: a chat body as it is, a drop as `[file] NAME (SIZE, id ID)` (the name
 * escaped), never the drop's body. Not escaped otherwise: callers escape the whole line.
 */
export function messageText(m: Message): string {
  if (m.kind !== "file_drop") return m.body;
  const d = dropOf(m);
  if (!d) return "[file drop that cannot be read]";
  return `[file] ${escapeControl(d.name)} (${formatBytes(d.size)}, id ${d.id})`;
}
