/**
 * The `slurm` executor: the unfinished cells of a sweep as ONE job array
 * (`sbatch --array=0-(n-1)%P`); array task i runs the cell on line i + 1 of
 * `slurm/cells.txt` through the same cell command as the local executor. Tasks are
 * requeueable: a requeued or preempted task resumes its cell from its checkpoints. Results
 * are read from the (shared) sweep directory.
 * @module
 */
import type { SlurmSettings } from "../config/sweep.ts";
import { writeFileAtomic } from "../train/checkpoint.ts";
import { cellCommand } from "./local.ts";
import { cellState } from "./cell.ts";

/** What `slurm/job.json` records about the last submission. */
export interface SlurmJob {
  /** The Slurm job id of the array. */
  jobId: string;
  /** Cell ids in array-index order. */
  cells: string[];
  /** ISO time of the submission. */
  submittedAt: string;
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./=:,@%+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * The batch script of a job array over `ids` (array index i = line i + 1 of
 * `<dir>/slurm/cells.txt`). `dir` should be absolute (tasks may start elsewhere).
 */
export function slurmScript(
  dir: string,
  name: string,
  ids: readonly string[],
  s: SlurmSettings,
): string {
  const p = s.parallel ?? ids.length;
  const lines = [
    "#!/bin/bash",
    `#SBATCH --job-name=sweep-${name}`,
    `#SBATCH --array=0-${ids.length - 1}%${p}`,
    `#SBATCH --output=${dir}/slurm/%A_%a.out`,
    "#SBATCH --requeue",
    `#SBATCH --cpus-per-task=${s.cpusPerTask ?? 1}`,
  ];
  if (s.partition) lines.push(`#SBATCH --partition=${s.partition}`);
  if (s.time) lines.push(`#SBATCH --time=${s.time}`);
  if (s.gpusPerTask) lines.push(`#SBATCH --gpus-per-task=${s.gpusPerTask}`);
  for (const e of s.extra ?? []) lines.push(`#SBATCH ${e}`);
  const cmd = cellCommand(dir, "$id").map((a) => a === "$id" ? '"$id"' : shellQuote(a));
  lines.push(
    "set -euo pipefail",
    `cd ${shellQuote(Deno.cwd())}`,
    'export RDD_BLAS_THREADS="${SLURM_CPUS_PER_TASK:-1}" NO_COLOR=1',
    `id=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" ${shellQuote(`${dir}/slurm/cells.txt`)})`,
    `exec ${cmd.join(" ")} >> ${shellQuote(dir)}/cells/"$id"/log.txt 2>&1`,
  );
  return lines.join("\n") + "\n";
}

async function run(cmd: string, args: string[]): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`--executor slurm: ${cmd} not found (is Slurm installed?)`);
    }
    throw e;
  }
  const text = new TextDecoder();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${text.decode(out.stderr).trim()}`);
  return text.decode(out.stdout);
}

/** The unfinished cells of `ids` (pending or failed) in order. */
export async function unfinishedCells(dir: string, ids: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const id of ids) if ((await cellState(dir, id)) !== "done") out.push(id);
  return out;
}

/**
 * Writes `slurm/cells.txt` and `slurm/sweep.sbatch` for `ids` and submits the array with
 * `sbatch --parsable`; records the job in `slurm/job.json` and returns it.
 */
export async function submitSlurm(
  dir: string,
  name: string,
  ids: readonly string[],
  s: SlurmSettings,
): Promise<SlurmJob> {
  await Deno.mkdir(`${dir}/slurm`, { recursive: true });
  await writeFileAtomic(`${dir}/slurm/cells.txt`, ids.join("\n") + "\n");
  const script = `${dir}/slurm/sweep.sbatch`;
  await writeFileAtomic(script, slurmScript(dir, name, ids, s));
  const jobId = (await run("sbatch", ["--parsable", script])).trim().split(";")[0];
  const job: SlurmJob = { jobId, cells: [...ids], submittedAt: new Date().toISOString() };
  await writeFileAtomic(`${dir}/slurm/job.json`, JSON.stringify(job, null, 2));
  return job;
}

/** Array task index -> Slurm state (PENDING, RUNNING, ...) of the tasks still in squeue. */
export async function queuedTasks(jobId: string): Promise<Map<number, string>> {
  const out = await run("squeue", ["-h", "-r", "-j", jobId, "-o", "%K %T"]);
  const m = new Map<number, string>();
  for (const line of out.trim().split("\n").filter((l) => l)) {
    const [idx, state] = line.trim().split(/\s+/);
    if (/^\d+$/.test(idx)) m.set(Number(idx), state);
  }
  return m;
}

/** Waits until no task of `jobId` is in squeue (polling every `pollMs`). */
export async function waitForSlurm(jobId: string, pollMs = 2000): Promise<void> {
  while ((await queuedTasks(jobId)).size > 0) {
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** The last submission of the sweep directory, or null. */
export async function readSlurmJob(dir: string): Promise<SlurmJob | null> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dir}/slurm/job.json`));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}
