import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertGreaterOrEqual,
  assertNotEquals,
  assertThrows,
} from "@std/assert";
import { classify, createClassifier } from "../lib/models/classifier.ts";

await tf.setBackend("cpu");
await tf.ready();

Deno.test("classifier: three outputs with the right shapes; ReLU'd map; pooled = mean of map", () => {
  const model = createClassifier({ imageSize: 32, inChannels: 1, numClasses: 10 });
  // stem 9*16; blocks: (16->16) 2 convs + 2 BN; (16->32, s2) + 1x1; (32->64, s2) + 1x1;
  // (64->64, s2) + 1x1; final BN(64); dense 64*10+10. BN: 4 weights per channel (2 trainable).
  const conv = (k: number, a: number, b: number) => k * k * a * b;
  const bn = (c: number) => 4 * c;
  const blk = (a: number, b: number, short: boolean) =>
    bn(a) + conv(3, a, b) + bn(b) + conv(3, b, b) + (short ? conv(1, a, b) : 0);
  const expected = conv(3, 1, 16) + blk(16, 16, false) + blk(16, 32, true) + blk(32, 64, true) +
    blk(64, 64, true) + bn(64) + 64 * 10 + 10;
  assertEquals(model.countParams(), expected);
  const x = tf.randomUniform([3, 32, 32, 1], -1, 1, "float32", 1);
  for (const training of [false, true]) {
    const { featureMap, pooled, logits } = classify(model, x, { training });
    assertEquals(featureMap.shape, [3, 4, 4, 64]);
    assertEquals(pooled.shape, [3, 64]);
    assertEquals(logits.shape, [3, 10]);
    const fm = featureMap.dataSync();
    assert(fm.every((v) => v >= 0), "featureMap is after ReLU");
    assert(fm.some((v) => v > 0), "featureMap is not all zero");
    const mean = tf.tidy(() => tf.mean(featureMap, [1, 2]).dataSync());
    const p = pooled.dataSync();
    for (let i = 0; i < p.length; i++) assertAlmostEquals(p[i], mean[i], 1e-5, `pooled[${i}]`);
    tf.dispose([featureMap, pooled, logits]);
  }
  x.dispose();
  model.dispose();
});

Deno.test("classifier: training mode updates BatchNorm running averages, inference does not", () => {
  const model = createClassifier({ imageSize: 8, inChannels: 3, numClasses: 4, width: 4 });
  const mean = () =>
    Array.from(model.getLayer("final_bn").getWeights()[2].dataSync() as Float32Array);
  const before = mean();
  const x = tf.randomUniform([4, 8, 8, 3], -1, 1, "float32", 2);
  tf.dispose(Object.values(classify(model, x, { training: false })));
  assertEquals(mean(), before);
  tf.dispose(Object.values(classify(model, x, { training: true })));
  assertNotEquals(mean(), before);
  x.dispose();
  model.dispose();
});

Deno.test("classifier learns a separable toy task (loss falls)", () => {
  const model = createClassifier({ imageSize: 8, inChannels: 1, numClasses: 2, width: 4 });
  // Class 0: dark images, class 1: bright images.
  const labels = tf.tensor1d([0, 1, 0, 1, 0, 1, 0, 1], "int32");
  const x = tf.tidy(() =>
    tf.add(
      tf.randomUniform([8, 8, 8, 1], -0.3, 0.3, "float32", 3),
      tf.reshape(tf.sub(tf.mul(tf.cast(labels, "float32"), 1.2), 0.6), [8, 1, 1, 1]),
    )
  );
  const onehot = tf.oneHot(labels, 2);
  const opt = tf.train.adam(1e-2);
  const loss = () =>
    tf.losses.softmaxCrossEntropy(
      onehot,
      classify(model, x, { training: true }).logits,
    ) as tf.Scalar;
  const first = tf.tidy(() => loss().dataSync()[0]);
  let last = first;
  for (let i = 0; i < 30; i++) {
    const l = opt.minimize(loss, true)!;
    last = l.dataSync()[0];
    l.dispose();
  }
  assertGreaterOrEqual(first / last, 5, `loss ${first} -> ${last}`);
  tf.dispose([labels, x, onehot]);
  opt.dispose();
  model.dispose();
});

Deno.test("classifier: bad configs and models throw", () => {
  assertThrows(
    () => createClassifier({ imageSize: 30, inChannels: 1, numClasses: 10 }),
    RangeError,
    "imageSize",
  );
  assertThrows(
    () => createClassifier({ imageSize: 32, inChannels: 1, numClasses: 0 }),
    RangeError,
    "numClasses",
  );
  const single = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [2, 2, 1] })] });
  const x = tf.zeros([1, 2, 2, 1]);
  assertThrows(() => classify(single, x), TypeError, "three outputs");
  const flat = tf.zeros([2, 2]);
  assertThrows(() => classify(single, flat), RangeError, "[B, H, W, C]");
  tf.dispose([x, flat]);
  single.dispose();
});
