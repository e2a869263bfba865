// Run in a child process by tests/claude_bombs_test.ts: one hostile Claude Code input through
// the library, then one JSON line with the outcome and this process's peak RSS (VmHWM), read
// from /proc just before exit.
//
//   pickup BUNDLE CONFIG_DIR CWD   parseBundle → summarizeBundle → planPlacement → applyPlacement
//   list CONFIG_DIR                listSessions → transcriptFactsOfFile for each
import { parseBundle } from "../lib/claude/bundle.ts";
import { summarizeBundle } from "../lib/claude/summary.ts";
import { applyPlacement, planPlacement } from "../lib/claude/place.ts";
import { listSessions } from "../lib/claude/discover.ts";
import { transcriptFactsOfFile } from "../lib/claude/transcript.ts";

async function peakKiB(): Promise<number> {
  const m = (await Deno.readTextFile("/proc/self/status")).match(/VmHWM:\s+(\d+) kB/);
  return m ? Number(m[1]) : -1;
}

const [mode, ...args] = Deno.args;
let out: unknown;
if (mode === "pickup") {
  const [bundle, configDir, cwd] = args;
  const b = await parseBundle(await Deno.readFile(bundle));
  const s = summarizeBundle(b);
  const plan = await planPlacement(b, { configDir, cwd, fork: false });
  await applyPlacement(plan);
  out = { summary: s, action: plan.action, folder: plan.folder };
} else if (mode === "list") {
  const rows = [];
  for (const s of await listSessions(args[0])) {
    rows.push({
      id: s.sessionId,
      headCwd: s.cwd,
      size: s.size,
      ...await transcriptFactsOfFile(s.transcript),
    });
  }
  out = rows;
} else throw new Error(`unknown mode ${mode}`);
console.log(JSON.stringify({ out, peakKiB: await peakKiB() }));
