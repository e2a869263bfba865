/**
 * Minimal ambient types for `npm:bittorrent-dht@11.0.12` (the package ships none).
 *
 * Only what cipherpost touches is declared, including the private members (`_closest`, `_rpc`,
 * `_values`) that the transport layer relies on. They are private API: the import map pins the
 * exact version, so re-check these shapes before bumping it.
 *
 * @module
 */

import type { Buffer } from "node:buffer";

/** A contact as bittorrent-dht / k-rpc pass them around. */
export interface DhtPeer {
  host: string;
  port: number;
  id?: Buffer;
  token?: Buffer | null;
}

/** The remote address of a reply (node:dgram rinfo). */
export interface DhtRinfo {
  address: string;
  port: number;
}

/** A decoded KRPC message (only the fields cipherpost reads). */
export interface KrpcMessage {
  t?: Buffer;
  y?: Buffer;
  r?: Record<string, unknown>;
  e?: unknown[];
  q?: string | Buffer;
  a?: Record<string, unknown>;
}

/** A KRPC query to send. */
export interface KrpcQuery {
  q: string;
  a: Record<string, unknown>;
}

/** The error k-rpc-socket hands to query callbacks (`code` = KRPC error code or "ETIMEDOUT"). */
export interface KrpcError extends Error {
  code?: number | string;
}

/** Callback of a single KRPC query. */
export type KrpcCallback = (
  err: KrpcError | null,
  res: KrpcMessage | null,
  peer?: DhtRinfo | DhtPeer,
) => void;

/** k-rpc-socket: the UDP transport under k-rpc. */
export interface KrpcSocket {
  socket: {
    on(event: string, fn: (...args: unknown[]) => void): unknown;
    close(): void;
  };
  destroyed: boolean;
  inflight: number;
  timeout: number;
  on(event: string, fn: (...args: never[]) => void): unknown;
  removeListener(event: string, fn: (...args: never[]) => void): unknown;
  emit(event: string, ...args: unknown[]): boolean;
  query(peer: DhtPeer, query: KrpcQuery, cb: KrpcCallback): number | undefined;
}

/** The k-bucket routing table. */
export interface KBucket {
  count(): number;
  toArray(): DhtPeer[];
}

/** k-rpc: queries, traversals, routing table. */
export interface Krpc {
  id: Buffer;
  k: number;
  socket: KrpcSocket;
  nodes: KBucket;
  query(peer: DhtPeer, query: KrpcQuery, cb: KrpcCallback): void;
  /** Answer a query with a KRPC error `[code, message]`. */
  error(peer: DhtRinfo | DhtPeer, query: KrpcQuery, error: [number, string]): void;
}

/** A value as a node stores it in `_values`. */
export interface StoredValue {
  v: Buffer;
  k?: Buffer;
  sig?: Buffer;
  seq?: number;
  salt?: Buffer;
  id: Buffer;
}

/** Constructor options (passed through to k-rpc and k-rpc-socket). */
export interface DhtOptions {
  /** `false` or a list of "host:port" / {host, port}; the default is the public routers. */
  bootstrap: false | Array<string | DhtPeer>;
  verify?: (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array) => boolean;
  timeout?: number;
  k?: number;
  concurrency?: number;
  maxValues?: number;
  nodeId?: Buffer;
}

/** A bittorrent-dht node. */
export default class DHT {
  constructor(opts: DhtOptions);
  readonly nodeId: Buffer;
  readonly nodes: KBucket;
  readonly destroyed: boolean;
  readonly ready?: boolean;
  _rpc: Krpc;
  /** Handler of incoming BEP44 `put` queries (replaced by read-only clients). */
  _onput(query: KrpcQuery, peer: DhtRinfo): void;
  _values: {
    get(key: string): StoredValue | undefined;
    peek(key: string): StoredValue | undefined;
    set(key: string, value: StoredValue): void;
    readonly length: number;
  };
  _closest(
    target: Buffer,
    message: KrpcQuery,
    onreply: ((message: KrpcMessage, from: DhtRinfo) => boolean) | null,
    done: (err: Error | null, responded?: number) => void,
  ): void;
  listen(port: number, address: string, cb?: () => void): void;
  address(): { address: string; port: number };
  addNode(node: { host: string; port: number; id?: Buffer }): void;
  destroy(cb?: () => void): void;
  on(event: string, fn: (...args: never[]) => void): this;
  once(event: string, fn: (...args: never[]) => void): this;
  removeListener(event: string, fn: (...args: never[]) => void): this;
}
