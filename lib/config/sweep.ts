/**
 * The sweep spec (a JSON file in `sweeps/`, or the same object from a notebook) and the
 * configs of the cells it expands to, as zod schemas. Unknown fields are errors everywhere:
 * an override of a path that no cell config has fails validation naming that path.
 *
 * Cell kinds (the `kind` of `base`):
 * - `"distill-round"`: one distillation round from a saved student (e.g. the shipped 2-step PD
 *   student `data/student_2step`) with `method` and `rdd` overrides, then cFID of the new
 *   student at `evalSteps`;
 * - `"eval"`: a trained model (default the teacher) sampled with `sampler` ("ddim" or
 *   "dpm-solver++") on `path` ("stride" or "logsnr") at `steps` steps;
 * - `"distill"`: a progressive-distillation chain as `deno task distill` runs it;
 * - `"train"`: a teacher or classifier training run as `deno task train` runs it (`run` is the
 *   run config, inline or a config file path; overrides reach into it as `run.optimizer.lr`),
 *   then the classifier's test accuracy or the teacher's cFID at `evalSteps` DDIM steps.
 * @module
 */
import { z } from "zod";
import type { RddConfig } from "../distill/rdd_objective.ts";
import type { OptimizerConfig } from "../train/optim.ts";
import { type DistillRunConfig, parseDistillConfig, parseDistillConfigFile } from "./distill.ts";
import { int, optimizerFields } from "./fields.ts";
import { parseWith } from "./parse.ts";
import { ConfigError } from "./errors.ts";
import { parseRunConfig, type RunConfig } from "./run.ts";

/** Optimiser overrides of a cell (on top of the distillation defaults). */
export type CellOptimizer = Partial<Omit<OptimizerConfig, "totalSteps">>;

/** Config of a `"distill-round"` cell (defaults filled in). */
export interface DistillRoundCellConfig {
  /** Discriminator. */
  kind: "distill-round";
  /** Teacher run directory: its config.json gives schedule, parameterisation and data. */
  teacherRun: string;
  /** Model directory of the round's teacher (model.json + weights); the student starts as a copy. */
  student: string;
  /** Sampling steps N of `student`; the new student gets N/2. */
  teacherSteps: number;
  /** Classifier model directory (cFID and the classifier terms). */
  classifier: string;
  /** Cached cFID reference statistics (written when missing). */
  referenceStats: string;
  /** Loss preset of the round. */
  method: "pd" | "rcfd" | "rdd";
  /** Loss overrides of the preset. */
  rdd: Partial<RddConfig>;
  /** Optimiser overrides. */
  optimizer: CellOptimizer;
  /** Optimiser steps. */
  steps: number;
  /** Batch size. */
  batchSize: number;
  /** Checkpoint period in steps (0: only at the end). */
  checkpointEvery: number;
  /** Metrics period in steps. */
  logEvery: number;
  /** cFID sample size n. */
  evalSamples: number;
  /** Seed of the evaluation noise; null = the cell's seed. */
  evalSeed: number | null;
  /** Step counts at which the new student is evaluated (default [N/2]). */
  evalSteps?: number[];
}

/** Config of an `"eval"` cell: a trained model sampled at `steps` steps. */
export interface EvalCellConfig {
  /** Discriminator. */
  kind: "eval";
  /** Teacher run directory (schedule, parameterisation, data). */
  teacherRun: string;
  /** Model directory; default `<teacherRun>/model`. */
  model?: string;
  /** Classifier model directory. */
  classifier: string;
  /** Cached cFID reference statistics. */
  referenceStats: string;
  /** Sampler: deterministic DDIM or DPM-Solver++(2M). */
  sampler: "ddim" | "dpm-solver++";
  /**
   * Timestep path: "stride" (default; the reference's strided path, K divides T) or "logsnr"
   * (`logSnrTimesteps`: K steps uniform in logSNR, landing on index 0).
   */
  path?: "stride" | "logsnr";
  /** Sampling steps K. */
  steps: number;
  /** cFID sample size n. */
  evalSamples: number;
  /** Seed of the evaluation noise; null = the cell's seed. */
  evalSeed: number | null;
}

/**
 * Config of a `"distill"` cell: the settings of `deno task distill` (without `seed`, which is
 * the cell's) plus its input runs.
 */
export type DistillCellConfig = Omit<DistillRunConfig, "kind" | "seed" | "evalSeed"> & {
  /** Discriminator. */
  kind: "distill";
  /** Teacher run directory. */
  teacherRun: string;
  /** Classifier run directory (needed for rcfd/rdd and cFID), or null. */
  classifierRun: string | null;
  /** Seed of the evaluation noise; null = the cell's seed. */
  evalSeed: number | null;
};

/**
 * Config of a `"train"` cell: a run config of `deno task train` (without `seed`, which is the
 * cell's) and how the trained model is scored.
 */
export interface TrainCellConfig {
  /** Discriminator. */
  kind: "train";
  /** The teacher or classifier run config (a file path in a spec is read at expansion). */
  run: Omit<RunConfig, "seed">;
  /** Classifier model directory: a teacher's cFID (classifier runs score test accuracy). */
  classifier: string;
  /** Cached cFID reference statistics. */
  referenceStats: string;
  /** DDIM step counts of a teacher's cFID. */
  evalSteps: number[];
  /** cFID sample size n. */
  evalSamples: number;
  /** Seed of the evaluation noise; null = the cell's seed. */
  evalSeed: number | null;
}

/** Any cell config, by `kind`. */
export type CellConfig =
  | DistillRoundCellConfig
  | EvalCellConfig
  | DistillCellConfig
  | TrainCellConfig;

/** Settings of the `slurm` executor. */
export interface SlurmSettings {
  /** Partition (`--partition`). */
  partition?: string;
  /** Time limit per array task, sbatch syntax (e.g. "02:00:00"). */
  time?: string;
  /** CPUs per array task (also its BLAS threads). */
  cpusPerTask?: number;
  /** GPUs per array task. */
  gpusPerTask?: number;
  /** Extra lines after `#SBATCH ` (e.g. "--account=lab"). */
  extra?: string[];
  /** Maximum array tasks running at once (the `%P` of `--array`). */
  parallel?: number;
}

/** The sweep spec (a JSON file in `sweeps/`, or the same object from a notebook). */
export interface SweepSpec {
  /** Name of the sweep (default output directory `runs/sweeps/<name>`). */
  name: string;
  /** Free text. */
  description?: string;
  /** Base cell config: `kind` plus fields (the kind's defaults fill the rest). */
  base: { kind: CellConfig["kind"]; [field: string]: unknown };
  /** Named variants, each a set of dotted-path overrides of `base`. */
  variants?: { name: string; overrides: Record<string, unknown> }[];
  /** Grid axes: dotted path -> values; the cartesian product is crossed with the variants. */
  grid?: Record<string, unknown[]>;
  /** Seeds of every variant. */
  seeds: number[];
  /** Metrics to collect ("cfid", "nfe", "msPerImage", "finalLoss", or "name@K"). */
  metrics: string[];
  /** Variant the paired differences are taken against. */
  baseline?: string;
  /** `--fast`: overrides applied to every cell, and optionally fewer seeds. */
  fast?: { overrides: Record<string, unknown>; seeds?: number[] };
  /** Settings of the `slurm` executor. */
  slurm?: SlurmSettings;
}

// RddConfig fields are checked by the distill config schema (lib/config/distill.ts).
const rddSchema = z.record(z.string(), z.unknown());
const optimizerSchema = z.strictObject(optimizerFields).partial();

const method = z.enum(["pd", "rcfd", "rdd"]);
/** Seed of the evaluation noise; null = the cell's seed. */
const evalSeed = z.union([int(0), z.null()]);

const distillRoundCellSchema = z.strictObject({
  kind: z.literal("distill-round"),
  /** Teacher run directory: its config.json gives schedule, parameterisation and data. */
  teacherRun: z.string().min(1),
  /** Model directory of the round's teacher (model.json + weights); the student starts as a copy. */
  student: z.string().min(1),
  /** Sampling steps of `student` (N); the new student gets N/2. */
  teacherSteps: int(2),
  /** Classifier model directory (cFID and the classifier terms). */
  classifier: z.string().min(1),
  /** Cached cFID reference statistics (written when missing). */
  referenceStats: z.string().min(1),
  method,
  rdd: rddSchema,
  optimizer: optimizerSchema,
  steps: int(1),
  batchSize: int(1),
  checkpointEvery: int(0),
  logEvery: int(1),
  evalSamples: int(2),
  evalSeed,
  /** Step counts at which the new student is evaluated (default [N/2]). */
  evalSteps: z.array(int(1)).min(1).optional(),
});

const evalCellSchema = z.strictObject({
  kind: z.literal("eval"),
  teacherRun: z.string().min(1),
  /** Model directory; default `<teacherRun>/model`. */
  model: z.string().min(1).optional(),
  classifier: z.string().min(1),
  referenceStats: z.string().min(1),
  /** Sampler: deterministic DDIM or DPM-Solver++(2M). */
  sampler: z.enum(["ddim", "dpm-solver++"]),
  /** Timestep path (default "stride", where K must divide the teacher's T). */
  path: z.enum(["stride", "logsnr"]).optional(),
  /** Sampling steps K. */
  steps: int(1),
  evalSamples: int(2),
  evalSeed,
});

// The rest of a distill cell is checked by the distill config schema.
const distillCellSchema = z.looseObject({
  kind: z.literal("distill"),
  teacherRun: z.string().min(1),
  classifierRun: z.union([z.string().min(1), z.null()]),
  evalSeed,
});

// `run` is checked by the run config schema (with the cell's seed).
const trainCellSchema = z.strictObject({
  kind: z.literal("train"),
  run: z.looseObject({ kind: z.enum(["teacher", "classifier"]) }),
  classifier: z.string().min(1),
  referenceStats: z.string().min(1),
  evalSteps: z.array(int(1)).min(1),
  evalSamples: int(2),
  evalSeed,
});

const cellConfigSchema = z.discriminatedUnion("kind", [
  distillRoundCellSchema,
  evalCellSchema,
  distillCellSchema,
  trainCellSchema,
]);

/** Dotted path -> value (e.g. `{"rdd.isp2pWeight": 0}`). */
const overridesSchema = z.record(
  z.string().regex(/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/),
  z.unknown(),
);

/** Metric names a cell can report (`cfid@K` / `msPerImage@K` for K-step evaluations). */
const metricName = z.string().regex(
  /^(cfid|nfe|msPerImage|finalLoss|accuracy)(@[1-9][0-9]*)?$/,
  'a metric: "cfid", "nfe", "msPerImage", "finalLoss", "accuracy", or one of them with "@K"',
);

const slurmSchema = z.strictObject({
  partition: z.string().min(1).optional(),
  /** Time limit per array task, sbatch syntax (e.g. "02:00:00"). */
  time: z.string().min(1).optional(),
  cpusPerTask: int(1).optional(),
  gpusPerTask: int(0).optional(),
  /** Extra lines after `#SBATCH ` (e.g. "--account=lab"). */
  extra: z.array(z.string()).optional(),
  /** Maximum array tasks running at once (the `%P` of `--array`). */
  parallel: int(1).optional(),
});

/** Schema of the sweep spec (strict: unknown fields are errors). */
export const sweepSpecSchema: z.ZodType<SweepSpec> = z.strictObject({
  /** Name of the sweep (default output directory `runs/sweeps/<name>`). */
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '_', '.', '-'"),
  description: z.string().optional(),
  /** Base cell config: `kind` plus fields (defaults of the kind fill the rest). */
  base: z.looseObject({ kind: z.enum(["distill-round", "eval", "distill", "train"]) }),
  /** Named variants, each a set of dotted-path overrides of `base`. */
  variants: z.array(z.strictObject({ name: z.string().min(1), overrides: overridesSchema }))
    .min(1, "at least one variant")
    .optional(),
  /** Grid axes: dotted path -> values; the cartesian product is crossed with the variants. */
  grid: z.record(z.string(), z.array(z.unknown()).min(1, "at least one value")).optional(),
  /** Seeds of every variant. */
  seeds: z.array(int(0)).min(1, "at least one seed"),
  metrics: z.array(metricName).min(1, "at least one metric"),
  /** Variant the paired differences are taken against. */
  baseline: z.string().optional(),
  /** `--fast`: overrides applied to every cell, and optionally fewer seeds. */
  fast: z.strictObject({ overrides: overridesSchema, seeds: z.array(int(0)).min(1).optional() })
    .optional(),
  slurm: slurmSchema.optional(),
});

/**
 * Validates a resolved cell config (unknown fields, including unknown `rdd` and `optimizer`
 * fields, are errors); throws a ConfigError `<source>: <field path>: <expected>`.
 */
export function parseCellConfig(value: unknown, source: string): CellConfig {
  const c = parseWith(cellConfigSchema, value, source);
  if (c.kind === "distill") {
    const { teacherRun: _t, classifierRun: _c, evalSeed: _e, ...rest } = c;
    parseDistillConfig({ ...rest, seed: 0, evalSeed: 0 }, source);
  } else if (c.kind === "distill-round") {
    parseDistillConfigFile({ rdd: c.rdd, optimizer: c.optimizer }, source);
  } else if (c.kind === "train") {
    if ("seed" in c.run) {
      throw new ConfigError(`${source}: run.seed: not allowed (the cell's seed is the run's seed)`);
    }
    const { seed: _, ...run } = parseRunConfig({ ...c.run, seed: 0 }, `${source}: run`);
    return { ...c, run };
  }
  return c as CellConfig;
}
