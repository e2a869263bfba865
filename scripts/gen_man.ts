/**
 * Write docs/cipherpost.1 from the command tree (`deno task man`), so the man page says what
 * `--help` says. `--check` exits 1 when the file is out of date (CI).
 *
 * @module
 */
import type { Command } from "commander";
import { buildProgram } from "../lib/cli/program.ts";
import { manPage } from "../lib/cli/completions.ts";
import { VERSION } from "../lib/util/version.ts";

const path = new URL("../docs/cipherpost.1", import.meta.url);
// The date is the version's, not today's, so the file only changes when the help does.
const page = manPage(buildProgram() as unknown as Command, VERSION, `cipherpost ${VERSION}`);
if (Deno.args.includes("--check")) {
  const now = await Deno.readTextFile(path).catch(() => "");
  if (now !== page) {
    console.error("docs/cipherpost.1 is out of date: run deno task man");
    Deno.exit(1);
  }
} else {
  await Deno.writeTextFile(path, page);
  console.error(`wrote ${path.pathname}`);
}
