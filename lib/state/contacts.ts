/**
 * The address book: `<home>/contacts.json`, names people chose for public keys, so a typo in a
 * 52-character key is not silently a share nobody can open (`cipherpost contacts`, `--share NAME`).
 *
 * Format: `{"contacts":{"<name>":{"added_at":<unix s>,"key":"<z32>"}},"version":1}` (canonical
 * JSON), mode 0600, replaced atomically on every change. Names are 1–32 characters of
 * `a-z 0-9 . _ - @`, starting with a letter or digit, stored lower-case; a name can never be
 * mistaken for a key (keys are 52 characters).
 *
 * @module
 */

import { canonicalize, type JsonValue, parseJson } from "../util/canonical_json.ts";
import { CipherpostError, configError } from "../util/errors.ts";
import { ensurePrivateDir, writeFileAtomic } from "../util/fsutil.ts";
import { encodeZ32, parsePublicKey } from "../pkarr/public_key.ts";

/** The file name of the address book inside the cipherpost home. */
export const CONTACTS_FILE = "contacts.json";

const NAME_RE = /^[a-z0-9][a-z0-9._@-]{0,31}$/;

/** The naming rule, for messages. */
export const NAME_RULE =
  "1-32 characters of a-z, 0-9, '.', '_', '-', '@', starting with a letter or digit";

/** One entry of the address book. */
export interface Contact {
  /** The contact's name (lower case letters, digits, `-` and `_`). */
  name: string;
  /** z-base-32 public key */
  key: string;
  /** unix seconds */
  addedAt: number;
}

/** True when `text` is a syntactically valid contact name (case-insensitive). */
export function isContactName(text: string): boolean {
  return NAME_RE.test(text.toLowerCase());
}

/** Normalise and check a contact name. @throws CipherpostError("usage") */
export function checkContactName(text: string): string {
  const name = text.toLowerCase();
  if (!NAME_RE.test(name)) {
    throw new CipherpostError(
      "usage",
      `invalid contact name '${text.replace(/[^\x20-\x7e]/g, "?")}'`,
      `a name is ${NAME_RULE}`,
    );
  }
  return name;
}

/** The address book of one cipherpost home. */
export class Contacts {
  /** The contacts file (`contacts.json` in the home). */
  readonly path: string;
  readonly #home: string;

  /** The contacts of the cipherpost home `home`; touches nothing on disk. */
  constructor(home: string) {
    this.#home = home;
    this.path = `${home}/${CONTACTS_FILE}`;
  }

  /** Every contact, sorted by name. A missing file is an empty book; a damaged one is an error. */
  async list(): Promise<Contact[]> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw new CipherpostError("io", `io error: cannot read ${this.path}`);
    }
    const damaged = () =>
      configError(
        `${this.path} is damaged`,
        "fix or remove the file (it only holds names for public keys)",
      );
    let o: Record<string, JsonValue>;
    try {
      o = parseJson(text) as Record<string, JsonValue>;
    } catch {
      throw damaged();
    }
    const book = o?.contacts;
    if (o?.version !== 1 || typeof book !== "object" || book === null || Array.isArray(book)) {
      throw damaged();
    }
    const out: Contact[] = [];
    for (const [name, v] of Object.entries(book)) {
      const e = v as Record<string, JsonValue>;
      if (!NAME_RE.test(name) || typeof e?.key !== "string") throw damaged();
      let key: string;
      try {
        key = encodeZ32(parsePublicKey(e.key));
      } catch {
        throw damaged();
      }
      out.push({ name, key, addedAt: typeof e.added_at === "number" ? e.added_at : 0 });
    }
    return out.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  }

  /** The contact of that name, or null. */
  async get(name: string): Promise<Contact | null> {
    const n = name.toLowerCase();
    return (await this.list()).find((c) => c.name === n) ?? null;
  }

  /** The contacts whose key is `z32`. */
  async byKey(z32: string): Promise<Contact[]> {
    return (await this.list()).filter((c) => c.key === z32);
  }

  /**
   * Add a contact. Refuses a name already taken by another key unless `replace` is set; adding
   * the same name and key again is a no-op. Returns the stored contact.
   */
  async add(nameText: string, keyText: string, replace = false): Promise<Contact> {
    const name = checkContactName(nameText);
    const key = encodeZ32(parsePublicKey(keyText));
    const all = await this.list();
    const old = all.find((c) => c.name === name);
    if (old && old.key === key) return old;
    if (old && !replace) {
      throw configError(
        `contact '${name}' already exists with another key (${old.key})`,
        `remove it first (cipherpost contacts remove ${name}) or pass --force`,
      );
    }
    const c: Contact = { name, key, addedAt: Math.floor(Date.now() / 1000) };
    await this.#write([...all.filter((x) => x.name !== name), c]);
    return c;
  }

  /** Remove a contact; returns the removed entry. @throws CipherpostError("not_found") */
  async remove(nameText: string): Promise<Contact> {
    const name = nameText.toLowerCase();
    const all = await this.list();
    const old = all.find((c) => c.name === name);
    if (!old) {
      throw new CipherpostError(
        "not_found",
        `no contact named '${name.replace(/[^\x20-\x7e]/g, "?")}'`,
        "see cipherpost contacts list",
      );
    }
    await this.#write(all.filter((c) => c.name !== name));
    return old;
  }

  async #write(list: Contact[]): Promise<void> {
    const book: Record<string, JsonValue> = {};
    for (const c of list) book[c.name] = { added_at: c.addedAt, key: c.key };
    await ensurePrivateDir(this.#home);
    await writeFileAtomic(this.path, canonicalize({ contacts: book, version: 1 }), 0o600);
  }
}
