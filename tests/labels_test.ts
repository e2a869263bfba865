// The record names of a sender's packet (lib/protocol/labels.ts): share and receipt records are
// found by their name relative to the packet's key, and nothing else matches.
import assert from "node:assert/strict";
import { txtRecord, txtText } from "../lib/pkarr/dns.ts";
import { generateKeypair } from "../lib/crypto/keys.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";
import { signPacket } from "../lib/pkarr/signed_packet.ts";
import {
  receiptLabel,
  receiptRecords,
  recordNamesShare,
  SHARE_LABEL,
  shareRecords,
  textNamesShare,
} from "../lib/protocol/labels.ts";

const REF = "0123456789abcdef0123456789abcdef";
const OTHER = "fedcba9876543210fedcba9876543210";

Deno.test("labels: share and receipt records are found by name relative to the packet key", () => {
  const kp = generateKeypair();
  const z = encodeZ32(kp.publicKey);
  const p = signPacket(kp.seed, [
    txtRecord("_pubky", 300, "x"),
    txtRecord(SHARE_LABEL, 300, `{"share_ref":"${REF}"}`),
    txtRecord(receiptLabel(REF), 300, "r1"),
    txtRecord(`${receiptLabel(OTHER)}.sub`, 300, "two labels: not a receipt"),
    txtRecord(`_cprcptx.${z}`, 300, "no dash: not a receipt"),
    txtRecord("@", 300, "apex"),
  ], Date.now() * 1000);
  assert.deepEqual(shareRecords(p).map((r) => r.name), [`_cipherpost.${z}`]);
  assert.deepEqual(receiptRecords(p).map(txtText), ["r1"]);
  const share = shareRecords(p)[0];
  assert.equal(recordNamesShare(share, REF), true);
  assert.equal(recordNamesShare(share, OTHER), false);
  assert.equal(textNamesShare(null, REF), false);
  assert.equal(textNamesShare(`{"share_ref": "${REF}"}`, REF), false, "compact form only");
  // another key's packet: the same labels under its own origin, none of ours
  const other = generateKeypair();
  const q = signPacket(other.seed, [txtRecord(`_cipherpost.${z}`, 300, "foreign")], 1);
  assert.deepEqual(shareRecords({ publicKey: other.publicKey, records: q.records }), []);
});
