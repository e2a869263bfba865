/**
 * Claude sync flows (docs/PROTOCOL.md §8): push, pull, status, diff, log, restore, conflicts,
 * devices.
 *
 * @module
 */

export * from "./common.ts";
export * from "./conflicts.ts";
export * from "./devices.ts";
export * from "./diff.ts";
export * from "./history.ts";
export * from "./log.ts";
export * from "./pull.ts";
export * from "./push.ts";
export * from "./restore.ts";
export * from "./status.ts";
