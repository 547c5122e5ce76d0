/**
 * Run configurations of `deno task train` (JSON files in `configs/`; schema and validation in
 * lib/config/run.ts), and the builders that turn a config into a model, data source
 * and objective for the {@link Trainer}.
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { type DiscreteSchedule, makeSchedule } from "../diffusion/schedule.ts";
import { createUNet, UNET_PRESETS, type UNetConfig } from "../models/unet.ts";
import { createClassifier } from "../models/classifier.ts";
import type { ImageSet } from "../data/images.ts";
import { loadMnist } from "../data/mnist.ts";
import { readCifar10Dir } from "../data/cifar10.ts";
import {
  batchIterator,
  type BatchIteratorState,
  batchTensors,
  type FlipMode,
} from "../data/batches.ts";
import { loadLayersModelFiles } from "./checkpoint.ts";
import { ConfigError } from "../config/errors.ts";
import { readJsonFile } from "../config/parse.ts";
import { parseRunConfig, type RunConfig, type TeacherRunConfig } from "../config/run.ts";
import type { DataSource, TrainerOptions } from "./trainer.ts";
import { teacherObjective } from "./objectives.ts";

export type { ClassifierRunConfig, RunConfig, TeacherRunConfig } from "../config/run.ts";

/**
 * Reads and validates a JSON run config file (schema: lib/config/run.ts); throws a
 * `ConfigError` naming the file and the bad field.
 */
export async function readRunConfig(path: string): Promise<RunConfig> {
  return parseRunConfig(await readJsonFile(path), path);
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

/** The schedule of a teacher run (T * timeScale + 1 entries with a `schedule.timeScale`). */
export function teacherSchedule(c: TeacherRunConfig): DiscreteSchedule {
  const { timeScale } = c.schedule;
  return makeSchedule(c.schedule.name, c.schedule.T, timeScale ? { timeScale } : {});
}

/**
 * Throws a `ConfigError` naming `source` unless `other` has the weight shapes of `model`
 * (the same architecture), naming the first weight that differs.
 */
export function checkSameArchitecture(
  model: tf.LayersModel,
  other: tf.LayersModel,
  source: string,
): void {
  const want = model.weights, got = other.weights;
  const i = want.findIndex((w, k) => w.shape.join("x") !== got[k]?.shape.join("x"));
  if (i >= 0 || want.length !== got.length) {
    const at = i >= 0 ? i : Math.min(want.length, got.length);
    const shape = (w?: tf.LayerVariable) => w ? w.shape.join("x") : "none";
    throw new ConfigError(
      `${source}: model of another architecture (${got.length} weights vs ${want.length}; ` +
        `weight ${at} is ${shape(got[at])}, the config's model needs ${shape(want[at])})`,
    );
  }
}

/** Throws a `ConfigError` unless the config's `initFrom` (if any) holds a model.json. */
export async function checkInitFrom(c: RunConfig): Promise<void> {
  if (!c.initFrom) return;
  const found = await Deno.stat(`${c.initFrom}/model.json`).then(() => true, () => false);
  if (!found) {
    throw new ConfigError(`initFrom ${c.initFrom}: no model.json there (train that run first)`);
  }
}

/**
 * Builds the model of a run: untrained, or with the weights of `initFrom` (same
 * architecture, else a `ConfigError` naming the directory).
 */
export async function buildModel(c: RunConfig): Promise<tf.LayersModel> {
  const model = c.kind === "teacher"
    ? createUNet(teacherModelConfig(c), { seed: c.seed })
    : createClassifier(c.model, { seed: c.seed });
  if (c.initFrom) {
    await checkInitFrom(c);
    const init = await loadLayersModelFiles(c.initFrom);
    try {
      checkSameArchitecture(model, init, `initFrom ${c.initFrom}`);
      model.setWeights(init.getWeights());
    } finally {
      init.dispose();
    }
  }
  return model;
}

/** The run's train and test sets (MNIST with a seeded split, or a CIFAR-10 directory). */
export async function loadRunData(c: RunConfig): Promise<{ train: ImageSet; test: ImageSet }> {
  const d = c.data;
  if (d.name === "cifar10") return await readCifar10Dir(d.path);
  return await loadMnist({ split: { nTest: d.nTest ?? 1000 }, seed: d.splitSeed ?? 0 });
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
      timeScale: c.schedule.timeScale,
    }),
  };
}
