/**
 * The cipherpost home folder, from the environment. Only the CLI reads the environment: the
 * library takes the home path as a parameter (`loadIdentity(home, …)`, `new State(home)`).
 *
 * @module
 */

import { configError } from "../util/errors.ts";

/** `$CIPHERPOST_HOME` verbatim if set, else `$HOME/.cipherpost` (`%USERPROFILE%` on Windows). */
export function cipherpostHome(): string {
  const explicit = Deno.env.get("CIPHERPOST_HOME");
  if (explicit) return explicit;
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  if (!home) {
    throw configError(
      "neither CIPHERPOST_HOME nor HOME is set",
      "set CIPHERPOST_HOME to the folder that holds your identity",
    );
  }
  return `${home}/.cipherpost`;
}
