// A long-running Node peer around npm pkarr@1.3.0, for cipherpost's interop tests and DHT
// benchmark. It talks JSON lines: one command per stdin line, one reply per stdout line.
//
// Loopback only. The environment must provide:
//   PKARR_PEER_BOOTSTRAP   comma-separated "127.0.0.1:port" list (never empty, loopback only)
//   PKARR_PEER_STORAGE     an existing temp directory (pkarr 1.3.0 writes its routing table there
//                          on exit instead of ~/.config/pkarr)
//   PKARR_PEER_TIMEOUT_MS  KRPC timeout (optional, default 500)
//   PKARR_PEER_LATENCY_MS  delay our answers to incoming DHT queries, like the testnet's nodes
//                          (optional, default 0; for the benchmark)
// The spawner also points HOME at a temp directory.
//
// Commands ({"id": n, "op": ...}); every reply carries the same id and "ok":
//   publish {seed: hex32, records: [{name, type: "TXT"|"A", ttl, data}], timestamp?}
//           -> {ms, publicKey (z32), timestamp, v (hex)}       ms = DHT.put only
//   resolve {key: z32, full?: boolean, fresh?: boolean}
//           -> {ms, found, timestamp?, v?, records?}           ms = DHT.get only (fresh: + new DHT)
//   relay   {}  -> {url}   starts the old JS relay (lib/relay.js) on 127.0.0.1 with its own DHT
//   close   {}  -> {}      then exits

import process from "node:process";
import { Buffer } from "node:buffer";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { performance } from "node:perf_hooks";

// npm packages load from tests/peer/node_modules. The specifiers are not literals so that
// `deno check tests/` (which collects this file too) does not try to resolve them.
const load = (specifier) => import(specifier);
const { default: BittorrentDHT } = await load("bittorrent-dht");
const { default: DHT } = await load("pkarr/lib/dht.js");
const { default: Server } = await load("pkarr/lib/relay.js");
const { generateKeyPair, SignedPacket, z32 } = await load("pkarr");

// lib/relay.js logs with console.log; stdout is reserved for the protocol.
console.log = (...args) => console.error(...args);
process.on(
  "unhandledRejection",
  (e) => console.error("unhandled rejection:", e),
);

function fatal(msg) {
  console.error(`pkarr_peer: ${msg}`);
  process.exit(2);
}

const bootstrap = (process.env.PKARR_PEER_BOOTSTRAP ?? "").split(",").map((s) => s.trim())
  .filter((s) => s !== "").map((s) => {
    const i = s.lastIndexOf(":");
    return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
  });
if (bootstrap.length === 0) {
  fatal("PKARR_PEER_BOOTSTRAP is empty: refusing the public defaults");
}
for (const b of bootstrap) {
  if (b.host !== "127.0.0.1" || !Number.isInteger(b.port) || b.port <= 0) {
    fatal(`bootstrap entry ${b.host}:${b.port} is not 127.0.0.1:<port>`);
  }
}
const storage = process.env.PKARR_PEER_STORAGE ?? "";
if (
  !storage || !path.isAbsolute(storage) || !fs.statSync(storage).isDirectory()
) {
  fatal("PKARR_PEER_STORAGE must be an existing absolute directory");
}
const timeout = Number(process.env.PKARR_PEER_TIMEOUT_MS ?? 500);
const latency = Number(process.env.PKARR_PEER_LATENCY_MS ?? 0);
if (latency > 0) {
  // Same module instance as pkarr/lib/dht.js uses (one node_modules/bittorrent-dht).
  const orig = BittorrentDHT.prototype._onquery;
  BittorrentDHT.prototype._onquery = function (...args) {
    setTimeout(() => {
      if (!this.destroyed) orig.apply(this, args);
    }, latency);
  };
}

let dirs = 0;
/** A pkarr 1.3.0 DHT client on loopback, ready (bootstrapped). */
async function openDht() {
  const storageLocation = path.join(storage, `dht-${dirs++}`);
  fs.mkdirSync(storageLocation);
  const dht = new DHT({ bootstrap, storageLocation, timeout });
  dht._dht.on("warning", () => {});
  dht._dht.on("error", (e) => console.error("dht error:", e));
  dht._dht.listen(0, "127.0.0.1"); // before the first send, which would bind 0.0.0.0
  if (!dht._dht.ready) await new Promise((r) => dht._dht.once("ready", r));
  return dht;
}

/** A pkarr 1.3.0 DHT client on loopback, not awaited: what `Pkarr.resolve` does. */
function openDhtNow() {
  const storageLocation = path.join(storage, `dht-${dirs++}`);
  fs.mkdirSync(storageLocation);
  const dht = new DHT({ bootstrap, storageLocation, timeout });
  dht._dht.on("warning", () => {});
  dht._dht.listen(0, "127.0.0.1");
  return dht;
}

function toAnswer(r) {
  if (r.type !== "TXT" && r.type !== "A") {
    throw new Error(`unsupported type ${r.type}`);
  }
  return { name: r.name, type: r.type, class: "IN", ttl: r.ttl, data: r.data };
}

function fromAnswer(a) {
  let data = a.data;
  if (a.type === "TXT") {
    data = (Array.isArray(data) ? data : [data]).map((b) => Buffer.from(b).toString("utf8"))
      .join("");
  } else if (Buffer.isBuffer(data)) data = data.toString("hex");
  return { name: a.name, type: a.type, ttl: a.ttl, class: a.class, data };
}

const dht = await openDht();
const relays = [];
const hex = (b) => Buffer.from(b).toString("hex");

const ops = {
  async publish(cmd) {
    const keyPair = generateKeyPair(Buffer.from(cmd.seed, "hex"));
    const packet = {
      id: 0,
      type: "response",
      answers: cmd.records.map(toAnswer),
    };
    const opts = cmd.timestamp === undefined ? {} : { timestamp: cmd.timestamp };
    const sp = SignedPacket.fromPacket(keyPair, packet, opts);
    const t0 = performance.now();
    await dht.put(sp.bep44Args());
    const ms = performance.now() - t0;
    return {
      ms,
      publicKey: z32.encode(keyPair.publicKey),
      timestamp: sp.timestamp(),
      v: hex(sp.bep44Args().v),
    };
  },

  async resolve(cmd) {
    const key = z32.decode(cmd.key);
    const t0 = performance.now();
    const client = cmd.fresh ? openDhtNow() : dht;
    let res;
    try {
      res = await client.get(key, { fullLookup: cmd.full === true });
    } finally {
      if (cmd.fresh) client.destroy();
    }
    const ms = performance.now() - t0;
    if (!res) return { ms, found: false };
    const sp = SignedPacket.fromBep44Args(res);
    return {
      ms,
      found: true,
      timestamp: sp.timestamp(),
      v: hex(res.v),
      records: sp.packet().answers.map(fromAnswer),
    };
  },

  async relay() {
    const relayDht = await openDht();
    const server = new Server({ dht: relayDht });
    await new Promise((r) => server._server.listen(0, "127.0.0.1", r));
    relays.push(server);
    return { url: `http://127.0.0.1:${server.port}` };
  },

  async close() {
    for (const s of relays) await s.close();
    await dht.destroy();
    return {};
  },
};

function send(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

send({ event: "ready", port: dht._dht.address().port });

const rl = readline.createInterface({ input: process.stdin });
let closing = false;
async function shutdown() {
  if (closing) return;
  closing = true;
  await ops.close().catch(() => {});
  process.exit(0);
}
rl.on("close", shutdown);
rl.on("line", async (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch {
    return send({ id: null, ok: false, error: "bad JSON" });
  }
  const op = ops[cmd.op];
  if (!op) {
    return send({ id: cmd.id, ok: false, error: `unknown op ${cmd.op}` });
  }
  try {
    const res = await op(cmd);
    send({ id: cmd.id, ok: true, ...res });
    if (cmd.op === "close") {
      closing = true;
      process.stdout.write("", () => process.exit(0));
    }
  } catch (e) {
    send({ id: cmd.id, ok: false, error: String(e?.message ?? e) });
  }
});
