/**
 * Local state under `<home>/state` (docs/cli.md, "Files in the home"), compatible with v1.1's layout:
 *
 * - `accepted/<share_ref>`: an empty sentinel per accepted share (0600, created exclusively);
 * - `accepted.jsonl`: one canonical-JSON row per event, appended with a single `write` on an
 *   `O_APPEND` descriptor and fsynced, so a crash leaves whole rows only (a torn last line
 *   without its newline is ignored on read);
 * - `locks/<share_ref>.lock`: held with an exclusive `flock` for the whole receive, so two
 *   concurrent receives of one share (ours or v1.1's) serialise.
 *
 * New here: `sent/<share_ref>.json` records the shares this identity has published (what
 * `revoke`, `republish` and `receipts` need), each written atomically with mode 0600.
 *
 * @module
 */

import type { SentShareFacts } from "../protocol/receipt_binding.ts";
import { canonicalize, field, type JsonValue, parseJson } from "../util/canonical_json.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { stripControl, toHex } from "../util/encoding.ts";
import { CipherpostError, configError } from "../util/errors.ts";
import { ensurePrivateDir, exists, sweepStaleTemps, writeFileAtomic } from "../util/fsutil.ts";

/** A row of the ledger `accepted.jsonl`: one share this home accepted (v1.1's layout). */
export interface LedgerRow {
  /** When the share was accepted: ISO `YYYY-MM-DDTHH:MM:SSZ`. */
  acceptedAt: string;
  /** SHA-256 (64 lowercase hex) of the share's ciphertext, as its receipt states it. */
  ciphertextHash: string;
  /** SHA-256 (64 lowercase hex) of the decrypted Envelope, as its receipt states it. */
  cleartextHash: string;
  /** The share's purpose as sent (stripped of controls when it could not be stored as is). */
  purpose: string;
  /** When its receipt went out (ISO, as `acceptedAt`), on a row written once it did; else absent. */
  receiptPublishedAt?: string;
  /** The sender's key, z-base-32. */
  sender: string;
  /** The share's reference (32 lowercase hex). */
  shareRef: string;
  /** `burned`: a burn-after-read share, accepted once and never again. */
  state?: "burned";
}

/** What every sent-share record holds. */
export interface SentShareBase {
  /** The share's reference (32 lowercase hex), also the record's file name. */
  shareRef: string;
  /** the share URI as printed by `send` */
  uri: string;
  /** z32 key of the sending identity */
  sender: string;
  /** z32 key of the recipient; null = to self */
  recipient: string | null;
  /** Unix seconds */
  createdAt: number;
  /** Unix seconds */
  expiresAt: number;
  /**
   * hex SHA-256 of the outer age ciphertext (PIN: without the salt): binds receipts to the
   * share, and names a v1 share's receipt overflow slot; absent in old records
   */
  ciphertextSha256?: string;
  /** the purpose as sent (for `cipherpost shares`); absent in older records */
  purpose?: string;
}

/** A v1 share this home published (one `_cipherpost` record in the sender's packet). */
export interface SentShareV1 extends SentShareBase {
  /** Protocol version 1. */
  version: 1;
}

/** A v2 share this home published (manifest and parts, kept for `republish`). */
export interface SentShareV2 extends SentShareBase {
  /** Protocol version 2. */
  version: 2;
  /** hex of the 32-byte locator */
  locator: string;
  /** base64 of every signed packet, manifest first */
  packets: string[];
  /** a large share's homeserver facts (lib/flows/large_send.ts owns their shape) */
  large?: { [k: string]: JsonValue };
}

/** A record of `sent/<share_ref>.json`: a share this home published. */
export type SentShare = SentShareV1 | SentShareV2;

/** The facts of a sent-share record that bind a receipt to it (see `receiptMismatch`). */
export function sentShareFacts(s: SentShare): SentShareFacts {
  return {
    shareRef: s.shareRef,
    sender: s.sender,
    recipient: s.recipient,
    ciphertextSha256: s.ciphertextSha256 ?? null,
  };
}

/** The on-disk form of a sent-share record (canonical JSON, snake_case keys). */
function sentToJson(s: SentShare): Record<string, JsonValue> {
  const o: Record<string, JsonValue> = {
    version: s.version,
    share_ref: s.shareRef,
    uri: s.uri,
    sender: s.sender,
    recipient: s.recipient,
    created_at: s.createdAt,
    expires_at: s.expiresAt,
  };
  if (s.ciphertextSha256 !== undefined) o.ciphertext_sha256 = s.ciphertextSha256;
  if (s.purpose !== undefined) o.purpose = s.purpose;
  if (s.version === 2) {
    o.locator = s.locator;
    o.packets = s.packets;
    if (s.large !== undefined) o.large = s.large;
  }
  return o;
}

/** Parse and check a sent-share record; throws on anything malformed. */
function sentFromJson(v: JsonValue): SentShare {
  if (!field.isObject(v)) throw new Error("not an object");
  const recipient = v.recipient;
  if (recipient !== null && typeof recipient !== "string") throw new Error("bad recipient");
  const base: SentShareBase = {
    shareRef: field.str(v.share_ref),
    uri: field.str(v.uri),
    sender: field.str(v.sender),
    recipient,
    createdAt: field.int(v.created_at),
    expiresAt: field.int(v.expires_at),
  };
  if (typeof v.purpose === "string") base.purpose = v.purpose;
  if (!REF_RE.test(base.shareRef)) throw new Error("bad share_ref");
  const c = v.ciphertext_sha256;
  if (c !== undefined && (typeof c !== "string" || !/^[0-9a-f]{64}$/.test(c))) {
    throw new Error("bad ciphertext_sha256");
  }
  if (c !== undefined) base.ciphertextSha256 = c;
  const version = field.int(v.version);
  if (version === 1) return { ...base, version: 1 };
  if (version === 2) {
    const locator = field.str(v.locator);
    if (!/^[0-9a-f]{64}$/.test(locator)) throw new Error("bad locator");
    if (!Array.isArray(v.packets)) throw new Error("bad packets");
    const packets = v.packets.map((p) => field.str(p));
    const large = field.isObject(v.large) ? { large: v.large } : {};
    return { ...base, version: 2, locator, packets, ...large };
  }
  throw new Error("unknown version");
}

/** What the ledger says of a share. */
export type Consumption =
  | { kind: "fresh" }
  | { kind: "accepted"; at: string }
  | { kind: "burned"; at: string };

const REF_RE = /^[0-9a-f]{32}$/;

function checkRef(ref: string): void {
  if (!REF_RE.test(ref)) {
    throw configError(
      "malformed share_ref",
    );
  }
}

/** The file name under which a locator is indexed: a hash, so the locator itself is not stored. */
function locatorKey(locatorHex: string): string {
  return toHex(sha256(new TextEncoder().encode(`cipherpost/v2/locator-index/${locatorHex}`))).slice(
    0,
    32,
  );
}

/** A state file that exists but cannot be read (permissions, a directory in its place). */
function stateReadError(what: string, e: unknown): CipherpostError {
  const why = e instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : e instanceof Deno.errors.IsADirectory
    ? "it is a directory"
    : "unreadable";
  return new CipherpostError(
    "io",
    `io error: cannot read state file ${what}: ${why}`,
    "check the owner and mode of $CIPHERPOST_HOME/state (files 0600, folders 0700)",
  );
}

/** ISO `YYYY-MM-DDTHH:MM:SSZ` of a Date. */
export function isoSeconds(d = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * The state folder of a cipherpost home (`home/state`): the ledger of accepted shares, the
 * records of sent shares, pending receipts and locks. Nothing is created until first used; every
 * file is written 0600 in 0700 folders. Methods throw {@link CipherpostError} `config` on a
 * malformed `share_ref` (`forgetGoneBlob`: a plain Error on a malformed blob id) and `io` when a
 * state file exists but cannot be read; other file-system failures reject with the `Deno.errors`
 * error as it is.
 */
export class State {
  /** The cipherpost home (identity, contacts, state). */
  readonly home: string;
  /** The state folder: `home/state`. */
  readonly dir: string;

  /**
   * A handle on the state of `home`; touches nothing on disk.
   *
   * @param home The cipherpost home folder.
   */
  constructor(home: string) {
    this.home = home;
    this.dir = `${home}/state`;
  }

  #swept = false;

  /** Create the folders (0700) and, once, sweep the temp files a killed writer left. */
  private async init(): Promise<void> {
    await ensurePrivateDir(this.dir);
    await ensurePrivateDir(`${this.dir}/accepted`);
    await ensurePrivateDir(`${this.dir}/locks`);
    if (!this.#swept) {
      // temp files of a killed process (an atomic write cut short) go on the first use
      this.#swept = true;
      for (const d of [this.dir, `${this.dir}/sent`, `${this.dir}/v2index`]) {
        await sweepStaleTemps(d);
      }
    }
  }

  /**
   * Take the exclusive lock for one share; returns a release function. Blocks while another
   * process holds it.
   */
  async lock(ref: string): Promise<() => void> {
    checkRef(ref);
    return await this.#lockFile(`${ref}.lock`);
  }

  /**
   * Take the exclusive lock on this home's identity packet; returns a release function. Every
   * read-merge-write of the packet holds it, so local writers (parallel sends and receipt
   * writes) cannot lose each other's records.
   */
  async lockPacket(): Promise<() => void> {
    return await this.#lockFile("packet.lock");
  }

  /**
   * Take the exclusive lock named `name` (`locks/<name>.lock`, e.g. a large send's source) if no
   * other holder has it: a release function, or null when it is held (by another process, or by
   * another handle in this one). Never waits.
   *
   * @throws Error when `name` is not 1–64 characters of `[a-z0-9-]`
   */
  async tryLock(name: string): Promise<(() => void) | null> {
    if (!/^[a-z0-9-]{1,64}$/.test(name)) throw new Error("not a lock name");
    return await this.#lockFile(`${name}.lock`, false);
  }

  /**
   * An exclusive lock on `locks/<name>` (0600), held until the returned function is called;
   * with `wait` false, null at once when another holder has it.
   */
  async #lockFile(name: string): Promise<() => void>;
  async #lockFile(name: string, wait: false): Promise<(() => void) | null>;
  async #lockFile(name: string, wait = true): Promise<(() => void) | null> {
    await this.init();
    const f = await Deno.open(`${this.dir}/locks/${name}`, {
      read: true,
      write: true,
      create: true,
      mode: 0o600,
    });
    if (wait) await f.lock(true);
    else if (!await f.tryLock(true).catch((e) => (f.close(), Promise.reject(e)))) {
      f.close();
      return null;
    }
    return () => {
      try {
        f.unlockSync();
      } finally {
        f.close();
      }
    };
  }

  /**
   * Whether a share was already accepted or burned (first matching row wins, as in v1.1). With
   * `sender`, only rows of that sender count: another key's record that copies a share_ref is
   * a different share.
   */
  async consumption(ref: string, sender?: string): Promise<Consumption> {
    checkRef(ref);
    if (!await exists(`${this.dir}/accepted/${ref}`)) return { kind: "fresh" };
    const rows = (await this.rows()).filter((r) => r.shareRef === ref);
    if (sender !== undefined && rows.length > 0 && !rows.some((r) => r.sender === sender)) {
      return { kind: "fresh" };
    }
    for (const row of rows) {
      if (sender !== undefined && row.sender !== sender) continue;
      return row.state === "burned"
        ? { kind: "burned", at: row.acceptedAt }
        : { kind: "accepted", at: row.acceptedAt };
    }
    return { kind: "accepted", at: "<unknown; sentinel exists but ledger missing>" };
  }

  /** All whole rows of the ledger. */
  async rows(): Promise<LedgerRow[]> {
    let text: string;
    try {
      text = await Deno.readTextFile(`${this.dir}/accepted.jsonl`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw stateReadError("accepted.jsonl", e);
    }
    const out: LedgerRow[] = [];
    const lines = text.split("\n");
    lines.pop(); // the part after the last newline is either empty or a torn write
    for (const line of lines) {
      try {
        const o = parseJson(line) as Record<string, JsonValue>;
        out.push({
          acceptedAt: String(o.accepted_at),
          ciphertextHash: String(o.ciphertext_hash),
          cleartextHash: String(o.cleartext_hash),
          purpose: String(o.purpose),
          receiptPublishedAt: o.receipt_published_at === undefined
            ? undefined
            : String(o.receipt_published_at),
          sender: String(o.sender),
          shareRef: String(o.share_ref),
          state: o.state === "burned" ? "burned" : undefined,
        });
      } catch { /* a foreign or damaged row: skip */ }
    }
    return out;
  }

  /** Create the sentinel for a share (exists = ok). */
  async markAccepted(ref: string): Promise<void> {
    checkRef(ref);
    await this.init();
    try {
      const f = await Deno.open(`${this.dir}/accepted/${ref}`, {
        write: true,
        createNew: true,
        mode: 0o600,
      });
      f.close();
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
  }

  /** Append one row: a single write of the whole line on an O_APPEND descriptor, then fsync. */
  async append(row: LedgerRow): Promise<void> {
    await this.init();
    const o: Record<string, JsonValue> = {
      accepted_at: row.acceptedAt,
      ciphertext_hash: row.ciphertextHash,
      cleartext_hash: row.cleartextHash,
      purpose: row.purpose,
      sender: row.sender,
      share_ref: row.shareRef,
    };
    if (row.receiptPublishedAt) o.receipt_published_at = row.receiptPublishedAt;
    if (row.state) o.state = row.state;
    let line: Uint8Array;
    try {
      line = canonicalize(o);
    } catch {
      // a purpose with control characters: store it stripped rather than fail after delivery
      o.purpose = stripControl(row.purpose);
      line = canonicalize(o);
    }
    const data = new Uint8Array(line.length + 1);
    data.set(line);
    data[line.length] = 10;
    const path = `${this.dir}/accepted.jsonl`;
    const f = await Deno.open(path, { append: true, create: true, mode: 0o600 });
    try {
      const n = await f.write(data);
      if (n !== data.length) {
        throw new CipherpostError("io", "io error: short write to the state ledger");
      }
      await f.sync();
    } finally {
      f.close();
    }
  }

  /** Save a sent share's record (atomic, 0600). */
  async saveSent(share: SentShare): Promise<void> {
    checkRef(share.shareRef);
    await this.init();
    await ensurePrivateDir(`${this.dir}/sent`);
    await writeFileAtomic(
      `${this.dir}/sent/${share.shareRef}.json`,
      canonicalize(sentToJson(share)),
      0o600,
    );
  }

  /** All sent-share records (a damaged or foreign file is skipped). */
  async listSent(): Promise<SentShare[]> {
    const out: SentShare[] = [];
    try {
      for await (const e of Deno.readDir(`${this.dir}/sent`)) {
        if (!e.isFile || !/^[0-9a-f]{32}\.json$/.test(e.name)) continue;
        let text: string;
        try {
          text = await Deno.readTextFile(`${this.dir}/sent/${e.name}`);
        } catch (err) {
          if (err instanceof Deno.errors.NotFound) continue; // removed meanwhile
          throw stateReadError(`sent/${e.name}`, err);
        }
        try {
          out.push(sentFromJson(parseJson(text)));
        } catch { /* damaged: skip */ }
      }
    } catch (e) {
      if (e instanceof CipherpostError) throw e;
      if (!(e instanceof Deno.errors.NotFound)) throw stateReadError("sent", e);
    }
    return out;
  }

  /** Remember which share_ref a v2 locator named (so re-receives need no network). */
  async indexLocator(locatorHex: string, ref: string): Promise<void> {
    checkRef(ref);
    await this.init();
    await ensurePrivateDir(`${this.dir}/v2index`);
    await writeFileAtomic(
      `${this.dir}/v2index/${locatorKey(locatorHex)}`,
      new TextEncoder().encode(ref),
      0o600,
    );
  }

  /** The share_ref a v2 locator was accepted as, if any. */
  async refForLocator(locatorHex: string): Promise<string | null> {
    let ref: string;
    try {
      ref = (await Deno.readTextFile(`${this.dir}/v2index/${locatorKey(locatorHex)}`)).trim();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw stateReadError("v2index", e);
    }
    return REF_RE.test(ref) ? ref : null;
  }

  /** Keep a copy of the last packet we published under our identity key (for `republish`). */
  async saveOwnPacket(bytes: Uint8Array): Promise<void> {
    await this.init();
    await writeFileAtomic(`${this.dir}/packet.bin`, bytes, 0o600);
  }

  /** The last packet we published under our identity key, if any. */
  async loadOwnPacket(): Promise<Uint8Array | null> {
    try {
      return await Deno.readFile(`${this.dir}/packet.bin`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw stateReadError("packet.bin", e);
    }
  }

  /**
   * Keep a signed receipt until it is on the network (`pending/<share_ref>.json`, atomic,
   * 0600): written when a share is accepted, removed once its receipt is published, so that a
   * crash or a network failure in between is repaired by the next receive or `republish`.
   */
  async savePendingReceipt(ref: string, record: JsonValue): Promise<void> {
    checkRef(ref);
    await this.init();
    await ensurePrivateDir(`${this.dir}/pending`);
    await writeFileAtomic(`${this.dir}/pending/${ref}.json`, canonicalize(record), 0o600);
  }

  /** The pending receipt of a share, or null. A damaged record is null; other errors throw. */
  async pendingReceipt(ref: string): Promise<Record<string, JsonValue> | null> {
    checkRef(ref);
    let text: string;
    try {
      text = await Deno.readTextFile(`${this.dir}/pending/${ref}.json`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw stateReadError(`pending/${ref}.json`, e);
    }
    try {
      const o = parseJson(text);
      return o !== null && typeof o === "object" && !Array.isArray(o) ? o : null;
    } catch {
      return null;
    }
  }

  /** The share_refs with a pending receipt. */
  async pendingRefs(): Promise<string[]> {
    const out: string[] = [];
    try {
      for await (const e of Deno.readDir(`${this.dir}/pending`)) {
        const m = /^([0-9a-f]{32})\.json$/.exec(e.name);
        if (m && e.isFile) out.push(m[1]);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw stateReadError("pending", e);
    }
    return out.sort();
  }

  /** Forget a pending receipt (it was published). */
  async removePendingReceipt(ref: string): Promise<void> {
    checkRef(ref);
    await Deno.remove(`${this.dir}/pending/${ref}.json`).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw stateReadError(`pending/${ref}.json`, e);
    });
  }

  /**
   * Remove a sent-share record. A large share leaves a tombstone naming its blob folder
   * (`large/gone/<blob_id>.json`, with `why`), so `homeserver gc` still knows the folder is
   * this home's to delete; without one, gc keeps folders it does not know (another machine of
   * the same identity may have sent them).
   */
  async removeSent(ref: string, why: "revoked" | "expired" = "revoked"): Promise<void> {
    checkRef(ref);
    const path = `${this.dir}/sent/${ref}.json`;
    let blob: string | null = null;
    try {
      const rec = sentFromJson(parseJson(await Deno.readTextFile(path)));
      const id = rec.version === 2 ? rec.large?.blob_id : undefined;
      if (typeof id === "string" && /^[0-9a-f]{32}$/.test(id)) blob = id;
    } catch { /* gone or damaged: nothing to remember */ }
    if (blob !== null) {
      await ensurePrivateDir(`${this.dir}/large`);
      await ensurePrivateDir(`${this.dir}/large/gone`);
      await writeFileAtomic(
        `${this.dir}/large/gone/${blob}.json`,
        canonicalize({ blob_id: blob, share_ref: ref, why }),
        0o600,
      );
    }
    await Deno.remove(path).catch(() => {});
  }

  /** Blob folders of removed large shares (see {@link removeSent}): blob id → why. */
  async goneBlobs(): Promise<Map<string, "revoked" | "expired">> {
    const out = new Map<string, "revoked" | "expired">();
    try {
      for await (const e of Deno.readDir(`${this.dir}/large/gone`)) {
        const m = /^([0-9a-f]{32})\.json$/.exec(e.name);
        if (!e.isFile || !m) continue;
        let why: "revoked" | "expired" = "revoked";
        try {
          const j = parseJson(await Deno.readTextFile(`${this.dir}/large/gone/${e.name}`));
          if (field.isObject(j) && j.why === "expired") why = "expired";
        } catch { /* damaged: still this home's blob */ }
        out.set(m[1], why);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw stateReadError("large/gone", e);
    }
    return out;
  }

  /** Forget a tombstone once its blob folder is deleted. */
  async forgetGoneBlob(blobId: string): Promise<void> {
    if (!/^[0-9a-f]{32}$/.test(blobId)) throw new Error("not a blob id");
    await Deno.remove(`${this.dir}/large/gone/${blobId}.json`).catch(() => {});
  }
}
