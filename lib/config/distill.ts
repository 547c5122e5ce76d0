/**
 * The schema of distill configs (`deno task distill --config`, `configs/distill_*.json`, and
 * the `config.json` of a distillation run): strict objects (an unknown field such as
 * `stepsPerRond`, `optimizer.lrr` or `rdd.isp2pWieght` is an error naming its path), numbers in
 * range, `rdd` overrides of the loss config (`RddConfig` of lib/distill/rdd_objective.ts). The
 * TypeScript type is inferred from the schema; `configs/schema/distill.schema.json` is generated
 * from it ({@link distillConfigJsonSchema}).
 * @module
 */
import { z } from "zod";
import { RDD_DEFAULTS, type RddConfig, type RddPresetName } from "../distill/rdd_objective.ts";
import type { OptimizerConfig } from "../train/optim.ts";
import { parseWith } from "./parse.ts";
import { int, optimizerFields, type SameType, schemaRefField, type WithoutRef } from "./fields.ts";

/** Settings of a distillation run (the JSON of `--config`, and config.json of the run). */
export interface DistillRunConfig {
  /** Discriminator: a distillation run. */
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
  optimizer: Partial<Omit<OptimizerConfig, "totalSteps">>;
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
  /**
   * Also sample and score the teacher's DDIM at each round's step count (default true); a
   * sweep whose teacher rows come from elsewhere sets false.
   */
  evalTeacher?: boolean;
  /** Checkpoint period in steps within a round. */
  checkpointEvery: number;
  /** Metrics period in steps. */
  logEvery: number;
}
const weight = () => z.number().min(0).optional();
const tau = () => z.number().positive().optional();

/** Overrides of the RDD loss config (every field optional; see `RddConfig`). */
const rddOverridesSchema = z.strictObject({
  rcfdWeight: weight(),
  rcfdTau: tau(),
  isp2pWeight: weight(),
  isp2pTau: tau(),
  isp2pChunkSize: int(0).optional().describe("IS_P2P anchor chunk; 0 = whole batch"),
  mp2pWeight: weight(),
  mp2pTau: tau(),
  mp2pKdTau: tau(),
  queueSize: int(1).optional().describe("memory queue size M"),
  contrastSize: int(1).optional().describe("contrast rows K (<= queueSize)"),
  enqueuePerStep: int(1).optional(),
  embeddingLayout: z.enum(["per-pixel", "reference-reshape"]).optional(),
  mp2pHeadMode: z.enum(["train", "inference"]).optional().describe(
    'how the M_P2P projection head runs: "train" (the reference) or "inference"',
  ),
  pdMseWeight: weight(),
  pdLossKind: z.enum(["x", "eps", "both"]).optional(),
  logits: z.boolean().optional().describe("the reference's logits switch: add the PD pixel loss"),
  gt: z.boolean().optional().describe("the reference's gt switch: add the pixel loss vs the data"),
  numerics: z.enum(["exact", "reference"]).optional().describe(
    'PD target numerics: "exact" float64 (default) or "reference" (float32 as PyTorch)',
  ),
  rkdDistanceWeight: weight(),
  rkdAngleWeight: weight(),
}).refine(
  (r) => (r.contrastSize ?? RDD_DEFAULTS.contrastSize) <= (r.queueSize ?? RDD_DEFAULTS.queueSize),
  { message: "contrastSize must be <= queueSize", path: ["contrastSize"] },
);

const isPowerOfTwo = (x: number) => x >= 1 && 2 ** Math.round(Math.log2(x)) === x;

const distillFields = {
  $schema: schemaRefField.optional(),
  kind: z.literal("distill"),
  method: z.enum(["pd", "rcfd", "rdd"]).describe("objective of the last finalRounds rounds"),
  fromSteps: int(2).optional().describe("steps of the starting teacher; default the teacher's T"),
  toSteps: int(1).describe("steps of the final student"),
  finalRounds: int(0).describe("rounds (from the end) that use method; the others use pd"),
  stepsPerRound: int(1).describe("optimiser steps per round"),
  doubleShortRounds: z.boolean().describe("students with 2 or 1 steps train twice as long"),
  batchSize: int(1),
  optimizer: z.strictObject(optimizerFields).partial().describe(
    "Adam settings; totalSteps is set per round",
  ),
  rdd: rddOverridesSchema.describe("loss overrides of the method rounds (RddConfig fields)"),
  seed: z.int().describe("seed of the chain (round r uses seed + r)"),
  evalSamples: z.int().refine((n) => n === 0 || n >= 2, "expected 0 or an integer >= 2")
    .describe("cFID sample size per row (0 = no evaluation)"),
  evalSeed: z.int().describe("seed of the evaluation noise"),
  evalMaxSteps: int(1).describe("evaluate only step counts up to this"),
  evalTeacher: z.boolean().optional().describe(
    "also sample and score the teacher's DDIM at each round's step count (default true)",
  ),
  checkpointEvery: int(0).describe("checkpoint period in steps within a round"),
  logEvery: int(1).describe("metrics period in steps"),
};

const stepRatio = {
  check: (c: { fromSteps?: number; toSteps?: number }) =>
    c.fromSteps === undefined || c.toSteps === undefined ||
    (c.fromSteps > c.toSteps && isPowerOfTwo(c.fromSteps / c.toSteps)),
  error: { message: "fromSteps / toSteps must be a power of 2 >= 2", path: ["fromSteps"] },
};

const completeSchema = z.strictObject(distillFields).refine(stepRatio.check, stepRatio.error);
const fileSchema = z.strictObject(distillFields).partial().refine(
  stepRatio.check,
  stepRatio.error,
);

/** Schema of a complete distill config (the resolved settings, config.json of a run). */
export const distillConfigSchema: z.ZodType<DistillRunConfig> = completeSchema;

/**
 * A distill config file (`--config`): the fields of {@link distillConfigSchema}, each
 * optional (missing ones come from the defaults of `deno task distill`).
 */
export const distillConfigFileSchema: z.ZodType<Partial<DistillRunConfig>> = fileSchema;

// The schema's type must equal the hand-written type, and `rdd` hold exactly RddConfig's fields.
const _typesAgree: [
  SameType<WithoutRef<z.infer<typeof completeSchema>>, DistillRunConfig>,
  SameType<Required<z.infer<typeof rddOverridesSchema>>, RddConfig>,
] = [true, true];

/**
 * Validates a complete distill config; throws a `ConfigError` `<source>: <field path>:
 * <expected>`. A `$schema` field is dropped from the result.
 * @param source the file or flags the object came from, named in the error.
 */
export function parseDistillConfig(value: unknown, source: string): DistillRunConfig {
  const { $schema: _, ...config } = parseWith(completeSchema, value, source);
  return config;
}

/**
 * Validates a partial distill config (a `--config` file, whose missing fields come from the
 * defaults); throws a `ConfigError` like {@link parseDistillConfig}.
 */
export function parseDistillConfigFile(value: unknown, source: string): Partial<DistillRunConfig> {
  const { $schema: _, ...config } = parseWith(fileSchema, value, source);
  return config;
}

/** The JSON Schema (draft 2020-12) of distill config files, from {@link distillConfigFileSchema}. */
export function distillConfigJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(fileSchema) as Record<string, unknown>;
}
