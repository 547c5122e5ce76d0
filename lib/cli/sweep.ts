/**
 * `deno task sweep -- --spec sweeps/<name>.json [--out DIR] [--executor local|slurm]
 *  [--parallel N] [--fast] [--dry-run] [--status] [--summary] [--no-wait]`
 *
 * Runs an ablation sweep (see lib/sweep/ and the README section "Ablation studies"): every
 * (variant, seed) cell of the spec that is not finished, with a pool of local workers or as
 * one Slurm job array, then writes results.jsonl, summary.json, summary.csv into the sweep
 * directory (default runs/sweeps/<name>) and prints the summary table.
 * - `--dry-run`: validate, list the cells (and with `--executor slurm` print the batch
 *   script); nothing runs.
 * - `--status`: what is done, failed, pending (and, for Slurm, queued/running in squeue).
 * - `--summary`: only rewrite and print the summary of the finished cells.
 * - `--no-wait` (slurm): submit and return. `--check`: validate the spec and exit.
 * Internal: `--cell <id> --out DIR` runs one cell (what the executors call).
 * @module
 */
import { resolve } from "node:path";
import { readJsonFile } from "../config/parse.ts";
import { selectBackend } from "../tfjs/backend.ts";
import { type CommandSpec, type FlagValues, printCheck, runCommand, UsageError } from "./args.ts";
import { cellState, runCell } from "../sweep/cell.ts";
import { expandSweep } from "../sweep/spec.ts";
import {
  defaultSweepDir,
  formatSummary,
  loadSweep,
  prepareSweep,
  runSweep,
  writeSweepOutputs,
} from "../sweep/sweep.ts";
import { queuedTasks, readSlurmJob, slurmScript, unfinishedCells } from "../sweep/slurm.ts";

/** The flags of `deno task sweep`. */
export const SWEEP_COMMAND = {
  usage: "deno task sweep -- --spec sweeps/NAME.json [--out DIR] [--executor local|slurm] " +
    "[--parallel N] [--fast] [--dry-run] [--status] [--summary]",
  summary: "Runs every unfinished (variant, seed) cell of a sweep spec with local workers or as " +
    "one Slurm job array, then writes results.jsonl, summary.json and summary.csv into the " +
    "sweep directory and prints the summary (mean, 95% CI, paired difference to the baseline).",
  flags: {
    spec: { type: "string", placeholder: "FILE", description: "the sweep spec (JSON)" },
    out: {
      type: "string",
      placeholder: "DIR",
      description: "sweep directory (default runs/sweeps/<spec name>)",
    },
    executor: {
      type: "string",
      choices: ["local", "slurm"],
      default: "local",
      description: "local worker processes, or one Slurm job array",
    },
    parallel: {
      type: "int",
      min: 1,
      description: "local: worker processes (default cores / 2); slurm: the array's %P",
    },
    fast: { type: "boolean", description: "apply the spec's fast profile (fewer steps/seeds)" },
    "dry-run": {
      type: "boolean",
      description: "list the cells (and print the Slurm batch script); run and write nothing",
    },
    status: { type: "boolean", description: "say which cells are done, failed, pending, queued" },
    summary: { type: "boolean", description: "rewrite and print the summary of finished cells" },
    "no-wait": { type: "boolean", description: "slurm: submit the array and return" },
    check: { type: "boolean", description: "validate the spec, print the cells, exit" },
    cell: { type: "string", placeholder: "ID", description: "internal: run one cell of --out" },
    "exit-with-parent": {
      type: "int",
      placeholder: "PID",
      description: "internal: a local worker exits when its sweep process PID dies",
    },
  },
} as const satisfies CommandSpec;

/** Parsed flags of `deno task sweep`. */
export type SweepFlags = FlagValues<typeof SWEEP_COMMAND.flags>;

async function status(dir: string): Promise<string> {
  const s = await loadSweep(dir);
  const job = await readSlurmJob(dir);
  const queued = job ? await queuedTasks(job.jobId).catch(() => new Map<number, string>()) : null;
  const lines: string[] = [];
  const counts: Record<string, number> = {};
  for (const c of s.cells) {
    let state: string = await cellState(dir, c.id);
    const idx = job?.cells.indexOf(c.id) ?? -1;
    if (state !== "done" && queued && idx >= 0 && queued.has(idx)) {
      state = queued.get(idx)!.toLowerCase();
    }
    counts[state] = (counts[state] ?? 0) + 1;
    const err = state === "failed" ? ` (${s.errors.find((e) => e.id === c.id)?.error})` : "";
    lines.push(`${c.id}  ${state.padEnd(8)} ${c.variant} seed ${c.seed}${err}`);
  }
  const head = Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", ");
  return `${s.spec.name}: ${s.cells.length} cells: ${head}${
    job ? ` (slurm job ${job.jobId})` : ""
  }\n` +
    lines.join("\n");
}

/** Runs the command for parsed arguments. */
export async function sweepCommand(a: SweepFlags): Promise<void> {
  if (a.cell !== undefined) {
    if (a.out === undefined) throw new UsageError("--cell needs --out DIR");
    // On its own thread: works while a long synchronous training step holds this one.
    if (a["exit-with-parent"] !== undefined) {
      new Worker(new URL("../sweep/parent_watch.ts", import.meta.url), { type: "module" })
        .postMessage(a["exit-with-parent"]);
    }
    await selectBackend({ log: true });
    const r = await runCell(a.out!, a.cell);
    console.log(`cell ${a.cell} done: ${JSON.stringify(r.metrics)}`);
    Deno.exit(0);
  }
  if (a.spec === undefined && !((a.status || a.summary) && a.out)) {
    throw new UsageError("--spec is required (or --out DIR with --status or --summary)");
  }
  const spec = a.spec ? await readJsonFile(a.spec) : undefined;
  const out = a.out;
  if (a.status || a.summary) {
    const dir = out ?? (await prepareSweep(spec, { fast: a.fast, source: a.spec })).dir;
    if (a.status) console.log(await status(dir));
    else console.log(formatSummary(await writeSweepOutputs(await loadSweep(dir))));
    return;
  }
  if (a["dry-run"] || a.check) {
    // Validates and lists; writes nothing.
    const x = await expandSweep(spec, { fast: a.fast, source: a.spec });
    if (a.check) {
      printCheck({ spec: a.spec, cells: x.cells.length, variants: x.variants.map((v) => v.name) });
      return;
    }
    const dir = resolve(out ?? defaultSweepDir(x.spec));
    for (const c of x.cells) {
      console.log(`${c.id}  ${await cellState(dir, c.id)}  ${c.variant} seed ${c.seed}`);
    }
    if (a.executor === "slurm") {
      const todo = await unfinishedCells(dir, x.cells.map((c) => c.id));
      const settings = { ...x.spec.slurm, parallel: a.parallel ?? x.spec.slurm?.parallel };
      console.log(slurmScript(dir, x.spec.name, todo, settings));
    }
    return;
  }
  const r = await runSweep(spec, {
    out,
    executor: a.executor,
    parallel: a.parallel,
    fast: a.fast,
    wait: !a["no-wait"],
    source: a.spec,
  });
  if (r.summary) console.log(`\n${formatSummary(r.summary)}\n\nsweep directory: ${r.dir}`);
  if (r.failed.length > 0) {
    console.error(
      `${r.failed.length} cell(s) failed (see ${r.dir}/cells/<id>/error.json): ${
        r.failed.join(" ")
      }`,
    );
    Deno.exit(1);
  }
}

if (import.meta.main) {
  await runCommand(SWEEP_COMMAND, sweepCommand);
}
