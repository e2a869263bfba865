/**
 * X.509 certificate handling for the `x509_cert` material (private to `material.ts`).
 *
 * DER parsing is done by `@peculiar/asn1-x509` on top of `asn1js`; this file only adds the
 * PEM sniffing, the whole-input / trailing-bytes checks of cipherpost v1.1 and the field
 * extraction the acceptance banner needs.
 *
 * @module
 */

import { AsnParser } from "@peculiar/asn1-schema";
import { Certificate, type Name } from "@peculiar/asn1-x509";
import { base64 } from "@scure/base";
import * as asn1js from "asn1js";
import { CipherpostError } from "../util/errors.ts";

/** Fields of a certificate shown on the acceptance screen. */
export interface X509Info {
  /** Subject DN, RDNs in DER order joined with `, ` */
  subject: string;
  /** Issuer DN, same format */
  issuer: string;
  /** Raw serial number content bytes (as encoded, sign byte included) */
  serial: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** Public-key algorithm label (`Ed25519`, `RSA-2048`, `ECDSA P-256`, `<oid>`, ...) */
  key: string;
}

const PEM_BEGIN = "-----BEGIN CERTIFICATE-----";
const PEM_END_PREFIX = "-----END ";

function fail(reason: string): CipherpostError {
  return new CipherpostError(
    "invalid_material",
    `invalid material: variant=x509_cert, reason=${reason}`,
  );
}

function isAsciiWs(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0c || b === 0x0d;
}

/**
 * Ingest rule of §8.1 for `x509_cert`: PEM (first block, label CERTIFICATE, nothing but
 * whitespace after it) or DER; then a full certificate parse that must consume every byte.
 * Returns the DER bytes (validated, not re-encoded).
 */
export function x509DerFromInput(input: Uint8Array): Uint8Array {
  let start = 0;
  while (start < input.length && isAsciiWs(input[start])) start++;
  const head = new TextDecoder("latin1").decode(input.subarray(start, start + PEM_BEGIN.length));
  const der = head === PEM_BEGIN ? pemToDer(input.subarray(start)) : input;
  parseX509(der);
  return der;
}

/** Decodes the first PEM block of `text` (which starts with the BEGIN line). */
function pemToDer(pem: Uint8Array): Uint8Array {
  const text = new TextDecoder("latin1").decode(pem);
  const lines = text.split("\n");
  const body: string[] = [];
  let i = 1;
  for (; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, "");
    if (line.startsWith(PEM_END_PREFIX)) break;
    body.push(line.trim());
  }
  if (i >= lines.length) throw fail("PEM body decode failed");
  const endLine = lines[i].replace(/\r$/, "").trimEnd();
  if (endLine !== "-----END CERTIFICATE-----") throw fail("PEM label is not CERTIFICATE");
  const rest = lines.slice(i + 1).join("\n");
  if (/[^ \t\n\f\r]/.test(rest)) throw fail("trailing bytes after certificate");
  try {
    return base64.decode(body.join(""));
  } catch {
    throw fail("PEM body decode failed");
  }
}

/**
 * Strict-ish certificate parse: one definite-length DER SEQUENCE that spans the whole input and
 * matches the X.509 Certificate schema. Throws `malformed DER` / `trailing bytes after
 * certificate` as `invalid_material`.
 */
export function parseX509(der: Uint8Array): X509Info {
  let cert: Certificate;
  try {
    const parsed = asn1js.fromBER(der);
    if (parsed.offset === -1 || parsed.result.error) throw new Error("ber");
    if (parsed.result.lenBlock.isIndefiniteForm) throw new Error("indefinite length");
    if (parsed.offset !== der.length) {
      throw fail("trailing bytes after certificate");
    }
    cert = AsnParser.fromASN(parsed.result, Certificate);
  } catch (e) {
    if (e instanceof CipherpostError) throw e;
    throw fail("malformed DER");
  }
  try {
    const tbs = cert.tbsCertificate;
    return {
      subject: nameToString(tbs.subject),
      issuer: nameToString(tbs.issuer),
      serial: new Uint8Array(tbs.serialNumber),
      notBefore: tbs.validity.notBefore.getTime(),
      notAfter: tbs.validity.notAfter.getTime(),
      key: keyLabel(
        tbs.subjectPublicKeyInfo.algorithm.algorithm,
        tbs.subjectPublicKeyInfo.algorithm.parameters ?? null,
        new Uint8Array(tbs.subjectPublicKeyInfo.subjectPublicKey),
      ),
    };
  } catch {
    throw fail("malformed DER");
  }
}

/** PEM text for a DER certificate: 64-char base64 lines, LF endings, trailing newline. */
export function x509ToPem(der: Uint8Array): string {
  const b64 = base64.encode(der);
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `${PEM_BEGIN}\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

const ATTR_ABBREV: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.9": "street",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.5": "serialNumber",
  "2.5.4.4": "SN",
  "2.5.4.42": "givenName",
  "2.5.4.12": "title",
  "0.9.2342.19200300.100.1.25": "DC",
  "0.9.2342.19200300.100.1.1": "UID",
  "1.2.840.113549.1.9.1": "Email",
};

function nameToString(name: Name): string {
  return name
    .map((rdn) =>
      rdn.map((atv) => `${ATTR_ABBREV[atv.type] ?? atv.type}=${atv.value.toString()}`).join(
        " + ",
      )
    )
    .join(", ");
}

const OID = {
  ed25519: "1.3.101.112",
  ed448: "1.3.101.113",
  rsa: "1.2.840.113549.1.1.1",
  rsaPss: "1.2.840.113549.1.1.10",
  ec: "1.2.840.10045.2.1",
} as const;

const CURVES: Record<string, string> = {
  "1.2.840.10045.3.1.7": "P-256",
  "1.3.132.0.34": "P-384",
  "1.3.132.0.35": "P-521",
  "1.3.132.0.10": "secp256k1",
};

function keyLabel(alg: string, params: ArrayBuffer | null, spk: Uint8Array): string {
  switch (alg) {
    case OID.ed25519:
      return "Ed25519";
    case OID.ed448:
      return "Ed448";
    case OID.rsaPss:
      return "RSA-PSS";
    case OID.rsa: {
      const bits = rsaBits(spk);
      return bits === null ? "RSA" : `RSA-${bits}`;
    }
    case OID.ec: {
      const curve = params ? curveOid(params) : null;
      if (curve === null) return "ECDSA <unknown curve>";
      return CURVES[curve] ? `ECDSA ${CURVES[curve]}` : `ECDSA <${curve}>`;
    }
    default:
      return `<${alg}>`;
  }
}

/** RSA size as x509-parser reports it: 8 × (modulus content length − 1) when the sign bit is clear. */
function rsaBits(spk: Uint8Array): number | null {
  const parsed = asn1js.fromBER(spk);
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) return null;
  const n = parsed.result.valueBlock.value[0];
  if (!(n instanceof asn1js.Integer)) return null;
  const m = n.valueBlock.valueHexView;
  return m.length > 0 && (m[0] & 0x80) === 0 ? 8 * (m.length - 1) : 0;
}

function curveOid(params: ArrayBuffer): string | null {
  const parsed = asn1js.fromBER(params);
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.ObjectIdentifier)) return null;
  return parsed.result.valueBlock.toString();
}
