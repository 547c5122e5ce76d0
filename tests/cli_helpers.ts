/**
 * Runs `deno task ...` the way the documentation shows it, in a subprocess, and captures its
 * exit code and output (test helper).
 * @module
 */

/** Exit code and output of one command. */
export interface TaskResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Absolute path of the repository root. */
export const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/**
 * Runs `deno task <args>` with `cwd` (default the repository root). `XDG_RUNTIME_DIR` is
 * removed from the environment (as on a fresh server login without a session), and
 * NO_COLOR set so messages compare as plain text.
 */
export async function runTask(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<TaskResult> {
  const env: Record<string, string> = { ...Deno.env.toObject(), NO_COLOR: "1", ...opts.env };
  delete env.XDG_RUNTIME_DIR;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", ...args],
    cwd: opts.cwd ?? REPO,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** The output without the `Task NAME <command>` line that `deno task` itself prints. */
export function commandOutput(r: TaskResult): string {
  return (r.stdout + r.stderr).split("\n").filter((l) => !/^Task \S+ /.test(l)).join("\n");
}

/** Lines that would alarm a user although nothing failed (WebGPU probe noise, tfjs banner). */
export function noiseLines(r: TaskResult): string[] {
  return commandOutput(r).split("\n").filter((l) =>
    /XDG_RUNTIME_DIR|node backend|tfjs-node|Hi, looks like/.test(l)
  );
}

/**
 * Flags of a distillation run that passes flag parsing but fails on the teacher: 6 -> 3
 * steps, where 6 does not divide the shipped teacher's T = 128 (known only from the teacher).
 */
export function distillFlagsWithBadSteps(run: string): string[] {
  return ["--teacher", "data/teacher", "--method", "pd", "--from-steps", "6", "--to-steps", "3"]
    .concat(["--run", run]);
}
