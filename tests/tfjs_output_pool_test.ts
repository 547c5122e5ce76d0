import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertEquals,
  assertNotStrictEquals,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  outputArray,
  outputPool,
  POOL_MIN_FLOATS,
  PoolState,
  setOutputPool,
} from "../lib/tfjs/output_pool.ts";
import { opValues } from "../lib/tfjs/op_arrays.ts";
import { disableFastCpu, enableFastCpu } from "../lib/tfjs/fast_cpu.ts";
import { groupNormCpu } from "../lib/models/group_norm_cpu.ts";
import { seededDropout, withDropoutSeed } from "../lib/models/dropout.ts";
import { createUNet, UNET_PRESETS } from "../lib/models/unet.ts";
import { fusedKlDivSum } from "../lib/distill/kl_cpu.ts";
import { AdamOptimizer } from "../lib/train/optim.ts";

await tf.setBackend("cpu");
await tf.ready();

const N = 2 * POOL_MIN_FLOATS;
const MiB = 2 ** 20;

/** Runs `f` with `pool` as the current output pool, then restores the previous one. */
async function withPool<T>(pool: PoolState | undefined, f: () => T | Promise<T>): Promise<T> {
  const prev = outputPool();
  setOutputPool(pool);
  try {
    return await f();
  } finally {
    setOutputPool(prev);
  }
}

const take = (n = N) => outputArray(tf.backend(), n);

Deno.test("output pool: a disposed tensor's array is handed out again, as its owner left it", async () => {
  const pool = new PoolState(64 * MiB);
  await withPool(pool, () => {
    const a = take();
    assertEquals(a.length, N);
    tf.tensor1d(a.fill(7)).dispose();
    const b = take();
    assertStrictEquals(b, a);
    assertEquals(b[N - 1], 7);
    assertEquals(pool.stats(), { reused: 1, allocated: 1, escaped: 0, heldBytes: 0 });
    assertNotStrictEquals(take(), a, "an array is handed out once");
    assertEquals(take(N + 1).length, N + 1, "lengths are binned exactly");
  });
});

Deno.test("output pool: arrays read by dataSync() or data() are never recycled", async () => {
  const pool = new PoolState(64 * MiB);
  await withPool(pool, async () => {
    const a = take(), b = take();
    const ta = tf.tensor1d(a.fill(1)), tb = tf.tensor1d(b.fill(2));
    const readA = ta.dataSync(), readB = await tb.data();
    tf.dispose([ta, tb]);
    const c = take(), d = take();
    c.fill(-1);
    d.fill(-1);
    assert(c !== a && c !== b && d !== a && d !== b);
    assertEquals([readA[0], readA[N - 1], readB[0], readB[N - 1]], [1, 1, 2, 2]);
    assertEquals(pool.stats().escaped, 2);
  });
});

Deno.test("output pool: an array stored twice, or viewed by another tensor, is never recycled", async () => {
  const pool = new PoolState(64 * MiB);
  await withPool(pool, () => {
    const a = take(), b = take();
    const twice = [tf.tensor1d(a), tf.tensor1d(a)];
    const viewed = [tf.tensor1d(b), tf.tensor1d(b.subarray(0, N / 2))];
    tf.dispose([...twice, ...viewed]);
    const c = take(), d = take();
    assert(c !== a && c !== b && d !== a && d !== b);
    assertEquals(pool.stats().escaped, 2);
  });
});

Deno.test("output pool: shared data is recycled only after its last tensor is disposed", async () => {
  await withPool(new PoolState(64 * MiB), () => {
    const a = take();
    const t = tf.tensor1d(a);
    const r = t.reshape([2, N / 2]);
    t.dispose();
    assertNotStrictEquals(take(), a, "the reshaped tensor still holds it");
    r.dispose();
    assertStrictEquals(take(), a);
  });
});

Deno.test("output pool: users' arrays and short arrays are never taken in", async () => {
  const pool = new PoolState(64 * MiB);
  await withPool(pool, () => {
    const mine = new Float32Array(N).fill(3);
    tf.tensor1d(mine).dispose();
    assertNotStrictEquals(take(), mine);
    assertEquals(mine[0], 3);
    const short = take(POOL_MIN_FLOATS - 1);
    tf.tensor1d(short.fill(5)).dispose();
    const next = take(POOL_MIN_FLOATS - 1);
    assertNotStrictEquals(next, short);
    assertEquals(next.every((v) => v === 0), true, "short arrays are new, zero-filled");
    assertEquals(pool.stats().allocated, 1);
  });
});

Deno.test("output pool: holds at most capBytes; close drops them and stops recycling", async () => {
  const pool = new PoolState(4 * N);
  await withPool(pool, () => {
    const a = take(), b = take();
    tf.dispose([tf.tensor1d(a), tf.tensor1d(b)]);
    assertEquals(pool.stats().heldBytes, 4 * N);
    assertStrictEquals(take(), a, "the first fits the cap; the second was dropped");
    assertNotStrictEquals(take(), b);
    tf.tensor1d(a).dispose();
    pool.close();
    assertEquals(pool.stats().heldBytes, 0);
    const c = take();
    assertNotStrictEquals(c, a);
    tf.tensor1d(c).dispose();
    assertNotStrictEquals(take(), c, "a closed pool keeps nothing");
  });
  assertThrows(() => new PoolState(-1), RangeError, "capBytes");
});

Deno.test("output pool: poison fills recycled arrays with NaN", async () => {
  await withPool(new PoolState(64 * MiB, { poison: true }), () => {
    const a = take();
    tf.tensor1d(a.fill(1)).dispose();
    const b = take();
    assertStrictEquals(b, a);
    assert(b.every((v) => Number.isNaN(v)));
  });
});

Deno.test("fast cpu: enable sets up the output pool with the cap it is given", () => {
  disableFastCpu();
  assertThrows(() => enableFastCpu({ outputPoolMiB: -1 }), RangeError, "options.outputPoolMiB");
  Deno.env.set("RDD_OUTPUT_POOL_MIB", "lots");
  try {
    assertThrows(() => enableFastCpu(), RangeError, "env RDD_OUTPUT_POOL_MIB");
  } finally {
    Deno.env.delete("RDD_OUTPUT_POOL_MIB");
  }
  const status = enableFastCpu({ outputPoolMiB: 16 });
  assert(status.enabled, status.reason);
  assertEquals(status.outputPoolMiB, 16);
  assert(outputPool() !== undefined);
  const x = tf.randomNormal([N]);
  const y = tf.exp(x);
  const kept = y.dataSync();
  const copy = Float32Array.from(kept);
  tf.dispose([x, y]);
  // Later kernels of the same length must not write into the array dataSync() returned.
  tf.tidy(() => tf.exp(tf.neg(tf.exp(tf.randomNormal([N])))));
  assertEquals(kept, copy);
  disableFastCpu();
  assertEquals(outputPool(), undefined);
  assert(enableFastCpu().enabled);
  disableFastCpu();
});

/** Values of every output of `f` (one tensor or several), read without escaping the pool. */
function valuesOf(f: () => tf.Tensor | tf.Tensor[]): Float32Array[] {
  const outs = tf.tidy(f);
  const list = Array.isArray(outs) ? outs : [outs];
  const values = list.map((t) => Float32Array.from(opValues(t)));
  tf.dispose(list);
  return values;
}

Deno.test("fast cpu kernels write every value of a recycled output: results under a NaN-poisoned pool equal those without one", async () => {
  assert(enableFastCpu().enabled);
  const x = tf.randomNormal([4, 16, 16, 8], 0, 1, "float32", 1);
  const y = tf.randomNormal([4, 16, 16, 8], 0, 1, "float32", 2);
  const w = tf.randomNormal([3, 3, 8, 16], 0, 0.2, "float32", 3);
  const w1 = tf.randomNormal([3, 3, 8, 1], 0, 0.2, "float32", 4);
  const x1 = tf.randomNormal([4, 16, 16, 1], 0, 1, "float32", 5);
  const wIn = tf.randomNormal([3, 3, 1, 16], 0, 0.2, "float32", 6);
  const bias = tf.randomNormal([8], 0, 1, "float32", 7);
  const gamma = tf.randomNormal([8], 1, 0.1, "float32", 8);
  const a = tf.randomNormal([8, 64, 32], 0, 1, "float32", 9);
  const b = tf.randomNormal([8, 32, 64], 0, 1, "float32", 10);
  const convLoss = (xx: tf.Tensor, ww: tf.Tensor, s: 1 | 2) =>
    tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, s, "same").square().sum();
  const ops: Record<string, () => tf.Tensor | tf.Tensor[]> = {
    add: () => tf.add(x, y),
    subScalar: () => tf.sub(x, 3),
    mulBias: () => tf.mul(x, bias),
    div: () => tf.div(x, tf.add(tf.abs(y), 1)),
    squaredDifference: () => tf.squaredDifference(x, y),
    unary: () => [tf.exp(x), tf.neg(x), tf.relu(x), tf.sigmoid(x)],
    reluGrad: () => tf.grad((v: tf.Tensor) => tf.relu(v).mul(y).sum())(x),
    softmax: () => tf.softmax(x),
    pad: () => [
      tf.pad(x, [[0, 0], [1, 1], [2, 0], [0, 0]]),
      tf.pad(x, [[0, 0], [1, 1], [2, 0], [0, 0]], 2.5),
    ],
    slice: () => tf.slice(x, [0, 1, 1, 0], [4, 8, 8, 8]),
    concatSplit: () => tf.split(tf.concat([x, y], 3), [3, 13], 3),
    transpose: () => tf.transpose(x, [0, 3, 1, 2]),
    tile: () => [
      tf.tile(tf.slice(x, [0, 0, 0, 0], [1, 1, 1, 8]), [4, 8, 8, 1]),
      tf.tile(tf.slice(x, [0, 0, 0, 0], [2, 3, 1, 8]), [2, 1, 5, 2]),
    ],
    resize: () =>
      tf.grads((v) => tf.image.resizeNearestNeighbor(v as tf.Tensor4D, [32, 32]).mul(2).sum())([
        x,
      ]),
    matMul: () => [tf.matMul(a, b), tf.matMul(a.reshape([512, 32]), b.reshape([32, 512]))],
    matMulEmptyInner: () => tf.matMul(tf.zeros([64, 0]), tf.zeros([0, 128])),
    conv: () => tf.grads((xx, ww) => convLoss(xx, ww, 1))([x, w]),
    convStride2: () => tf.grads((xx, ww) => convLoss(xx, ww, 2))([x, w]),
    convOneOut: () => tf.grads((xx, ww) => convLoss(xx, ww, 1))([x, w1]),
    convOneIn: () => tf.grads((xx, ww) => convLoss(xx, ww, 1))([x1, wIn]),
    fusedConv: () =>
      tf.fused.conv2d({
        x: x as tf.Tensor4D,
        filter: w as tf.Tensor4D,
        strides: 1,
        pad: "same",
        bias: tf.ones([16]),
        activation: "relu",
      }),
    groupNorm: () =>
      tf.grads((xx, g) =>
        groupNormCpu(xx as tf.Tensor4D, g as tf.Tensor1D, bias as tf.Tensor1D, 4, 1e-5, true).mul(y)
          .sum()
      )([x, gamma]),
    dropout: () => withDropoutSeed(11, () => seededDropout(x, 0.1)),
    klDivergence: () => tf.grads((p, q) => fusedKlDivSum(p, q)!)([a.reshape([64, 256]), b]),
    adam: () => {
      const v = tf.variable(x.clone());
      const opt = new AdamOptimizer([v], { kind: "adam", lr: 0.01, totalSteps: 10 });
      opt.apply([y]);
      const out = v.clone();
      opt.dispose();
      v.dispose();
      return out;
    },
  };
  const plain = await withPool(undefined, () => Object.values(ops).map(valuesOf));
  const pool = new PoolState(256 * MiB, { poison: true });
  const poisoned = await withPool(pool, () => {
    Object.values(ops).forEach(valuesOf); // fills the pool with every length they use
    return Object.values(ops).map(valuesOf);
  });
  assert(
    pool.stats().reused > 50,
    `expected recycled outputs, got ${JSON.stringify(pool.stats())}`,
  );
  Object.keys(ops).forEach((name, i) => {
    assertEquals(poisoned[i].length, plain[i].length, name);
    poisoned[i].forEach((v, j) => assertEquals(v, plain[i][j], `${name}: output ${j}`));
  });
  tf.dispose([x, y, w, w1, x1, wIn, bias, gamma, a, b]);
  disableFastCpu();
});

Deno.test("fast cpu: the mnist UNet's output and gradients under a NaN-poisoned pool equal those without one", async () => {
  assert(enableFastCpu().enabled);
  const model = createUNet({ ...structuredClone(UNET_PRESETS.mnist), dropout: 0.1 });
  const x = tf.randomNormal([2, 32, 32, 1], 0, 1, "float32", 1);
  const target = tf.randomNormal([2, 32, 32, 1], 0, 1, "float32", 2);
  const t = tf.tensor1d([5, 800]);
  const vars = model.trainableWeights.map((v) => (v as unknown as { val: tf.Variable }).val);
  const step = () =>
    valuesOf(() =>
      withDropoutSeed(3, () => {
        const { value, grads } = tf.variableGrads(
          () =>
            tf.losses.meanSquaredError(
              target,
              model.apply([x, t], { training: true }) as tf.Tensor,
            ) as tf.Scalar,
          vars,
        );
        return [value, ...vars.map((v) => grads[v.name])];
      })
    );
  const plain = await withPool(undefined, step);
  const pool = new PoolState(256 * MiB, { poison: true });
  const poisoned = await withPool(pool, () => {
    step();
    return step();
  });
  assert(
    pool.stats().reused > 100,
    `expected recycled outputs, got ${JSON.stringify(pool.stats())}`,
  );
  assertEquals(pool.stats().escaped, 0, "the UNet's own ops read no tensor through dataSync");
  assertEquals(poisoned.length, plain.length);
  plain.forEach((p, i) => assertEquals(poisoned[i], p, `output ${i}`));
  tf.dispose([x, target, t]);
  model.dispose();
  disableFastCpu();
});
