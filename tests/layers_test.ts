// Issue 8 (layers): the record-name lookups of lib/protocol/labels.ts, the typed sent-share
// records of lib/state/state.ts, and the import rules of lib/protocol/ and lib/flows/.
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
import { type SentShare, State } from "../lib/state/state.ts";
import { tmpDir } from "./_helpers.ts";

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

Deno.test("state: sent-share records round-trip typed; malformed files are skipped", async () => {
  const home = await tmpDir();
  try {
    const state = new State(home);
    const v1: SentShare = {
      version: 1,
      shareRef: REF,
      uri: `cipherpost://x/${REF}`,
      sender: "s",
      recipient: null,
      createdAt: 1,
      expiresAt: 2,
      ciphertextSha256: "ab".repeat(32),
    };
    const v2: SentShare = {
      version: 2,
      shareRef: OTHER,
      uri: "cipherpost://x/v2",
      sender: "s",
      recipient: "r",
      createdAt: 3,
      expiresAt: 4,
      locator: "cd".repeat(32),
      packets: ["AAAA"],
    };
    await state.saveSent(v1);
    await state.saveSent(v2);
    // the on-disk form is canonical snake_case JSON, as before issue 8
    assert.equal(
      await Deno.readTextFile(`${home}/state/sent/${REF}.json`),
      `{"ciphertext_sha256":"${
        "ab".repeat(32)
      }","created_at":1,"expires_at":2,"recipient":null,"sender":"s","share_ref":"${REF}","uri":"cipherpost://x/${REF}","version":1}`,
    );
    const bad = [
      "not json",
      `{"version":2,"share_ref":"${
        "1".repeat(32)
      }","uri":"u","sender":"s","recipient":null,"created_at":1,"expires_at":2,"packets":[]}`,
      `{"version":3,"share_ref":"${
        "2".repeat(32)
      }","uri":"u","sender":"s","recipient":null,"created_at":1,"expires_at":2}`,
      `{"version":1,"share_ref":"${
        "3".repeat(32)
      }","uri":"u","sender":"s","recipient":7,"created_at":1,"expires_at":2}`,
    ];
    for (const [i, text] of bad.entries()) {
      await Deno.writeTextFile(`${home}/state/sent/${String(i).repeat(32)}.json`, text);
    }
    const got = (await state.listSent()).sort((a, b) => a.createdAt - b.createdAt);
    assert.deepEqual(got, [v1, v2]);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

/** The relative imports of every .ts file directly in `dir`. */
async function importsOf(dir: string): Promise<Array<{ file: string; spec: string }>> {
  const out: Array<{ file: string; spec: string }> = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !e.name.endsWith(".ts")) continue;
    const text = await Deno.readTextFile(`${dir}/${e.name}`);
    for (const m of text.matchAll(/^(?:import|export)[^;]*?from "([^"]+)"/gms)) {
      out.push({ file: e.name, spec: m[1] });
    }
  }
  return out;
}

Deno.test("layers: protocol does no network I/O; flows import only shared flow helpers", async () => {
  const lib = new URL("../lib/", import.meta.url).pathname;
  const protocol = await importsOf(`${lib}protocol`);
  assert.ok(protocol.length > 0);
  for (const { file, spec } of protocol) {
    assert.ok(!spec.endsWith("/transport.ts"), `${file} imports ${spec}`);
    assert.ok(
      !/^\.\.\/(state|flows|cli|testing|homeserver|claude)\//.test(spec),
      `${file}: ${spec}`,
    );
  }
  const shared = new Set(["./ui.ts", "./v2_transfer.ts", "./receipt_slot_io.ts"]);
  const flows = await importsOf(`${lib}flows`);
  assert.ok(flows.some((i) => i.file === "receive.ts"));
  for (const { file, spec } of flows) {
    if (spec.startsWith("./")) assert.ok(shared.has(spec), `${file} imports the flow ${spec}`);
    assert.ok(!/^\.\.\/(cli|testing)\//.test(spec), `${file}: ${spec}`);
  }
});
