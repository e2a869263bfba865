/**
 * Child processes of the large-share benchmarks (`scripts/bench_large.ts`, and its `--net` mode
 * in `scripts/bench_large_net.ts`): each runs under `/usr/bin/time`, which reports the child's
 * peak RSS (`ru_maxrss`, what `/proc/<pid>/status` calls VmHWM at exit) and its CPU seconds,
 * optionally inside a network namespace (`ip netns exec NS /usr/bin/time …`).
 *
 * @module
 */

/** What one run measured. */
export interface Measured {
  secs: number;
  hwmKiB: number;
  cpu: number;
  stdout: string;
  stderr: string;
  code: number;
}

/** A command line with its environment. */
export interface Cmd {
  cmd: string;
  argv: string[];
  env?: Record<string, string>;
}

const TIME_FORMAT = ["-f", "@@RUSAGE %M %U %S"];

/** `/usr/bin/time … cmd argv`, inside network namespace `ns` when given. */
export function timed(c: Cmd, ns?: string): { cmd: string; args: string[] } {
  const inner = ["/usr/bin/time", ...TIME_FORMAT, c.cmd, ...c.argv];
  return ns
    ? { cmd: "ip", args: ["netns", "exec", ns, ...inner] }
    : { cmd: inner[0], args: inner.slice(1) };
}

/** The `--allow-*` flags of the `cipherpost` permission set in deno.json. */
export function cipherpostFlags(root: URL): string[] {
  const cfg = JSON.parse(Deno.readTextFileSync(new URL("deno.json", root)));
  return Object.entries(cfg.permissions.cipherpost as Record<string, boolean>)
    .filter(([, v]) => v).map(([k]) => `--allow-${k}`);
}

/** Split `/usr/bin/time`'s `@@RUSAGE` line off a child's stderr: peak RSS, CPU, the rest. */
export function rusageOf(text: string): { hwmKiB: number; cpu: number; stderr: string } {
  const m = /@@RUSAGE (\d+) ([\d.]+) ([\d.]+)\s*$/.exec(text);
  return {
    hwmKiB: m ? Number(m[1]) : NaN,
    cpu: m ? Number(m[2]) + Number(m[3]) : NaN,
    stderr: m ? text.slice(0, m.index) : text,
  };
}

/** Run `c` to its end under `/usr/bin/time` (in `ns` when given). */
export async function runTimed(c: Cmd, ns?: string): Promise<Measured> {
  const t = timed(c, ns);
  const t0 = performance.now();
  const out = await new Deno.Command(t.cmd, {
    args: t.args,
    env: c.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const secs = (performance.now() - t0) / 1000;
  return {
    secs,
    ...rusageOf(new TextDecoder().decode(out.stderr)),
    stdout: new TextDecoder().decode(out.stdout),
    code: out.code,
  };
}

/**
 * Like {@link runTimed}, but calls `onFirstLine` with the first stdout line as soon as it is
 * written (the large send prints its URI once the pointer is out, before the upload ends).
 */
export async function runTimedFirstLine(
  c: Cmd,
  onFirstLine: (line: string) => void,
  ns?: string,
): Promise<Measured> {
  const t = timed(c, ns);
  const t0 = performance.now();
  const child = new Deno.Command(t.cmd, {
    args: t.args,
    env: c.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const errText = new Response(child.stderr).text();
  let stdout = "";
  let told = false;
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    stdout += chunk;
    if (!told && stdout.includes("\n")) {
      told = true;
      onFirstLine(stdout.slice(0, stdout.indexOf("\n")));
    }
  }
  const status = await child.status;
  const secs = (performance.now() - t0) / 1000;
  return { secs, ...rusageOf(await errText), stdout, code: status.code };
}

/** The pids whose parent is `pid` (the process `/usr/bin/time` runs). */
export async function childPids(pid: number): Promise<number[]> {
  const ps = await new Deno.Command("ps", {
    args: ["--ppid", String(pid), "-o", "pid="],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(ps.stdout).split(/\s+/).filter((x) => x).map(Number);
}
