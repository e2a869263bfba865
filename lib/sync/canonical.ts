/**
 * Canonical content (docs/PROTOCOL.md §8.4): what a file is on the homeserver, independent of
 * where the machine keeps its projects. A project folder's `.jsonl`/`.json` files have their
 * working directory written as the project's `root` token (`${HOME}/…` or an absolute path),
 * with the same rewriting as a hand-off (lib/claude/place.ts); `history.jsonl` has each entry's
 * `project` below `$HOME` written as `${HOME}/…`; everything else is its bytes. Streams, line by
 * line: memory is bounded by the longest line kept ({@link MAX_LINE}), not by the file.
 *
 * @module
 */

import { rewriteJsonl } from "../claude/place.ts";
import { projectDirName } from "../claude/project_dir.ts";

/** The token for the home folder in roots and history entries. */
export const HOME_TOKEN = "${HOME}";
/** Lines longer than this pass through unchanged. */
export const MAX_LINE = 64 << 20;

/**
 * One rule of a machine's path map (docs/PROTOCOL.md §8.4): projects that other machines have
 * below `from` (a root prefix: an absolute path, `${HOME}` or `${HOME}/…`) live here below `to`
 * (an absolute path). Applied both ways: a pull maps `from` to `to`, a push `to` back to `from`.
 */
export interface PathMapRule {
  /** the root prefix as it appears in snapshots */
  from: string;
  /** the local absolute directory */
  to: string;
}

/** A machine's path map: the longest matching prefix wins. */
export type PathMap = readonly PathMapRule[];

/** True when `p` is `prefix` or lies below it. */
function below(p: string, prefix: string): boolean {
  return p === prefix || p.startsWith(prefix.endsWith("/") ? prefix : `${prefix}/`);
}

/** The rule of `map` whose `side` is the longest prefix of `p`, or null. */
function ruleFor(p: string, map: PathMap | undefined, side: "from" | "to"): PathMapRule | null {
  let best: PathMapRule | null = null;
  for (const r of map ?? []) {
    if (below(p, r[side]) && (!best || r[side].length > best[side].length)) best = r;
  }
  return best;
}

/** The `root` token of a local project directory (the path map first, then `$HOME`). */
export function rootToken(dir: string, home: string | undefined, map?: PathMap): string {
  const r = ruleFor(dir, map, "to");
  if (r) return r.from + dir.slice(r.to.length);
  const h = home?.replace(/\/+$/, "");
  if (h && (dir === h || dir.startsWith(`${h}/`))) return HOME_TOKEN + dir.slice(h.length);
  return dir;
}

/**
 * The local directory of a `root` token (the path map first, then `${HOME}`); null for a
 * `?<folder>` token (which maps to itself) and for `${HOME}` on a machine without a home.
 */
export function localDirOf(root: string, home: string | undefined, map?: PathMap): string | null {
  if (root.startsWith("?")) return null;
  const r = ruleFor(root, map, "from");
  if (r) return r.to + root.slice(r.from.length);
  if (root === HOME_TOKEN || root.startsWith(`${HOME_TOKEN}/`)) {
    const h = home?.replace(/\/+$/, "");
    if (!h) return null;
    return h + root.slice(HOME_TOKEN.length);
  }
  return root;
}

/** True when `dir`'s encoding names `folder` (§6: long names end in a build-specific hash). */
export function folderMatches(folder: string, dir: string): boolean {
  const name = projectDirName(dir);
  if (name === folder) return true;
  return name.length > 200 && folder.startsWith(name.slice(0, 201));
}

/** A line rewrite and the substrings a line must hold for it to apply. */
export interface LineRewrite {
  /** the line is left alone unless it contains one of these */
  needles: string[];
  /** rewrite one line (without its newline) */
  apply(line: string): string;
}

/** Rewriting a project file's working directory from `from` to `to` (and a session ID). */
export function projectRewrite(from: string, to: string, fromId = "", toId = ""): LineRewrite {
  const needles = [from];
  if (fromId !== toId) needles.push(fromId);
  return { needles, apply: (l) => rewriteJsonl(l, from, to, fromId, toId) };
}

/**
 * Rewriting `history.jsonl` entries' `project`: the first pair whose `from` is a prefix of it
 * (pairs in order of preference) is replaced by its `to`.
 */
export function historyRewrite(pairs: readonly (readonly [string, string])[]): LineRewrite {
  return {
    needles: pairs.map(([from]) => from),
    apply(line) {
      let o: unknown;
      try {
        o = JSON.parse(line);
      } catch {
        return line;
      }
      if (typeof o !== "object" || o === null || Array.isArray(o)) return line;
      const r = o as Record<string, unknown>;
      const p = r.project;
      if (typeof p !== "string") return line;
      const pair = pairs.find(([from]) => below(p, from));
      if (!pair) return line;
      r.project = pair[1] + p.slice(pair[0].length);
      return JSON.stringify(r);
    },
  };
}

/**
 * The `history.jsonl` rewrite of a machine, to canonical form (`toLocal` false) or back: the
 * path map's rules (longest first), then `$HOME` ↔ `${HOME}`; null when there is nothing to map.
 */
export function historyRewriteOf(
  home: string | undefined,
  map: PathMap | undefined,
  toLocal: boolean,
): LineRewrite | null {
  const side = toLocal ? "from" : "to";
  const rules = [...(map ?? [])].sort((a, b) => b[side].length - a[side].length);
  const pairs: [string, string][] = rules.map((r) => toLocal ? [r.from, r.to] : [r.to, r.from]);
  const h = home?.replace(/\/+$/, "");
  if (h) pairs.push(toLocal ? [HOME_TOKEN, h] : [h, HOME_TOKEN]);
  return pairs.length ? historyRewrite(pairs) : null;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  if (needle.length === 0) return false;
  const first = needle[0];
  outer: for (
    let i = hay.indexOf(first);
    i >= 0 && i <= hay.length - needle.length;
    i = hay.indexOf(first, i + 1)
  ) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/**
 * A transform applying `rw` to every line (split at `\n`) that contains one of its needles;
 * other lines, and lines over {@link MAX_LINE}, pass byte for byte. Null `rw`: the identity.
 */
export function lineTransform(rw: LineRewrite | null): TransformStream<Uint8Array, Uint8Array> {
  if (rw === null) return new TransformStream();
  const needles = rw.needles.filter((n) => n !== "").map((n) => enc.encode(n));
  let pending: Uint8Array[] = [];
  let pendingLen = 0;
  let passing = false; // inside an over-long line: pass until its end
  const emitLine = (c: TransformStreamDefaultController<Uint8Array>, line: Uint8Array) => {
    if (needles.some((n) => contains(line, n))) {
      const text = dec.decode(line);
      const out = rw.apply(text);
      c.enqueue(out === text ? line : enc.encode(out));
    } else c.enqueue(line);
  };
  const joined = () => {
    if (pending.length === 1) return pending[0];
    const b = new Uint8Array(pendingLen);
    let o = 0;
    for (const p of pending) {
      b.set(p, o);
      o += p.length;
    }
    return b;
  };
  return new TransformStream({
    transform(chunk, c) {
      let start = 0;
      while (start < chunk.length) {
        const nl = chunk.indexOf(10, start);
        const end = nl < 0 ? chunk.length : nl;
        const piece = chunk.subarray(start, end);
        if (passing) {
          c.enqueue(piece.slice());
        } else {
          pending.push(piece.slice());
          pendingLen += piece.length;
          if (pendingLen > MAX_LINE) {
            for (const p of pending) c.enqueue(p);
            pending = [];
            pendingLen = 0;
            passing = true;
          }
        }
        if (nl < 0) break;
        if (!passing) emitLine(c, joined());
        pending = [];
        pendingLen = 0;
        passing = false;
        c.enqueue(new Uint8Array([10]));
        start = nl + 1;
      }
    },
    flush(c) {
      if (!passing && pendingLen > 0) emitLine(c, joined());
    },
  });
}
