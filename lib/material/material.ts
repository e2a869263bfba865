/**
 * Typed materials of cipherpost v1.1 (docs/PROTOCOL.md §2.4): the send-side ingest rules
 * and stored bytes, the acceptance-screen sub-block, and `--armor` output.
 *
 * Stored bytes are what goes into the envelope: generic secrets and PGP keys verbatim, X.509 as
 * DER (PEM input decoded), SSH keys as canonical OpenSSH v1 text. Every rejection is a
 * `CipherpostError` with a curated one-line message (exit 1); parser internals never leak.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import { CipherpostError } from "../util/errors.ts";
import { escapeControl, stripControl } from "../util/encoding.ts";
import { truncate, utcMinute } from "../util/human.ts";
import { parseX509, x509DerFromInput, x509ToPem } from "./_x509.ts";
import { parseKeyPacket, pgpArmor, pgpDearmor, pgpMalformed, TAG, walkPackets } from "./_pgp.ts";
import { parseOpenSsh, sshCanonicalFromInput } from "./_ssh.ts";

/** Wire `type` tag of a material. */
export type MaterialType =
  | "generic_secret"
  | "x509_cert"
  | "pgp_key"
  | "ssh_key"
  /** a Claude Code session bundle (PROTOCOL.md §6; v2 only; sent by `claude send`) */
  | "claude_session";

/** Largest stored material, in bytes (larger is rejected). */
export const MATERIAL_CAP = 65536;

const FLAGS: Record<string, MaterialType> = {
  "generic-secret": "generic_secret",
  "x509-cert": "x509_cert",
  "pgp-key": "pgp_key",
  "ssh-key": "ssh_key",
};

/**
 * Maps the CLI `--material` value to its wire tag. The wire spelling the acceptance screen
 * prints (`ssh_key`, …) is accepted too.
 * @throws CipherpostError("usage") for any other value
 */
export function materialTypeFromFlag(flag: string): MaterialType {
  const key = flag.replace(/_/g, "-");
  const t = Object.hasOwn(FLAGS, key) ? FLAGS[key] : undefined;
  if (!t) {
    throw new CipherpostError(
      "usage",
      `invalid --material value; expected one of: ${Object.keys(FLAGS).join(", ")}`,
    );
  }
  return t;
}

/**
 * Applies the v1.1 ingest rules (§8.1) and returns the bytes to store in the envelope.
 * @throws CipherpostError("invalid_material") when the input is not acceptable for `type`
 * @throws CipherpostError("too_large") when the stored bytes exceed {@link MATERIAL_CAP}
 */
export function ingestMaterial(type: MaterialType, input: Uint8Array): Uint8Array {
  let stored: Uint8Array;
  switch (type) {
    case "generic_secret":
      stored = input.slice();
      break;
    case "x509_cert":
      stored = x509DerFromInput(input).slice();
      break;
    case "pgp_key": {
      // ASCII armor is accepted and stored as the binary packet stream v1.1 stores
      const binary = pgpDearmor(input) ?? input;
      pgpIngestCheck(binary);
      stored = binary.slice();
      break;
    }
    case "ssh_key":
      refuseSshPublicKey(input);
      stored = sshCanonicalFromInput(input);
      break;
    case "claude_session":
      // the bundle itself is checked where it is parsed (lib/claude/bundle.ts)
      if (input.length < 18 || input[0] !== 0x1f || input[1] !== 0x8b) {
        throw new CipherpostError(
          "invalid_material",
          "invalid material: variant=claude_session, reason=not a gzip stream",
        );
      }
      stored = input.slice();
      break;
  }
  if (stored.length > MATERIAL_CAP) {
    throw new CipherpostError(
      "too_large",
      `payload exceeds 64 KB limit: actual=${stored.length}, cap=${MATERIAL_CAP}`,
    );
  }
  return stored;
}

/** An OpenSSH public key line given as `ssh_key` material: say what `ssh_key` is for. */
function refuseSshPublicKey(input: Uint8Array): void {
  const head = new TextDecoder("latin1").decode(input.subarray(0, 64)).trimStart();
  if (/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-|sk-(ssh-ed25519|ecdsa-sha2-))\S* /.test(head)) {
    throw new CipherpostError(
      "invalid_material",
      "invalid material: this is an SSH public key; --material ssh-key carries a private key",
      "a public key is not secret: paste it anywhere, or send it with --material generic-secret",
    );
  }
}

function pgpInvalid(reason: string): CipherpostError {
  return new CipherpostError(
    "invalid_material",
    `invalid material: variant=pgp_key, reason=${reason}`,
  );
}

function pgpIngestCheck(input: Uint8Array): void {
  const { packets, consumed } = walkPackets(input);
  const primaries = packets.filter((p) => p.tag === TAG.publicKey || p.tag === TAG.secretKey);
  if (primaries.length === 0) throw pgpMalformed();
  if (primaries.length > 1) {
    throw pgpInvalid(
      "PgpKey must contain exactly one primary key; keyrings are not supported in v1.1 " +
        `(found ${primaries.length} primary keys)`,
    );
  }
  if (consumed !== input.length) throw pgpInvalid("trailing bytes after PGP packet stream");
}

/** Pads a banner label to the 13-column field width. */
function field(label: string, value: string): string {
  return label.padEnd(13) + value;
}

/** `YYYY-MM-DD HH:MM UTC` */
const utc = (d: Date) => utcMinute(d.getTime() / 1000);

/**
 * The typed sub-block of the acceptance banner (§8.2), one string per line, no leading or
 * trailing blank line; empty for `generic_secret`. `now` decides `[VALID]`/`[EXPIRED]`. Text
 * the sender chose (X.509 names, the SSH comment, the PGP user id) is terminal-safe: controls
 * are shown as escapes ({@link escapeControl}).
 * @throws CipherpostError("invalid_material") when `bytes` do not parse as `type`
 */
export function previewMaterial(type: MaterialType, bytes: Uint8Array, now: Date): string[] {
  switch (type) {
    case "generic_secret":
      return [];
    case "x509_cert":
      return previewX509(bytes, now);
    case "pgp_key":
      return previewPgp(bytes);
    case "ssh_key":
      return previewSsh(bytes);
    case "claude_session":
      return [
        `--- Claude Code session ${"-".repeat(41)}`,
        field("Bundle:", "gzip-compressed tar (place it with: cipherpost claude pickup URI)"),
      ];
  }
}

function previewX509(der: Uint8Array, now: Date): string[] {
  const c = parseX509(der);
  const serialHex = hex.encode(c.serial).replace(/^0+/, "") || "0";
  const serial = serialHex.length > 16
    ? `0x${serialHex.slice(0, 16)}… (truncated)`
    : `0x${serialHex}`;
  const tag = c.notAfter.getTime() < now.getTime() ? "[EXPIRED]" : "[VALID]";
  return [
    `--- X.509 ${"-".repeat(57)}`,
    field("Subject:", escapeControl(truncate(c.subject, 80))),
    field("Issuer:", escapeControl(truncate(c.issuer, 80))),
    field("Serial:", serial),
    field("NotBefore:", utc(c.notBefore)),
    field("NotAfter:", `${utc(c.notAfter)}  ${tag}`),
    field("Key:", c.key),
    field("SHA-256:", hex.encode(sha256(der))),
  ];
}

function previewPgp(bytes: Uint8Array): string[] {
  const { packets, consumed } = walkPackets(bytes);
  if (consumed !== bytes.length) throw pgpMalformed();
  const primary = packets.find((p) => p.tag === TAG.publicKey || p.tag === TAG.secretKey);
  if (!primary) throw pgpMalformed();
  const secret = primary.tag === TAG.secretKey;
  const key = parseKeyPacket(primary.tag, primary.body);

  const uidPacket = packets.find((p) => p.tag === TAG.userId);
  let uid = "(no user id)";
  if (uidPacket) {
    try {
      uid = new TextDecoder("utf-8", { fatal: true }).decode(uidPacket.body);
    } catch {
      // not UTF-8: shown as absent
    }
  }
  // a secret stream lists public subkeys first, then secret subkeys
  const subkeyTags = secret ? [TAG.publicSubkey, TAG.secretSubkey] : [TAG.publicSubkey];
  const subkeys = subkeyTags.flatMap((t) =>
    packets.filter((p) => p.tag === t).map((p) => parseKeyPacket(p.tag, p.body).label)
  );

  const lines: string[] = [];
  if (secret) lines.push("[WARNING: SECRET key — unlocks cryptographic operations]", "");
  lines.push(
    `--- OpenPGP ${"-".repeat(53)}`,
    field("Fingerprint:", key.fingerprint),
    field("Primary UID:", escapeControl(truncate(stripControl(uid), 64))),
    field("Key:", key.label),
    field("Subkeys:", subkeys.length === 0 ? "0" : `${subkeys.length} (${subkeys.join(", ")})`),
    field("Created:", utc(key.created)),
  );
  return lines;
}

function previewSsh(bytes: Uint8Array): string[] {
  const k = parseOpenSsh(bytes);
  const deprecated = k.keyType === "ssh-dss" ||
    (k.keyType === "ssh-rsa" && k.bits !== null && k.bits < 2048);
  const keyLine = [
    k.keyType,
    k.bits === null ? null : String(k.bits),
    deprecated ? "[DEPRECATED]" : null,
  ]
    .filter((x) => x !== null).join(" ");
  const comment = k.comment === "" ? "(none)" : escapeControl(truncate(k.comment, 64));
  return [
    `--- SSH ${"-".repeat(57)}`,
    field("Key:", keyLine),
    field("Fingerprint:", k.fingerprint),
    field("Comment:", `[sender-attested] ${comment}`),
  ];
}

/**
 * `--armor` output (§8.3): X.509 → PEM `CERTIFICATE` (64-char lines); PGP → ASCII armor
 * (public or private block by the primary packet's tag, CRC-24 line, no headers).
 * @throws CipherpostError("config", exit 1) for `generic_secret` and `ssh_key`, and
 * `invalid_material` when the bytes do not parse
 */
export function armorMaterial(type: MaterialType, bytes: Uint8Array): Uint8Array {
  switch (type) {
    case "generic_secret":
      throw new CipherpostError("config", "--armor requires --material x509-cert or pgp-key");
    case "ssh_key":
      throw new CipherpostError(
        "config",
        "--armor not applicable to ssh-key — OpenSSH v1 is self-armored",
      );
    case "claude_session":
      throw new CipherpostError("config", "--armor not applicable to a Claude Code session");
    case "x509_cert":
      parseX509(bytes);
      return new TextEncoder().encode(x509ToPem(bytes));
    case "pgp_key": {
      const { packets, consumed } = walkPackets(bytes);
      const primary = packets.find((p) => p.tag === TAG.publicKey || p.tag === TAG.secretKey);
      if (!primary || consumed !== bytes.length) throw pgpMalformed();
      return new TextEncoder().encode(pgpArmor(bytes, primary.tag === TAG.secretKey));
    }
  }
}
