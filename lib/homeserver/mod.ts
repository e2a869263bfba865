/**
 * The homeserver layer: AuthTokens, capabilities, discovery and its endpoint policy, sessions,
 * the one request path, the data client, and the blob status read. See docs/PROTOCOL.md §4.
 *
 * @module
 */

export * from "./auth_token.ts";
export * from "./blob_status.ts";
export * from "./capabilities.ts";
export * from "./client.ts";
export * from "./connect.ts";
export * from "./discovery.ts";
export * from "./endpoint_policy.ts";
export * from "./http.ts";
export * from "./paths.ts";
export * from "./request.ts";
export * from "./session.ts";
export * from "./session_store.ts";
