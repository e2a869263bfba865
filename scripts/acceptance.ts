/**
 * Release acceptance: drive the real CLI end to end against a real network.
 *
 *   deno run -P=cipherpost --allow-run scripts/acceptance.ts [--bin path/to/cipherpost]
 *
 * Two fresh identities (A, B) in temporary homes; the passphrase reaches the CLI through
 * `CIPHERPOST_PASSPHRASE` and the PIN through a 0600 `--pin-file`, never through argv. Steps:
 * identity generate ×2, a small v1 share A→B (`send --json`, `receive --accept`), B's receipt
 * fetched by A (`receipts --from B --json`) and checked offline (`receipt verify`), a 4 KiB v2
 * share with a PIN, its receipt, `revoke` (and the revocation seen by a resolver), and a check
 * that no secret ever reached stderr. One PASS/FAIL line per step with its timing; exit 1 when
 * any step fails.
 *
 * The network is whatever the CLI uses: the public Mainline bootstrap nodes and pkarr relays,
 * unless `CIPHERPOST_BOOTSTRAP` / `CIPHERPOST_RELAYS` are set (e.g. to a `cipherpost testnet`).
 * The public DHT is slow and flaky, so every network step is retried a bounded number of times
 * (`--attempts`, default 4) with a growing pause (`--retry-delay` seconds, default 10), and only
 * on the exit codes that mean "not there yet" (5) or "network" (6); a signature (3) or
 * credential (4) failure is never retried: it is a real defect.
 *
 * Options: `--bin PATH` run a compiled binary instead of `deno run -P=cipherpost main.ts`;
 * `--attempts N`; `--retry-delay S`; `--timeout S` per CLI run (default 300); `--keep` keep the
 * temporary homes.
 *
 * @module
 */

const ROOT = new URL("..", import.meta.url);
const MAIN_TS = new URL("main.ts", ROOT).pathname;
const DENO_JSON = new URL("deno.json", ROOT).pathname;

interface Options {
  bin: string | null;
  attempts: number;
  retryDelayS: number;
  timeoutS: number;
  keep: boolean;
}

function usage(msg: string): never {
  console.error(`acceptance: ${msg}`);
  console.error(
    "usage: deno run -P=cipherpost --allow-run scripts/acceptance.ts [--bin PATH] " +
      "[--attempts N] [--retry-delay S] [--timeout S] [--keep]",
  );
  Deno.exit(2);
}

function parseArgs(args: string[]): Options {
  const o: Options = { bin: null, attempts: 4, retryDelayS: 10, timeoutS: 300, keep: false };
  const num = (flag: string, v: string | undefined, min: number): number => {
    if (v === undefined || !/^[0-9]+(\.[0-9]+)?$/.test(v) || Number(v) < min) {
      usage(`${flag} takes a number ≥ ${min}`);
    }
    return Number(v);
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--bin") {
      if (!args[i + 1]) usage("--bin takes a path");
      o.bin = args[++i];
    } else if (a === "--attempts") o.attempts = num(a, args[++i], 1);
    else if (a === "--retry-delay") o.retryDelayS = num(a, args[++i], 0);
    else if (a === "--timeout") o.timeoutS = num(a, args[++i], 1);
    else if (a === "--keep") o.keep = true;
    else if (a === "-h" || a === "--help") usage("help");
    else usage(`unknown argument '${a}'`);
  }
  return o;
}

const opts = parseArgs(Deno.args);

/** One CLI run. */
interface Run {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Uint8Array;
}

/** Every stderr the CLI produced, for the final "no secret on stderr" check. */
const allStderr: string[] = [];

/** The CLI invocation: the compiled binary, or `deno run` with the program's permission set. */
function command(args: string[]): { cmd: string; args: string[] } {
  if (opts.bin) return { cmd: opts.bin, args };
  return {
    cmd: Deno.execPath(),
    args: ["run", `--config=${DENO_JSON}`, "-P=cipherpost", "--no-prompt", MAIN_TS, ...args],
  };
}

/** Run the CLI with `home` as CIPHERPOST_HOME; `env` adds variables (secrets go here). */
async function cli(
  home: string,
  args: string[],
  o: { env?: Record<string, string>; stdin?: Uint8Array } = {},
): Promise<Run> {
  const { cmd, args: full } = command(args);
  const env: Record<string, string> = {
    CIPHERPOST_HOME: home,
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
    ...(o.env ?? {}),
  };
  const signal = AbortSignal.timeout(opts.timeoutS * 1000);
  const child = new Deno.Command(cmd, {
    args: full,
    env,
    cwd: ROOT.pathname,
    stdin: o.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    signal,
  }).spawn();
  if (o.stdin) {
    const w = child.stdin.getWriter();
    await w.write(o.stdin);
    await w.close();
  }
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  allStderr.push(stderr);
  return {
    code: signal.aborted ? 124 : out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: signal.aborted ? `${stderr}\n(killed after ${opts.timeoutS}s)` : stderr,
    stdoutBytes: out.stdout,
  };
}

/** A step failed for good (no retry). */
class StepFailure extends Error {}
/** A step failed in a way worth another attempt (network, not yet visible). */
class Retryable extends Error {}

/** Exit codes that mean "try again": 5 not found (yet), 6 network, 124 our timeout. */
const RETRY_CODES = new Set([5, 6, 124]);

/** The last lines of a stderr, without Deno's "permissions in the config file" warning. */
function lastLines(text: string, n = 4): string {
  return text.trim().split("\n").filter((l) => !/experimental feature/.test(l)).slice(-n)
    .join(" | ");
}

/** Throw unless `r` exited with `want`; retryable codes become Retryable. */
function expectCode(r: Run, want: number, what: string, retry = RETRY_CODES): void {
  if (r.code === want) return;
  const msg = `${what}: exit ${r.code} (want ${want}): ${lastLines(r.stderr)}`;
  throw retry.has(r.code) ? new Retryable(msg) : new StepFailure(msg);
}

function check(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new StepFailure(msg);
}

interface StepResult {
  name: string;
  ok: boolean;
  ms: number;
  attempts: number;
  detail?: string;
}
const results: StepResult[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Run a step, retrying Retryable failures up to `attempts` times. A failed step is recorded and
 * `null` returned; later steps that need its value are skipped (and count as failed).
 */
async function step<T>(
  name: string,
  f: () => Promise<T>,
  o: { network?: boolean } = {},
): Promise<T | null> {
  const max = o.network ? opts.attempts : 1;
  const t0 = performance.now();
  let detail = "";
  for (let attempt = 1; attempt <= max; attempt++) {
    try {
      const v = await f();
      const ms = performance.now() - t0;
      results.push({ name, ok: true, ms, attempts: attempt });
      report(results[results.length - 1]);
      return v;
    } catch (e) {
      detail = e instanceof Error ? e.message : String(e);
      if (!(e instanceof Retryable) || attempt === max) break;
      console.error(`  retry ${name} (attempt ${attempt}/${max}): ${detail}`);
      await sleep(opts.retryDelayS * 1000 * attempt);
    }
  }
  const ms = performance.now() - t0;
  results.push({ name, ok: false, ms, attempts: max, detail });
  report(results[results.length - 1]);
  return null;
}

function skip(name: string, because: string): void {
  results.push({ name, ok: false, ms: 0, attempts: 0, detail: `skipped: ${because}` });
  report(results[results.length - 1]);
}

function report(r: StepResult): void {
  const secs = (r.ms / 1000).toFixed(2).padStart(7);
  const tries = r.attempts > 1 ? ` (${r.attempts} attempts)` : "";
  console.log(`${r.ok ? "PASS" : "FAIL"} ${secs}s  ${r.name}${tries}`);
  if (!r.ok && r.detail) console.log(`               ${r.detail}`);
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const utf8 = (s: string) => new TextEncoder().encode(s);
const randomHex = (n: number) => hex(crypto.getRandomValues(new Uint8Array(n)));

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The share_ref of a receipt list entry (`receipts --json`). */
interface ReceiptJson {
  share_ref: string;
  sender_pubkey: string;
  recipient_pubkey: string;
}

// ---------------------------------------------------------------------------------------------

const base = await Deno.makeTempDir({ prefix: "cipherpost-acceptance-" });
const homeA = `${base}/a`;
const homeB = `${base}/b`;
// Secrets of this run: random, so that finding one on stderr is meaningful.
const passphrase = `acceptance ${randomHex(12)}`;
const pin = `pin-${randomHex(6)}`;
const secretV1 = `cp-acceptance-${randomHex(8)}`;
const secretV2 = crypto.getRandomValues(new Uint8Array(4096));
const secretEnv = { CIPHERPOST_PASSPHRASE: passphrase };
const pinFile = `${base}/pin`;
await Deno.writeTextFile(pinFile, `${pin}\n`, { mode: 0o600 });
await Deno.chmod(pinFile, 0o600);
const v2File = `${base}/secret-v2.bin`;
await Deno.writeFile(v2File, secretV2, { mode: 0o600 });

const network = {
  bootstrap: Deno.env.get("CIPHERPOST_BOOTSTRAP") || "(default public bootstrap nodes)",
  relays: Deno.env.get("CIPHERPOST_RELAYS") || "(default public pkarr relays)",
};
console.log(`cipherpost acceptance: ${opts.bin ?? `deno run -P=cipherpost ${MAIN_TS}`}`);
console.log(`  bootstrap: ${network.bootstrap}`);
console.log(`  relays:    ${network.relays}`);
console.log(`  homes:     ${base}  (attempts ${opts.attempts}, retry delay ${opts.retryDelayS}s)`);

const version = await step("version", async () => {
  const r = await cli(homeA, ["version"]);
  expectCode(r, 0, "version");
  check(/^cipherpost \S+/.test(r.stdout), `unexpected version output: ${r.stdout}`);
  return r.stdout.split("\n")[0];
});
if (version) console.log(`  ${version}`);

/** Generate an identity in `home` and return its z32. */
async function generate(home: string): Promise<string> {
  const g = await cli(home, ["identity", "generate"], { env: secretEnv });
  expectCode(g, 0, "identity generate");
  const s = await cli(home, ["identity", "show", "--json"], { env: secretEnv });
  expectCode(s, 0, "identity show");
  const z32 = JSON.parse(s.stdout).z32 as string;
  check(/^[a-z0-9]{52}$/.test(z32), `not a z32 key: ${z32}`);
  check(g.stderr.includes(z32), "generate did not print the key it made");
  const mode = (await Deno.stat(`${home}/secret_key`)).mode! & 0o777;
  check(mode === 0o600, `identity file mode ${mode.toString(8)}`);
  return z32;
}

const a = await step("identity generate A", () => generate(homeA));
const b = await step("identity generate B", () => generate(homeB));

/** Send from A to B; returns the `--json` result. */
async function sendAtoB(
  extra: string[],
  stdin: Uint8Array | undefined,
  wantProtocol: number,
): Promise<{ uri: string; share_ref: string; protocol: number }> {
  const r = await cli(homeA, ["send", "--share", b!, "--json", ...extra], {
    env: secretEnv,
    stdin,
  });
  expectCode(r, 0, "send");
  const info = JSON.parse(r.stdout);
  check(info.protocol === wantProtocol, `sent as protocol ${info.protocol}`);
  check(typeof info.uri === "string" && info.uri.startsWith(`cipherpost://${a}/`), info.uri);
  check(/^[0-9a-f]{32}$/.test(info.share_ref), `share_ref ${info.share_ref}`);
  return info;
}

/** Receive as B into `out`, accepting A non-interactively; returns B's stderr. */
async function receiveAsB(uri: string, out: string, extra: string[] = []): Promise<string> {
  const r = await cli(homeB, ["receive", uri, "--accept", a!, "-o", out, ...extra], {
    env: secretEnv,
  });
  expectCode(r, 0, "receive");
  check(!/receipt publish failed/.test(r.stderr), `receipt not published: ${lastLines(r.stderr)}`);
  const mode = (await Deno.stat(out)).mode! & 0o777;
  check(mode === 0o600, `output file mode ${mode.toString(8)}`);
  return r.stderr;
}

/** A's view of B's receipt for `ref`, checked offline with `receipt verify`. */
async function receiptFor(ref: string, file: string): Promise<void> {
  const r = await cli(homeA, ["receipts", "--from", b!, "--share-ref", ref, "--json"]);
  expectCode(r, 0, "receipts");
  // --share-ref prints the one receipt as an object: the README's `> receipt.json` pipeline
  const mine = JSON.parse(r.stdout) as ReceiptJson;
  check(!Array.isArray(mine) && mine.share_ref === ref, `no receipt for ${ref} in ${r.stdout}`);
  check(mine.sender_pubkey === a && mine.recipient_pubkey === b, "receipt names other keys");
  await Deno.writeTextFile(file, r.stdout);
  const v = await cli(homeA, ["receipt", "verify", file]);
  expectCode(v, 0, "receipt verify", new Set());
  check(new RegExp(`share_ref: +${ref}`).test(v.stdout), `verify output: ${v.stdout}`);
}

let v1: { uri: string; share_ref: string } | null = null;
let v2: { uri: string; share_ref: string } | null = null;

if (a && b) {
  // ---- v1: a small secret, the v1.1 wire format ----
  v1 = await step(
    "v1 send A→B (--protocol 1 --json)",
    () => sendAtoB(["--protocol", "1", "-p", "acceptance v1", "-"], utf8(secretV1), 1),
    { network: true },
  );
  const v1Received = v1 &&
    await step("v1 receive as B (--accept)", async () => {
      const out = `${base}/v1.out`;
      await Deno.remove(out).catch(() => {});
      const stderr = await receiveAsB(v1!.uri, out);
      check(/Purpose: +"acceptance v1"/.test(stderr), "acceptance screen without the purpose");
      check((await Deno.readTextFile(out)) === secretV1, "received content differs");
      return true;
    }, { network: true });
  if (!v1) skip("v1 receive as B (--accept)", "no v1 share");
  if (v1Received) {
    await step(
      "v1 receipt: receipts --from B --json, receipt verify",
      () => receiptFor(v1!.share_ref, `${base}/receipt-v1.json`),
      { network: true },
    );
  } else skip("v1 receipt: receipts --from B --json, receipt verify", "nothing received");

  // ---- v2: 4 KiB with a PIN, several packets ----
  v2 = await step(
    "v2 send A→B (4 KiB, --pin --pin-file)",
    () =>
      sendAtoB(
        ["--pin", "--pin-file", pinFile, "-p", "acceptance v2", "--material-file", v2File],
        undefined,
        2,
      ),
    { network: true },
  );
  const v2Received = v2 &&
    await step("v2 receive as B (--accept --pin-file)", async () => {
      const out = `${base}/v2.out`;
      await Deno.remove(out).catch(() => {});
      const stderr = await receiveAsB(v2!.uri, out, ["--pin-file", pinFile]);
      check(/Protocol: +v2/.test(stderr), "acceptance screen does not say v2");
      check(bytesEqual(await Deno.readFile(out), secretV2), "received content differs");
      return true;
    }, { network: true });
  if (!v2) skip("v2 receive as B (--accept --pin-file)", "no v2 share");
  if (v2Received) {
    await step(
      "v2 receipt: receipts --from B --share-ref --json, receipt verify",
      () => receiptFor(v2!.share_ref, `${base}/receipt-v2.json`),
      { network: true },
    );
  } else skip("v2 receipt: receipts --from B --share-ref --json, receipt verify", "not received");

  // ---- revoke ----
  if (v2) {
    const revoked = await step("revoke the v2 share", async () => {
      const r = await cli(homeA, ["revoke", v2!.uri], { env: secretEnv });
      expectCode(r, 0, "revoke");
      check(r.stdout.trim() === `revoked ${v2!.share_ref}`, `revoke said: ${r.stdout}`);
      return true;
    }, { network: true });
    if (revoked) {
      // A (not the recipient, nothing in its ledger) resolves the share: "revoked" is exit 5.
      // A node still serving the old manifest answers first → exit 3 (wrong recipient): that is
      // the best-effort nature of revocation, so it is retried here, not failed at once.
      await step("revocation visible to a resolver (exit 5, 'revoked')", async () => {
        const r = await cli(homeA, ["receive", v2!.uri, "--accept", a!, "-o", "-"], {
          env: secretEnv,
        });
        if (r.code === 5 && /revoked/.test(r.stderr)) return true;
        const msg = `receive after revoke: exit ${r.code}: ${lastLines(r.stderr)}`;
        if (r.code === 3 || RETRY_CODES.has(r.code)) throw new Retryable(msg);
        throw new StepFailure(msg);
      }, { network: true });
    } else skip("revocation visible to a resolver (exit 5, 'revoked')", "revoke failed");
  } else skip("revoke the v2 share", "no v2 share");

  if (v1) {
    await step("revoke the v1 share", async () => {
      const r = await cli(homeA, ["revoke", v1!.uri], { env: secretEnv });
      expectCode(r, 0, "revoke");
      check(r.stdout.trim() === `revoked ${v1!.share_ref}`, `revoke said: ${r.stdout}`);
    }, { network: true });
  }
} else {
  for (const s of ["v1 round trip", "v2 round trip", "revoke"]) skip(s, "no identities");
}

await step("no secret on stderr (passphrase, PIN, v1 secret)", () => {
  const text = allStderr.join("\n");
  for (const [label, s] of [["passphrase", passphrase], ["PIN", pin], ["v1 secret", secretV1]]) {
    check(!text.includes(s), `the ${label} appeared on stderr`);
  }
  return Promise.resolve(true);
});

// ---------------------------------------------------------------------------------------------

if (opts.keep) console.log(`kept ${base}`);
else await Deno.remove(base, { recursive: true }).catch(() => {});

const failed = results.filter((r) => !r.ok);
const total = results.reduce((s, r) => s + r.ms, 0) / 1000;
console.log(
  `${failed.length === 0 ? "PASS" : "FAIL"}: ${results.length - failed.length} passed, ` +
    `${failed.length} failed (${total.toFixed(1)}s)`,
);
Deno.exit(failed.length === 0 ? 0 : 1);
