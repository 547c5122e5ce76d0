import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertLess } from "@std/assert";
import { createUNet, type UNetConfig } from "../lib/models/unet.ts";
import { disableFastCpu, enableFastCpu, fastCpuFallbacks } from "../lib/tfjs/fast_cpu.ts";
import { AdamOptimizer } from "../lib/train/optim.ts";
import { upsampleNearestGrad } from "../lib/tfjs/kernels/resize.ts";
import { cpuBackend, f32Values } from "../lib/tfjs/kernels/cpu_access.ts";

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

/**
 * Runs `f` on the stock kernels except ResizeNearestNeighborGrad: tfjs 4.22's stock one offsets
 * dy by the input's batch stride, mixing images when the batch is > 1 (see
 * kernels_elementwise_test.ts, which checks ours against the block sums).
 */
async function withCorrectResizeGrad<T>(f: () => T | Promise<T>): Promise<T> {
  const stock = tf.getKernel("ResizeNearestNeighborGrad", "cpu")!;
  tf.unregisterKernel("ResizeNearestNeighborGrad", "cpu");
  tf.registerKernel({
    ...stock,
    kernelFunc: (args) => {
      const be = cpuBackend(args);
      const { images, dy } = args.inputs as { images: tf.TensorInfo; dy: tf.TensorInfo };
      const dx = upsampleNearestGrad(
        f32Values(be, dy)!,
        images.shape,
        dy.shape[1] / images.shape[1],
      );
      return be.makeTensorInfo([...images.shape], "float32", dx);
    },
  });
  try {
    return await f();
  } finally {
    tf.unregisterKernel("ResizeNearestNeighborGrad", "cpu");
    tf.registerKernel(stock);
  }
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 1e-6;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

Deno.test("fast cpu: a mini UNet's output and all weight gradients equal the stock cpu path", async () => {
  const model = createUNet(MINI);
  const x = tf.randomNormal([2, 8, 8, 3], 0, 1, "float32", 1);
  const y = tf.randomNormal([2, 8, 8, 3], 0, 1, "float32", 2);
  const t = tf.tensor1d([3, 700]);
  disableFastCpu();
  const stock = await withCorrectResizeGrad(() => outputAndGrads(model, x, t, y));
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

/** Losses of `steps` Adam steps (lr 1e-3) of `model` on one fixed batch. */
async function lossCurve(
  model: tf.LayersModel,
  x: tf.Tensor,
  t: tf.Tensor,
  y: tf.Tensor,
  steps: number,
): Promise<number[]> {
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const opt = new AdamOptimizer(vars, { kind: "adam", lr: 1e-3, totalSteps: steps });
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const { value, grads } = tf.variableGrads(
      () =>
        tf.losses.meanSquaredError(
          y,
          model.apply([x, t], { training: true }) as tf.Tensor,
        ) as tf.Scalar,
      vars,
    );
    opt.apply(vars.map((v) => grads[v.name]));
    losses.push((await value.data())[0]);
    tf.dispose([value, ...Object.values(grads)]);
  }
  opt.dispose();
  return losses;
}

Deno.test("fast cpu: 200 training steps of a mini UNet give the stock path's loss curve", async () => {
  // Narrow enough for the stock kernels to run 200 steps in seconds.
  const model = createUNet({ ...MINI, ch: 8, inChannels: 1 });
  const init = model.getWeights().map((w) => w.clone());
  const x = tf.randomNormal([2, 8, 8, 1], 0, 1, "float32", 5);
  const y = tf.randomNormal([2, 8, 8, 1], 0, 1, "float32", 6);
  const t = tf.tensor1d([3, 600]);
  disableFastCpu();
  const stock = await withCorrectResizeGrad(() => lossCurve(model, x, t, y, 200));
  model.setWeights(init);
  assert(enableFastCpu().enabled);
  const fast = await lossCurve(model, x, t, y, 200);
  disableFastCpu();
  assertLess(stock[199], 0.5 * stock[0], "the loss must fall: the comparison is of a real fit");
  stock.forEach((s, i) => assertLess(Math.abs(fast[i] - s), 1e-3 * s, `step ${i}`));
  tf.dispose([x, y, t, ...init]);
  model.dispose();
});
