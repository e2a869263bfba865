// The documentation is code: the permission set every install form spells is deno.json's, the
// README's install lines and its "try it on one machine" steps run as written in a scratch HOME,
// and every relative link of README.md and docs/*.md points to a file (and heading) that exists.
import assert from "node:assert/strict";
import { VERSION } from "../lib/util/version.ts";

const root = new URL("..", import.meta.url);
const rootPath = root.pathname.replace(/\/$/, "");

/** README.md and every docs/*.md, as paths relative to the repository. */
function docFiles(): string[] {
  const docs = [...Deno.readDirSync(new URL("docs/", root))]
    .filter((e) => e.isFile && e.name.endsWith(".md"))
    .map((e) => `docs/${e.name}`)
    .sort();
  return ["README.md", ...docs];
}

function read(rel: string): string {
  return Deno.readTextFileSync(new URL(rel, root));
}

/** A fenced code block and the last `##` heading above it. */
interface Block {
  heading: string;
  body: string;
}

function codeBlocks(md: string): Block[] {
  const out: Block[] = [];
  let heading = "";
  let body: string[] | null = null;
  for (const line of md.split("\n")) {
    if (body === null && /^#{1,6} /.test(line)) heading = line.replace(/^#+ /, "");
    if (/^\s*```/.test(line)) {
      if (body === null) body = [];
      else {
        out.push({ heading, body: body.join("\n") });
        body = null;
      }
    } else if (body !== null) body.push(line.replace(/^ {3}/, ""));
  }
  return out;
}

/** Shell lines with their backslash-newline continuations joined. */
function shellLines(text: string): string[] {
  return text.replace(/\\\n\s*/g, "").split("\n");
}

/** Markdown with its fenced code blocks and inline code spans removed. */
function prose(md: string): string {
  return md.replace(/^\s*```[\s\S]*?^\s*```/gm, "").replace(/`[^`\n]*`/g, "");
}

/** The flags deno.json's permission set `cipherpost` stands for, plus the `cipherpost` task's v8 flag. */
function expectedFlags(): { allow: string[]; v8: string } {
  const cfg = JSON.parse(read("deno.json"));
  const set = cfg.permissions.cipherpost as Record<string, boolean | string[]>;
  const allow = Object.entries(set).flatMap(([k, v]) =>
    v === true ? [`--allow-${k}`] : Array.isArray(v) ? [`--allow-${k}=${v.join(",")}`] : []
  ).sort();
  const v8 = /--v8-flags=\S+/.exec(cfg.tasks.cipherpost)?.[0];
  assert.ok(v8, "the cipherpost task of deno.json names its --v8-flags");
  return { allow, v8 };
}

type FormKind = "deno install" | "npx alias" | "deno run jsr:";

/** What kind of install form a shell line is, or null. */
function installForm(line: string): FormKind | null {
  if (/\bdeno install\b.*\s-g\b/.test(line)) return "deno install";
  if (/\bnpx\b.*\bdeno@[\d.]+ run\b/.test(line)) return "npx alias";
  if (/\bdeno run\b.*\bjsr:@cipherpost\//.test(line)) return "deno run jsr:";
  return null;
}

Deno.test("every documented install form spells deno.json's permission set; no doc grants all or FFI", () => {
  const want = expectedFlags();
  const seenInReadme = new Set<FormKind>();
  let forms = 0;
  for (const file of docFiles()) {
    const md = read(file);
    for (const block of codeBlocks(md)) {
      for (const line of shellLines(block.body)) {
        const kind = installForm(line);
        if (!kind) continue;
        forms++;
        if (file === "README.md") seenInReadme.add(kind);
        const allow = (line.match(/--allow-[\w-]+(=\S+)?/g) ?? []).map((f) =>
          f.replace(/["']$/, "")
        )
          .sort();
        assert.deepEqual(allow, want.allow, `${file}: ${kind} spells ${allow.join(" ")}\n${line}`);
        const v8 = line.match(/--v8-flags=\S+/g) ?? [];
        assert.deepEqual(v8, [want.v8], `${file}: ${kind} has ${want.v8} once\n${line}`);
        assert.ok(!/\s-P\b|--permission-set/.test(line), `${file}: ${kind} spells the flags out`);
      }
    }
    for (const [n, line] of md.split("\n").entries()) {
      assert.ok(
        !/(^|[\s`"'(])(-A|--allow-all|--allow-ffi)(?=$|[\s`"'),.=])/.test(line),
        `${file}:${n + 1} names a grant of everything or of FFI: ${line}`,
      );
    }
  }
  assert.deepEqual(
    [...seenInReadme].sort(),
    ["deno install", "deno run jsr:", "npx alias"],
    "the README shows all three install forms",
  );
  assert.ok(forms >= 3);
});

/** GitHub's anchor of a heading. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-");
}

function anchors(md: string): Set<string> {
  const out = new Set<string>();
  let inCode = false;
  for (const line of md.split("\n")) {
    if (/^\s*```/.test(line)) inCode = !inCode;
    else if (!inCode && /^#{1,6} /.test(line)) out.add(slug(line.replace(/^#+ /, "")));
  }
  return out;
}

Deno.test("README stays short; every relative link of README.md and docs/*.md resolves", () => {
  const readme = read("README.md").split("\n");
  assert.ok(readme.length <= 220, `README.md has ${readme.length} lines (at most 220)`);
  for (const [n, line] of readme.entries()) {
    assert.ok([...line].length <= 120, `README.md:${n + 1} is over 120 characters`);
  }
  let links = 0;
  for (const file of docFiles()) {
    const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/") + 1) : "";
    for (const m of prose(read(file)).matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1];
      if (/^[a-z]+:/i.test(target)) continue; // https:, mailto:
      links++;
      const [path, anchor] = target.split("#");
      const rel = path === "" ? file : new URL(path, new URL(dir, root)).pathname.slice(
        rootPath.length + 1,
      );
      let isFile = false;
      try {
        isFile = Deno.statSync(new URL(rel, root)).isFile;
      } catch {
        // reported below
      }
      assert.ok(isFile, `${file}: link ${target} points to ${rel}, which does not exist`);
      if (anchor !== undefined && rel.endsWith(".md")) {
        assert.ok(
          anchors(read(rel)).has(anchor),
          `${file}: link ${target}: ${rel} has no heading #${anchor}`,
        );
      }
    }
  }
  assert.ok(links > 20, `only ${links} relative links found`);
});

/** The environment of a fresh machine: a scratch HOME, Deno on PATH, the same module cache. */
function scratchEnv(tmp: string, installRoot: boolean): Record<string, string> {
  const home = Deno.env.get("HOME") ?? "/nonexistent";
  const env: Record<string, string> = {
    HOME: `${tmp}/home`,
    PATH: `${Deno.execPath().replace(/\/[^/]+$/, "")}:/usr/bin:/bin`,
    TMPDIR: `${tmp}/tmp`,
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
    // the module cache is not part of what is tested: reusing it keeps the test off the network
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${home}/.cache/deno`,
  };
  // how this machine reaches the npm registry, should the cache lack a package
  for (const k of ["SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "DENO_CERT"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  if (installRoot) env.DENO_INSTALL_ROOT = `${tmp}/deno-root`;
  return env;
}

/**
 * The README's install block as bash runs it in the clone (so "$PWD" is the repository: the one
 * substitution), without the `git clone` line (the clone is this repository).
 */
function installScript(): string {
  const block = codeBlocks(read("README.md")).find((b) =>
    b.heading === "Install" && /\bdeno install -g\b/.test(b.body)
  );
  assert.ok(block, "README.md: an Install block with `deno install -g`");
  const lines = block.body.split("\n").filter((l) => !/^git clone\b/.test(l));
  assert.ok(lines.some((l) => /^export PATH=/.test(l)), "the install block sets PATH");
  assert.ok(lines.some((l) => /^cipherpost --version\b/.test(l)), "and runs cipherpost");
  return lines.join("\n");
}

/**
 * Run a bash script in its own process group; the group is killed once its output has ended (and
 * should it hang for 20 minutes: a guard against a hung test, not a timing assertion).
 */
async function bash(script: string, env: Record<string, string>, cwd: string) {
  const child = new Deno.Command("bash", {
    args: ["-c", script],
    env,
    clearEnv: true,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: true, // its own process group, so nothing it starts outlives the test
  }).spawn();
  const killGroup = () => {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch {
      // the group is gone: everything it started has ended
    }
  };
  const guard = setTimeout(killGroup, 20 * 60_000);
  const out = await child.output(); // ends when every holder of its stdout/stderr has ended
  clearTimeout(guard);
  killGroup();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

for (const installRoot of [false, true]) {
  const where = installRoot ? "$DENO_INSTALL_ROOT/bin" : "~/.deno/bin";
  Deno.test(`README install lines put cipherpost on PATH in a scratch HOME (${where})`, async () => {
    const tmp = await Deno.makeTempDir({ prefix: "cp-docs-install-" });
    try {
      const env = scratchEnv(tmp, installRoot);
      await Deno.mkdir(env.TMPDIR, { recursive: true });
      const before = await bash("command -v cipherpost || true", env, rootPath);
      assert.equal(before.stdout.trim(), "", "no cipherpost on the scratch PATH beforehand");
      const r = await bash(`set -e\n${installScript()}\ncommand -v cipherpost`, env, rootPath);
      assert.equal(r.code, 0, r.stderr);
      const [version, path] = r.stdout.trim().split("\n");
      assert.equal(version, VERSION);
      const bin = installRoot ? `${tmp}/deno-root/bin` : `${tmp}/home/.deno/bin`;
      assert.equal(path, `${bin}/cipherpost`);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  });
}

Deno.test("README 'try it on one machine' runs as written: testnet, two homes, a small and a large share", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "cp-docs-try-" });
  try {
    const env = scratchEnv(tmp, false);
    await Deno.mkdir(env.TMPDIR, { recursive: true });
    const inst = await bash(`set -e\n${installScript()}`, env, rootPath);
    assert.equal(inst.code, 0, inst.stderr);
    const block = codeBlocks(read("README.md")).find((b) => b.heading === "Try it on one machine");
    assert.ok(block, "README.md: a code block under 'Try it on one machine'");
    // the install block's PATH line, then the steps exactly as written
    const pathLine = installScript().split("\n").find((l) => /^export PATH=/.test(l))!;
    // on a failing step, the testnet in the background is stopped too
    const script =
      `set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n${pathLine}\n${block.body}`;
    const r = await bash(script, env, `${tmp}/home`);
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^the launch code is 0000$/m);
    assert.match(r.stdout, /^big-copy\.bin is the same file$/m);
    assert.match(r.stderr, /fetched 1 receipt\(s\); 1 valid/);
    assert.match(r.stderr, /Protocol:\s+v2 \+ homeserver/, "the big file went as a large share");
    assert.match(r.stderr, /testnet stopped/, "kill %1 stopped the testnet");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("development.md's `deno task cipherpost <args>` passes options through (no `--`)", async () => {
  const dev = read("docs/development.md");
  assert.match(dev, /^deno task cipherpost <args>/m);
  assert.ok(
    !/deno task cipherpost -- /.test(
      [prose(dev), ...codeBlocks(dev).map((b) => b.body)].join("\n"),
    ),
  );
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "cipherpost", ...args],
      cwd: rootPath,
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  };
  const v = await run(["--version"]);
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout.trim(), VERSION);
  const h = await run(["identity", "show", "--help"]);
  assert.equal(h.code, 0, h.stderr);
  assert.match(h.stdout, /^Usage: cipherpost identity show/m);
});
