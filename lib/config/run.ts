/**
 * The schema of run configs (`deno task train --config`, `configs/mnist_*.json`): a teacher
 * (diffusion UNet) or a classifier run. Objects are strict (an unknown field is an error that
 * names its path), numbers must be JSON numbers in range. The TypeScript types are inferred
 * from the schema, so the two cannot drift apart; the JSON Schema shipped in
 * `configs/schema/run.schema.json` is generated from it ({@link runConfigJsonSchema}).
 * @module
 */
import { z } from "zod";
import type { OptimizerConfig } from "../train/optim.ts";
import { UNET_PRESETS, type UNetConfig } from "../models/unet.ts";
import type { ClassifierConfig } from "../models/classifier.ts";
import type { ScheduleName } from "../diffusion/schedule.ts";
import { DIFFUSION_LOSS_KINDS, type DiffusionLossKind } from "../diffusion/weighting.ts";
import type { Parameterization } from "../diffusion/denoiser.ts";
import type { FlipMode } from "../data/batches.ts";
import { parseWith } from "./parse.ts";
import {
  int,
  optimizerFields,
  type SameType,
  schemaRefField,
  unit,
  type WithoutRef,
} from "./fields.ts";

/** Fields shared by every run config. */
export interface BaseRunConfig {
  /** Seed of the run (RNG of noise and timesteps; data order uses `seed + 1`). */
  seed: number;
  /**
   * Data set: "mnist" (shipped; `nTest` digits are held out with `splitSeed`) or "cifar10"
   * (the user's binary files: `path` is a directory with `data_batch_*.bin` for training and
   * `test_batch.bin` for testing, see lib/data/cifar10.ts).
   */
  data:
    | { name: "mnist"; nTest?: number; splitSeed?: number; flip?: FlipMode }
    | { name: "cifar10"; path: string; flip?: FlipMode };
  /** Optimiser settings; `totalSteps` defaults to `steps`. */
  optimizer: Omit<OptimizerConfig, "totalSteps"> & { totalSteps?: number };
  /** Batch size. */
  batchSize: number;
  /** Number of optimiser steps. */
  steps: number;
  /** Checkpoint period in steps (0: only at the end). */
  checkpointEvery?: number;
  /** Metrics period in steps. */
  logEvery?: number;
  /** Evaluation period in steps (test accuracy, or a PNG sample grid for teachers). */
  evalEvery?: number;
  /**
   * Warm start: a model directory (`model.json` + weights of the same architecture, e.g.
   * `runs/<earlier run>/model`) whose weights initialise the model; the optimiser starts
   * fresh. A later stage of a run is a new config with `initFrom` set to the earlier stage.
   */
  initFrom?: string;
}

/** A diffusion teacher run. */
export interface TeacherRunConfig extends BaseRunConfig {
  /** Discriminator: a diffusion teacher. */
  kind: "teacher";
  /** A preset name of {@link UNET_PRESETS} or a full UNet config (imageSize, ch, ...). */
  model: keyof typeof UNET_PRESETS | UNetConfig;
  /** Optional overrides applied on top of a preset (e.g. {"dropout": 0}). */
  modelOverrides?: Partial<UNetConfig>;
  /**
   * Schedule: name and T (the reference: cosine, indices 0..T); optional `timeScale` s
   * (cosine only, default 1): the table gets T * s + 1 entries and training draws t in 0..T
   * and reads table and network at t * s, as the reference trainer's `time_scale`.
   */
  schedule: { name: ScheduleName; T: number; timeScale?: number };
  /** What the network predicts (default "x0", the reference). */
  parameterization?: Parameterization;
  /** Loss weighting (default "both"). */
  loss?: DiffusionLossKind;
  /** EMA decay of the weights (default 0.999). */
  emaDecay?: number;
  /** DDIM steps of the sample grids (default: min(T, 32)). */
  sampleSteps?: number;
}

/** A classifier run (features for cFID and the distillation losses). */
export interface ClassifierRunConfig extends BaseRunConfig {
  /** Discriminator: a classifier. */
  kind: "classifier";
  /** The classifier's architecture. */
  model: ClassifierConfig;
}

/** Any run config. */
export type RunConfig = TeacherRunConfig | ClassifierRunConfig;

const runOptimizerSchema = z.strictObject({
  ...optimizerFields,
  totalSteps: int(1).optional().describe("end of the cosine decay; default the run's steps"),
});

const parameterizationSchema = z.enum(["x0", "eps", "v"]);

/** A full UNet config (`UNetConfig` of lib/models/unet.ts). */
const unetConfigSchema = z.strictObject({
  imageSize: int(1).describe("height = width in pixels, divisible by 2^(levels-1)"),
  inChannels: int(1),
  outChannels: int(1).optional(),
  ch: int(2).describe("base width (even)"),
  chMult: z.array(int(1)).min(1).describe("width multiplier per level"),
  numResBlocks: int(1),
  attnResolutions: z.array(int(1)).describe("resolutions with attention, e.g. [16]"),
  dropout: unit(),
  numClasses: int(1).optional(),
  minGroupChannels: int(1).optional(),
  parameterization: parameterizationSchema.optional(),
});

/** A classifier config (`ClassifierConfig` of lib/models/classifier.ts). */
const classifierConfigSchema = z.strictObject({
  imageSize: int(8).multipleOf(8).describe("height = width in pixels, divisible by 8"),
  inChannels: int(1),
  numClasses: int(2),
  width: int(1).optional().describe("base width, default 16"),
  blocksPerStage: int(1).optional().describe("residual blocks per stage, default 1"),
});

const flipSchema = z.enum(["none", "random-horizontal"]);

const baseFields = {
  $schema: schemaRefField.optional(),
  seed: z.int().describe("seed of everything random in the run"),
  data: z.discriminatedUnion("name", [
    z.strictObject({
      name: z.literal("mnist"),
      nTest: int(1).optional().describe("held-out digits, default 1000"),
      splitSeed: z.int().optional().describe("seed of the train/test split, default 0"),
      flip: flipSchema.optional(),
    }),
    z.strictObject({
      name: z.literal("cifar10"),
      path: z.string().min(1).describe(
        "directory with the CIFAR-10 binary files data_batch_*.bin and test_batch.bin",
      ),
      flip: flipSchema.optional(),
    }),
  ], { error: 'expected "mnist" or "cifar10"' }),
  optimizer: runOptimizerSchema,
  batchSize: int(1),
  steps: int(1).describe("optimiser steps"),
  checkpointEvery: int(0).optional().describe("checkpoint period in steps (0: only at the end)"),
  logEvery: int(1).optional().describe("metrics period in steps"),
  evalEvery: int(0).optional().describe("evaluation period in steps (0: never)"),
  initFrom: z.string().min(1).optional().describe(
    "model directory (same architecture) whose weights initialise the model",
  ),
};

const teacherSchema = z.strictObject({
  kind: z.literal("teacher"),
  ...baseFields,
  model: z.union([
    z.enum(Object.keys(UNET_PRESETS) as [keyof typeof UNET_PRESETS]),
    unetConfigSchema,
  ]).describe("a UNet preset name or a full UNet config"),
  modelOverrides: unetConfigSchema.partial().optional().describe("overrides of a preset"),
  schedule: z.strictObject({
    name: z.enum(["cosine", "linear", "scaled-linear", "sigmoid"]),
    T: int(2).describe("largest schedule index (the reference: cosine, 0..T)"),
    timeScale: int(1).optional().describe(
      "cosine only: table of T * timeScale + 1 entries, trained at t * timeScale (default 1)",
    ),
  }),
  parameterization: parameterizationSchema.optional().describe(
    'what the net predicts, default "x0"',
  ),
  loss: z.enum(DIFFUSION_LOSS_KINDS as [DiffusionLossKind]).optional().describe(
    'loss weighting, default "both"',
  ),
  emaDecay: unit().optional().describe("EMA decay of the weights in [0, 1), default 0.999"),
  sampleSteps: int(1).optional().describe("DDIM steps of the sample grids, default min(T, 32)"),
});

const classifierSchema = z.strictObject({
  kind: z.literal("classifier"),
  ...baseFields,
  model: classifierConfigSchema,
});

const runSchema = z.discriminatedUnion("kind", [teacherSchema, classifierSchema]);

/** Schema of a teacher run config (strict objects). */
export const teacherRunConfigSchema: z.ZodType<TeacherRunConfig> = teacherSchema;
/** Schema of a classifier run config (strict objects). */
export const classifierRunConfigSchema: z.ZodType<ClassifierRunConfig> = classifierSchema;
/** Schema of any run config: a teacher or a classifier run, told apart by `kind`. */
export const runConfigSchema: z.ZodType<RunConfig> = runSchema;

// The schemas' types must equal the hand-written types (a compile-time check).
const _typesAgree: [
  SameType<WithoutRef<z.infer<typeof teacherSchema>>, TeacherRunConfig>,
  SameType<WithoutRef<z.infer<typeof classifierSchema>>, ClassifierRunConfig>,
  SameType<z.infer<typeof unetConfigSchema>, UNetConfig>,
  SameType<z.infer<typeof classifierConfigSchema>, ClassifierConfig>,
] = [true, true, true, true];

/**
 * Validates a parsed run config (e.g. the JSON of a config file); throws a `ConfigError`
 * `<source>: <field path>: <expected>` naming every bad or unknown field. A `$schema` field is
 * dropped from the result.
 * @param source the file the object came from, named in the error.
 */
export function parseRunConfig(value: unknown, source: string): RunConfig {
  const { $schema: _, ...config } = parseWith(runSchema, value, source);
  return config;
}

/** The JSON Schema (draft 2020-12) of run config files, generated from {@link runConfigSchema}. */
export function runConfigJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(runSchema) as Record<string, unknown>;
}
