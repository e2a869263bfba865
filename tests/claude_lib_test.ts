// lib/claude without Claude Code: folder-name encoding, path rewriting, bundle round trip and
// every refusal of PROTOCOL.md §6.1, escaping of what reaches the terminal, the pickup pointer.
import assert from "node:assert/strict";
import { encodePath, longNameHash, projectDirName } from "../lib/claude/project_dir.ts";
import { rewriteJsonl } from "../lib/claude/place.ts";
import { buildBundle, parseBundle } from "../lib/claude/bundle.ts";
import { TAR_END, tarPadding } from "../lib/material/tar.ts";
import { rawHeader } from "./_tar.ts";
import { shorten } from "../lib/claude/summary.ts";
import { escapeControl } from "../lib/util/encoding.ts";
import { transcriptFacts } from "../lib/claude/transcript.ts";
import { CipherpostError } from "../lib/util/errors.ts";
import { pointerKey } from "../lib/flows/handoff/pointer.ts";
import { generateKeypair } from "../lib/crypto/keys.ts";
import { encodeZ32 } from "../lib/pkarr/public_key.ts";
import { tmpDir } from "./_helpers.ts";

const ID = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d";

Deno.test("folder names: every char outside [A-Za-z0-9] is '-', per UTF-16 unit; long names hashed", () => {
  assert.equal(encodePath("/home/u/my_app.v2"), "-home-u-my-app-v2");
  assert.equal(encodePath("/a b/ü/😀"), "-a-b---" + "--");
  const long = "/" + "x".repeat(120) + "/" + "y".repeat(120);
  const name = projectDirName(long);
  assert.equal(name.slice(0, 200), encodePath(long).slice(0, 200));
  // base 36 of |Java's String.hashCode| (tests/claude_test.ts checks it against Claude Code)
  assert.equal(name, `${encodePath(long).slice(0, 200)}-${longNameHash(long)}`);
  assert.match(longNameHash(long), /^[0-9a-z]+$/);
  assert.equal(projectDirName("/short"), "-short");
});

Deno.test("rewriteJsonl: cwd, workingDirectory and the rendered environment; other lines byte for byte", () => {
  const from = "/home/a/app";
  const to = "/srv/b/app";
  const lines = [
    '{"type":"queue-operation","content":"hi"}',
    JSON.stringify({ type: "user", cwd: from, sessionId: ID }),
    JSON.stringify({ type: "user", cwd: `${from}/sub`, sessionId: ID }),
    JSON.stringify({ type: "user", cwd: `${from}2`, sessionId: ID }),
    JSON.stringify({
      type: "attachment",
      cwd: from,
      attachment: { type: "environment", snapshot: { workingDirectory: from } },
      rendered: [{ content: `x\n - Primary working directory: ${from}\n - y` }],
    }),
    '{"weird":  "spacing kept", "path": "/home/a/app"}',
  ];
  const out = rewriteJsonl(lines.join("\n") + "\n", from, to).split("\n");
  assert.equal(out[0], lines[0]);
  assert.equal(JSON.parse(out[1]).cwd, to);
  assert.equal(JSON.parse(out[2]).cwd, `${to}/sub`);
  assert.equal(
    JSON.parse(out[3]).cwd,
    `${from}2`,
    "a sibling with the same prefix is not rewritten",
  );
  const env = JSON.parse(out[4]);
  assert.equal(env.attachment.snapshot.workingDirectory, to);
  assert.equal(env.rendered[0].content, `x\n - Primary working directory: ${to}\n - y`);
  assert.equal(out[5], lines[5], "a line without cwd fields stays byte for byte");
  assert.equal(out[6], "");
  // and back again gives the original bytes (a hand-back compares line by line)
  assert.equal(rewriteJsonl(out.join("\n"), to, from), lines.join("\n") + "\n");
  // fork: the session ID is replaced
  const other = "11111111-2222-4333-8444-555555555555";
  assert.equal(JSON.parse(rewriteJsonl(lines[1], from, from, ID, other)).sessionId, other);
});

async function sessionOnDisk(): Promise<{ dir: string; files: Parameters<typeof buildBundle>[0] }> {
  const dir = await tmpDir("cp-claude-lib-");
  const folder = `${dir}/projects/-p`;
  await Deno.mkdir(`${folder}/${ID}/subagents`, { recursive: true });
  await Deno.writeTextFile(
    `${folder}/${ID}.jsonl`,
    [
      JSON.stringify({
        type: "user",
        cwd: "/p",
        sessionId: ID,
        version: "2.1.328",
        message: { role: "user", content: "hello \u001b[31mred" },
      }),
      JSON.stringify({
        type: "assistant",
        cwd: "/p",
        sessionId: ID,
        message: { role: "assistant", content: [{ type: "text", text: "hi" }] },
      }),
      JSON.stringify({ type: "last-prompt", lastPrompt: "hello \u001b[31mred", sessionId: ID }),
    ].join("\n") + "\n" + '{"partial":',
  );
  await Deno.writeTextFile(`${folder}/${ID}/subagents/agent-1.jsonl`, "{}\n");
  await Deno.symlink("/etc/passwd", `${folder}/${ID}/link`);
  await Deno.writeTextFile(`${dir}/.claude.json`, "SECRET");
  return {
    dir,
    files: {
      sessionId: ID,
      projectFolder: folder,
      transcript: `${folder}/${ID}.jsonl`,
      sidecar: `${folder}/${ID}`,
    },
  };
}

Deno.test("bundle: round trip; whole lines only; symlinks and everything outside the session stay out", async () => {
  const { files } = await sessionOnDisk();
  const bytes = await buildBundle(files);
  assert.deepEqual([bytes[0], bytes[1]], [0x1f, 0x8b]);
  const b = await parseBundle(bytes);
  assert.equal(b.meta.sessionId, ID);
  assert.equal(b.meta.cwd, "/p");
  assert.equal(b.meta.claudeVersion, "2.1.328");
  assert.equal(b.transcriptSize, (await Deno.stat(files.transcript)).size - '{"partial":'.length);
  assert.deepEqual([...b.sidecar.keys()], ["subagents/agent-1.jsonl"]);
  const f = b.facts;
  assert.equal(f.messages, 2);
  assert.deepEqual(f, transcriptFacts(await Deno.readTextFile(files.transcript)));
  assert.equal(escapeControl(f.lastPrompt!, { backslash: true }), "hello \\x1b[31mred");
});

async function gzip(parts: Uint8Array[]): Promise<Uint8Array> {
  const s = new Blob(parts as BlobPart[]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

function entry(path: string, data: string, type = 0x30): Uint8Array[] {
  const d = new TextEncoder().encode(data);
  const h = rawHeader(path, d.length, String.fromCharCode(type));
  return [h, d, tarPadding(d.length)];
}

const meta = (id = ID) =>
  JSON.stringify({ claude_version: "", cwd: "/p", format: 1, session_id: id });

Deno.test("bundle refusals: traversal, outside paths, duplicates, links, bad metadata, not gzip, checksum", async () => {
  const bad = async (parts: Uint8Array[][], why: RegExp) => {
    await assert.rejects(
      parseBundle(await gzip([...parts.flat(), TAR_END])),
      (e) => e instanceof CipherpostError && e.kind === "invalid_material" && why.test(e.message),
    );
  };
  const head = [entry("cipherpost-session.json", meta()), entry(`${ID}.jsonl`, "{}\n")];
  await bad([...head, entry(`${ID}/../../x`, "x")], /unsafe path/);
  await bad([...head, entry(`${ID}/a/./b`, "x")], /unsafe path/);
  await bad([...head, entry("other/file", "x")], /outside the session/);
  await bad([...head, entry(`${ID}/a`, "x"), entry(`${ID}/a`, "y")], /twice/);
  await bad([...head, entry(`${ID}/l`, "", 0x32)], /other than files/);
  await bad([entry(`${ID}.jsonl`, "{}\n")], /metadata/);
  await bad(
    [entry("cipherpost-session.json", meta("not-a-uuid")), entry("x.jsonl", "")],
    /metadata/,
  );
  await bad([entry("cipherpost-session.json", meta()), entry("x.jsonl", "{}")], /transcript/);
  await assert.rejects(parseBundle(new TextEncoder().encode("plain text")), /gzip/);
  const h = entry("cipherpost-session.json", meta());
  h[0][0] ^= 1;
  await bad([h, entry(`${ID}.jsonl`, "")], /checksum/);
  // and a good one parses
  const ok = await parseBundle(
    await gzip([...head.flat(), ...entry(`${ID}/t/x.txt`, "x"), TAR_END]),
  );
  assert.deepEqual([...ok.sidecar.keys()], ["t/x.txt"]);
});

Deno.test("escaping and shortening for the acceptance screen", () => {
  // the one terminal escaper, with backslashes escaped for transcript text
  assert.equal(
    escapeControl("a\u001b]0;x\u0007b\u202ec\\\n", { backslash: true }),
    "a\\x1b]0;x\\x07b\\u202ec\\\\\\x0a",
  );
  assert.equal(shorten("a  b\n c"), "a b c");
  assert.equal(Array.from(shorten("é".repeat(100), 10)).length, 10);
});

Deno.test("pickup pointer key: both parties derive it; third parties and swapped roles do not", () => {
  const a = generateKeypair();
  const b = generateKeypair();
  const c = generateKeypair();
  const [za, zb] = [encodeZ32(a.publicKey), encodeZ32(b.publicKey)];
  const bySender = pointerKey(a.seed, b.publicKey, za, zb).publicKey;
  const byRecipient = pointerKey(b.seed, a.publicKey, za, zb).publicKey;
  assert.deepEqual(bySender, byRecipient);
  assert.notDeepEqual(pointerKey(c.seed, b.publicKey, za, zb).publicKey, bySender);
  assert.notDeepEqual(pointerKey(b.seed, a.publicKey, zb, za).publicKey, bySender, "B→A differs");
});
