/**
 * `deno task train -- --config configs/mnist_teacher.json [--run runs/NAME] [--steps N]
 *  [--resume | --force] [--backend auto|webgpu|cpu|wasm]` (the `--` is optional; `--help`
 * lists the flags, {@link TRAIN_COMMAND}).
 *
 * Trains a diffusion teacher or a classifier from a JSON run config (schema:
 * `configs/schema/run.schema.json`, lib/config/run.ts) and writes a run directory:
 * config.json, metrics.jsonl, checkpoints/ (atomic, resumable), samples/ (PNG grids of
 * teacher samples) and, at the end, model/ (final EMA weights for teachers, tfjs model.json +
 * weights; written into a temporary directory and renamed into place). `--resume` continues from the latest checkpoint. The flags and the config are
 * validated before any work; a bad one is one line on stderr naming it (exit code 2).
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { BACKEND_FLAG } from "./backend_flag.ts";
import { type CommandSpec, printCheck, runCommand, UsageError } from "./args.ts";
import { selectBackend } from "../tfjs/backend.ts";
import {
  buildModel,
  checkInitFrom,
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
import { saveModelDirAtomic } from "../train/checkpoint.ts";
import { openRunDir } from "../train/run_dir.ts";
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

/**
 * Runs a training config; returns the run directory. The directory follows the policy of
 * {@link openRunDir}: an existing run needs `resume` (safe config changes are recorded in
 * its history) or `force` (start over); the model and data are built before anything is
 * written, so a config that fails (e.g. a bad initFrom) leaves no run directory.
 */
export async function trainFromConfig(
  config: RunConfig,
  opts: { runDir: string; resume?: boolean; force?: boolean; steps?: number },
): Promise<string> {
  const { runDir } = opts;
  const steps = opts.steps ?? config.steps;
  const model = await buildModel(config);
  const { train, test } = await loadRunData(config);
  const opened = await openRunDir(runDir, config, { resume: opts.resume, force: opts.force });
  for (const c of opened.changes) {
    console.log(`resume changes ${c.field}: ${JSON.stringify(c.old)} -> ${JSON.stringify(c.new)}`);
  }
  await Deno.mkdir(`${runDir}/samples`, { recursive: true });
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
    await saveModelDirAtomic(model, `${runDir}/model`);
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
  await trainer.ema!.withEmaWeights(() => saveModelDirAtomic(model, `${runDir}/model`));
  return runDir;
}

/** The flags of `deno task train`. */
export const TRAIN_COMMAND = {
  usage: "deno task train -- --config FILE [--run DIR] [--steps N] [--resume | --force]",
  summary: "Trains a diffusion teacher or a classifier from a JSON run config " +
    "(configs/mnist_*.json) into a run directory.",
  flags: {
    config: {
      type: "string",
      required: true,
      placeholder: "FILE",
      description: "run config (JSON; schema configs/schema/run.schema.json)",
    },
    run: {
      type: "string",
      placeholder: "DIR",
      description: "run directory (default runs/<config file name>)",
    },
    steps: { type: "int", min: 1, description: "train to this step instead of the config's steps" },
    resume: {
      type: "boolean",
      description: "continue the run in --run from its latest checkpoint",
    },
    force: { type: "boolean", description: "start over in an existing run directory" },
    backend: BACKEND_FLAG,
    check: {
      type: "boolean",
      description: "only validate the flags, the config and its initFrom, print them, and exit",
    },
  },
} as const satisfies CommandSpec;

if (import.meta.main) {
  await runCommand(TRAIN_COMMAND, async (flags) => {
    if (flags.resume && flags.force) {
      throw new UsageError("--resume and --force exclude each other");
    }
    const config = await readRunConfig(flags.config);
    await checkInitFrom(config);
    const name = flags.config.split("/").pop()!.replace(/\.json$/, "");
    const runDir = flags.run ?? `runs/${name}`;
    if (flags.check) return printCheck({ runDir, resume: flags.resume, config });
    await selectBackend({ prefer: flags.backend, log: true });
    await trainFromConfig(config, {
      runDir,
      resume: flags.resume,
      force: flags.force,
      steps: flags.steps,
    });
    console.log(`run directory: ${runDir}`);
  });
}
