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
 * - `--no-wait` (slurm): submit and return.
 * Internal: `--cell <id> --out DIR` runs one cell (what the executors call).
 * @module
 */
import { parseArgs } from "node:util";
import { ConfigError } from "../config/errors.ts";
import { readJsonFile } from "../config/parse.ts";
import { selectBackend } from "../tfjs/backend.ts";
import { runCell } from "../sweep/cell.ts";
import { resolve } from "node:path";
import { expandSweep } from "../sweep/spec.ts";
import {
  defaultSweepDir,
  formatSummary,
  loadSweep,
  prepareSweep,
  runSweep,
  writeSweepOutputs,
} from "../sweep/sweep.ts";
import { cellState } from "../sweep/cell.ts";
import { queuedTasks, readSlurmJob, slurmScript, unfinishedCells } from "../sweep/slurm.ts";

const USAGE = "usage: deno task sweep -- --spec sweeps/NAME.json [--out DIR] " +
  "[--executor local|slurm] [--parallel N] [--fast] [--dry-run] [--status] [--summary] [--no-wait]";

/** Parsed command line of `deno task sweep`. */
export interface SweepArgs {
  spec?: string;
  out?: string;
  executor: "local" | "slurm";
  parallel?: number;
  fast: boolean;
  dryRun: boolean;
  status: boolean;
  summary: boolean;
  wait: boolean;
  /** Internal: run this one cell. */
  cell?: string;
  /** Internal: exit when the parent process dies (local workers). */
  exitWithParent: boolean;
}

/** Parses the command line (a leading "--" is dropped); throws ConfigError naming a bad flag. */
export function parseSweepArgs(args: string[]): SweepArgs {
  const a = args[0] === "--" ? args.slice(1) : args;
  let v;
  try {
    ({ values: v } = parseArgs({
      args: a,
      strict: true,
      options: {
        spec: { type: "string" },
        out: { type: "string" },
        executor: { type: "string", default: "local" },
        parallel: { type: "string" },
        fast: { type: "boolean", default: false },
        "dry-run": { type: "boolean", default: false },
        status: { type: "boolean", default: false },
        summary: { type: "boolean", default: false },
        "no-wait": { type: "boolean", default: false },
        cell: { type: "string" },
        "exit-with-parent": { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  if (v.help) throw new ConfigError(USAGE);
  if (v.executor !== "local" && v.executor !== "slurm") {
    throw new ConfigError(`--executor must be local or slurm, got ${v.executor}`);
  }
  let parallel: number | undefined;
  if (v.parallel !== undefined) {
    parallel = Number(v.parallel);
    if (!Number.isInteger(parallel) || parallel < 1) {
      throw new ConfigError(`--parallel must be an integer >= 1, got ${v.parallel}`);
    }
  }
  if (v.cell !== undefined && v.out === undefined) throw new ConfigError("--cell needs --out DIR");
  if (v.cell === undefined && v.spec === undefined && !((v.status || v.summary) && v.out)) {
    throw new ConfigError(
      "--spec <sweep spec file> is required (or --out DIR with --status/--summary)",
    );
  }
  return {
    spec: v.spec,
    out: v.out,
    executor: v.executor,
    parallel,
    fast: v.fast,
    dryRun: v["dry-run"],
    status: v.status,
    summary: v.summary,
    wait: !v["no-wait"],
    cell: v.cell,
    exitWithParent: v["exit-with-parent"],
  };
}

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
export async function sweepCommand(a: SweepArgs): Promise<void> {
  if (a.cell !== undefined) {
    // On its own thread: works while a long synchronous training step holds this one.
    if (a.exitWithParent) {
      new Worker(new URL("../sweep/parent_watch.ts", import.meta.url), { type: "module" });
    }
    await selectBackend({ log: true });
    const r = await runCell(a.out!, a.cell);
    console.log(`cell ${a.cell} done: ${JSON.stringify(r.metrics)}`);
    Deno.exit(0);
  }
  const spec = a.spec ? await readJsonFile(a.spec) : undefined;
  const out = a.out ?? (spec ? undefined : a.out);
  if (a.status || a.summary) {
    const dir = out ?? (await prepareSweep(spec, { fast: a.fast, source: a.spec })).dir;
    if (a.status) console.log(await status(dir));
    else console.log(formatSummary(await writeSweepOutputs(await loadSweep(dir))));
    return;
  }
  if (a.dryRun) {
    // Validates and lists; writes nothing.
    const x = await expandSweep(spec, { fast: a.fast, source: a.spec });
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
    wait: a.wait,
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
  try {
    await sweepCommand(parseSweepArgs(Deno.args));
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(e.message);
    Deno.exit(2);
  }
}
