/**
 * For tests and local trials only: a Mainline DHT testnet with a pkarr relay, and a stand-in
 * Pubky homeserver, all on 127.0.0.1. Nothing here talks to the public network; nothing here is
 * needed to send or receive a share. The `cipherpost testnet` command runs the same pieces.
 *
 * A {@link Testnet} gives the `bootstrap` nodes and the `relayUrl` to pass to a
 * `Transport` of the main entry, so that every publish and resolve stays on loopback. A stand-in homeserver
 * started with {@link startHomeserverOnTestnet} publishes its own packet on that testnet, so a
 * client finds it by its key as it would find a real one.
 *
 * ```ts
 * import { Transport } from "@cipherpost/cipherpost";
 * import { startHomeserverOnTestnet, startTestnet } from "@cipherpost/cipherpost/testing";
 *
 * const net = await startTestnet({ nodes: 8 });
 * try {
 *   const hs = await startHomeserverOnTestnet(net, { signupMode: "open" });
 *   const t = new Transport({
 *     bootstrap: net.bootstrap,
 *     relays: [net.relayUrl],
 *     useDht: true,
 *     useRelays: true,
 *     timeoutMs: 1000,
 *   });
 *   try {
 *     console.log(`homeserver ${hs.key} at ${hs.baseUrl}`);
 *     // … send and receive with `t` …
 *   } finally {
 *     await t.close();
 *     await hs.close();
 *   }
 * } finally {
 *   await net.close();
 * }
 * ```
 *
 * @module
 */

export {
  startTestnet,
  type Testnet,
  type TestnetNode,
  type TestnetOptions,
  type TestnetStore,
  type TestnetStoredItem,
} from "./lib/testing/testnet.ts";
export {
  type HomeserverStandIn,
  type HomeserverStandInOptions,
  type RequestCounts,
  type RequestLogEntry,
  startHomeserver,
  startHomeserverOnTestnet,
} from "./lib/testing/homeserver.ts";
export {
  type HostileHomeserver,
  type HostileHomeserverOptions,
  type HostileMode,
  type HostileRequest,
  startHostileHomeserver,
} from "./lib/testing/hostile_homeserver.ts";
