/**
 * The tfjs WebGPU backend, through Deno's built-in WebGPU, against the stock tfjs CPU backend:
 * the same tiny conv net (fixed weights and inputs) must give the same loss and, after one
 * SGD or Adam step, the same weights. Skipped when Deno offers no WebGPU adapter.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertLessOrEqual } from "@std/assert";
import { Rng } from "../lib/core/rng.ts";
import { selectBackend } from "../lib/tfjs/backend.ts";

const adapter = await navigator.gpu?.requestAdapter();
if (!adapter) console.log("tfjs_webgpu_test skipped: navigator.gpu offers no WebGPU adapter");

/** Shapes of the net: x [2, 6, 6, 2] -> conv 3x3 s1 (4) -> relu -> conv 3x3 s2 (4) -> relu -> dense 3. */
const SHAPES = {
  x: [2, 6, 6, 2],
  y: [2, 3],
  w1: [3, 3, 2, 4],
  b1: [4],
  w2: [3, 3, 4, 4],
  b2: [4],
  w3: [36, 3],
  b3: [3],
} as const;
type Name = keyof typeof SHAPES;
const PARAMS = ["w1", "b1", "w2", "b2", "w3", "b3"] as const;

/** Fixed float32 values for every tensor, scaled so activations stay O(1). */
function fixture(seed: number): Record<Name, Float32Array> {
  const rng = new Rng(seed);
  const out = {} as Record<Name, Float32Array>;
  for (const name of Object.keys(SHAPES) as Name[]) {
    const shape = SHAPES[name];
    const n = shape.reduce((a, b) => a * b, 1);
    const fanIn = shape.length > 1 ? n / shape[shape.length - 1] : 4;
    out[name] = Float32Array.from(rng.normals(n), (v) => v / Math.sqrt(fanIn));
  }
  return out;
}

/** Mean squared error of the net on (x, y). */
function loss(v: Record<Name, tf.Tensor>): tf.Scalar {
  const h1 = tf.relu(tf.add(tf.conv2d(v.x as tf.Tensor4D, v.w1 as tf.Tensor4D, 1, "same"), v.b1));
  const h2 = tf.relu(tf.add(tf.conv2d(h1 as tf.Tensor4D, v.w2 as tf.Tensor4D, 2, "same"), v.b2));
  const logits = tf.add(tf.matMul(tf.reshape(h2, [2, 36]), v.w3), v.b3);
  return tf.mean(tf.squaredDifference(logits, v.y));
}

interface StepResult {
  loss: number;
  params: Record<string, Float32Array>;
}

/** One optimiser step on the active backend from the fixed values; returns loss and new weights. */
async function step(backend: string, values: Record<Name, Float32Array>, optimizer: tf.Optimizer) {
  assertEquals(tf.getBackend(), backend);
  const v = {} as Record<Name, tf.Tensor>;
  for (const name of Object.keys(SHAPES) as Name[]) {
    const t = tf.tensor(values[name], [...SHAPES[name]]);
    v[name] = (PARAMS as readonly string[]).includes(name) ? tf.variable(t) : t;
  }
  const l = optimizer.minimize(() => loss(v), true, PARAMS.map((p) => v[p] as tf.Variable))!;
  const result: StepResult = { loss: (await l.data())[0], params: {} };
  for (const p of PARAMS) result.params[p] = (await v[p].data()) as Float32Array;
  l.dispose();
  optimizer.dispose();
  tf.dispose(Object.values(v));
  return result;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert(a.length === b.length, "same length");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function compareOneStep(makeOptimizer: () => tf.Optimizer) {
  const values = fixture(7);
  await selectBackend({ prefer: "cpu", fastCpu: false });
  const cpu = await step("cpu", values, makeOptimizer());
  await selectBackend({ prefer: "webgpu" });
  // Small tensors would otherwise be handed to the CPU kernels: force every op onto the GPU.
  tf.env().set("WEBGPU_CPU_FORWARD", false);
  let gpu: StepResult;
  try {
    gpu = await step("webgpu", values, makeOptimizer());
  } finally {
    await selectBackend({ prefer: "cpu", fastCpu: false });
  }
  assert(cpu.loss > 0.05, `the fixture gives a non-trivial loss (${cpu.loss})`);
  assertLessOrEqual(Math.abs(gpu.loss - cpu.loss), 1e-4 * Math.max(1, cpu.loss), "first loss");
  for (const p of PARAMS) {
    const moved = maxAbsDiff(cpu.params[p], values[p]);
    assert(moved > 1e-4, `${p} moved in the step (${moved})`);
    assertLessOrEqual(maxAbsDiff(gpu.params[p], cpu.params[p]), 1e-4, `updated ${p}`);
  }
}

Deno.test({
  name: "webgpu: first loss and SGD step of a conv net match the cpu backend",
  ignore: !adapter,
  fn: () => compareOneStep(() => tf.train.sgd(0.1)),
});

Deno.test({
  name: "webgpu: one Adam step of a conv net matches the cpu backend",
  ignore: !adapter,
  // epsilon 1e-3 keeps the first Adam step (~ lr * sign(g)) well conditioned for tiny gradients.
  fn: () => compareOneStep(() => tf.train.adam(0.01, 0.9, 0.999, 1e-3)),
});
