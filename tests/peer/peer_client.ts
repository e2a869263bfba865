/**
 * Deno side of the JSON-lines peers used by the pkarr interop tests and `scripts/bench_dht.ts`:
 * spawns a long-running subprocess, sends one JSON command per line on its stdin and matches
 * the JSON replies on its stdout by `id`.
 *
 * {@link startPkarrPeer} runs `tests/peer/pkarr_peer.mjs` (npm pkarr@1.3.0) under Node with a
 * temporary HOME and storage directory, loopback bootstrap only.
 *
 * @module
 */

/** A reply of the peer: `ok` plus op-specific fields. */
export type PeerReply =
  & { id: number; ok: boolean; error?: string }
  & Record<string, unknown>;

const PEER_DIR = new URL("./", import.meta.url);
const PKARR_PKG = new URL("node_modules/pkarr/package.json", PEER_DIR);

/** A record as the pkarr peer takes and prints it (TXT data is text, A data a dotted quad). */
export interface PeerRecord {
  name: string;
  type: "TXT" | "A";
  ttl: number;
  data: string;
  class?: string;
}

/** A running JSON-lines subprocess. */
export class LinePeer {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pending = new Map<number, (r: PeerReply) => void>();
  readonly #reading: Promise<void>;
  readonly #stderr: Promise<string>;
  readonly #ready: Promise<Record<string, unknown>>;
  readonly #cleanup: () => Promise<void>;
  #next = 1;
  #exited = false;

  /** Spawns `cmd`; `cleanup` runs after the process has exited. */
  constructor(
    cmd: Deno.Command,
    cleanup: () => Promise<void> = async () => {},
  ) {
    this.#child = cmd.spawn();
    this.#cleanup = cleanup;
    this.#writer = this.#child.stdin.getWriter();
    this.#stderr = new Response(this.#child.stderr).text();
    let onReady: (e: Record<string, unknown>) => void = () => {};
    this.#ready = new Promise((r) => (onReady = r));
    this.#reading = this.#read(onReady);
  }

  async #read(onReady: (e: Record<string, unknown>) => void): Promise<void> {
    let buf = "";
    for await (
      const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())
    ) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as PeerReply & { event?: string };
        if (msg.event === "ready") onReady(msg);
        else this.#pending.get(msg.id)?.(msg);
        this.#pending.delete(msg.id);
      }
    }
    this.#exited = true;
    const err = await this.#stderr.catch(() => "");
    for (const [id, resolve] of this.#pending) {
      resolve({
        id,
        ok: false,
        error: `peer exited before replying; stderr:\n${err}`,
      });
    }
    this.#pending.clear();
    onReady({ error: `peer exited before it was ready; stderr:\n${err}` });
  }

  /** Resolves with the peer's `ready` event; throws if it died first. */
  async ready(): Promise<Record<string, unknown>> {
    const ev = await this.#ready;
    if (typeof ev.error === "string") throw new Error(ev.error);
    return ev;
  }

  /** Sends one command and waits for its reply; throws on `ok: false`. */
  async call(
    op: string,
    args: Record<string, unknown> = {},
  ): Promise<PeerReply> {
    if (this.#exited) throw new Error("peer has exited");
    const id = this.#next++;
    const reply = new Promise<PeerReply>((r) => this.#pending.set(id, r));
    await this.#writer.write(
      new TextEncoder().encode(JSON.stringify({ id, op, ...args }) + "\n"),
    );
    const r = await reply;
    if (!r.ok) throw new Error(`peer ${op} failed: ${r.error}`);
    return r;
  }

  /** Asks the peer to close, waits for it to exit, releases every resource. Idempotent. */
  async close(): Promise<void> {
    if (!this.#exited) await this.call("close").catch(() => {});
    await this.#writer.close().catch(() => {});
    const exit = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, 5000);
    await this.#child.status;
    clearTimeout(exit);
    await this.#reading.catch(() => {});
    await this.#stderr.catch(() => {});
    await this.#cleanup();
  }

  /** Everything the peer wrote to stderr (after it exited). */
  stderr(): Promise<string> {
    return this.#stderr;
  }
}

/** Throws a clear error when `npm ci --prefix tests/peer` has not been run. */
export async function assertPeerInstalled(): Promise<void> {
  try {
    await Deno.stat(PKARR_PKG);
  } catch {
    throw new Error(
      "tests/peer/node_modules is missing (npm pkarr@1.3.0 for the interop peer): " +
        "run `npm ci --prefix tests/peer` first",
    );
  }
}

/** Options of {@link startPkarrPeer}. */
export interface PkarrPeerOptions {
  /** `127.0.0.1:port` entries of the testnet; must not be empty. */
  bootstrap: string[];
  /** KRPC timeout of the peer's DHT (default 500). */
  timeoutMs?: number;
  /** Delay the peer's own answers to incoming DHT queries, like testnet nodes (default 0). */
  latencyMs?: number;
}

/**
 * Starts `pkarr_peer.mjs` under Node with HOME and pkarr's storage in a fresh temp directory
 * (removed on close). Resolves once its DHT client has bootstrapped.
 */
export async function startPkarrPeer(
  opts: PkarrPeerOptions,
): Promise<LinePeer> {
  await assertPeerInstalled();
  if (opts.bootstrap.length === 0) {
    throw new Error("pkarr peer: empty bootstrap list");
  }
  if (!opts.bootstrap.every((b) => b.startsWith("127.0.0.1:"))) {
    throw new Error("pkarr peer: bootstrap must be 127.0.0.1 only");
  }
  const tmp = await Deno.makeTempDir({ prefix: "cipherpost-pkarr-peer-" });
  const home = `${tmp}/home`;
  const storage = `${tmp}/pkarr`;
  await Deno.mkdir(home);
  await Deno.mkdir(storage);
  const cmd = new Deno.Command("node", {
    args: [new URL("pkarr_peer.mjs", PEER_DIR).pathname],
    cwd: new URL(".", PEER_DIR).pathname,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
      HOME: home,
      PKARR_PEER_BOOTSTRAP: opts.bootstrap.join(","),
      PKARR_PEER_STORAGE: storage,
      PKARR_PEER_TIMEOUT_MS: String(opts.timeoutMs ?? 500),
      PKARR_PEER_LATENCY_MS: String(opts.latencyMs ?? 0),
    },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const peer = new LinePeer(
    cmd,
    () => Deno.remove(tmp, { recursive: true }).catch(() => {}),
  );
  try {
    await peer.ready();
  } catch (e) {
    await peer.close();
    throw e;
  }
  return peer;
}
