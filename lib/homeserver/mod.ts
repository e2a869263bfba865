/**
 * The homeserver layer: AuthTokens, capabilities, discovery, sessions and the data client.
 * See docs/PROTOCOL.md §4.
 *
 * @module
 */

export * from "./auth_token.ts";
export * from "./capabilities.ts";
export * from "./client.ts";
export * from "./connect.ts";
export * from "./discovery.ts";
export * from "./http.ts";
export * from "./paths.ts";
export * from "./session.ts";
export * from "./session_store.ts";
