/**
 * The option sets commands share (passphrase, PIN, network), typed with
 * `@commander-js/extra-typings` so each action sees exactly what its command declares, and what
 * they turn into: an unlocked identity, a PIN, an open {@link Transport}.
 *
 * @module
 */

import { type Command, Option, type OptionValues } from "@commander-js/extra-typings";
import { CipherpostError } from "../util/errors.ts";
import { type LoadedIdentity, loadIdentity } from "../state/identity.ts";
import { Transport } from "../pkarr/transport.ts";
import {
  getPin,
  type PassphraseOptions,
  type PinOptions,
  refuseInlinePassphrase,
  retryPassphrase,
} from "./passphrase.ts";
import { cipherpostHome } from "./home.ts";
import { homeserverHttpFrom, type NetworkFlags, networkOptionsFrom } from "./network_options.ts";
import { bindHomeserverHttp } from "../homeserver/endpoint_policy.ts";
import { defaultIo, type Io } from "./io.ts";

/** Parse an integer option value or fail as a usage error. */
export function parseIntArg(v: string): number {
  if (!/^[0-9]+$/.test(v)) {
    // the value is not echoed: a mistyped option may have swallowed a secret
    throw new CipherpostError("usage", "expected a whole number for that option");
  }
  return Number(v);
}

/**
 * `Same<X, Y>` is `true` only when X and Y are the same type. It ties each flag type below to
 * what extra-typings infers from the option definitions, so the two cannot drift apart.
 */
type Same<X, Y> = (<T>() => T extends X ? 1 : 2) extends (<T>() => T extends Y ? 1 : 2) ? true
  : false;
/** The options a builder adds to a bare command, as extra-typings infers them. */
type Added<F extends (c: Command) => { opts(): OptionValues }> = ReturnType<ReturnType<F>["opts"]>;

/** The passphrase flags of a parsed command. */
export type PassphraseFlags = {
  passphraseFile?: string;
  passphraseFd?: number;
  passphrase?: string;
};

function addPassphrase(cmd: Command) {
  return cmd
    .option("--passphrase-file <path>", "read the passphrase from a file (mode 0600 or 0400)")
    .option(
      "--passphrase-fd <n>",
      "read the passphrase from an inherited pipe descriptor (3 or above)",
      parseIntArg,
    )
    .addOption(
      new Option("--passphrase <value>", "refused: a passphrase in argv leaks").hideHelp(),
    )
    // refused before the command runs, also by commands that need no passphrase this time
    // (`identity show` reads public_key; `homeserver status` uses the stored session)
    .hook("preAction", (_cmd, action) => refuseInlinePassphrase(action.opts()));
}
const _passphraseFlags: Same<Added<typeof addPassphrase>, PassphraseFlags> = true;

/** Add the passphrase options (and the refused inline form) to a command. */
export function withPassphrase<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
): Command<A, O & PassphraseFlags, G> {
  // The options are those of addPassphrase, whose inferred type _passphraseFlags pins down;
  // typing the generic chain itself makes the checker's work explode.
  addPassphrase(cmd as unknown as Command);
  return cmd as unknown as Command<A, O & PassphraseFlags, G>;
}

/** The PIN flags of a parsed command. */
export type PinFlags = {
  pinFile?: string;
  pinFd?: number;
  pinValue?: string;
};

function addPin(cmd: Command) {
  return cmd
    .option("--pin-file <path>", "read the PIN from a file (mode 0600 or 0400)")
    .option(
      "--pin-fd <n>",
      "read the PIN from an inherited pipe descriptor (3 or above)",
      parseIntArg,
    )
    .addOption(new Option("--pin-value <value>", "refused: a PIN in argv leaks").hideHelp());
}
const _pinFlags: Same<Added<typeof addPin>, PinFlags> = true;

/** Add the PIN sources (and the refused inline form) to a command. */
export function withPin<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
): Command<A, O & PinFlags, G> {
  addPin(cmd as unknown as Command);
  return cmd as unknown as Command<A, O & PinFlags, G>;
}

/** The PIN sources of parsed PIN flags. */
export function pinSources(o: PinFlags): PinOptions {
  return { pin: o.pinValue, pinFd: o.pinFd, pinFile: o.pinFile };
}

/** The network options' help, appended to every network command's help. */
export const NETWORK_HELP = `
Network options (every network command):
  --bootstrap host:port,...   Mainline DHT bootstrap nodes   (env CIPHERPOST_BOOTSTRAP)
  --relay URL,...             pkarr HTTP relays              (env CIPHERPOST_RELAYS)
  --no-dht / --no-relay       switch one path off
  --timeout MS                per-request timeout (default 2000; env CIPHERPOST_TIMEOUT)`;

function addNetwork(cmd: Command) {
  return cmd
    .option("--bootstrap <hosts>", "comma-separated DHT bootstrap host:port list")
    .option("--relay <urls>", "comma-separated pkarr relay URLs")
    .option("--no-dht", "do not use the Mainline DHT")
    .option("--no-relay", "do not use pkarr relays")
    .option("--timeout <ms>", "per-request timeout in milliseconds", parseIntArg);
}
/** The network flags as extra-typings infers them (`relay` is false after `--no-relay`). */
export type NetworkAdded = Added<typeof addNetwork>;
const _networkFlags: [NetworkAdded] extends [NetworkFlags] ? true : false = true;

/** Add the network options to a command. */
export function withNetwork<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
): Command<A, O & NetworkAdded, G> {
  addNetwork(cmd as unknown as Command);
  return cmd as unknown as Command<A, O & NetworkAdded, G>;
}

/**
 * Open a Transport as the network flags say, with the homeserver settings of the environment
 * bound to it, run `f`, and close it on every path.
 */
export async function withTransport<T>(
  o: NetworkFlags,
  f: (t: Transport) => Promise<T>,
): Promise<T> {
  const http = homeserverHttpFrom();
  const t = new Transport(networkOptionsFrom(o));
  bindHomeserverHttp(t, http);
  try {
    return await f(t);
  } finally {
    await t.close();
  }
}

/** Load the user's identity, asking for the passphrase as the flags say. */
export async function unlockIdentity(
  o: PassphraseFlags,
  io: Io = defaultIo,
): Promise<LoadedIdentity> {
  const home = cipherpostHome();
  const sources: PassphraseOptions = {
    passphrase: o.passphrase,
    passphraseFd: o.passphraseFd,
    passphraseFile: o.passphraseFile,
  };
  // three tries when the passphrase is typed at a terminal
  const id = await retryPassphrase(sources, (pass) => loadIdentity(home, pass));
  if (id.leaksKdfOutput) {
    io.err(
      "warning: this identity file was written by cipherpost v1.1 and stores its KDF output: anyone\n" +
        "with the file can decrypt it without the passphrase. Re-wrap it safely with:\n" +
        `  cipherpost identity import --force ${home}/secret_key\n`,
    );
  }
  return id;
}

/** Obtain (and validate) the PIN the flags point at. */
export function pinOf(o: PinFlags, confirm: boolean): Promise<string> {
  return getPin(pinSources(o), confirm);
}
