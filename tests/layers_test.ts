// The layer rule of lib/, checked on the real import graph: every import across folders points
// DOWN the order below, folders of one rank do not import each other, and no file-level import
// circle exists anywhere in lib/. docs/development.md's layout section quotes `LAYERS`; this is the one
// place the order is written down.
import assert from "node:assert/strict";

/**
 * The layers of lib/, lowest first. A folder may import from any folder of a lower rank; folders
 * of one rank may not import each other; inside a folder imports are free (but no circles). A
 * subfolder (lib/pkarr/dht/) belongs to its parent's layer unless it is a layer of its own: the
 * flows are three products stacked share ← large ← handoff (a large share is a v2 share whose
 * payload is a pointer; a Claude hand-off is a share or a large share of a session), and Claude
 * sync (flows/sync) beside the hand-off, on the sync codecs (sync: chunks, snapshots, state).
 */
export const LAYERS: readonly (readonly string[])[] = [
  ["util"],
  ["crypto"],
  ["pkarr", "material"],
  ["protocol"],
  ["state"],
  ["homeserver", "claude"],
  ["sync"],
  ["flows/share"],
  ["flows/large"],
  ["flows/handoff", "flows/sync"],
  ["testing"],
  ["cli"],
];

/** A file-level import graph: path relative to the repository ("lib/util/errors.ts") → imports. */
export type Graph = Map<string, string[]>;

const root = new URL("..", import.meta.url);

/** The relative specifiers a TypeScript source imports: static, `import type`, re-exports, dynamic. */
export function importSpecifiers(source: string): string[] {
  // Drop block comments and whole-line comments so TSDoc examples are not read as imports.
  // `// @ts-types="…"` pragmas go too: they name a declaration file, not a dependency edge.
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const found: string[] = [];
  const patterns = [
    // import x from "…", import { a } from "…", import type { A } from "…", import * as n from "…"
    /^\s*import\s+(?:type\s+)?[\w$*{][^;]*?\bfrom\s*["']([^"']+)["']/gm,
    // export { a } from "…", export type { A } from "…", export * from "…", export * as n from "…"
    /^\s*export\s+(?:type\s+)?[*{][^;]*?\bfrom\s*["']([^"']+)["']/gm,
    // import "…" (side effect only)
    /^\s*import\s*["']([^"']+)["']/gm,
    // import("…"), await import('…'), import(`…`) with a literal specifier
    /\bimport\s*\(\s*["'`]([^"'`$]+)["'`]\s*[,)]/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) found.push(m[1]);
  return found;
}

/** Resolve a relative specifier against the importing file, both repository-relative. */
export function resolveSpecifier(from: string, spec: string): string | null {
  if (!spec.startsWith("./") && !spec.startsWith("../")) return null; // npm:, node:, bare
  const parts = from.split("/").slice(0, -1);
  for (const seg of spec.split("/")) {
    if (seg === "." || seg === "") continue;
    if (seg === "..") {
      if (parts.length === 0) return `<outside the repository>/${spec}`;
      parts.pop();
    } else parts.push(seg);
  }
  return parts.join("/");
}

async function* walk(dir: URL, rel: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    if (e.name === "node_modules" || e.name === ".git") continue;
    const path = rel === "" ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory) yield* walk(new URL(`${e.name}/`, dir), path);
    else if (e.isFile) yield path;
  }
}

/** The import graph of every .ts file under lib/ (edges to files outside lib/ included). */
export async function readLibGraph(): Promise<Graph> {
  const graph: Graph = new Map();
  for await (const path of walk(new URL("lib/", root), "lib")) {
    if (!path.endsWith(".ts")) continue;
    const src = await Deno.readTextFile(new URL(path, root));
    const edges = importSpecifiers(src)
      .map((s) => resolveSpecifier(path, s))
      .filter((p): p is string => p !== null);
    graph.set(path, [...new Set(edges)].sort());
  }
  return graph;
}

/** The rank of a lib/ file's layer, or null when its folder is in no layer. */
function layerOf(path: string, layers: readonly (readonly string[])[]) {
  // the longest layer name that is a folder prefix of the path ("flows/large" before "flows")
  let best: { folder: string; rank: number } | null = null;
  layers.forEach((names, rank) => {
    for (const folder of names) {
      if (!path.startsWith(`lib/${folder}/`) || path.length <= folder.length + 5) continue;
      if (!best || folder.length > best.folder.length) best = { folder, rank };
    }
  });
  return best as { folder: string; rank: number } | null;
}

/** Every edge that breaks the layer rule, one line each ("a.ts -> b.ts: why"). */
export function layerViolations(
  graph: Graph,
  layers: readonly (readonly string[])[] = LAYERS,
): string[] {
  const out: string[] = [];
  for (const [from, tos] of [...graph].sort(([a], [b]) => a.localeCompare(b))) {
    const a = layerOf(from, layers);
    if (!a) {
      out.push(`${from}: not inside a layer folder of lib/ (${layers.flat().join(", ")})`);
      continue;
    }
    for (const to of tos) {
      const b = layerOf(to, layers);
      if (!b) out.push(`${from} -> ${to}: points outside the layer folders of lib/`);
      else if (a.folder === b.folder || b.rank < a.rank) continue;
      else if (b.rank === a.rank) {
        out.push(`${from} -> ${to}: across one rank (${a.folder} | ${b.folder})`);
      } else out.push(`${from} -> ${to}: points up (${a.folder} < ${b.folder})`);
    }
  }
  return out;
}

/** Every import circle, as "a.ts -> b.ts -> a.ts" (one per strongly connected component). */
export function importCycles(graph: Graph): string[] {
  // Tarjan's strongly connected components, then one concrete circle through each.
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      components.push(c);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);

  const out: string[] = [];
  for (const c of components) {
    const members = new Set(c);
    const start = [...c].sort()[0];
    if (c.length === 1 && !(graph.get(start) ?? []).includes(start)) continue;
    // Shortest path from start back to start inside the component (breadth-first).
    const prev = new Map<string, string>();
    const queue = [start];
    let closing: string | null = null;
    while (queue.length > 0 && closing === null) {
      const v = queue.shift()!;
      for (const w of (graph.get(v) ?? []).filter((x) => members.has(x)).sort()) {
        if (w === start) {
          closing = v;
          break;
        }
        if (!prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    const path = [start];
    for (let v = closing!; v !== start; v = prev.get(v)!) path.splice(1, 0, v);
    path.push(start);
    out.push(path.join(" -> "));
  }
  return out.sort();
}

Deno.test("layers: the checker reports a circle, an upward edge and an edge across one rank", () => {
  const g: Graph = new Map([
    ["lib/util/a.ts", ["lib/util/b.ts"]],
    ["lib/util/b.ts", ["lib/crypto/c.ts"]], // up: util may not import crypto
    ["lib/crypto/c.ts", ["lib/util/a.ts"]], // down, fine, but closes a circle a -> b -> c -> a
    ["lib/pkarr/d.ts", ["lib/material/e.ts", "lib/util/a.ts"]], // across the pkarr | material rank
    ["lib/material/e.ts", []],
    ["lib/cli/f.ts", ["lib/pkarr/d.ts", "lib/cli/f.ts"]], // self-import is a circle too
    ["lib/loose.ts", []], // not in a layer folder
    ["lib/flows/share/s.ts", ["lib/flows/large/l.ts"]], // up: share may not import large
    ["lib/flows/large/l.ts", ["lib/flows/share/t.ts"]], // down, fine
    ["lib/flows/share/t.ts", []],
    ["lib/flows/loose.ts", []], // flows/ itself is no layer: a flow belongs to a product
  ]);
  assert.deepEqual(layerViolations(g), [
    "lib/flows/loose.ts: not inside a layer folder of lib/ (util, crypto, pkarr, material, " +
    "protocol, state, homeserver, claude, sync, flows/share, flows/large, flows/handoff, flows/sync, " +
    "testing, cli)",
    "lib/flows/share/s.ts -> lib/flows/large/l.ts: points up (flows/share < flows/large)",
    "lib/loose.ts: not inside a layer folder of lib/ (util, crypto, pkarr, material, " +
    "protocol, state, homeserver, claude, sync, flows/share, flows/large, flows/handoff, flows/sync, " +
    "testing, cli)",
    "lib/pkarr/d.ts -> lib/material/e.ts: across one rank (pkarr | material)",
    "lib/util/b.ts -> lib/crypto/c.ts: points up (util < crypto)",
  ]);
  assert.deepEqual(importCycles(g), [
    "lib/cli/f.ts -> lib/cli/f.ts",
    "lib/crypto/c.ts -> lib/util/a.ts -> lib/util/b.ts -> lib/crypto/c.ts",
  ]);
  // A clean graph (down edges only, free inside a folder, subfolders in the parent layer).
  const clean: Graph = new Map([
    ["lib/cli/x.ts", ["lib/flows/share/y.ts", "lib/cli/z.ts", "lib/util/a.ts"]],
    ["lib/cli/z.ts", []],
    ["lib/flows/share/y.ts", ["lib/pkarr/dht/client.ts"]],
    ["lib/pkarr/dht/client.ts", ["lib/pkarr/dns.ts"]],
    ["lib/pkarr/dns.ts", ["lib/util/a.ts"]],
    ["lib/util/a.ts", []],
  ]);
  assert.deepEqual(layerViolations(clean), []);
  assert.deepEqual(importCycles(clean), []);
});

Deno.test("layers: every import form is read, comments are not", () => {
  const src = [
    "/** Example: import { no } from './in_block_comment.ts'; */",
    "// import { no } from './in_line_comment.ts';",
    '// @ts-types="./pragma.d.ts"',
    'import x from "./default.ts";',
    'import { a, type B } from "../named.ts";',
    "import {",
    "  c,",
    "  d,",
    '} from "./multi_line.ts";',
    'import type { E } from "./type_only.ts";',
    'import * as ns from "./namespace.ts";',
    'import "./side_effect.ts";',
    'export { f } from "./re_export.ts";',
    'export type { G } from "./type_re_export.ts";',
    'export * from "./star.ts";',
    'export * as all from "./star_as.ts";',
    'const m = await import("./dynamic.ts");',
    "const n = await import('./dynamic_single.ts', { with: {} });",
    'import { ed25519 } from "@noble/curves/ed25519.js";',
    'const s = Array.from("not an import");',
  ].join("\n");
  assert.deepEqual(importSpecifiers(src), [
    "./default.ts",
    "../named.ts",
    "./multi_line.ts",
    "./type_only.ts",
    "./namespace.ts",
    "@noble/curves/ed25519.js",
    "./re_export.ts",
    "./type_re_export.ts",
    "./star.ts",
    "./star_as.ts",
    "./side_effect.ts",
    "./dynamic.ts",
    "./dynamic_single.ts",
  ]);
  assert.equal(resolveSpecifier("lib/pkarr/dht/client.ts", "../../util/x.ts"), "lib/util/x.ts");
  assert.equal(resolveSpecifier("lib/cli/a.ts", "./b.ts"), "lib/cli/b.ts");
  assert.equal(resolveSpecifier("lib/cli/a.ts", "npm:commander"), null);
});

Deno.test("layers: lib/ imports point only down the layers", async () => {
  const graph = await readLibGraph();
  assert.ok(graph.size > 20, `read only ${graph.size} files under lib/`);
  const bad = layerViolations(graph);
  assert.deepEqual(bad, [], `imports that break the layer order:\n  ${bad.join("\n  ")}`);
});

Deno.test("layers: no import circle in lib/", async () => {
  const cycles = importCycles(await readLibGraph());
  assert.deepEqual(cycles, [], `import circles:\n  ${cycles.join("\n  ")}`);
});

Deno.test("layers: nothing refers to the reference folder beside the repository", async () => {
  // Code and configuration only: prose (Markdown) may explain the rule without breaking it.
  const needles = [".." + "/shared", "/work" + "/shared"];
  const roots = ["lib", "tests", "scripts"];
  const files: string[] = ["deno.json", "main.ts", "mod.ts", "testing.ts"];
  for (const r of roots) for await (const p of walk(new URL(`${r}/`, root), r)) files.push(p);
  const hits: string[] = [];
  let read = 0;
  for (const f of files) {
    if (f.endsWith(".md")) continue;
    let text: string;
    try {
      text = new TextDecoder().decode(await Deno.readFile(new URL(f, root)));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    read++;
    for (const n of needles) if (text.includes(n)) hits.push(`${f}: ${n}`);
  }
  assert.ok(read > 30, `read only ${read} files`);
  assert.deepEqual(hits, [], `files that refer outside the repository:\n  ${hits.join("\n  ")}`);
});

/** The relative imports of every .ts file directly in `dir`. */
async function importsOf(dir: string): Promise<Array<{ file: string; spec: string }>> {
  const out: Array<{ file: string; spec: string }> = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !e.name.endsWith(".ts")) continue;
    const text = await Deno.readTextFile(`${dir}/${e.name}`);
    for (const m of text.matchAll(/^(?:import|export)[^;]*?from "([^"]+)"/gms)) {
      out.push({ file: e.name, spec: m[1] });
    }
  }
  return out;
}

Deno.test("layers: protocol does no network I/O", async () => {
  const lib = new URL("../lib/", import.meta.url).pathname;
  const protocol = await importsOf(`${lib}protocol`);
  assert.ok(protocol.length > 0);
  for (const { file, spec } of protocol) {
    assert.ok(!spec.endsWith("/transport.ts"), `${file} imports ${spec}`);
    assert.ok(
      !/^\.\.\/(state|flows|cli|testing|homeserver|claude)\//.test(spec),
      `${file}: ${spec}`,
    );
  }
});
