// Run the real CLI on a pseudo-terminal (tmux), to test what a person at a terminal sees:
// prompts on /dev/tty, retries, progress bars. Each run has its own tmux server (-L socket).
import { cliArgv } from "./_helpers.ts";

/** True when tmux is installed (the TTY tests skip, saying so, without it). */
export const HAVE_TMUX = (() => {
  try {
    return new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
})();

/** One interaction: wait until the screen matches `wait`, then type `type` (and Enter). */
export interface Step {
  wait: RegExp;
  type?: string;
  /** raw tmux key names sent after `type`, e.g. ["C-c"]; default ["Enter"] when `type` is set */
  keys?: string[];
  /** run once the screen matches, before typing (e.g. to change a file while a prompt waits) */
  then?: () => Promise<void>;
}

/** What a terminal run ended with. */
export interface TtyResult {
  code: number;
  /** the whole screen (scrollback included) at the end */
  screen: string;
  /** what the command wrote to stdout, when `stdoutFile` was used */
  stdout: string;
}

function sh(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

async function tmux(sock: string, args: string[]): Promise<string> {
  const out = await new Deno.Command("tmux", { args: ["-L", sock, ...args], stderr: "piped" })
    .output();
  return new TextDecoder().decode(out.stdout);
}

/**
 * Run `cipherpost <args>` in a fresh terminal with `env` (and nothing else but PATH/DENO_DIR),
 * optionally with `stdinText` piped in (so stdin is NOT the terminal), then play `steps`.
 * stdout goes to a file (returned as `stdout`) unless `stdoutToTty` is set.
 */
export async function runInTty(
  args: string[],
  o: {
    env: Record<string, string>;
    steps?: Step[];
    stdinText?: string;
    stdoutToTty?: boolean;
    timeoutMs?: number;
    cwd?: string;
    /** shell text run on the terminal after the command, before the run counts as ended */
    after?: string;
  },
): Promise<TtyResult> {
  const dir = await Deno.makeTempDir({ prefix: "cp-tty-" });
  const sock = `cp-test-${crypto.randomUUID().slice(0, 8)}`;
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: "/nonexistent",
    DENO_NO_UPDATE_CHECK: "1",
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
    TERM: "xterm",
    ...o.env,
  };
  const exports = Object.entries(env).map(([k, v]) => `export ${k}=${sh(v)}`).join("\n");
  const cmd = cliArgv(args).map(sh).join(" ");
  const stdin = o.stdinText === undefined ? "" : `printf %s ${sh(o.stdinText)} | `;
  const stdout = o.stdoutToTty ? "" : ` > ${sh(`${dir}/stdout`)}`;
  await Deno.writeTextFile(
    `${dir}/run.sh`,
    `${exports}\n${o.cwd ? `cd ${sh(o.cwd)}\n` : ""}${stdin}${cmd}${stdout}\nrc=$?\n${
      o.after ?? ""
    }\necho "$rc" > ${sh(`${dir}/exit`)}\nsleep 600\n`,
  );
  await tmux(sock, [
    "new-session",
    "-d",
    "-s",
    "main",
    "-x",
    "200",
    "-y",
    "60",
    `sh ${sh(`${dir}/run.sh`)}`,
  ]);
  await tmux(sock, ["set-option", "-g", "history-limit", "5000"]);
  const deadline = Date.now() + (o.timeoutMs ?? 90_000);
  const screen = () => tmux(sock, ["capture-pane", "-p", "-J", "-S", "-5000"]);
  const exitCode = async () => {
    try {
      return Number((await Deno.readTextFile(`${dir}/exit`)).trim());
    } catch {
      return null;
    }
  };
  try {
    for (const step of o.steps ?? []) {
      while (!step.wait.test(await screen())) {
        if (await exitCode() !== null || Date.now() > deadline) {
          throw new Error(`never saw ${step.wait} on the terminal:\n${await screen()}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await step.then?.();
      if (step.type !== undefined) await tmux(sock, ["send-keys", "-t", "main", "-l", step.type]);
      for (const k of step.keys ?? (step.type !== undefined ? ["Enter"] : [])) {
        await tmux(sock, ["send-keys", "-t", "main", k]);
      }
    }
    let code: number | null;
    while ((code = await exitCode()) === null) {
      if (Date.now() > deadline) throw new Error(`command did not end:\n${await screen()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const out = o.stdoutToTty ? "" : await Deno.readTextFile(`${dir}/stdout`).catch(() => "");
    return { code, screen: await screen(), stdout: out };
  } finally {
    await tmux(sock, ["kill-server"]);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
