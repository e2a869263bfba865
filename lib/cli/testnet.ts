/**
 * `cipherpost testnet`: run a local Mainline DHT testnet and pkarr relay on 127.0.0.1 until
 * Ctrl-C, printing the environment lines other shells use to reach it.
 *
 * @module
 */

import { type Command, Option } from "@commander-js/extra-typings";
import { CipherpostError } from "../util/errors.ts";
import { startTestnet } from "../testing/testnet.ts";
import { startHomeserverOnTestnet } from "../testing/homeserver.ts";
import type { Io } from "./io.ts";
import { ALLOW_HTTP_ENV, ALLOW_LOOPBACK_ENV, isIpv4HostPort } from "./network_options.ts";
import { parseIntArg } from "./options.ts";

/** Register `testnet` on the program. */
export function registerTestnetCommand(program: Command, io: Io): void {
  const log = (l: string) => io.err(`${l}\n`);

  program.command("testnet")
    .description(
      "run a local Mainline DHT testnet and pkarr relay on 127.0.0.1 or --host (Ctrl-C to stop)",
    )
    .option("--nodes <n>", "number of DHT nodes", parseIntArg, 20)
    .option(
      "--host <addr>",
      "IPv4 address to listen on and publish (a private test address in a network namespace)",
      "127.0.0.1",
    )
    .option(
      "--port <p>",
      "UDP port of the first node (the others follow); 0 = random",
      parseIntArg,
      0,
    )
    .option("--relay-port <p>", "relay HTTP port; 0 = random", parseIntArg, 0)
    .option("--latency <ms>", "each node delays its replies by this much", parseIntArg, 0)
    .option("--loss <pct>", "each node drops this percentage of queries", parseIntArg, 0)
    .option("--homeserver", "also run the stand-in Pubky homeserver (its packet on the testnet)")
    .addOption(
      new Option("--signup-mode <mode>", "homeserver signup mode")
        .choices(["open", "token_required"] as const).default("open" as const),
    )
    .option(
      "--signup-tokens <n>",
      "in token_required mode, how many single-use signup tokens to mint (one per identity)",
      parseIntArg,
      5,
    )
    .option("--quota-mb <n>", "homeserver per-user quota in MiB (default unlimited)", parseIntArg)
    .option("--homeserver-port <p>", "homeserver HTTP port; 0 = random", parseIntArg, 0)
    .addHelpText(
      "after",
      `
Prints the environment lines other shells use to reach it, e.g.:
  CIPHERPOST_BOOTSTRAP=127.0.0.1:40001,127.0.0.1:40002,...
  CIPHERPOST_RELAYS=http://127.0.0.1:40100
With --homeserver also:
  CIPHERPOST_HOMESERVER=<homeserver z32>
The stand-in homeserver's signup is open by default: any number of local identities can run
\`cipherpost homeserver signup\`. With --signup-mode token_required (to try what an operator's
homeserver asks for) it also prints the first of --signup-tokens single-use tokens, one per
identity, and lists the others on stderr:
  CIPHERPOST_SIGNUP_TOKEN=XXXX-XXXX-XXXX
It also prints CIPHERPOST_HOMESERVER_ALLOW_LOOPBACK=1: the stand-in speaks plain http on
127.0.0.1, which cipherpost refuses unless that is set (never the default: otherwise only HTTPS
to a public domain name is contacted). With --host ADDR (not 127.0.0.1) everything listens on
ADDR, the homeserver's packet names it, and the line printed instead is
  CIPHERPOST_HOMESERVER_ALLOW_HTTP=ADDR:PORT
which admits plain http to that one endpoint only.`,
    )
    .action(async (o) => {
      if (o.loss > 100) throw new CipherpostError("usage", "--loss is a percentage (0 to 100)");
      if (o.signupTokens < 1 || o.signupTokens > 1000) {
        throw new CipherpostError("usage", "--signup-tokens is 1 to 1000");
      }
      if (!isIpv4HostPort(`${o.host}:1`)) {
        throw new CipherpostError("usage", "--host must be an IPv4 address (a.b.c.d)");
      }
      const loopback = o.host === "127.0.0.1";
      const net = await startTestnet({
        nodes: o.nodes,
        port: o.port,
        relayPort: o.relayPort,
        host: o.host,
        latencyMs: o.latency,
        lossPct: o.loss,
      });
      const hs = o.homeserver
        ? await startHomeserverOnTestnet(net, {
          signupMode: o.signupMode,
          quotaBytes: o.quotaMb === undefined ? undefined : o.quotaMb * 1024 * 1024,
          port: o.homeserverPort,
          host: o.host,
        }).catch(async (e) => {
          await net.close();
          throw e;
        })
        : null;
      io.out(
        `CIPHERPOST_BOOTSTRAP=${net.bootstrap.join(",")}\nCIPHERPOST_RELAYS=${net.relayUrl}\n`,
      );
      if (hs) {
        const allow = loopback
          ? `${ALLOW_LOOPBACK_ENV}=1`
          : `${ALLOW_HTTP_ENV}=${o.host}:${hs.port}`;
        io.out(`CIPHERPOST_HOMESERVER=${hs.key}\n${allow}\n`);
        log(`homeserver (stand-in): ${hs.key} at ${hs.baseUrl}`);
        if (hs.signupMode === "token_required") {
          const tokens = Array.from({ length: o.signupTokens }, () => hs.mintSignupToken());
          io.out(`CIPHERPOST_SIGNUP_TOKEN=${tokens[0]}\n`);
          log(
            `signup needs a token: ${tokens.length} single-use tokens, one per identity ` +
              `(the first is CIPHERPOST_SIGNUP_TOKEN):\n  ${tokens.join("\n  ")}`,
          );
        } else {
          log("signup open: any number of local identities can run `cipherpost homeserver signup`");
        }
      }
      log(
        `testnet: ${o.nodes} nodes on ${o.host}, relay ${net.relayUrl}; Ctrl-C or SIGTERM to stop`,
      );
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        Deno.addSignalListener("SIGINT", stop);
        if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", stop);
      });
      await hs?.close();
      await net.close();
      log("testnet stopped");
    });
}
