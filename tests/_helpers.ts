// Test helpers: run the real CLI as a subprocess with its own home directory and a clean
// environment, and share one local testnet per test file.
import { startTestnet, type Testnet } from "../lib/testing/testnet.ts";
import { Transport } from "../lib/pkarr/transport.ts";
import { bindHomeserverHttp } from "../lib/homeserver/endpoint_policy.ts";

const root = new URL("..", import.meta.url);
const mainTs = new URL("main.ts", root).pathname;

/** The program's permission set from deno.json, as flags (so tests run what users run). */
function permissionFlags(): string[] {
  const cfg = JSON.parse(Deno.readTextFileSync(new URL("deno.json", root)));
  const set = cfg.permissions.cipherpost as Record<string, boolean | string[]>;
  return Object.entries(set).flatMap(([k, v]) =>
    v === true ? [`--allow-${k}`] : Array.isArray(v) ? [`--allow-${k}=${v.join(",")}`] : []
  );
}
const FLAGS = [...permissionFlags(), "--no-prompt", "--quiet"];

/** The argv that runs `cipherpost <args>` from source, as the tests do. */
export function cliArgv(args: string[]): string[] {
  return [Deno.execPath(), "run", ...FLAGS, mainTs, ...args];
}

/**
 * `setsid -w`, when present, runs the child in a new session without a controlling terminal, so
 * a test started from a terminal never has the child prompt on it (prompts read /dev/tty).
 */
const SETSID = (() => {
  try {
    Deno.statSync("/usr/bin/setsid");
    return "/usr/bin/setsid";
  } catch {
    return null;
  }
})();

/** Result of one CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Uint8Array;
}

/** Options of one CLI run. */
export interface CliOptions {
  home?: string;
  env?: Record<string, string>;
  stdin?: Uint8Array | string;
  net?: Testnet;
  /** extra fds are not supported by Deno.Command; use files instead */
  cwd?: string;
  /** run through `bash -c <shell> cipherpost <argv…>`, e.g. `exec "$@" >&-` (stdout closed) */
  shell?: string;
}

/** The `cipherpost <args>` subprocess command, with a clean environment. */
export function cliCommand(args: string[], o: CliOptions = {}): Deno.Command {
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: "/nonexistent",
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
  };
  if (o.home) env.CIPHERPOST_HOME = o.home;
  if (o.net) {
    env.CIPHERPOST_BOOTSTRAP = o.net.bootstrap.join(",");
    env.CIPHERPOST_RELAYS = o.net.relayUrl;
    // as `cipherpost testnet --homeserver` prints it: the stand-in is plain http on 127.0.0.1
    env.CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK = "1";
  }
  Object.assign(env, o.env ?? {});
  const argv = cliArgv(args);
  // Under `setsid -w` (when there is one) the CLI has no controlling terminal: its /dev/tty
  // prompts fail as they would for a cron job, instead of reading the terminal of the test run.
  const inner = o.shell ? ["bash", "-c", o.shell, "cipherpost", ...argv] : argv;
  const full = SETSID ? [SETSID, "-w", ...inner] : inner;
  return new Deno.Command(full[0], {
    args: full.slice(1),
    env,
    clearEnv: true,
    cwd: o.cwd,
    stdin: o.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Run `cipherpost <args>` as a subprocess. */
export async function cli(args: string[], o: CliOptions = {}): Promise<CliResult> {
  const cmd = cliCommand(args, o);
  const child = cmd.spawn();
  if (o.stdin !== undefined) {
    const w = child.stdin.getWriter();
    try {
      await w.write(typeof o.stdin === "string" ? new TextEncoder().encode(o.stdin) : o.stdin);
      await w.close();
    } catch (e) {
      // the program may stop reading early (an input over its cap): that is its answer
      if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
    }
  }
  const out = await child.output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
    stdoutBytes: out.stdout,
  };
}

/** The temporary directories {@link tmpDir} made during the running test. */
const madeDirs = new Set<string>();

/**
 * A fresh temporary directory. It is removed, with everything in it, when the test that made it
 * ends (passed or failed): every test file that imports these helpers runs the hook below.
 */
export async function tmpDir(prefix = "cp-test-"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  madeDirs.add(dir);
  return dir;
}

Deno.test.afterEach(async () => {
  const dirs = [...madeDirs];
  madeDirs.clear();
  for (const dir of dirs) {
    try {
      await Deno.remove(dir, { recursive: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
});

/** A user: a home directory with a generated identity. */
export interface User {
  home: string;
  z32: string;
  env: Record<string, string>;
}

/** The passphrase all test users share (given through the environment, never argv). */
export const PASS = "correct horse battery staple";

/** Create a home and an identity in it. */
export async function makeUser(base: string, name: string): Promise<User> {
  const home = `${base}/${name}`;
  const env = { CIPHERPOST_PASSPHRASE: PASS };
  const g = await cli(["identity", "generate"], { home, env });
  if (g.code !== 0) throw new Error(`identity generate failed: ${g.stderr}`);
  const s = await cli(["identity", "show", "--json"], { home, env });
  if (s.code !== 0) throw new Error(`identity show failed: ${s.stderr}`);
  return { home, z32: JSON.parse(s.stdout).z32, env };
}

/** Run a test body with one testnet (12 nodes) that is closed afterwards. */
export async function withTestnet(f: (net: Testnet) => Promise<void>, nodes = 12): Promise<void> {
  const net = await startTestnet({ nodes });
  try {
    await f(net);
  } finally {
    await net.close();
  }
}

/** Send as `from`; returns the URI. */
export async function sendAs(
  from: User,
  net: Testnet,
  args: string[],
  stdin?: string | Uint8Array,
): Promise<CliResult & { uri: string }> {
  const r = await cli(["send", ...args], { home: from.home, env: from.env, net, stdin });
  return { ...r, uri: r.stdout.trim() };
}

/** Receive as `to`, accepting `sender` non-interactively. */
export async function receiveAs(
  to: User,
  net: Testnet | undefined,
  uri: string,
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<CliResult> {
  return await cli(["receive", uri, ...extra], { home: to.home, env: { ...to.env, ...env }, net });
}

/** Create a home whose identity is a known seed (so a test can forge what the owner could sign). */
export async function makeUserWithSeed(
  base: string,
  name: string,
  seed: Uint8Array,
): Promise<User> {
  const home = `${base}/${name}`;
  const env = { CIPHERPOST_PASSPHRASE: PASS };
  const hex = Array.from(seed, (b) => b.toString(16).padStart(2, "0")).join("");
  const g = await cli(["identity", "import", "-"], { home, env, stdin: hex });
  if (g.code !== 0) throw new Error(`identity import failed: ${g.stderr}`);
  const s = await cli(["identity", "show", "--json"], { home, env });
  return { home, z32: JSON.parse(s.stdout).z32, env };
}

/** Lines of the receive ledger of a home (empty when none). */
export async function ledgerText(home: string): Promise<string> {
  try {
    return await Deno.readTextFile(`${home}/state/accepted.jsonl`);
  } catch {
    return "";
  }
}

/**
 * A library Transport on a testnet (both paths, short timeouts), for crafting attacks. Loopback
 * homeservers (the stand-in on 127.0.0.1) are allowed through it, as with
 * `CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK=1` on the CLI.
 */
export function testTransport(net: Testnet): Transport {
  const t = new Transport({
    bootstrap: net.bootstrap,
    relays: [net.relayUrl],
    useDht: true,
    useRelays: true,
    timeoutMs: 500,
  });
  bindHomeserverHttp(t, { allowLoopback: true });
  return t;
}

/** What another program (age, python3, sh) printed and its exit code. */
export interface ProgramResult {
  code: number;
  stdout: Uint8Array;
  /** stdout decoded and trimmed */
  text: string;
  stderr: string;
}

/** Run another program (not cipherpost) with `args`, optionally feeding `stdin`. */
export async function runProgram(
  cmd: string,
  args: string[],
  stdin?: Uint8Array,
): Promise<ProgramResult> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const out = await child.output();
  return {
    code: out.code,
    stdout: out.stdout,
    text: new TextDecoder().decode(out.stdout).trim(),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/**
 * A pkarr relay in front of `net`'s that serves reads and refuses every write (500): with
 * `--no-dht`, a share can be received but its receipt cannot be published (the pending-receipt
 * path). Shut it down with `shutdown()`.
 */
export function readOnlyRelay(net: Testnet): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      if (req.method === "PUT") return new Response("no", { status: 500 });
      const u = new URL(req.url);
      return await fetch(`${net.relayUrl}${u.pathname}${u.search}`, { headers: req.headers });
    },
  );
}

/**
 * Run the CLI (`argv`, from {@link cliArgv}) with `env` and `stdin` piped in, wait for the first
 * line of its stdout (a send prints the URI there once the pointer is out), then kill -9 it.
 * Returns what stdout held by then.
 */
export async function killAfterFirstLine(
  argv: string[],
  env: Record<string, string>,
  stdin: Uint8Array,
): Promise<string> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      ...env,
      NO_COLOR: "1",
      HOME: "/nonexistent",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
    },
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(stdin);
  await w.close();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let first = "";
  while (!first.includes("\n")) {
    const r = await reader.read();
    if (r.done) break;
    first += r.value;
  }
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel().catch(() => {});
  return first;
}
