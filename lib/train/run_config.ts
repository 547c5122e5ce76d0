/**
 * Run configurations of `deno task train` (JSON files in `configs/`), with validation that
 * names the offending field, and the builders that turn a config into a model, data source
 * and objective for the {@link Trainer}.
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { Parameterization } from "../diffusion/denoiser.ts";
import { type DiscreteSchedule, makeSchedule, type ScheduleName } from "../diffusion/schedule.ts";
import type { DiffusionLossKind } from "../diffusion/weighting.ts";
import { createUNet, UNET_PRESETS, type UNetConfig } from "../models/unet.ts";
import { type ClassifierConfig, createClassifier } from "../models/classifier.ts";
import type { ImageSet } from "../data/images.ts";
import { loadMnist } from "../data/mnist.ts";
import {
  batchIterator,
  type BatchIteratorState,
  batchTensors,
  type FlipMode,
} from "../data/batches.ts";
import type { OptimizerConfig } from "./optim.ts";
import { loadLayersModelFiles } from "./checkpoint.ts";
import type { DataSource, TrainerOptions } from "./trainer.ts";
import { teacherObjective } from "./objectives.ts";

/** Fields shared by every run config. */
interface BaseRunConfig {
  /** Seed of the run (RNG of noise and timesteps; data order uses `seed + 1`). */
  seed: number;
  /** Data set: only "mnist" ships; `nTest` digits are held out with `splitSeed`. */
  data: { name: "mnist"; nTest?: number; splitSeed?: number; flip?: FlipMode };
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
  kind: "teacher";
  /** A preset name of {@link UNET_PRESETS} or a full UNet config (imageSize, ch, ...). */
  model: keyof typeof UNET_PRESETS | UNetConfig;
  /** Optional overrides applied on top of a preset (e.g. {"dropout": 0}). */
  modelOverrides?: Partial<UNetConfig>;
  /** Schedule: name and T (the reference: cosine, indices 0..T). */
  schedule: { name: ScheduleName; T: number };
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
  kind: "classifier";
  model: ClassifierConfig;
}

/** Any run config. */
export type RunConfig = TeacherRunConfig | ClassifierRunConfig;

function need(cond: boolean, msg: string): void {
  if (!cond) throw new RangeError(`config: ${msg}`);
}

/** Validates a parsed JSON config; throws a RangeError naming the field. */
export function validateRunConfig(c: RunConfig): RunConfig {
  need(c.kind === "teacher" || c.kind === "classifier", `kind must be "teacher" or "classifier"`);
  need(Number.isInteger(c.seed), `seed must be an integer, got ${c.seed}`);
  need(c.data?.name === "mnist", `data.name must be "mnist", got ${c.data?.name}`);
  need(Number.isInteger(c.batchSize) && c.batchSize >= 1, `batchSize must be >= 1`);
  need(Number.isInteger(c.steps) && c.steps >= 1, `steps must be a positive integer`);
  need(typeof c.optimizer === "object", "optimizer is required");
  if (c.kind === "teacher") {
    need(
      typeof c.model === "object" || Object.hasOwn(UNET_PRESETS, c.model),
      `model must be one of ${Object.keys(UNET_PRESETS).join(", ")} or a UNet config`,
    );
    need(
      Number.isInteger(c.schedule?.T) && c.schedule.T >= 2,
      `schedule.T must be an integer >= 2`,
    );
  }
  return c;
}

/** Reads and validates a JSON config file. */
export async function readRunConfig(path: string): Promise<RunConfig> {
  let parsed: RunConfig;
  try {
    parsed = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(`cannot read config ${path}: ${(e as Error).message}`);
  }
  return validateRunConfig(parsed);
}

/** The UNet config of a teacher run (preset + overrides). */
export function teacherModelConfig(c: TeacherRunConfig): UNetConfig {
  const base = typeof c.model === "string" ? UNET_PRESETS[c.model] : c.model;
  return {
    ...base,
    chMult: [...base.chMult],
    attnResolutions: [...base.attnResolutions],
    ...c.modelOverrides,
    parameterization: c.parameterization ?? "x0",
  };
}

/** The schedule of a teacher run. */
export function teacherSchedule(c: TeacherRunConfig): DiscreteSchedule {
  return makeSchedule(c.schedule.name, c.schedule.T);
}

/**
 * Builds the model of a run: untrained, or with the weights of `initFrom` (same
 * architecture, else an error naming the directory).
 */
export async function buildModel(c: RunConfig): Promise<tf.LayersModel> {
  const model = c.kind === "teacher"
    ? createUNet(teacherModelConfig(c))
    : createClassifier(c.model);
  if (c.initFrom) {
    const init = await loadLayersModelFiles(c.initFrom);
    const want = model.weights.map((w) => w.shape.join("x")).join(",");
    const got = init.weights.map((w) => w.shape.join("x")).join(",");
    if (want !== got) {
      throw new RangeError(`config: initFrom ${c.initFrom} has another architecture than model`);
    }
    model.setWeights(init.getWeights());
    init.dispose();
  }
  return model;
}

/** The run's train and test sets (MNIST, seeded split). */
export async function loadRunData(c: RunConfig): Promise<{ train: ImageSet; test: ImageSet }> {
  return await loadMnist({ split: { nTest: c.data.nTest ?? 1000 }, seed: c.data.splitSeed ?? 0 });
}

/**
 * A {@link DataSource} of tensors over an image set: `images` gives `[B,H,W,C]` tensors
 * (teachers), `labelled` gives `{x, y}` (classifiers). Position is saved in checkpoints.
 */
export function imageDataSource(
  set: ImageSet,
  opts: { batchSize: number; seed: number; flip?: FlipMode },
): { images: DataSource<tf.Tensor4D>; labelled: DataSource<{ x: tf.Tensor4D; y: tf.Tensor1D }> } {
  let it = batchIterator(set, { ...opts, dropLast: true });
  const state = {
    getState: () => it.state(),
    setState: (s: unknown) => {
      it = batchIterator(set, { ...opts, dropLast: true }, s as BatchIteratorState);
    },
  };
  return {
    images: { ...state, next: () => batchTensors(it.next()).x },
    labelled: {
      ...state,
      next: () => {
        const { x, y } = batchTensors(it.next());
        if (!y) throw new RangeError("classifier data must have labels");
        return { x, y };
      },
    },
  };
}

/**
 * The {@link Trainer} settings of a teacher run: optimiser (totalSteps defaults to the run's
 * steps), seeded data order (`seed + 1`), EMA, the teacher objective and the checkpoint and
 * log periods of the config. The CLI and notebooks share it, so either can resume the
 * other's run; add `onEval`, `print` or `progressIntervalSec` on top.
 */
export function teacherTrainerOptions(
  c: TeacherRunConfig,
  model: tf.LayersModel,
  train: ImageSet,
  runDir?: string,
): TrainerOptions<tf.Tensor4D> {
  const mc = teacherModelConfig(c);
  return {
    models: { model },
    optimizer: { ...c.optimizer, totalSteps: c.optimizer.totalSteps ?? c.steps },
    seed: c.seed,
    batchSize: c.batchSize,
    runDir,
    checkpointEvery: c.checkpointEvery,
    logEvery: c.logEvery,
    evalEvery: c.evalEvery,
    config: c as unknown as Record<string, unknown>,
    label: "teacher",
    data: imageDataSource(train, { batchSize: c.batchSize, seed: c.seed + 1, flip: c.data.flip })
      .images,
    emaDecay: c.emaDecay ?? 0.999,
    loss: teacherObjective({
      model,
      schedule: teacherSchedule(c),
      parameterization: mc.parameterization ?? "x0",
      lossKind: c.loss ?? "both",
    }),
  };
}
