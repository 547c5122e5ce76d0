/**
 * `deno task reproduce [--executor local|slurm] [--parallel N] [--fast] [--out DIR]`
 *
 * The reproduction on the shipped MNIST teacher and classifier, as two sweeps (see
 * lib/sweep/): `sweeps/reproduction_teacher.json` (training-free rows: strided DDIM at 1-128
 * steps, DPM-Solver++(2M) at 2, 4, 8 steps on the logSNR path) into `DIR/teacher`, and
 * `sweeps/reproduction_chains.json` (PD, RCFD and RDD chains 8 -> 1, 5 seeds) into
 * `DIR/chains`. Finished cells are reused, so a rerun (on this machine or another one with
 * the committed cell files) runs only unfinished cells. Then, in this one process, it times a
 * 1-step PD student against the teacher's 128-step DDIM on the same batch and backend, and
 * writes `DIR/summary.json` (the merged rows and the speed-up, see lib/sweep/reproduction.ts)
 * and prints the results table; then `DIR/loss_curves.json` and `DIR/samples/` (every chain
 * round's losses, sample sheets of each method: lib/figures/chain_exports.ts) for the
 * figures. DIR defaults to docs/results/reproduction, and to runs/reproduce_fast with `--fast` (each spec's fast profile: seconds per cell), so a fast
 * run never replaces the shipped results. `--check` validates both specs and exits;
 * `--summary` runs nothing: it merges the cells finished so far (the unfinished ones are
 * reported as missing) into `DIR/summary.json` and prints the table.
 * @module
 */
import { readJsonFile } from "../config/parse.ts";
import type { SweepSpec } from "../config/sweep.ts";
import { cellDir } from "../sweep/cell.ts";
import { CELL_DEFAULTS, expandSweep } from "../sweep/spec.ts";
import {
  formatReproduction,
  mergeReproduction,
  type SpeedupMeasurement,
} from "../sweep/reproduction.ts";
import {
  loadSweep,
  prepareSweep,
  runSweep,
  type RunSweepResult,
  writeSweepOutputs,
} from "../sweep/sweep.ts";
import { roundDirName } from "../distill/rounds.ts";
import { measureSpeedup } from "../eval/speedup.ts";
import { exportChainFigureInputs } from "../figures/chain_exports.ts";
import { loadLayersModelFiles, writeFileAtomic } from "../train/checkpoint.ts";
import "../models/unet.ts";
import { readRunConfig, teacherSchedule } from "../train/run_config.ts";
import { describeBackend, selectBackend } from "../tfjs/backend.ts";
import { type CommandSpec, type FlagValues, printCheck, runCommand } from "./args.ts";

/** The flags of `deno task reproduce`. */
export const REPRODUCE_COMMAND = {
  usage:
    "deno task reproduce [--executor local|slurm] [--parallel N] [--fast] [--out DIR] [--summary]",
  summary: "Runs the reproduction sweeps (teacher DDIM / DPM-Solver++ rows; PD, RCFD, RDD " +
    "chains 8 -> 1 over 5 seeds), measures the 1-step student's speed-up over 128-step " +
    "DDIM, writes DIR/summary.json and prints the results table (mean, 95% CI, paired " +
    "difference to PD).",
  flags: {
    executor: {
      type: "string",
      choices: ["local", "slurm"],
      default: "local",
      description: "local worker processes, or one Slurm job array per sweep",
    },
    parallel: {
      type: "int",
      min: 1,
      description: "local: worker processes (default cores / 2); slurm: the array's %P",
    },
    fast: {
      type: "boolean",
      description: "each spec's fast profile (seconds per cell, one seed); default out " +
        "runs/reproduce_fast",
    },
    out: {
      type: "string",
      placeholder: "DIR",
      description: "results folder: DIR/teacher, DIR/chains, DIR/summary.json (default " +
        "docs/results/reproduction)",
    },
    check: { type: "boolean", description: "validate both specs, print their cells, exit" },
    summary: {
      type: "boolean",
      description: "run nothing: merge the finished cells into DIR/summary.json and print it",
    },
  },
} as const satisfies CommandSpec;

/** Parsed flags of `deno task reproduce`. */
export type ReproduceFlags = FlagValues<typeof REPRODUCE_COMMAND.flags>;

/** The two specs of the reproduction (paths relative to the repository root). */
export const REPRODUCTION_SPECS = {
  teacher: "sweeps/reproduction_teacher.json",
  chains: "sweeps/reproduction_chains.json",
} as const;

/** Teacher steps, batch and repeats of the speed-up measurement (full and `--fast`). */
const SPEEDUP = {
  full: { teacherSteps: 128, batch: 64, repeats: 3 },
  fast: { teacherSteps: 128, batch: 2, repeats: 1 },
};

/**
 * Times the 1-step student of the chains sweep's baseline variant at its lowest finished seed
 * against the teacher (see lib/eval/speedup.ts); null when no such cell has finished.
 */
async function speedupOfChains(
  chainsDir: string,
  teacherRun: string,
  fast: boolean,
): Promise<SpeedupMeasurement | null> {
  const s = await loadSweep(chainsDir);
  const done = s.results.filter((r) => r.variant === (s.spec.baseline ?? "PD"))
    .sort((a, b) => a.seed - b.seed)[0];
  if (!done) return null;
  const studentDir = `${cellDir(chainsDir, done.id)}/run/${roundDirName(2)}/model`;
  const tcfg = await readRunConfig(`${teacherRun}/config.json`);
  if (tcfg.kind !== "teacher") throw new RangeError(`${teacherRun} is not a teacher run`);
  await selectBackend({ log: true });
  const teacher = await loadLayersModelFiles(`${teacherRun}/model`);
  const student = await loadLayersModelFiles(studentDir);
  const o = SPEEDUP[fast ? "fast" : "full"];
  const r = await measureSpeedup(teacher, student, {
    schedule: teacherSchedule(tcfg),
    parameterization: tcfg.parameterization ?? "x0",
    studentSteps: 1,
    seed: "reproduce-speedup",
    ...o,
  });
  teacher.dispose();
  student.dispose();
  return { ...o, studentSteps: 1, ...r, student: studentDir, backend: describeBackend() };
}

/**
 * Runs one spec of {@link REPRODUCTION_SPECS} into `out/name` (with `--summary`, only
 * summarizes its finished cells); returns it with its spec.
 */
async function runSpec(
  name: keyof typeof REPRODUCTION_SPECS,
  out: string,
  a: ReproduceFlags,
): Promise<{ spec: SweepSpec; run: Pick<RunSweepResult, "dir" | "summary" | "failed"> }> {
  const source = REPRODUCTION_SPECS[name];
  const spec = await readJsonFile(source) as SweepSpec;
  const o = { out: `${out}/${name}`, fast: a.fast, source };
  if (a.summary) {
    const { dir } = await prepareSweep(spec, o);
    return {
      spec,
      run: { dir, summary: await writeSweepOutputs(await loadSweep(dir)), failed: [] },
    };
  }
  console.log(`\n=== ${source} -> ${out}/${name}`);
  return { spec, run: await runSweep(spec, { ...o, executor: a.executor, parallel: a.parallel }) };
}

/** Runs the command for parsed flags; returns the number of failed cells. */
export async function reproduceCommand(a: ReproduceFlags): Promise<number> {
  const out = a.out ?? (a.fast ? "runs/reproduce_fast" : "docs/results/reproduction");
  if (a.check) {
    const cells: Record<string, number> = {};
    for (const [name, source] of Object.entries(REPRODUCTION_SPECS)) {
      cells[name] = (await expandSweep(await readJsonFile(source), { fast: a.fast, source }))
        .cells.length;
    }
    printCheck({ out, fast: a.fast, cells });
    return 0;
  }
  const teacher = (await runSpec("teacher", out, a)).run;
  const { spec, run: chains } = await runSpec("chains", out, a);
  const teacherRun = String(spec.base.teacherRun ?? CELL_DEFAULTS.distill.teacherRun);
  const speedup = await speedupOfChains(chains.dir, teacherRun, a.fast);
  const summary = mergeReproduction(teacher.summary!, chains.summary!, {
    sources: { teacher: teacher.dir, chains: chains.dir },
    speedup,
  });
  await writeFileAtomic(`${out}/summary.json`, JSON.stringify(summary, null, 2));
  console.log(`\n${formatReproduction(summary)}\n\nsummary: ${out}/summary.json`);
  if (!a.summary) {
    const e = await exportChainFigureInputs(chains.dir, out, teacherRun);
    if (e.lossCurves) console.log(`loss curves: ${e.lossCurves}`);
    if (e.samples.length > 0) console.log(`sample sheets: ${e.samples.length} in ${out}/samples`);
    for (const note of e.notes) console.log(note);
  }
  const failed = [...teacher.failed, ...chains.failed];
  if (failed.length > 0) {
    console.error(`${failed.length} cell(s) failed (rerun to retry): ${failed.join(" ")}`);
  }
  return failed.length;
}

if (import.meta.main) {
  await runCommand(REPRODUCE_COMMAND, async (a) => {
    if ((await reproduceCommand(a)) > 0) Deno.exit(1);
  });
}
