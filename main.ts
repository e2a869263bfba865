/**
 * cipherpost: serverless, accountless, end-to-end encrypted hand-off of secrets.
 *
 * Thin entry point: parse, dispatch, exit code. Everything else lives in `lib/`.
 *
 * @module
 */
import { run } from "./lib/cli/program.ts";

if (import.meta.main) {
  Deno.exit(await run(Deno.args));
}
