import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertLess } from "@std/assert";
import { createUNet, type UNetConfig } from "../lib/models/unet.ts";
import { disableFastCpu, enableFastCpu, fastCpuFallbacks } from "../lib/tfjs/fast_cpu.ts";

await tf.setBackend("cpu");
await tf.ready();

const MINI: UNetConfig = {
  imageSize: 8,
  inChannels: 3,
  ch: 16,
  chMult: [1, 2],
  numResBlocks: 1,
  attnResolutions: [4],
  dropout: 0,
};

/** Output and gradients of an MSE loss w.r.t. every trainable weight, as plain arrays. */
function outputAndGrads(model: tf.LayersModel, x: tf.Tensor, t: tf.Tensor, y: tf.Tensor) {
  const before = tf.memory().numTensors;
  const outT = model.apply([x, t], { training: true }) as tf.Tensor;
  const out = Float32Array.from(outT.dataSync());
  outT.dispose();
  const loss = () =>
    tf.losses.meanSquaredError(
      y,
      model.apply([x, t], { training: true }) as tf.Tensor,
    ) as tf.Scalar;
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const { value, grads } = tf.variableGrads(loss, vars);
  const g = Object.keys(grads).sort().map((k) =>
    [k, Float32Array.from(grads[k].dataSync())] as const
  );
  tf.dispose([value, ...Object.values(grads)]);
  assertEquals(tf.memory().numTensors, before, "no tensors leaked");
  return { out, g };
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 1e-6;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

Deno.test("fast cpu: a mini UNet's output and all weight gradients equal the stock cpu path", () => {
  const model = createUNet(MINI);
  const x = tf.randomNormal([2, 8, 8, 3], 0, 1, "float32", 1);
  const y = tf.randomNormal([2, 8, 8, 3], 0, 1, "float32", 2);
  const t = tf.tensor1d([3, 700]);
  disableFastCpu();
  const stock = outputAndGrads(model, x, t, y);
  assert(enableFastCpu().enabled);
  const fallbacksBefore = JSON.stringify(fastCpuFallbacks());
  const fast = outputAndGrads(model, x, t, y);
  disableFastCpu();
  assertLess(relErr(fast.out, stock.out), 1e-4, "output");
  assertEquals(fast.g.length, stock.g.length);
  assert(stock.g.length > 20, `expected many weight gradients, got ${stock.g.length}`);
  for (let i = 0; i < stock.g.length; i++) {
    assertEquals(fast.g[i][0], stock.g[i][0]);
    assertLess(relErr(fast.g[i][1], stock.g[i][1]), 1e-4, `gradient of ${stock.g[i][0]}`);
  }
  // Every kernel the UNet runs has a fast path: no stock fallback happened.
  assertEquals(JSON.stringify(fastCpuFallbacks()), fallbacksBefore);
  tf.dispose([x, y, t]);
  model.dispose();
});
