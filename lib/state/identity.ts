/**
 * The identity file: an Ed25519 seed, age-encrypted to an X25519 key derived from the
 * passphrase (Argon2id + HKDF), in v1.1's `CIPHPOSK` envelope (docs/PROTOCOL.md §1.4).
 *
 * Layout: `CIPHPOSK` ‖ 0x01 ‖ u16be(len) ‖ PHC string ‖ age binary ciphertext of the seed.
 *
 * v1.1 writes the Argon2 output into the PHC string's hash field, and that output is exactly
 * the HKDF input of the key-encryption key: anyone with the file can decrypt it without the
 * passphrase. We read such files (ignoring the field) but never write it; v1.1 still loads our
 * files because its reader only takes m, t, p and the salt. See docs/THREAT-MODEL.md.
 *
 * @module
 */

import { base64nopad } from "@scure/base";
import { ageDecrypt, ageEncrypt } from "../crypto/age.ts";
import { CipherpostError, decryptError } from "../util/errors.ts";
import { b64decode, b64encode, concat, fromHex, fromUtf8, utf8 } from "../util/encoding.ts";
import { ensurePrivateDir, exists, fileMode, writeFileAtomic } from "../util/fsutil.ts";
import { encodeZ32, parsePublicKey } from "../pkarr/public_key.ts";
import { argon2, type Argon2Params, DEFAULT_ARGON2, hkdf32, identityKek } from "../crypto/kdf.ts";
import {
  ageIdentityOf,
  ageRecipientOf,
  generateKeypair,
  type Keypair,
  keypairFromSeed,
  x25519PublicFromSecret,
} from "../crypto/keys.ts";

const MAGIC = utf8("CIPHPOSK");
const VERSION = 1;
/**
 * Upper bounds on KDF parameters read from a file (a hostile file must not exhaust memory).
 * `m` (KiB): 1 GiB is the most the Argon2 implementation can compute; 2^21 KiB needs one
 * 2 GiB typed array, over V8's limit ("Invalid typed array length"), so it is refused here,
 * before any Argon2 work, instead of failing inside it.
 */
const MAX_PARAMS: Argon2Params = { m: 1 << 20, t: 64, p: 16 };

function paramsTooLarge(): CipherpostError {
  return new CipherpostError(
    "identity_corrupt",
    `identity file corrupted or unreadable: its Argon2 parameters exceed the supported maximum (m ≤ ${
      MAX_PARAMS.m / 1024
    } MiB, t ≤ ${MAX_PARAMS.t}, p ≤ ${MAX_PARAMS.p})`,
  );
}

/** The file name of the identity inside the cipherpost home. */
export const IDENTITY_FILE = "secret_key";
/** The public key beside it (one z-base-32 line, mode 0644), so showing it needs no passphrase. */
export const PUBLIC_KEY_FILE = "public_key";

const BACKUP_BEGIN = "-----BEGIN CIPHERPOST IDENTITY BACKUP-----";
const BACKUP_END = "-----END CIPHERPOST IDENTITY BACKUP-----";

/** The parsed, still-encrypted identity file. */
export interface IdentityFile {
  params: Argon2Params;
  salt: Uint8Array;
  /** True when the file carries v1.1's stored Argon2 output (the passphrase-bypass flaw). */
  leaksKdfOutput: boolean;
  ciphertext: Uint8Array;
}

function corrupt(): CipherpostError {
  return new CipherpostError("identity_corrupt", "identity file corrupted or unreadable");
}

/** Format a PHC string without the hash field. */
export function phcString(params: Argon2Params, salt: Uint8Array): string {
  return `$argon2id$v=19$m=${params.m},t=${params.t},p=${params.p}$${base64nopad.encode(salt)}`;
}

/** Parse the `CIPHPOSK` envelope. Throws `identity_corrupt` on anything malformed. */
export function parseIdentityFile(bytes: Uint8Array): IdentityFile {
  if (bytes.length < 11) throw corrupt();
  for (let i = 0; i < 8; i++) if (bytes[i] !== MAGIC[i]) throw corrupt();
  if (bytes[8] !== VERSION) throw corrupt();
  const len = (bytes[9] << 8) | bytes[10];
  if (11 + len > bytes.length) throw corrupt();
  let phc: string;
  try {
    phc = fromUtf8(bytes.subarray(11, 11 + len));
  } catch {
    throw corrupt();
  }
  const parts = phc.split("$");
  // ["", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash?]
  if (parts.length < 5 || parts.length > 6 || parts[0] !== "" || parts[1] !== "argon2id") {
    throw corrupt();
  }
  let i = 2;
  if (parts[i].startsWith("v=")) i++;
  const kv = new Map<string, string>();
  for (const item of (parts[i] ?? "").split(",")) {
    const [k, v] = item.split("=");
    if (!k || v === undefined || !/^[0-9]{1,10}$/.test(v)) throw corrupt();
    kv.set(k, v);
  }
  const m = Number(kv.get("m")), t = Number(kv.get("t")), p = Number(kv.get("p"));
  if (!(m >= 8 * p && t >= 1 && p >= 1)) throw corrupt();
  if (m > MAX_PARAMS.m || t > MAX_PARAMS.t || p > MAX_PARAMS.p) throw paramsTooLarge();
  let salt: Uint8Array;
  try {
    salt = base64nopad.decode(parts[i + 1] ?? "");
  } catch {
    throw corrupt();
  }
  if (salt.length < 8 || salt.length > 64) throw corrupt();
  return {
    params: { m, t, p },
    salt,
    leaksKdfOutput: parts.length > i + 2 && parts[i + 2] !== "",
    ciphertext: bytes.subarray(11 + len),
  };
}

/** Encrypt a seed under a passphrase into `CIPHPOSK` bytes (no stored KDF output). */
export async function encodeIdentityFile(
  seed: Uint8Array,
  passphrase: string,
  params: Argon2Params = DEFAULT_ARGON2,
): Promise<Uint8Array> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const kek = await identityKek(utf8(passphrase), salt, params);
  const ct = await ageEncrypt(seed, ageRecipientOf(x25519PublicFromSecret(kek)));
  const phc = utf8(phcString(params, salt));
  return concat(MAGIC, new Uint8Array([VERSION, phc.length >> 8, phc.length & 255]), phc, ct);
}

/** Decrypt `CIPHPOSK` bytes with a passphrase. Wrong passphrase → exit 4; corrupt → exit 1. */
export async function decodeIdentityFile(bytes: Uint8Array, passphrase: string): Promise<Keypair> {
  const f = parseIdentityFile(bytes);
  const kek = await identityKek(utf8(passphrase), f.salt, f.params);
  let seed: Uint8Array;
  try {
    seed = await ageDecrypt(f.ciphertext, ageIdentityOf(kek));
  } catch {
    throw decryptError();
  }
  if (seed.length !== 32) throw corrupt();
  return keypairFromSeed(seed);
}

/** The path of the identity file in a home folder: `home/` + {@link IDENTITY_FILE}. */
export function identityPath(home: string): string {
  return `${home}/${IDENTITY_FILE}`;
}

/** Read and check the identity file's existence and mode (exactly 0600). */
export async function readIdentityBytes(home: string): Promise<Uint8Array> {
  const path = identityPath(home);
  let mode: number | null;
  try {
    mode = await fileMode(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CipherpostError(
        "identity_not_found",
        `identity file not found at ${path}`,
        "create one with: cipherpost identity generate",
      );
    }
    throw corrupt();
  }
  if (mode !== null && mode !== 0o600) {
    throw new CipherpostError(
      "permissions",
      `identity file permissions too permissive (refuses to open): ${path} has mode ${
        mode.toString(8).padStart(4, "0")
      }`,
      `chmod 600 ${path}`,
    );
  }
  try {
    return await Deno.readFile(path);
  } catch {
    throw corrupt();
  }
}

/** An unlocked identity, and whether its file carries v1.1's passphrase-bypass flaw. */
export interface LoadedIdentity extends Keypair {
  /**
   * True when the file stores the KDF output beside the ciphertext (files written by v1.1), so
   * that whoever reads the file can unlock it without the passphrase. Re-store the seed with
   * {@link storeIdentity} (`force`) to drop it.
   */
  leaksKdfOutput: boolean;
}

/**
 * Load and unlock the identity in `home`, and (re)write the public key file beside it when it is
 * missing or stale (best effort: a read-only home still unlocks).
 *
 * @param home The cipherpost home folder (the identity is `home/secret_key`).
 * @param passphrase The identity's passphrase.
 * @returns The keypair, and whether its file leaks the KDF output.
 * @throws {CipherpostError} `identity_not_found` when there is no identity file;
 *   `permissions` when its mode is not exactly 0600 (the file is not opened); `identity_corrupt`
 *   when it is not a well-formed identity file or its KDF parameters exceed the bounds;
 *   `decrypt` (message {@link DECRYPT_FAILED}) on a wrong passphrase.
 */
export async function loadIdentity(home: string, passphrase: string): Promise<LoadedIdentity> {
  const bytes = await readIdentityBytes(home);
  const kp = await decodeIdentityFile(bytes, passphrase);
  // A home written before the public key was kept beside the secret, or whose secret key was
  // replaced by another tool: (re)write it. Best effort: a read-only home still unlocks.
  if (await readPublicKey(home) !== encodeZ32(kp.publicKey)) {
    await writePublicKey(home, kp.publicKey).catch(() => {});
  }
  return { ...kp, leaksKdfOutput: parseIdentityFile(bytes).leaksKdfOutput };
}

/** Path of the public key file in a home folder. */
export function publicKeyPath(home: string): string {
  return `${home}/${PUBLIC_KEY_FILE}`;
}

async function writePublicKey(home: string, publicKey: Uint8Array): Promise<void> {
  await writeFileAtomic(publicKeyPath(home), utf8(`${encodeZ32(publicKey)}\n`), 0o644);
}

/**
 * The z-base-32 public key kept beside the identity, without the passphrase; null when there is
 * none, it is damaged, or it is older than the secret key (which another tool may have replaced).
 */
export async function readPublicKey(home: string): Promise<string | null> {
  try {
    const [pub, sec] = await Promise.all([
      Deno.stat(publicKeyPath(home)),
      Deno.stat(identityPath(home)),
    ]);
    if (pub.mtime && sec.mtime && pub.mtime.getTime() < sec.mtime.getTime()) return null;
    const text = (await Deno.readTextFile(publicKeyPath(home))).trim();
    return encodeZ32(parsePublicKey(text)) === text ? text : null;
  } catch {
    return null;
  }
}

/** A stored identity, and where the one it replaced was moved (null when there was none). */
export interface StoredIdentity extends Keypair {
  /**
   * The path of the replaced identity file (`secret_key.replaced-<UTC time>`, mode 0600), or
   * null when `home` had no identity.
   */
  backupPath: string | null;
}

/**
 * Store a seed as the identity of `home` (dir 0700, file 0600, atomic), with its public key
 * beside it. Refuses to replace an existing identity unless `force` is set: losing a key loses
 * every share sent to it. With `force` the old file is kept, renamed to
 * `secret_key.replaced-<UTC time>` (same mode), and its path returned.
 *
 * @param home The cipherpost home folder; created (mode 0700) when missing.
 * @param seed The 32-byte Ed25519 seed.
 * @param passphrase Wraps the seed (Argon2id, then age); never stored.
 * @param force Replace an existing identity, keeping the old file as a backup.
 * @param params Argon2id cost; the default is {@link DEFAULT_ARGON2}. Lower costs are for tests.
 * @returns The keypair and the backup's path.
 * @throws {CipherpostError} `identity_exists` when `home` has an identity and `force` is false
 *   (nothing is written). File-system failures reject with the `Deno.errors` error as it is.
 */
export async function storeIdentity(
  home: string,
  seed: Uint8Array,
  passphrase: string,
  force: boolean,
  params: Argon2Params = DEFAULT_ARGON2,
): Promise<StoredIdentity> {
  const path = identityPath(home);
  const existed = await exists(path);
  if (!force && existed) {
    throw new CipherpostError(
      "identity_exists",
      `an identity already exists at ${path}; refusing to overwrite it`,
      "pass --force to replace it (the old file is kept as a backup next to it)",
    );
  }
  await ensurePrivateDir(home);
  const data = await encodeIdentityFile(seed, passphrase, params);
  let backupPath: string | null = null;
  if (existed) {
    const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "Z");
    backupPath = `${path}.replaced-${stamp}`;
    for (let n = 2; await exists(backupPath); n++) backupPath = `${path}.replaced-${stamp}-${n}`;
    try {
      await Deno.link(path, backupPath);
    } catch {
      await Deno.copyFile(path, backupPath);
      if (Deno.build.os !== "windows") await Deno.chmod(backupPath, 0o600);
    }
  }
  await writeFileAtomic(path, data, 0o600);
  const kp = keypairFromSeed(seed);
  await writePublicKey(home, kp.publicKey);
  return { ...kp, backupPath };
}

/**
 * A passphrase-protected backup of an identity: a fresh `CIPHPOSK` file of the seed (new salt,
 * no stored KDF output) in base64 between BEGIN/END lines, safe to print and to keep offline.
 * `identity import` reads it back with the same passphrase.
 */
export async function encodeBackup(
  seed: Uint8Array,
  passphrase: string,
  params: Argon2Params = DEFAULT_ARGON2,
): Promise<string> {
  const b64 = b64encode(await encodeIdentityFile(seed, passphrase, params));
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `${BACKUP_BEGIN}\n${lines.join("\n")}\n${BACKUP_END}\n`;
}

/** The `CIPHPOSK` bytes inside a backup's text, or null when `text` is not a backup. */
function decodeBackup(text: string): Uint8Array | null {
  const t = text.trim();
  if (!t.startsWith(BACKUP_BEGIN)) return null;
  if (!t.endsWith(BACKUP_END)) throw corrupt();
  try {
    return b64decode(t.slice(BACKUP_BEGIN.length, -BACKUP_END.length).replace(/\s+/g, ""));
  } catch {
    throw corrupt();
  }
}

/**
 * True when `bytes` are an encrypted identity (a `CIPHPOSK` file, a backup or a cclink `CCLINKEK`
 * key file): import asks the passphrase once.
 */
export function isEncryptedImport(bytes: Uint8Array): boolean {
  if (bytes.length >= 8 && MAGIC.every((b, i) => bytes[i] === b)) return true;
  if (bytes.length >= 8 && CCLINK_MAGIC.every((b, i) => bytes[i] === b)) return true;
  try {
    return fromUtf8(bytes).trim().startsWith(BACKUP_BEGIN);
  } catch {
    return false;
  }
}

/**
 * Generate a new identity in `home`: a random seed stored as {@link storeIdentity} does.
 *
 * @param home The cipherpost home folder; created (mode 0700) when missing.
 * @param passphrase Wraps the seed; never stored.
 * @param force Replace an existing identity, keeping the old file as a backup.
 * @param params Argon2id cost; the default is {@link DEFAULT_ARGON2}. Lower costs are for tests.
 * @returns The new keypair and the backup's path.
 * @throws {CipherpostError} `identity_exists` when `home` has an identity and `force` is false.
 */
export async function generateIdentity(
  home: string,
  passphrase: string,
  force: boolean,
  params: Argon2Params = DEFAULT_ARGON2,
): Promise<StoredIdentity> {
  return await storeIdentity(home, generateKeypair().seed, passphrase, force, params);
}

const CCLINK_MAGIC = utf8("CCLINKEK");
/** cclink's header: magic, version, m, t, p (u32be each), 32-byte salt. */
const CCLINK_HEADER = 53;

/**
 * Decrypt cclink's passphrase-wrapped key file (`~/.pubky/secret_key`, v1.3, notes §1.9):
 * `CCLINKEK` ‖ 0x01 ‖ u32be m ‖ u32be t ‖ u32be p ‖ salt32 ‖ age(seed) where the age
 * identity is `HKDF-SHA256(no salt, Argon2id(passphrase, salt, m, t, p), "cclink-key-v1")`.
 * @throws identity_corrupt on a malformed file, decrypt (exit 4) on a wrong passphrase
 */
export async function decodeCclinkKeyFile(
  bytes: Uint8Array,
  passphrase: string,
): Promise<Uint8Array> {
  if (bytes.length <= CCLINK_HEADER || bytes[8] !== 1) throw corrupt();
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const params = { m: dv.getUint32(9), t: dv.getUint32(13), p: dv.getUint32(17) };
  if (params.m < 8 * params.p || params.t < 1 || params.p < 1) throw corrupt();
  if (params.m > MAX_PARAMS.m || params.t > MAX_PARAMS.t || params.p > MAX_PARAMS.p) {
    throw paramsTooLarge();
  }
  const salt = bytes.slice(21, CCLINK_HEADER);
  const kek = hkdf32(
    new Uint8Array(0),
    await argon2(utf8(passphrase), salt, params),
    "cclink-key-v1",
  );
  let seed: Uint8Array;
  try {
    seed = await ageDecrypt(bytes.subarray(CCLINK_HEADER), ageIdentityOf(kek));
  } catch {
    throw decryptError();
  }
  if (seed.length !== 32) throw corrupt();
  return seed;
}

/**
 * Parse an importable secret: a 64-hex-character seed (cclink's plain `~/.pubky/secret_key`),
 * a `CIPHPOSK` file, an `identity export` backup, or cclink's passphrase-wrapped `CCLINKEK` key
 * file (all three decrypted with `passphrase`: the file's own passphrase).
 *
 * @param bytes The file's bytes.
 * @param passphrase Called once, and only when the format is an encrypted one.
 * @returns The 32-byte seed, to store with {@link storeIdentity}.
 * @throws {CipherpostError} `identity_corrupt` when the format is not recognised, is an age
 *   secret key (only half an identity) or is malformed; `decrypt` on a wrong passphrase.
 */
export async function parseImport(
  bytes: Uint8Array,
  passphrase: () => Promise<string>,
): Promise<Uint8Array> {
  if (bytes.length >= 8 && MAGIC.every((b, i) => bytes[i] === b)) {
    return (await decodeIdentityFile(bytes, await passphrase())).seed;
  }
  if (bytes.length >= 8 && CCLINK_MAGIC.every((b, i) => bytes[i] === b)) {
    return await decodeCclinkKeyFile(bytes, await passphrase());
  }
  let text: string;
  try {
    text = fromUtf8(bytes).trim();
  } catch {
    text = "";
  }
  const backup = decodeBackup(text);
  if (backup) return (await decodeIdentityFile(backup, await passphrase())).seed;
  if (/^[0-9a-fA-F]{64}$/.test(text)) return fromHex(text);
  if (/^AGE-SECRET-KEY-1/i.test(text)) {
    throw new CipherpostError(
      "identity_corrupt",
      "an age secret key cannot be imported: it holds only the X25519 half of an identity",
      "back up with `cipherpost identity export` (without --age); import reads that back",
    );
  }
  throw new CipherpostError(
    "identity_corrupt",
    "unrecognised identity format: expected an `identity export` backup, a CIPHPOSK file, a cclink CCLINKEK key file or 64 hex characters",
  );
}
