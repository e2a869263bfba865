// The typed sent-share records of lib/state/state.ts: they round-trip, are stored as canonical
// snake_case JSON, and malformed files in the sent folder are skipped.
import assert from "node:assert/strict";
import { type SentShare, State } from "../lib/state/state.ts";
import { tmpDir } from "./_helpers.ts";

const REF = "0123456789abcdef0123456789abcdef";
const OTHER = "fedcba9876543210fedcba9876543210";

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
    // the on-disk form is canonical snake_case JSON
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
