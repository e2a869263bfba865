/**
 * `cipherpost dht resolve`: a debugging aid for the PKARR layer: any key's records, which nodes
 * and relays answered, and the packet's age.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { CipherpostError, configError } from "../util/errors.ts";
import { escapeControl } from "../util/encoding.ts";
import { txtText } from "../pkarr/dns.ts";
import { encodeZ32, parsePublicKey } from "../pkarr/public_key.ts";
import type { Io } from "./io.ts";
import { NETWORK_HELP, withNetwork, withTransport } from "./options.ts";

/** JSON text with C1 and bidirectional controls as `\uXXXX` escapes (still the same JSON). */
function jsonTerminalSafe(json: string): string {
  return json.replace(
    /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** Register `dht` and its subcommands on the program. */
export function registerDhtCommands(program: Command, io: Io): void {
  const dht = program.command("dht").description("debugging aids for the PKARR layer")
    .exitOverride();
  withNetwork(
    dht.command("resolve")
      .description(
        "show any key's PKARR records, which nodes/relays answered, and the packet's age",
      )
      .argument("<key>", "z-base-32 key, pk:<key>, or a URL containing it")
      .option("--json", "machine-readable output"),
  )
    .addHelpText("after", `\nExample:\n  cipherpost dht resolve pk:<z32> --json\n${NETWORK_HELP}`)
    .action(async (key, o) => {
      let pk: Uint8Array;
      try {
        pk = parsePublicKey(key);
      } catch {
        throw configError(
          "not a public key",
          "pass a 52-character z-base-32 key",
        );
      }
      const rep = await withTransport(o, (t) => t.resolveReport(pk));
      if (!rep.result) {
        throw new CipherpostError(
          "not_found",
          `no packet for ${
            encodeZ32(pk)
          } (DHT: ${rep.dhtResponded}/${rep.dhtQueried} nodes answered; relays answered: ${rep.relaysAnswered}${
            rep.errors.length ? "; " + rep.errors.join("; ") : ""
          })`,
        );
      }
      const p = rep.result.packet;
      const ageS = Math.max(0, Math.round((Date.now() * 1000 - p.timestamp) / 1e6));
      const records = p.records.map((r) => ({
        name: r.name,
        type: r.data.type,
        ttl: r.ttl,
        text: txtText(r) ?? undefined,
      }));
      if (o.json) {
        // JSON escapes C0 controls itself; C1 and bidirectional controls are escaped too
        io.out(
          jsonTerminalSafe(JSON.stringify(
            {
              key: encodeZ32(pk),
              timestamp_us: p.timestamp,
              age_seconds: ageS,
              bytes: p.v.length,
              sources: rep.result.sources,
              dht: { queried: rep.dhtQueried, responded: rep.dhtResponded },
              relays_answered: rep.relaysAnswered,
              invalid_dropped: rep.invalid,
              records,
            },
            null,
            2,
          )) + "\n",
        );
        return;
      }
      io.out(
        `key:       ${
          encodeZ32(pk)
        }\nseq:       ${p.timestamp} (${ageS}s old), ${p.v.length} bytes\n`,
      );
      io.out(`answered:  ${rep.result.sources.join(", ")}\n`);
      io.out(
        `dht:       ${rep.dhtResponded}/${rep.dhtQueried} nodes answered; relays answered: ${rep.relaysAnswered}\n`,
      );
      // Names and texts come from the network: controls are shown escaped, never raw.
      for (const r of records) {
        io.out(`${escapeControl(r.name)}  ${r.ttl}  ${r.type}  ${escapeControl(r.text ?? "")}\n`);
      }
    });
}
