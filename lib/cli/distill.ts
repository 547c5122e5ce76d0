/**
 * `deno task distill -- --teacher runs/<teacher run> --classifier runs/<classifier run>
 *  --method pd|rcfd|rdd --from-steps N --to-steps K [--final-rounds R] [--steps-per-round S]
 *  [--batch B] [--lr X] [--seed S] [--run runs/NAME] [--resume] [--eval-samples n]
 *  [--config configs/distill_mnist.json] [--backend cpu|webgpu|wasm|auto]`
 *
 * Progressive distillation of a teacher run (`deno task train`) from N to K sampling steps:
 * earlier rounds use plain PD, the last R rounds use `--method`. Writes a run directory:
 * config.json (the resolved settings), round_N_to_M/ per round (metrics.jsonl, checkpoints/,
 * model/ = the student, round.json, eval.json), samples/ (PNG grids of each student and of
 * the teacher's DDIM at the same step counts), and results.json with the evaluation table
 * (cFID of each student and of the teacher's strided DDIM at each step count; same n and
 * seed everywhere), which is also printed. Rerunning with `--resume` skips finished rounds
 * and continues an unfinished one from its latest checkpoint.
 *
 * Precedence: command-line flags > `--config` file > built-in defaults. The teacher run gives
 * the schedule (one table, cosine with maxIndex T), the parameterisation and the data split.
 * @module
 */
import { parseArgs } from "node:util";
import type * as tf from "@tensorflow/tfjs";
import { type BackendPreference, describeBackend, selectBackend } from "../tfjs/backend.ts";
import {
  loadRunData,
  readRunConfig,
  type TeacherRunConfig,
  teacherSchedule,
} from "../train/run_config.ts";
import { loadLayersModelFiles, writeFileAtomic } from "../train/checkpoint.ts";
import type { OptimizerConfig } from "../train/optim.ts";
import "../models/unet.ts";
import type { RddConfig, RddPresetName } from "../distill/rdd_objective.ts";
import {
  DISTILL_OPTIMIZER,
  progressiveDistill,
  referenceRoundSteps,
  type RoundInfo,
} from "../distill/rounds.ts";
import { evaluateStudent, type EvaluationRow, referenceStats } from "../eval/cfid.ts";
import type { GaussianStats } from "../eval/frechet.ts";
import { generateImages } from "../eval/generate.ts";
import { imageGrid, writePng } from "../data/png.ts";
import type { DiscreteSchedule } from "../diffusion/schedule.ts";
import type { Parameterization } from "../diffusion/denoiser.ts";

/** Settings of a distillation run (the JSON of `--config`, and config.json of the run). */
export interface DistillRunConfig {
  kind: "distill";
  /** Method of the last `finalRounds` rounds. */
  method: RddPresetName;
  /** Steps of the starting teacher; default the teacher's T. */
  fromSteps?: number;
  /** Steps of the final student. */
  toSteps: number;
  /** Rounds (counted from the end) that use `method`; the others use "pd". Default 1. */
  finalRounds: number;
  /** Optimiser steps per round. */
  stepsPerRound: number;
  /** The reference's rule: students with 2 or 1 steps train twice as long. Default true. */
  doubleShortRounds: boolean;
  /** Batch size. */
  batchSize: number;
  /** Optimiser (Adam; lr, clipping, cosine decay); totalSteps is set per round. */
  optimizer: Partial<OptimizerConfig>;
  /** Loss overrides for the `method` rounds (see RddConfig). */
  rdd: Partial<RddConfig>;
  /** Seed of the chain (round r uses seed + r). */
  seed: number;
  /** cFID sample size n per row (0 = no evaluation). */
  evalSamples: number;
  /** Seed of the evaluation noise (the same z_T for every model). */
  evalSeed: number;
  /** Evaluate only step counts up to this (the paper's table: 1, 2, 4, 8). Default 8. */
  evalMaxSteps: number;
  /** Checkpoint period in steps within a round. */
  checkpointEvery: number;
  /** Metrics period in steps. */
  logEvery: number;
}

/** Built-in defaults (small-scale MNIST settings; the reference's lr is 5e-5). */
export const DISTILL_DEFAULTS: DistillRunConfig = {
  kind: "distill",
  method: "rdd",
  toSteps: 1,
  finalRounds: 1,
  stepsPerRound: 1000,
  doubleShortRounds: true,
  batchSize: 32,
  optimizer: { ...DISTILL_OPTIMIZER, lr: 1e-4 },
  rdd: {},
  seed: 0,
  evalSamples: 1000,
  evalSeed: 12345,
  evalMaxSteps: 8,
  checkpointEvery: 250,
  logEvery: 25,
};

/** Parsed command line of `deno task distill`. */
export interface DistillArgs {
  /** Teacher run directory (config.json + model/). */
  teacher: string;
  /** Classifier run directory (model/); needed for rcfd/rdd and for cFID. */
  classifier?: string;
  /** Output run directory. */
  run: string;
  /** Continue an existing run directory. */
  resume: boolean;
  /** Backend preference. */
  backend?: BackendPreference;
  /** The resolved settings. */
  config: DistillRunConfig;
}

function intFlag(v: string | undefined, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new RangeError(`--${name} must be an integer >= ${min}, got ${v}`);
  }
  return n;
}

/**
 * Parses the command line (see the module doc) and merges flags over the `--config` file
 * over {@link DISTILL_DEFAULTS}. Throws RangeError naming a bad flag.
 */
export async function parseDistillArgs(args: string[]): Promise<DistillArgs> {
  const { values: v } = parseArgs({
    args,
    options: {
      teacher: { type: "string" },
      classifier: { type: "string" },
      method: { type: "string" },
      "from-steps": { type: "string" },
      "to-steps": { type: "string" },
      "final-rounds": { type: "string" },
      "steps-per-round": { type: "string" },
      batch: { type: "string" },
      lr: { type: "string" },
      seed: { type: "string" },
      run: { type: "string" },
      resume: { type: "boolean", default: false },
      "eval-samples": { type: "string" },
      config: { type: "string" },
      backend: { type: "string" },
    },
  });
  if (!v.teacher) throw new RangeError("--teacher <teacher run directory> is required");
  const file: Partial<DistillRunConfig> = v.config
    ? JSON.parse(await Deno.readTextFile(v.config))
    : {};
  const c: DistillRunConfig = {
    ...DISTILL_DEFAULTS,
    ...file,
    optimizer: { ...DISTILL_DEFAULTS.optimizer, ...file.optimizer },
    rdd: { ...file.rdd },
  };
  if (v.method !== undefined) c.method = v.method as RddPresetName;
  if (!["pd", "rcfd", "rdd"].includes(c.method)) {
    throw new RangeError(`--method must be pd, rcfd or rdd, got ${c.method}`);
  }
  c.fromSteps = intFlag(v["from-steps"], "from-steps", 2) ?? c.fromSteps;
  c.toSteps = intFlag(v["to-steps"], "to-steps", 1) ?? c.toSteps;
  c.finalRounds = intFlag(v["final-rounds"], "final-rounds", 0) ?? c.finalRounds;
  c.stepsPerRound = intFlag(v["steps-per-round"], "steps-per-round", 1) ?? c.stepsPerRound;
  c.batchSize = intFlag(v.batch, "batch", 1) ?? c.batchSize;
  c.seed = intFlag(v.seed, "seed", 0) ?? c.seed;
  c.evalSamples = intFlag(v["eval-samples"], "eval-samples", 0) ?? c.evalSamples;
  if (c.evalSamples === 1) throw new RangeError("--eval-samples must be 0 or >= 2");
  if (v.lr !== undefined) {
    const lr = Number(v.lr);
    if (!(lr > 0)) throw new RangeError(`--lr must be a number > 0, got ${v.lr}`);
    c.optimizer = { ...c.optimizer, lr };
  }
  if (c.method !== "pd" && c.finalRounds > 0 && !v.classifier) {
    throw new RangeError(`--classifier is required for --method ${c.method}`);
  }
  const name = v.run ?? `runs/distill_${c.method}_${c.fromSteps ?? "T"}_to_${c.toSteps}`;
  return {
    teacher: v.teacher,
    classifier: v.classifier,
    run: name,
    resume: v.resume,
    backend: v.backend as BackendPreference | undefined,
    config: c,
  };
}

/** One printed/saved row of the evaluation table. */
export interface ResultRow extends EvaluationRow {
  /** "teacher DDIM" or "student <method> N->M". */
  model: string;
}

/** What results.json holds. */
export interface DistillResults {
  config: DistillRunConfig;
  teacher: string;
  classifier: string | null;
  backend: string;
  rounds: { teacherSteps: number; studentSteps: number; method: string; dir: string }[];
  table: ResultRow[];
}

/** Formats the evaluation table as aligned text. */
export function formatTable(rows: ResultRow[]): string {
  const head = ["model", "steps", "NFE", "cFID", "n", "ms/img"];
  const body = rows.map((r) => [
    r.model,
    String(r.steps),
    String(r.nfe),
    r.cfid.toFixed(3),
    String(r.n),
    r.msPerImage.toFixed(1),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  return [head, ...body].map((r) => r.map((x, i) => x.padEnd(w[i])).join("  ")).join("\n");
}

interface EvalContext {
  schedule: DiscreteSchedule;
  parameterization: Parameterization;
  classifier: tf.LayersModel | null;
  ref: GaussianStats | null;
  config: DistillRunConfig;
  runDir: string;
}

/** A 64-image sample grid of `model` at `steps` (fixed seed) into samples/`name`.png. */
async function sampleGrid(ctx: EvalContext, model: tf.LayersModel, steps: number, name: string) {
  const shape = model.inputs[0].shape.slice(1) as [number, number, number];
  const g = await generateImages(model, {
    schedule: ctx.schedule,
    parameterization: ctx.parameterization,
    steps,
    n: 64,
    imageShape: shape,
    seed: "samples",
  });
  await writePng(`${ctx.runDir}/samples/${name}.png`, imageGrid(g.images, { cols: 8 }));
}

async function evaluate(
  ctx: EvalContext,
  model: tf.LayersModel,
  steps: number,
  label: string,
): Promise<ResultRow | null> {
  if (!ctx.classifier || !ctx.ref || steps > ctx.config.evalMaxSteps) return null;
  const row = await evaluateStudent({
    model,
    steps,
    schedule: ctx.schedule,
    parameterization: ctx.parameterization,
    n: ctx.config.evalSamples,
    seed: ctx.config.evalSeed,
    classifier: ctx.classifier,
    refStats: ctx.ref,
  });
  console.log(`${label} at ${steps} steps: cFID ${row.cfid.toFixed(3)} (n=${row.n})`);
  return { model: label, ...row };
}

/** Runs a distillation as parsed by {@link parseDistillArgs}; returns what results.json holds. */
export async function runDistill(a: DistillArgs): Promise<DistillResults> {
  const tcfg = await readRunConfig(`${a.teacher}/config.json`);
  if (tcfg.kind !== "teacher") {
    throw new RangeError(`--teacher must be a teacher run, ${a.teacher} is a ${tcfg.kind} run`);
  }
  const c: DistillRunConfig = { ...a.config, fromSteps: a.config.fromSteps ?? tcfg.schedule.T };
  const saved = {
    ...c,
    teacherRun: a.teacher,
    classifierRun: a.classifier ?? null,
  };
  const configPath = `${a.run}/config.json`;
  let existing: string | null = null;
  try {
    existing = await Deno.readTextFile(configPath);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (existing !== null) {
    if (!a.resume) {
      throw new Error(`${a.run} already holds a run: pass --resume to continue it, or use --run`);
    }
    if (existing !== JSON.stringify(saved, null, 2)) {
      throw new Error(
        `${configPath} differs from the current settings:\n  saved: ${existing}\n  now: ${
          JSON.stringify(saved)
        }`,
      );
    }
  }
  await Deno.mkdir(`${a.run}/samples`, { recursive: true });
  await writeFileAtomic(configPath, JSON.stringify(saved, null, 2));

  const schedule = teacherSchedule(tcfg as TeacherRunConfig);
  const parameterization = (tcfg as TeacherRunConfig).parameterization ?? "x0";
  const { train, test } = await loadRunData(tcfg);
  const teacher = await loadLayersModelFiles(`${a.teacher}/model`);
  const classifier = a.classifier ? await loadLayersModelFiles(`${a.classifier}/model`) : null;
  const ref = classifier && c.evalSamples > 0
    ? await referenceStats(classifier, test, `${a.run}/cfid_reference.json`)
    : null;
  const ctx: EvalContext = {
    schedule,
    parameterization,
    classifier,
    ref,
    config: c,
    runDir: a.run,
  };
  const table: ResultRow[] = [];
  const rounds = await progressiveDistill({
    teacher,
    schedule,
    parameterization,
    fromSteps: c.fromSteps!,
    toSteps: c.toSteps,
    finalMethod: c.method,
    finalRounds: c.finalRounds,
    rdd: c.rdd,
    classifier: classifier ?? undefined,
    images: train,
    batchSize: c.batchSize,
    steps: c.doubleShortRounds ? referenceRoundSteps(c.stepsPerRound) : c.stepsPerRound,
    optimizer: c.optimizer,
    seed: c.seed,
    runDir: a.run,
    checkpointEvery: c.checkpointEvery,
    logEvery: c.logEvery,
    onRound: async (r: RoundInfo) => {
      const label = `student ${r.method} ${r.teacherSteps}->${r.studentSteps}`;
      await sampleGrid(
        ctx,
        r.student,
        r.studentSteps,
        `round_${r.teacherSteps}_to_${r.studentSteps}`,
      );
      const row = await evaluate(ctx, r.student, r.studentSteps, label);
      if (row) table.push(row);
    },
  });
  for (const r of rounds) {
    await sampleGrid(ctx, teacher, r.studentSteps, `teacher_ddim_${r.studentSteps}`);
    const row = await evaluate(ctx, teacher, r.studentSteps, "teacher DDIM");
    if (row) table.push(row);
  }
  table.sort((x, y) => x.steps - y.steps || x.model.localeCompare(y.model));
  const results: DistillResults = {
    config: c,
    teacher: a.teacher,
    classifier: a.classifier ?? null,
    backend: describeBackend(),
    rounds: rounds.map(({ teacherSteps, studentSteps, method, dir }) => ({
      teacherSteps,
      studentSteps,
      method,
      dir,
    })),
    table,
  };
  await writeFileAtomic(`${a.run}/results.json`, JSON.stringify(results, null, 2));
  if (table.length > 0) console.log(formatTable(table));
  rounds[rounds.length - 1].student.dispose();
  teacher.dispose();
  classifier?.dispose();
  return results;
}

if (import.meta.main) {
  let args: DistillArgs;
  try {
    args = await parseDistillArgs(Deno.args);
  } catch (e) {
    console.error(
      `${(e as Error).message}\nusage: deno task distill -- --teacher runs/T ` +
        `--classifier runs/C --method pd|rcfd|rdd --from-steps N --to-steps K [--final-rounds R] ` +
        `[--steps-per-round S] [--batch B] [--lr X] [--seed S] [--run runs/NAME] [--resume] ` +
        `[--eval-samples n] [--config file.json] [--backend cpu|webgpu|wasm|auto]`,
    );
    Deno.exit(2);
  }
  await selectBackend({ prefer: args.backend, log: true });
  await runDistill(args);
  console.log(`run directory: ${args.run}`);
}
