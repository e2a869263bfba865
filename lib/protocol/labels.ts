/**
 * Record names of cipherpost (docs/PROTOCOL.md §2–§3) and the one way to
 * look a record up in a packet: pkarr's `recordsNamed` (the name normalized against the
 * packet's key, exact comparison, as the Rust resolver does).
 *
 * @module
 */

import { type DnsRecord, txtText } from "../pkarr/dns.ts";
import { recordsNamed, type SignedPacket } from "../pkarr/signed_packet.ts";

/** The v1 share record (`_cipherpost.<sender-z32>`). */
export const SHARE_LABEL = "_cipherpost";
/** The start of a v1 receipt record's label (`_cprcpt-<share_ref>.<recipient-z32>`). */
export const RECEIPT_LABEL_PREFIX = "_cprcpt-";
/** v2 manifest packet: the sealed manifest (or `revoked`). */
export const MANIFEST_LABEL = "_cpm";
/** v2 part packet: raw ciphertext bytes. */
export const PART_LABEL = "_cpp";
/** v2 receipt packets and the v1 receipt overflow slot: the receipt. */
export const RECEIPT_SLOT_LABEL = "_cpr";
/** v2 receipt head packet: how many receipt packets there are. */
export const RECEIPT_COUNT_LABEL = "_cprn";

/** What a lookup needs of a packet: its key (the origin) and its records. */
export type RecordSet = Pick<SignedPacket, "publicKey" | "records">;

/** The v1 receipt label of a share. */
export function receiptLabel(shareRef: string): string {
  return `${RECEIPT_LABEL_PREFIX}${shareRef}`;
}

/** The TXT records of `p` named `label` (relative to the packet's key), in packet order. */
export function txtRecordsNamed(p: RecordSet, label: string): DnsRecord[] {
  return recordsNamed(p, label).filter((r) => r.data.type === "TXT");
}

/** The `_cipherpost` TXT records of a packet. */
export function shareRecords(p: RecordSet): DnsRecord[] {
  return txtRecordsNamed(p, SHARE_LABEL);
}

/** The v1 receipt records of a packet: every one-label name that starts with `_cprcpt-`. */
export function receiptRecords(p: RecordSet): DnsRecord[] {
  return recordsNamed(p, "*").filter((r) => r.name.startsWith(RECEIPT_LABEL_PREFIX));
}

/**
 * Whether a share record's JSON text names `shareRef`: a substring test on the compact
 * `"share_ref":"<ref>"` (serde's form; the record is parsed and verified afterwards).
 */
export function textNamesShare(text: string | null, shareRef: string): boolean {
  return text !== null && text.includes(`"share_ref":"${shareRef}"`);
}

/** Whether a `_cipherpost` record names `shareRef` (see {@link textNamesShare}). */
export function recordNamesShare(r: DnsRecord, shareRef: string): boolean {
  return textNamesShare(txtText(r), shareRef);
}
