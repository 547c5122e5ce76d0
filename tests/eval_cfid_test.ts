import * as tf from "@tensorflow/tfjs";
// @ts-types="@types/ndarray"
import ndarray from "ndarray";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertGreater,
  assertNotEquals,
} from "@std/assert";
import { Rng } from "../lib/core/rng.ts";
import { makeSchedule } from "../lib/diffusion/schedule.ts";
import { createClassifier } from "../lib/models/classifier.ts";
import { createUNet } from "../lib/models/unet.ts";
import { frechetDistance, gaussianStats } from "../lib/eval/frechet.ts";
import {
  cfid,
  classifierFeatures,
  classifierHash,
  evaluateStudent,
  referenceStats,
} from "../lib/eval/cfid.ts";
import type { ImageArray } from "../lib/data/images.ts";

await tf.setBackend("cpu");
await tf.ready();

const S = 8;
const tinyClassifier = () =>
  createClassifier({ imageSize: S, inChannels: 1, numClasses: 3, width: 4 });

function images(n: number, seed: number, shift = 0): ImageArray {
  const rng = new Rng(seed);
  const d = Float32Array.from(
    { length: n * S * S },
    () => Math.max(-1, Math.min(1, 0.5 * rng.normal() + shift)),
  );
  return ndarray(d, [n, S, S, 1]);
}

Deno.test("classifierFeatures: batching does not change the features", async () => {
  const clf = tinyClassifier();
  const x = images(10, 1);
  const a = await classifierFeatures(clf, x, 3), b = await classifierFeatures(clf, x, 250);
  assertEquals([a.n, a.dim], [10, 16]);
  for (let i = 0; i < a.features.length; i++) {
    assertAlmostEquals(a.features[i], b.features[i], 1e-5);
  }
  clf.dispose();
});

Deno.test("cfid: ~0 for a set vs itself; > 0 for a shifted set and equal to frechetDistance", async () => {
  const clf = tinyClassifier();
  const real = images(64, 2);
  const ref = await referenceStats(clf, { images: real });
  assertEquals(ref.n, 64);
  assertAlmostEquals(await cfid(clf, real, ref), 0, 1e-6);
  const shifted = images(64, 3, 0.4);
  const d = await cfid(clf, shifted, ref);
  assertGreater(d, 1e-3);
  const f = await classifierFeatures(clf, shifted);
  assertAlmostEquals(d, frechetDistance(gaussianStats(f.features, f.dim), ref), 1e-9);
  // A tensor input gives the same number as the image array.
  const t = tf.tensor4d(shifted.data, [64, S, S, 1]);
  assertAlmostEquals(await cfid(clf, t, ref), d, 1e-9);
  t.dispose();
  clf.dispose();
});

Deno.test("referenceStats: cache is reused for the same classifier and data, recomputed otherwise", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/ref.json`;
  const clf = tinyClassifier();
  const real = images(32, 4);
  const first = await referenceStats(clf, { images: real }, path);
  // Tamper with the cached mean: a matching key must be read back as is (proves reuse).
  const cached = JSON.parse(await Deno.readTextFile(path));
  cached.mu[0] = 123;
  await Deno.writeTextFile(path, JSON.stringify(cached));
  assertEquals((await referenceStats(clf, { images: real }, path)).mu[0], 123);
  // Other classifier weights: the stale cache is detected and rewritten.
  const w = clf.getWeights();
  clf.setWeights(w.map((x, i) => i === 0 ? tf.mul(x, 1.5) : x));
  const newHash = await classifierHash(clf);
  assertNotEquals(newHash, first.classifierHash);
  const again = await referenceStats(clf, { images: real }, path);
  assertNotEquals(again.mu[0], 123);
  assertEquals(again.classifierHash, newHash);
  assertEquals(JSON.parse(await Deno.readTextFile(path)).classifierHash, newHash);
  // Another data split: recomputed too.
  const other = await referenceStats(clf, { images: images(32, 5) }, path);
  assertNotEquals(other.dataHash, again.dataHash);
  assertNotEquals(Array.from(other.mu), Array.from(again.mu));
  clf.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("evaluateStudent: K-step samples scored with cFID, NFE = K", async () => {
  const clf = tinyClassifier();
  const model = createUNet({
    imageSize: S,
    inChannels: 1,
    ch: 8,
    chMult: [1],
    numResBlocks: 1,
    attnResolutions: [],
    dropout: 0,
    minGroupChannels: 2,
  });
  const ref = await referenceStats(clf, images(32, 6));
  const schedule = makeSchedule("cosine", 8);
  const o = { model, schedule, parameterization: "x0" as const, n: 16, seed: 1, classifier: clf };
  const row = await evaluateStudent({ ...o, steps: 2, refStats: ref });
  assertEquals([row.steps, row.nfe, row.n], [2, 2, 16]);
  assert(Number.isFinite(row.cfid) && row.cfid >= 0 && row.msPerImage > 0);
  // Same n and seed: deterministic.
  assertEquals((await evaluateStudent({ ...o, steps: 2, refStats: ref })).cfid, row.cfid);
  [clf, model].forEach((m) => m.dispose());
});
