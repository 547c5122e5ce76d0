/**
 * `deno task train -- --config configs/mnist_teacher.json [--run runs/NAME] [--steps N]
 *  [--resume] [--backend cpu|webgpu|wasm|auto]`
 *
 * Trains a diffusion teacher or a classifier from a JSON run config and writes a run
 * directory: config.json, metrics.jsonl, checkpoints/ (atomic, resumable), samples/ (PNG
 * grids of teacher samples) and, at the end, model/ (final EMA weights for teachers,
 * tfjs model.json + weights). `--resume` continues from the latest checkpoint.
 * @module
 */
import { parseArgs } from "node:util";
import type * as tf from "@tensorflow/tfjs";
import { type BackendPreference, selectBackend } from "../tfjs/backend.ts";
import {
  buildModel,
  imageDataSource,
  loadRunData,
  readRunConfig,
  type RunConfig,
  teacherModelConfig,
  teacherSchedule,
  teacherTrainerOptions,
} from "../train/run_config.ts";
import { Trainer } from "../train/trainer.ts";
import { classifierObjective } from "../train/objectives.ts";
import { saveLayersModelFiles, writeFileAtomic } from "../train/checkpoint.ts";
import { generateImages } from "../eval/generate.ts";
import { imageGrid, writePng } from "../data/png.ts";
import { toTensor } from "../data/images.ts";
import type { ImageSet } from "../data/images.ts";
import { classify } from "../models/classifier.ts";

/** Test accuracy of a classifier on a labelled set (batches of 500, inference mode). */
export async function testAccuracy(model: tf.LayersModel, set: ImageSet): Promise<number> {
  const n = set.images.shape[0];
  let correct = 0;
  for (let i = 0; i < n; i += 500) {
    const idx = Array.from({ length: Math.min(500, n - i) }, (_, k) => i + k);
    const x = toTensor(set, idx);
    const { logits, featureMap, pooled } = classify(model, x, { training: false });
    const pred = await logits.argMax(1).data();
    idx.forEach((j, k) => correct += pred[k] === set.labels![j] ? 1 : 0);
    [x, logits, featureMap, pooled].forEach((t) => t.dispose());
  }
  return correct / n;
}

/** Runs a training config; returns the run directory. */
export async function trainFromConfig(
  config: RunConfig,
  opts: { runDir: string; resume?: boolean; steps?: number },
): Promise<string> {
  const { runDir } = opts;
  const steps = opts.steps ?? config.steps;
  await Deno.mkdir(`${runDir}/samples`, { recursive: true });
  await writeFileAtomic(`${runDir}/config.json`, JSON.stringify(config, null, 2));
  const { train, test } = await loadRunData(config);
  const model = await buildModel(config);
  if (config.kind === "classifier") {
    const trainer = new Trainer({
      models: { model },
      optimizer: { ...config.optimizer, totalSteps: config.optimizer.totalSteps ?? config.steps },
      seed: config.seed,
      batchSize: config.batchSize,
      runDir,
      checkpointEvery: config.checkpointEvery,
      logEvery: config.logEvery,
      evalEvery: config.evalEvery,
      config: config as unknown as Record<string, unknown>,
      label: config.kind,
      data: imageDataSource(train, { batchSize: config.batchSize, seed: config.seed + 1 }).labelled,
      loss: classifierObjective(model, config.model.numClasses),
      onEval: async () => ({ testAccuracy: await testAccuracy(model, test) }),
    });
    if (opts.resume) console.log(`resumed at step ${await trainer.resume()}`);
    await trainer.run(steps);
    const acc = await testAccuracy(model, test);
    console.log(`test accuracy ${(100 * acc).toFixed(2)}% on ${test.images.shape[0]} digits`);
    await Deno.mkdir(`${runDir}/model`, { recursive: true });
    await saveLayersModelFiles(model, `${runDir}/model`);
    return runDir;
  }
  const schedule = teacherSchedule(config);
  const mc = teacherModelConfig(config);
  const parameterization = mc.parameterization ?? "x0";
  const sampleSteps = config.sampleSteps ?? Math.min(config.schedule.T, 32);
  const trainer = new Trainer({
    ...teacherTrainerOptions(config, model, train, runDir),
    onEval: async (step, tr) => {
      const g = await tr.ema!.withEmaWeights(() =>
        generateImages(model, {
          schedule,
          parameterization,
          steps: sampleSteps,
          n: 64,
          imageShape: [mc.imageSize, mc.imageSize, mc.inChannels],
          seed: "samples",
        })
      );
      const path = `${runDir}/samples/step_${String(step).padStart(8, "0")}.png`;
      await writePng(path, imageGrid(g.images, { cols: 8 }));
      console.log(`wrote ${path}`);
    },
  });
  if (opts.resume) console.log(`resumed at step ${await trainer.resume()}`);
  await trainer.run(steps);
  await Deno.mkdir(`${runDir}/model`, { recursive: true });
  await trainer.ema!.withEmaWeights(() => saveLayersModelFiles(model, `${runDir}/model`));
  return runDir;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      config: { type: "string" },
      run: { type: "string" },
      steps: { type: "string" },
      resume: { type: "boolean", default: false },
      backend: { type: "string" },
    },
  });
  if (!values.config) {
    console.error(
      "usage: deno task train -- --config <file.json> [--run DIR] [--steps N] [--resume]",
    );
    Deno.exit(2);
  }
  await selectBackend({ prefer: values.backend as BackendPreference | undefined, log: true });
  const config = await readRunConfig(values.config);
  const name = values.config.split("/").pop()!.replace(/\.json$/, "");
  const runDir = values.run ?? `runs/${name}`;
  const steps = values.steps ? Number(values.steps) : undefined;
  if (steps !== undefined && !(Number.isInteger(steps) && steps > 0)) {
    throw new RangeError(`--steps must be a positive integer, got ${values.steps}`);
  }
  await trainFromConfig(config, { runDir, resume: values.resume, steps });
  console.log(`run directory: ${runDir}`);
}
