import * as tf from "@tensorflow/tfjs";
// @ts-types="@types/ndarray"
import ndarray from "ndarray";
import { assert, assertEquals, assertNotEquals } from "@std/assert";
import {
  buildModel,
  type ClassifierRunConfig,
  imageDataSource,
  type TeacherRunConfig,
  teacherTrainerOptions,
} from "../lib/train/run_config.ts";
import { Trainer } from "../lib/train/trainer.ts";
import { classifierObjective } from "../lib/train/objectives.ts";
import type { ImageSet } from "../lib/data/images.ts";
import { Rng } from "../lib/core/rng.ts";
import { createUNet } from "../lib/models/unet.ts";
import { createClassifier } from "../lib/models/classifier.ts";

await tf.setBackend("cpu");

const S = 8;

/** 16 seeded 8x8 one-channel images in [-1, 1] with labels 0..2. */
function tinySet(): ImageSet {
  const rng = new Rng("seed-test-images");
  const n = 16;
  const data = Float32Array.from({ length: n * S * S }, () => Math.tanh(rng.normal()));
  return {
    images: ndarray(data, [n, S, S, 1]),
    labels: Uint8Array.from({ length: n }, (_, i) => i % 3),
  };
}

const common = {
  data: { name: "mnist" as const },
  optimizer: { kind: "adam" as const, lr: 1e-3 },
  batchSize: 4,
  steps: 3,
};

const teacher = (seed: number): TeacherRunConfig => ({
  ...common,
  kind: "teacher",
  seed,
  model: {
    imageSize: S,
    inChannels: 1,
    ch: 8,
    chMult: [1, 2],
    numResBlocks: 1,
    attnResolutions: [4],
    dropout: 0,
    minGroupChannels: 2,
  },
  schedule: { name: "cosine", T: 16 },
});

const classifier = (seed: number): ClassifierRunConfig => ({
  ...common,
  kind: "classifier",
  seed,
  model: { imageSize: S, inChannels: 1, numClasses: 3, width: 4 },
});

/** The losses of a 3-step run of `config`, built from scratch as `deno task train` does. */
async function losses(config: TeacherRunConfig | ClassifierRunConfig): Promise<number[]> {
  const set = tinySet();
  const model = await buildModel(config);
  const t = config.kind === "teacher"
    ? new Trainer({ ...teacherTrainerOptions(config, model, set), print: () => {} })
    : new Trainer({
      models: { model },
      optimizer: { ...config.optimizer, totalSteps: config.steps },
      seed: config.seed,
      data: imageDataSource(set, { batchSize: 4, seed: config.seed + 1 }).labelled,
      loss: classifierObjective(model, 3),
      print: () => {},
    });
  await t.run(config.steps);
  t.dispose();
  model.dispose();
  return t.losses;
}

Deno.test("seed: two runs of one teacher config give identical losses; another seed differs", async () => {
  const a = await losses(teacher(5)), b = await losses(teacher(5));
  assertEquals(a, b);
  assertNotEquals(a[0], (await losses(teacher(6)))[0]);
});

Deno.test("seed: two runs of one classifier config give identical losses; another seed differs", async () => {
  const a = await losses(classifier(5)), b = await losses(classifier(5));
  assertEquals(a, b);
  assertNotEquals(a[0], (await losses(classifier(6)))[0]);
});

Deno.test("seed: initial weights of every layer follow the seed; layers differ from each other", () => {
  const cfg = {
    ...teacher(0).model as Exclude<TeacherRunConfig["model"], string>,
    numClasses: 3,
  };
  const weights = (m: tf.LayersModel) => m.getWeights().map((w) => Array.from(w.dataSync()));
  for (
    const make of [
      (s: number) => createUNet(cfg, { seed: s }),
      (s: number) =>
        createClassifier({ imageSize: S, inChannels: 1, numClasses: 3, width: 4 }, { seed: s }),
    ]
  ) {
    const [a, b, c] = [make(1), make(1), make(2)];
    assertEquals(weights(a), weights(b));
    const wa = weights(a), wc = weights(c);
    // Every randomly initialised tensor (not constant ones / zeros) changes with the seed.
    const random = wa.map((w, i) => [w, wc[i]]).filter(([w]) => new Set(w).size > 1);
    assert(random.length > 3, "model has random initial weights");
    random.forEach(([w, v]) => assertNotEquals(w, v));
    // Two layers of the same shape do not get the same stream.
    const firsts = random.map(([w]) => w[0]);
    assertEquals(new Set(firsts).size, firsts.length);
    [a, b, c].forEach((m) => m.dispose());
  }
});
