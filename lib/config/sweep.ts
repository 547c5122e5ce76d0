/**
 * The sweep spec (a JSON file in `sweeps/`, or the same object from a notebook) and the
 * configs of the cells it expands to, as zod schemas. Unknown fields are errors everywhere:
 * an override of a path that no cell config has fails validation naming that path.
 *
 * Cell kinds (the `kind` of `base`):
 * - `"distill-round"`: one distillation round from a saved student (e.g. the shipped 2-step PD
 *   student `data/student_2step`) with `method` and `rdd` overrides, then cFID of the new
 *   student at `evalSteps`;
 * - `"eval"`: a trained model (default the teacher) sampled with `sampler` at `steps` steps;
 * - `"distill"`: a progressive-distillation chain as `deno task distill` runs it.
 * @module
 */
import { z } from "zod";

const int = (min: number) => z.number().int().min(min);
const rddSchema = z.strictObject({
  rcfdWeight: z.number().min(0),
  rcfdTau: z.number().positive(),
  isp2pWeight: z.number().min(0),
  isp2pTau: z.number().positive(),
  isp2pChunkSize: int(0),
  mp2pWeight: z.number().min(0),
  mp2pTau: z.number().positive(),
  mp2pKdTau: z.number().positive(),
  queueSize: int(1),
  contrastSize: int(1),
  enqueuePerStep: int(1),
  embeddingLayout: z.enum(["per-pixel", "reference-reshape"]),
  pdMseWeight: z.number().min(0),
  pdLossKind: z.enum(["x", "eps", "both"]),
  rkdDistanceWeight: z.number().min(0),
  rkdAngleWeight: z.number().min(0),
}).partial();

const optimizerSchema = z.strictObject({
  kind: z.enum(["adam", "adamw"]),
  lr: z.number().positive(),
  beta1: z.number().min(0).max(1),
  beta2: z.number().min(0).max(1),
  eps: z.number().positive(),
  weightDecay: z.number().min(0),
  warmupSteps: int(0),
  cosineDecay: z.boolean(),
  minLr: z.number().min(0),
  gradClipNorm: z.number().positive(),
}).partial();

const method = z.enum(["pd", "rcfd", "rdd"]);
/** Seed of the evaluation noise; null = the cell's seed. */
const evalSeed = z.union([int(0), z.null()]);

/** Config of a `"distill-round"` cell (defaults filled in). */
export const distillRoundCellSchema = z.strictObject({
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

/** Config of an `"eval"` cell. */
export const evalCellSchema = z.strictObject({
  kind: z.literal("eval"),
  teacherRun: z.string().min(1),
  /** Model directory; default `<teacherRun>/model`. */
  model: z.string().min(1).optional(),
  classifier: z.string().min(1),
  referenceStats: z.string().min(1),
  /** Sampler (strided DDIM; DPM-Solver++ is not wired into cells yet). */
  sampler: z.enum(["ddim"]),
  /** Sampling steps K (divides the teacher's T). */
  steps: int(1),
  evalSamples: int(2),
  evalSeed,
});

/** Config of a `"distill"` cell: the settings of `deno task distill` plus its input runs. */
export const distillCellSchema = z.strictObject({
  kind: z.literal("distill"),
  teacherRun: z.string().min(1),
  classifierRun: z.union([z.string().min(1), z.null()]),
  method,
  fromSteps: int(2).optional(),
  toSteps: int(1),
  finalRounds: int(0),
  stepsPerRound: int(1),
  doubleShortRounds: z.boolean(),
  batchSize: int(1),
  optimizer: optimizerSchema,
  rdd: rddSchema,
  evalSamples: int(0),
  evalSeed,
  evalMaxSteps: int(1),
  checkpointEvery: int(0),
  logEvery: int(1),
});

/** Any cell config, by `kind`. */
export const cellConfigSchema = z.discriminatedUnion("kind", [
  distillRoundCellSchema,
  evalCellSchema,
  distillCellSchema,
]);

/** A validated cell config. */
export type CellConfig = z.output<typeof cellConfigSchema>;
/** Config of a `"distill-round"` cell. */
export type DistillRoundCellConfig = z.output<typeof distillRoundCellSchema>;
/** Config of an `"eval"` cell. */
export type EvalCellConfig = z.output<typeof evalCellSchema>;
/** Config of a `"distill"` cell. */
export type DistillCellConfig = z.output<typeof distillCellSchema>;

/** Dotted path -> value (e.g. `{"rdd.isp2pWeight": 0}`). */
const overridesSchema = z.record(
  z.string().regex(/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/),
  z.unknown(),
);

/** Metric names a cell can report (`cfid@K` / `msPerImage@K` for K-step evaluations). */
const metricName = z.string().regex(
  /^(cfid|nfe|msPerImage|finalLoss)(@[1-9][0-9]*)?$/,
  'a metric: "cfid", "nfe", "msPerImage", "finalLoss", or one of them with "@K"',
);

/** Settings of the `slurm` executor. */
export const slurmSchema = z.strictObject({
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

/** The sweep spec. */
export const sweepSpecSchema = z.strictObject({
  /** Name of the sweep (default output directory `runs/sweeps/<name>`). */
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '_', '.', '-'"),
  description: z.string().optional(),
  /** Base cell config: `kind` plus fields (defaults of the kind fill the rest). */
  base: z.looseObject({ kind: z.enum(["distill-round", "eval", "distill"]) }),
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

/** A sweep spec as written (before expansion). */
export type SweepSpec = z.input<typeof sweepSpecSchema>;
/** Settings of the `slurm` executor. */
export type SlurmSettings = z.output<typeof slurmSchema>;
