/**
 * Package cipherpost hands a secret (a password, a key, a certificate, a file) from one person
 * to another with no server and no account. The sender's Ed25519 key is the address; the share
 * is encrypted with age to the recipient's key (X25519 converted from their Ed25519 key), signed
 * twice, and published as a PKARR signed packet on the Mainline DHT and on pkarr HTTP relays.
 * The recipient resolves it, verifies both signatures, and only then decrypts; accepting a share
 * publishes a signed receipt the sender can collect.
 *
 * This module is the library. The command-line program is the `./cli` export (`main.ts`); a local
 * testnet and a stand-in homeserver for tests are the `./testing` export (`testing.ts`).
 *
 * ## Use
 *
 * An identity is a passphrase-wrapped Ed25519 seed in a home folder. A {@link Transport} is a
 * handle on the network: open one per task and close it on every path. {@link State} is the
 * home's record of sent and accepted shares.
 *
 * ```ts
 * import {
 *   encodeZ32, type FlowUi, type Keypair, loadIdentity, parseShareUri, receive, send, State,
 *   Transport, transportOptions,
 * } from "@cipherpost/cipherpost";
 * declare const passphrase: string, bobZ32: string, bobHome: string, bob: Keypair;
 *
 * const home = "/home/alice/.cipherpost";
 * const me = await loadIdentity(home, passphrase);
 * const ui: FlowUi = { status: (line) => console.error(line), note: (t) => console.error(t) };
 * const t = new Transport(transportOptions()); // public DHT bootstrap nodes and relays
 * try {
 *   // Alice sends to Bob's z-base-32 key (the output of `cipherpost identity show`).
 *   const sent = await send({ transport: t, state: new State(home), me }, {
 *     recipient: bobZ32, purpose: "staging db password", material: "generic_secret",
 *     input: new TextEncoder().encode("hunter2"), ttlSeconds: 86400n, pin: null, burn: false,
 *   }, ui);
 *   console.log(sent.uri); // cipherpost://… : give this to Bob
 *
 *   // Bob, in his own home. `confirm` sees the verified share before anything is written;
 *   // cipherpost's CLI shows it and asks its user to type the sender's key back. The same
 *   // call receives a large share (a file or folder on the sender's homeserver).
 *   await receive({ transport: t, state: new State(bobHome), me: bob }, {
 *     uri: parseShareUri(sent.uri), output: "secret.txt", force: false, armor: false,
 *     pin: () => Promise.reject(new Error("this share has no PIN")),
 *     writeStdout: () => Promise.resolve(),
 *   }, {
 *     ...ui,
 *     confirm: (s) => Promise.resolve(s.sender === encodeZ32(me.publicKey)),
 *   });
 * } finally {
 *   await t.close();
 * }
 * ```
 *
 * Large payloads: {@link sendLarge} (a file, a folder or a stream through your homeserver);
 * {@link receive} takes them too. Claude Code sessions: {@link claudeSend} and
 * {@link claudePickup}. Keeping shares alive: {@link republishAll} (hourly), and
 * {@link collectGarbage} for the homeserver.
 *
 * Claude sync keeps this machine's Claude Code files in step with your other machines through
 * your own homeserver, sealed to your identity: {@link syncPush} ({@link syncPushUnchanged}: the
 * no-change check without the identity or the network), {@link syncPull},
 * {@link syncStatus} (local changes, no network), {@link syncDiff}, {@link syncLog},
 * {@link syncRestore}, {@link syncConflicts} and {@link syncDevices}. Rooms are signed,
 * epoch-encrypted messages each member writes to their own homeserver: {@link createRoom},
 * {@link inviteToRoom} (an invite share) and {@link joinRoom}, {@link removeFromRoom} and
 * {@link leaveRoom}, {@link sendToRoom}; {@link RoomReader.open} then {@link RoomReader.scan}
 * read a room's history, verified, and {@link followRoom} keeps reading it live. A file drop is
 * a large share to the room's members: {@link dropFile} (sensitive paths refused,
 * {@link sensitivePathReason}), {@link listDrops} and {@link fetchDrop}.
 *
 * Every failure is a {@link CipherpostError} with a {@link ErrorKind}; its `message` is one line
 * without secrets, safe to show. Signature failures all carry the one message
 * `signature verification failed`, whatever went wrong, so the error is no oracle.
 *
 * ## Do not
 *
 * - Print untrusted fields unescaped. Purpose, material previews, receipt fields and anything
 *   else that came from the network may hold terminal control sequences: strip them (as the CLI
 *   does) before they reach a terminal.
 * - Skip verification. Use {@link receive}, {@link parseAndVerifyReceipt} and friends, which
 *   verify before they decrypt or return anything; {@link parseReceipt} alone checks only the
 *   shape and must be followed by {@link verifyReceipt}.
 * - Loosen the identity file. {@link storeIdentity} writes it 0600 in a 0700 folder, atomically;
 *   keep it that way, and never put the passphrase in argv, logs or the environment of other
 *   processes.
 * - Point tests at the public DHT. The `./testing` export (`startTestnet`) runs a DHT and a
 *   relay on loopback, and a stand-in homeserver.
 *
 * @module
 */

// Identity: a passphrase-wrapped Ed25519 seed in a home folder.
export {
  generateIdentity,
  IDENTITY_FILE,
  identityPath,
  type LoadedIdentity,
  loadIdentity,
  parseImport,
  type StoredIdentity,
  storeIdentity,
} from "./lib/state/identity.ts";
export { type Argon2Params, DEFAULT_ARGON2 } from "./lib/crypto/kdf.ts";
export {
  type Consumption,
  type LedgerRow,
  type SentShare,
  type SentShareBase,
  type SentShareV1,
  type SentShareV2,
  State,
} from "./lib/state/state.ts";
export type { JsonValue } from "./lib/util/canonical_json.ts";

// Keys and addresses.
export {
  ageRecipientOfEd,
  type Keypair,
  keypairFromSeed,
  sshFingerprint,
} from "./lib/crypto/keys.ts";
export { decodeZ32, encodeZ32, parsePublicKey } from "./lib/pkarr/public_key.ts";

// The network.
export {
  DEFAULT_BOOTSTRAP,
  DEFAULT_RELAYS,
  type PublishOptions,
  type PublishReport,
  type Resolved,
  type ResolveOptions,
  type ResolveReport,
  Transport,
  type TransportOptions,
  transportOptions,
} from "./lib/pkarr/transport.ts";
export { DhtConflictError } from "./lib/pkarr/conflict.ts";
export type { SignedPacket } from "./lib/pkarr/signed_packet.ts";
export type { DnsRecord, NameType, PrefNameType, RData } from "./lib/pkarr/dns.ts";

// Shares: send, receive (any kind: DHT material or a large share), revoke, republish, receipts.
export { send, type SendRequest, type SendResult } from "./lib/flows/share/send.ts";
export { receive, type ReceiveOptions } from "./lib/flows/large/receive_any.ts";
export {
  checkConsumed,
  type Consumed,
  type MaterialOutput,
  publishPendingReceipt,
  type ReceiveResult,
} from "./lib/flows/share/receive.ts";
export { revoke } from "./lib/flows/share/revoke.ts";
export { type RepublishReport } from "./lib/flows/share/republish.ts";
export { republishAll, type RepublishAllReport } from "./lib/flows/large/republish.ts";
export { collectReceipts, type ReceiptHarvest } from "./lib/flows/share/receipts.ts";
export type {
  AcceptanceSummary,
  FlowContext,
  FlowUi,
  LargeSummary,
  MaterialSummary,
  PayloadSummary,
  ProgressPhase,
  SessionSummaryView,
} from "./lib/flows/share/ui.ts";

// Large shares: files and folders through the sender's Pubky homeserver.
export {
  type LargeSendRequest,
  type LargeSendResult,
  type LargeSource,
  type PublishedShare,
  sendLarge,
} from "./lib/flows/large/send.ts";
export type { LargeOutput } from "./lib/flows/large/receive.ts";
export {
  collectGarbage,
  type GcOptions,
  type GcReason,
  type GcReport,
} from "./lib/flows/large/gc.ts";

// Claude Code session hand-off.
export {
  claudeSend,
  type ClaudeSendRequest,
  type ClaudeSendResult,
} from "./lib/flows/handoff/send.ts";
export {
  claudePickup,
  type ClaudePickupRequest,
  type ClaudePickupResult,
  type PlacedSession,
} from "./lib/flows/handoff/pickup.ts";
export {
  type DiscoverOptions,
  discoverSession,
  listSessions,
  type LocalSession,
  type Pick as SessionPick,
  type PickReason,
} from "./lib/claude/discover.ts";
export type { SessionFiles } from "./lib/claude/bundle.ts";
export type { SessionSummary } from "./lib/claude/summary.ts";
export type { PlaceAction } from "./lib/claude/place.ts";

// Claude sync: this machine's Claude Code files, through the identity's own homeserver.
export {
  type ConflictCopy,
  type ConflictsResult,
  type DeviceInfo,
  type DiffEntry,
  type DiffResult,
  type DiffSide,
  type LogEntry,
  type PullAction,
  type PullResult,
  type PushOptions,
  type PushResult,
  type Resolution,
  type RestoredFile,
  type RestoreOptions,
  type RestoreResult,
  type StatusResult,
  syncConflicts,
  type SyncContext,
  type SyncCounters,
  syncDevices,
  syncDiff,
  type SyncEnv,
  syncLog,
  syncPull,
  syncPush,
  syncPushUnchanged,
  syncRestore,
  syncStatus,
} from "./lib/flows/sync/mod.ts";
export {
  defaultSyncConfig,
  readSyncConfig,
  saveSyncConfig,
  type SyncConfig,
} from "./lib/sync/config.ts";
export type { PathMapRule } from "./lib/sync/canonical.ts";
export { type McpPaths, mcpViewPath } from "./lib/sync/mcp_servers.ts";
export type { ScopeName } from "./lib/sync/scope.ts";

// Rooms: signed, epoch-encrypted messages on each member's homeserver.
export {
  createRoom,
  type InviteRequest,
  type InviteResult,
  inviteToRoom,
  leaveRoom,
  removeFromRoom,
  setRoomAdmin,
} from "./lib/flows/rooms/manage.ts";
export {
  admitJoiner,
  type AdmitResult,
  type IssuedTicketResult,
  issueTicket,
  joinByTicket,
  type JoinRequests,
  listJoinRequests,
  type SeenRequest,
  type TicketJoinResult,
  type TicketRequest,
} from "./lib/flows/rooms/ticket.ts";
export { parseTicket, type Ticket } from "./lib/rooms/ticket.ts";
export { type JoinRequest, type JoinResult, joinRoom } from "./lib/flows/rooms/join.ts";
export { sendToRoom, type SentMessage } from "./lib/flows/rooms/send.ts";
export { type FollowOptions, followRoom, type FollowSink } from "./lib/flows/rooms/live.ts";
export { type RoomProblem, RoomReader } from "./lib/flows/rooms/read.ts";
export type { RoomContext } from "./lib/flows/rooms/net.ts";
export type {
  Message as RoomMessage,
  MessageKind as RoomMessageKind,
} from "./lib/rooms/records.ts";
export type { Refusal as RoomRefusal } from "./lib/rooms/seal.ts";
export type { RoomState } from "./lib/rooms/store.ts";
export { FLOOD_LIMIT, FLOOD_WINDOW_MS, FloodGate } from "./lib/rooms/order.ts";

// Doctor: is this home safe and working? (findings as data; the CLI words the fixes)
export {
  checkHomeserver,
  checkLocalFiles,
  type DoctorCheck,
  type DoctorFinding,
  type DoctorFix,
  type DoctorStatus,
  type HomeserverCheckOptions,
} from "./lib/flows/rooms/doctor.ts";
export {
  checkDropPath,
  dropFile,
  type DropRequest,
  type DropResult,
  fetchDrop,
  listDrops,
} from "./lib/flows/rooms/drop.ts";
export { type Drop, MAX_DROP_SIZE, messageText } from "./lib/rooms/drops.ts";
export { sensitivePathReason } from "./lib/util/sensitive_paths.ts";

// Contacts: names for keys.
export { type Contact, Contacts } from "./lib/state/contacts.ts";

export {
  type Envelope,
  parseAndVerifyReceipt,
  parseReceipt,
  type Receipt,
  verifyReceipt,
} from "./lib/protocol/record.ts";
export {
  formatV1Uri,
  formatV2Uri,
  parseShareUri,
  type ShareUri,
} from "./lib/protocol/share_uri.ts";
export { MATERIAL_CAP, type MaterialType } from "./lib/material/material.ts";

// Errors.
export {
  CipherpostError,
  DECRYPT_FAILED,
  type ErrorKind,
  type Remedy,
  type RemedyStep,
  SIGNATURE_FAILED,
} from "./lib/util/errors.ts";
