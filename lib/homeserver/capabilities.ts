/**
 * Pubky capabilities (docs/PROTOCOL.md §6.1): `<scope>:<actions>`, comma-joined. A scope starts
 * with `/`; a scope ending in `/` covers every path below it, one without covers that exact path.
 * Actions are a non-empty subset of `r` and `w`, written `r`, `w` or `rw`.
 *
 * @module
 */

import { CipherpostError } from "../util/errors.ts";

/** One capability. */
export interface Capability {
  /** Absolute path or folder (ending in `/`). */
  scope: string;
  read: boolean;
  write: boolean;
}

/** The folder every cipherpost file lives under. */
export const CIPHERPOST_ROOT = "/pub/cipherpost/";

/** The only capability our client ever asks for: `/pub/cipherpost/:rw`. */
export const CIPHERPOST_CAPABILITY: Readonly<Capability> = Object.freeze({
  scope: CIPHERPOST_ROOT,
  read: true,
  write: true,
});

function bad(why: string): CipherpostError {
  return new CipherpostError("homeserver", `homeserver error: invalid capabilities (${why})`);
}

/** `/pub/cipherpost/:rw` for one capability. */
export function formatCapability(c: Capability): string {
  if (!c.scope.startsWith("/")) throw bad("scope must start with /");
  if (c.scope.includes(",") || c.scope.includes(":")) throw bad("scope contains , or :");
  if (!c.read && !c.write) throw bad("no action");
  return `${c.scope}:${c.read ? "r" : ""}${c.write ? "w" : ""}`;
}

/** The comma-joined list. */
export function formatCapabilities(caps: readonly Capability[]): string {
  return caps.map(formatCapability).join(",");
}

/** Parse a comma-joined list (empty string = no capabilities). Throws `homeserver` if malformed. */
export function parseCapabilities(text: string): Capability[] {
  if (text === "") return [];
  return text.split(",").map((entry) => {
    const i = entry.lastIndexOf(":");
    if (i < 1) throw bad("missing ':'");
    const scope = entry.slice(0, i);
    const actions = entry.slice(i + 1);
    if (!scope.startsWith("/")) throw bad("scope must start with /");
    if (!/^[rw]{1,2}$/.test(actions) || actions === "rr" || actions === "ww") {
      throw bad("actions must be r, w or rw");
    }
    return { scope, read: actions.includes("r"), write: actions.includes("w") };
  });
}

/** Whether one capability covers `path` (folder scope: prefix; file scope: exact). */
export function covers(c: Capability, path: string): boolean {
  return c.scope.endsWith("/") ? path.startsWith(c.scope) : path === c.scope;
}

/** Whether `caps` allow `action` on `path`. */
export function allows(
  caps: readonly Capability[],
  path: string,
  action: "read" | "write",
): boolean {
  return caps.some((c) => c[action] && covers(c, path));
}

/** Whether `caps` is exactly `[/pub/cipherpost/:rw]`. */
export function isCipherpostOnly(caps: readonly Capability[]): boolean {
  return caps.length === 1 && formatCapabilities(caps) === formatCapability(CIPHERPOST_CAPABILITY);
}
