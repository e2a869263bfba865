// The published entry points (deno.json "exports"): the library (mod.ts) carries no test
// machinery and nothing of the CLI; the testnet and the stand-in homeserver are the `./testing`
// export (testing.ts). `.ci/run` checks the rest of the surface (publish dry run, doc lint,
// `deno check --doc`).
import assert from "node:assert/strict";
import * as lib from "../mod.ts";
import * as testing from "../testing.ts";

const root = new URL("../", import.meta.url);

/** The `./lib/…` modules an entry file imports or re-exports from. */
async function libImports(entry: string): Promise<string[]> {
  const src = await Deno.readTextFile(new URL(entry, root));
  return [...src.matchAll(/\bfrom\s+"(\.\/lib\/[^"]+)"/g)].map((m) => m[1]);
}

Deno.test("entry points: deno.json exports the library, the CLI and the testing helpers", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  assert.deepEqual(config.exports, {
    ".": "./mod.ts",
    "./cli": "./main.ts",
    "./testing": "./testing.ts",
  });
  for (const dir of ["tests/", "scripts/", ".ci/", "dist/", "**/node_modules/"]) {
    assert.ok(config.publish.exclude.includes(dir), `publish.exclude lacks ${dir}`);
  }
});

Deno.test("entry points: mod.ts takes nothing from lib/testing/ or lib/cli/", async () => {
  const from = await libImports("mod.ts");
  assert.ok(from.length > 10, `read only ${from.length} imports of mod.ts`);
  const bad = from.filter((p) => p.startsWith("./lib/testing/") || p.startsWith("./lib/cli/"));
  assert.deepEqual(bad, []);
  for (const name of ["startTestnet", "startHomeserver", "startHomeserverOnTestnet"]) {
    assert.equal(name in lib, false, `mod.ts exports ${name}`);
  }
});

Deno.test("entry points: testing.ts re-exports the testnet and the stand-in homeservers only", async () => {
  const from = await libImports("testing.ts");
  assert.deepEqual([...new Set(from)].sort(), [
    "./lib/testing/homeserver.ts",
    "./lib/testing/hostile_homeserver.ts",
    "./lib/testing/testnet.ts",
  ]);
  assert.deepEqual(Object.keys(testing).sort(), [
    "startHomeserver",
    "startHomeserverOnTestnet",
    "startHostileHomeserver",
    "startTestnet",
  ]);
});
