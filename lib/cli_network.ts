/**
 * Commands that touch the network: send, receive, receipts, revoke, republish, dht, testnet.
 *
 * @module
 */
import type { Command } from "commander";
import type { Io } from "./cli.ts";

/** Register the network commands on the program. */
export function registerNetworkCommands(_program: Command, _io: Io): void {
}
