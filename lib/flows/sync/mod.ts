/**
 * Claude sync flows (docs/PROTOCOL.md §8): push, pull, status, log.
 *
 * @module
 */

export * from "./common.ts";
export * from "./log.ts";
export * from "./pull.ts";
export * from "./push.ts";
export * from "./status.ts";
