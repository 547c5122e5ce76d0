import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertLess, assertThrows } from "@std/assert";
import { Rng } from "../lib/core/rng.ts";
import { disableFastCpu, enableFastCpu, fastCpuFallbacks } from "../lib/tfjs/fast_cpu.ts";
import {
  broadcastBinary,
  reduceMax,
  reduceSum,
  softmaxLastAxis,
} from "../lib/tfjs/kernels/elementwise.ts";
import {
  gatherAxis,
  padConstant,
  sliceBox,
  tile,
  transposeAxes,
} from "../lib/tfjs/kernels/slice.ts";

await tf.setBackend("cpu");
await tf.ready();

function randn(rng: Rng, shape: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from(rng.normals(n)), shape);
}

function fallbackCount(): number {
  return Object.values(fastCpuFallbacks()).reduce((a, b) => a + b, 0);
}

/** Asserts fast == stock (1e-5 relative to the reference scale) with no stock fallback. */
function assertSameAsStock(f: () => tf.Tensor | tf.Tensor[], what: string): void {
  disableFastCpu();
  const stock = [f()].flat();
  assert(enableFastCpu().enabled);
  const before = fallbackCount();
  const fast = [f()].flat();
  assertEquals(fallbackCount(), before, `${what}: fell back to the stock kernel`);
  disableFastCpu();
  assertEquals(fast.length, stock.length, what);
  stock.forEach((s, i) => {
    assertEquals(fast[i].shape, s.shape, what);
    const a = fast[i].dataSync(), b = s.dataSync();
    let err = 0, scale = 1e-6;
    for (let j = 0; j < a.length; j++) {
      err = Math.max(err, Math.abs(a[j] - b[j]));
      scale = Math.max(scale, Math.abs(b[j]));
    }
    assertLess(err / scale, 1e-5, `${what} output ${i}`);
  });
  tf.dispose([...stock, ...fast]);
}

Deno.test("fast cpu: broadcast Add/Sub/Mul/Div/SquaredDifference match the stock kernels", () => {
  const rng = new Rng(11);
  const pairs: [number[], number[]][] = [
    [[2, 3, 4], [2, 3, 4]],
    [[2, 5, 3, 2], [2, 1, 3, 1]],
    [[4, 3], [3]],
    [[3, 1, 5], [1, 4, 1]],
    [[6], []],
    [[], [2, 2]],
    [[2, 4, 4, 6], [2, 1, 1, 6]],
  ];
  for (const [as, bs] of pairs) {
    const a = randn(rng, as), b = tf.add(tf.abs(randn(rng, bs)), 0.5);
    assertSameAsStock(
      () => [
        tf.add(a, b),
        tf.sub(a, b),
        tf.mul(a, b),
        tf.div(a, b),
        tf.sub(b, a),
        tf.squaredDifference(a, b),
        tf.squaredDifference(b, a),
      ],
      `${as} op ${bs}`,
    );
    tf.dispose([a, b]);
  }
});

Deno.test("fast cpu: Sum, Mean (any axes, keepDims), Softmax, Sigmoid, moments match stock", () => {
  const rng = new Rng(12);
  const x = randn(rng, [3, 4, 5, 2]);
  const axesList: (number | number[] | undefined)[] = [undefined, 0, 3, -1, [1, 3], [0, 2], [
    0,
    1,
    2,
    3,
  ]];
  for (const axis of axesList) {
    for (const keep of [false, true]) {
      assertSameAsStock(
        () => [tf.sum(x, axis, keep), tf.mean(x, axis, keep)],
        `axis ${axis} ${keep}`,
      );
    }
  }
  assertSameAsStock(() => {
    const { mean, variance } = tf.moments(x, [1, 3], true);
    return [mean, variance, tf.softmax(x), tf.softmax(tf.mul(x, 30)), tf.sigmoid(tf.mul(x, 10))];
  }, "moments/softmax/sigmoid");
  tf.dispose(x);
});

Deno.test("fast cpu: large binary ops, sums, softmax and sigmoid (oneDNN paths) match stock", () => {
  const status = enableFastCpu();
  disableFastCpu();
  assert(status.enabled, status.reason);
  const rng = new Rng(15);
  const pairs: [number[], number[]][] = [
    [[4, 16, 16, 17], [4, 16, 16, 17]],
    [[4, 16, 16, 17], [4, 1, 1, 17]],
    [[3, 1, 5], [1, 4000, 1]],
    [[7, 3, 1000], [3, 1]],
    [[20000], []],
  ];
  for (const [as, bs] of pairs) {
    const a = randn(rng, as), b = tf.add(tf.abs(randn(rng, bs)), 0.5);
    assertSameAsStock(
      () => [tf.add(a, b), tf.sub(a, b), tf.mul(a, b), tf.div(a, b), tf.sub(b, a), tf.mul(b, a)],
      `${as} op ${bs}`,
    );
    tf.dispose([a, b]);
  }
  const x = randn(rng, [6, 10, 12, 33]);
  for (const axis of [3, [2, 3], [0, 1, 2], 0, [1, 2], undefined]) {
    assertSameAsStock(() => [tf.sum(x, axis, true), tf.mean(x, axis)], `sum axis ${axis}`);
  }
  // middle axes (323 rows): one ones-vector GEMM per leading index
  const y = randn(rng, [3, 17, 19, 17]);
  assertSameAsStock(() => [tf.sum(y, [1, 2], true), tf.mean(y, [1, 2])], "sum axes [1, 2]");
  tf.dispose(y);
  assertSameAsStock(
    () => [tf.softmax(tf.mul(x, 20)), tf.softmax(tf.reshape(x, [60, 396])), tf.sigmoid(x)],
    "softmax/sigmoid",
  );
  assertSameAsStock(
    () => [tf.concat([x, x], 1), tf.concat([x, x], 3), ...tf.split(x, [2, 10], 2)],
    "long-run concat/split",
  );
  tf.dispose(x);
});

Deno.test("fast cpu: Slice, SplitV (any axis), PadV2, Concat and Floor match stock", () => {
  const rng = new Rng(13);
  // 72 floats: JS loops; 4,608: oneDNN reorders
  for (const [a, b, c] of [[3, 4, 6], [12, 16, 24]]) {
    const x = randn(rng, [a, b, c]);
    assertSameAsStock(
      () => [
        tf.slice(x, [1, 0, 2], [2, 4, 3]),
        tf.slice(x, [0, 1, 0], [a, 2, c]),
        tf.slice(x, [2, 3, 5], [1, 1, 1]),
        ...tf.split(x, 3, 2),
        ...tf.split(x, [1, b - 1], 1),
        ...tf.split(x, [2, a - 2], 0),
        tf.pad(x, [[1, 0], [0, 2], [3, 1]]),
        tf.pad(x, [[0, 0], [1, 1], [0, 0]], -2.5),
        tf.pad(tf.reshape(x, [a * b * c]), [[2, 3]]),
        tf.concat([x, tf.slice(x, [0, 0, 1], [a, b, 2])], 2),
        tf.concat([tf.slice(x, [1, 0, 0], [2, b, c]), x, x], 0),
        tf.concat([x, tf.zeros([a, 0, c]), tf.slice(x, [0, 1, 0], [a, 1, c])], 1),
        tf.floor(tf.mul(x, 3)),
      ],
      `slices and pads of [${a}, ${b}, ${c}]`,
    );
    tf.dispose(x);
  }
});

Deno.test("fast cpu: Transpose (identity, 2-d, 4-d perms) and its gradient match stock", () => {
  const rng = new Rng(15);
  // 120 floats: JS loops; 15,360: oneDNN reorders
  for (const [a, b, c, d] of [[2, 3, 4, 5], [4, 8, 16, 30]]) {
    const x = randn(rng, [a, b, c, d]), m = randn(rng, [a * b, c * d]);
    const w = randn(rng, [d, 7]), u = randn(rng, [a * b * c, 7]);
    assertSameAsStock(
      () => [
        tf.transpose(x, [0, 1, 2, 3]),
        tf.transpose(x, [3, 1, 2, 0]),
        tf.transpose(x, [0, 2, 1, 3]),
        tf.transpose(x, [1, 2, 0, 3]),
        tf.transpose(x),
        tf.transpose(m),
        tf.transpose(m, [0, 1]),
        // tfjs-layers' Dense on a rank-4 input: an identity Transpose of its kernel, and back
        tf.grad((ww: tf.Tensor) =>
          tf.sum(tf.mul(tf.matMul(tf.reshape(x, [-1, d]), tf.transpose(ww, [0, 1])), u))
        )(w),
        tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(tf.transpose(xx, [2, 0, 3, 1]), 2)))(x),
      ],
      `transposes of [${a}, ${b}, ${c}, ${d}]`,
    );
    tf.dispose([x, m, w, u]);
  }
});

Deno.test("fast cpu: gradients through GroupNorm-like broadcast chains match stock", () => {
  const rng = new Rng(14);
  const x = randn(rng, [2, 6, 4, 2]), g = randn(rng, [8]), w = randn(rng, [8, 9]);
  const f = (xx: tf.Tensor, gg: tf.Tensor, ww: tf.Tensor) => {
    const { mean, variance } = tf.moments(xx, [1, 3], true);
    const n = tf.mul(tf.sub(xx, mean), tf.rsqrt(tf.add(variance, 1e-5)));
    const h = tf.mul(tf.reshape(n, [2, 6, 8]), gg);
    const [q, k] = tf.split(
      tf.reshape(tf.matMul(tf.reshape(h, [12, 8]), ww), [2, 6, 9]),
      [4, 5],
      2,
    );
    return tf.sum(tf.mul(tf.softmax(tf.matMul(q, q, false, true)), tf.sum(k, 2, true)));
  };
  assertSameAsStock(() => tf.grads(f)([x, g, w]), "grads");
  tf.dispose([x, g, w]);
});

Deno.test("fast cpu: Exp, Neg, Relu, Step, Max, Tile, GatherV2, FusedBatchNorm match stock", () => {
  const rng = new Rng(16);
  // Small (JS loops) and >= 16384 elements (oneDNN eltwise and binary paths).
  for (const shape of [[3, 4, 5], [4, 16, 16, 17]]) {
    const x = randn(rng, shape), c = shape[shape.length - 1];
    const [mean, offset, scale] = [0, 1, 2].map(() => randn(rng, [c]));
    const variance = tf.add(tf.abs(randn(rng, [c])), 0.1);
    assertSameAsStock(
      () => [
        tf.exp(x),
        tf.neg(x),
        tf.relu(x),
        tf.step(x),
        tf.step(x, 0.25),
        tf.max(x),
        tf.max(x, -1, true),
        tf.max(x, [0, 1]),
        tf.logSoftmax(tf.reshape(x, [-1, c])),
        tf.batchNorm(x, mean, variance, offset, scale, 1e-3),
        tf.batchNorm(x, mean, variance),
        tf.batchNorm(x, tf.scalar(0.5), tf.scalar(2), undefined, tf.scalar(1.5), 1e-5),
      ],
      `unary/max/batchNorm [${shape}]`,
    );
    tf.dispose([x, mean, offset, scale, variance]);
  }
  // oneDNN's max skips NaN: rows with NaN (or both infinities) must still give tfjs' answer
  const big = randn(rng, [64, 512]).dataSync().slice();
  big[3 * 512 + 7] = NaN;
  big[5 * 512 + 1] = Infinity;
  big[5 * 512 + 2] = -Infinity;
  big[9 * 512 + 9] = -Infinity;
  const withNaN = tf.tensor2d(big, [64, 512]);
  const finite = tf.tensor2d(big.map((v) => (v !== v ? 0 : v)), [64, 512]);
  for (const t of [withNaN, finite]) {
    for (const axis of [1, 0, undefined]) {
      disableFastCpu();
      const stock = Array.from(tf.max(t, axis).dataSync(), String);
      assert(enableFastCpu().enabled);
      const fast = Array.from(tf.max(t, axis).dataSync(), String);
      disableFastCpu();
      assertEquals(fast, stock, `max axis ${axis}`);
    }
  }
  // Step with alpha 0 runs as oneDNN's ReLU backward, which maps NaN to 0: NaN must stay NaN
  const signed = big.map((v, i) => (v !== v || v === Infinity ? 0 : i % 7 === 0 ? -0 : v));
  const zerosAndNegInf = tf.tensor2d(signed, [64, 512]);
  for (const t of [withNaN, finite, zerosAndNegInf]) {
    disableFastCpu();
    const stock = Array.from(tf.step(t).dataSync(), String);
    assert(enableFastCpu().enabled);
    const fast = Array.from(tf.step(t).dataSync(), String);
    disableFastCpu();
    assertEquals(fast, stock, "step");
  }
  tf.dispose([withNaN, finite, zerosAndNegInf]);
  const x = randn(rng, [5, 3, 4]);
  const idx = tf.tensor1d([4, 0, 2, 2], "int32");
  assertSameAsStock(
    () => [
      tf.tile(x, [1, 1, 1]),
      tf.tile(x, [2, 1, 3]),
      tf.tile(tf.reshape(tf.slice(x, [0, 0, 0], [1, 1, 4]), [1, 1, 1, 4]), [3, 2, 2, 1]),
      tf.tile(x, [1, 0, 2]),
      tf.gather(x, idx),
      tf.gather(x, tf.tensor1d([2, 1], "int32"), 1),
      tf.gather(x, tf.tensor2d([[3, 0], [1, 1]], [2, 2], "int32"), 2),
    ],
    "tile/gather",
  );
  // A per-sample mean [N, 1, 1] with N = C (5) is not per-channel: FusedBatchNorm must hand it
  // to the stock kernel rather than read it as channel statistics.
  const xc = tf.tile(x.reshape([5, 12, 1]), [1, 1, 5]), mean = tf.mean(xc, [1, 2], true);
  const perSample = () => tf.batchNorm(xc, mean, tf.ones([5, 1, 1])).dataSync();
  const stock = perSample();
  assert(enableFastCpu().enabled);
  const before = fastCpuFallbacks().FusedBatchNorm ?? 0;
  const fast = perSample();
  assertEquals(fastCpuFallbacks().FusedBatchNorm, before + 1);
  disableFastCpu();
  assertEquals(Array.from(fast), Array.from(stock));
  tf.dispose([x, idx, xc, mean]);
});

Deno.test("fast cpu: gradients of a BatchNorm-ReLU-log-softmax contrast loss match stock", () => {
  const rng = new Rng(17);
  const x = randn(rng, [2, 8, 8, 6]), w = randn(rng, [6, 40]), bank = randn(rng, [50, 40]);
  const [mean, offset, scale] = [0, 1, 2].map(() => randn(rng, [6]));
  const variance = tf.add(tf.abs(randn(rng, [6])), 0.1);
  const idx = tf.tensor1d([3, 7, 7, 41, 0, 12], "int32");
  const f = (xx: tf.Tensor, ww: tf.Tensor) => {
    const h = tf.relu(tf.batchNorm(xx, mean, variance, offset, scale, 1e-5));
    const q = tf.matMul(tf.reshape(h, [128, 6]), ww);
    const logits = tf.matMul(q, tf.gather(bank, idx), false, true);
    return tf.neg(tf.sum(tf.mul(tf.exp(tf.logSoftmax(logits)), logits)));
  };
  assertSameAsStock(() => tf.grads(f)([x, w]), "grads");
  tf.dispose([x, w, bank, mean, offset, scale, variance, idx]);
});

Deno.test("fast cpu: FusedBatchNorm's gradient in every input matches stock (rank-1 statistics; rank-4: x)", () => {
  const rng = new Rng(18);
  const x = randn(rng, [3, 5, 4, 6]), dy = randn(rng, [3, 5, 4, 6]);
  const [mean, offset, scale] = [0, 1, 2].map(() => randn(rng, [6]));
  const variance = tf.add(tf.abs(randn(rng, [6])), 0.1);
  const loss = (y: tf.Tensor) => tf.sum(tf.mul(y, dy));
  const all = (xx: tf.Tensor, m: tf.Tensor, v: tf.Tensor, o: tf.Tensor, s: tf.Tensor) =>
    loss(tf.batchNorm(xx, m, v, o, s, 1e-3));
  const r4 = (t: tf.Tensor) => tf.reshape(t, [1, 1, 1, 6]);
  assertSameAsStock(
    () => [
      ...tf.grads(all)([x, mean, variance, offset, scale]),
      ...tf.grads((xx: tf.Tensor, v: tf.Tensor) =>
        loss(tf.batchNorm(xx, mean, v, offset, tf.neg(scale)))
      )([
        x,
        variance,
      ]),
      // (the stock gradients in [1, 1, 1, C] statistics fail on their reshape; x's works)
      tf.grad((xx: tf.Tensor) => all(xx, r4(mean), r4(variance), r4(offset), r4(scale)))(x),
      // training mode: the statistics are the batch's, so dx flows through them too
      tf.grad((xx: tf.Tensor) => {
        const { mean: m, variance: v } = tf.moments(xx, [0, 1, 2]);
        return loss(tf.batchNorm(xx, m, v, offset, scale, 1e-5));
      })(x),
    ],
    "batchNorm grads",
  );
  tf.dispose([x, dy, mean, offset, scale, variance]);
});

Deno.test("pure helpers: analytic values and input checks", () => {
  const r = broadcastBinary(
    "sub",
    new Float32Array([1, 2, 3, 4, 5, 6]),
    [2, 3],
    new Float32Array([1, 2]),
    [2, 1],
  );
  assertEquals(r.shape, [2, 3]);
  assertEquals(Array.from(r.values), [0, 1, 2, 2, 3, 4]);
  assertEquals(Array.from(reduceSum(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3], [0])), [5, 7, 9]);
  assertEquals(Array.from(reduceSum(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3], [1])), [6, 15]);
  const sm = softmaxLastAxis(new Float32Array([0, Math.log(3), 1000, 1000]), 2);
  [0.25, 0.75, 0.5, 0.5].forEach((p, i) => assertLess(Math.abs(sm[i] - p), 1e-7));
  assertEquals(Array.from(sliceBox(new Float32Array([0, 1, 2, 3, 4, 5]), [2, 3], [0, 1], [2, 2])), [
    1,
    2,
    4,
    5,
  ]);
  const padded = padConstant(new Float32Array([1, 2]), [1, 2], [[0, 1], [1, 0]], 7);
  assertEquals(padded.shape, [2, 3]);
  assertEquals(Array.from(padded.values), [7, 1, 2, 7, 7, 7]);
  assertThrows(() => padConstant(new Float32Array(2), [2], [[-1, 0]], 0), RangeError, "paddings");
  assertThrows(() => reduceSum(new Float32Array(6), [2, 3], [2]), RangeError, "axes");
  assertThrows(() => tile(new Float32Array(6), [2, 3], [2]), RangeError, "reps");
  assertThrows(() => tile(new Float32Array(6), [2, 3], [1, -1]), RangeError, "reps");
  assertEquals(tile(Float32Array.of(1, 2), [2], [2]).values, Float32Array.of(1, 2, 1, 2));
  // Out-of-range indices are the stock kernel's to report.
  assertEquals(gatherAxis(new Float32Array(6), [2, 3], [0, 3], 1), undefined);
  assertEquals(
    gatherAxis(Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3], [2, 0], 1),
    Float32Array.of(3, 1, 6, 4),
  );
  assertEquals(reduceMax(Float32Array.of(1, NaN, 3, 4), [2, 2], [1]), Float32Array.of(NaN, 4));
  assertThrows(() => sliceBox(new Float32Array(6), [2, 3], [1, 2], [1, 2]), RangeError, "axis 1");
  const t = transposeAxes(Float32Array.of(0, 1, 2, 3, 4, 5), [2, 3], [1, 0]);
  assertEquals(t.shape, [3, 2]);
  assertEquals(t.values, Float32Array.of(0, 3, 1, 4, 2, 5));
  assertThrows(() => transposeAxes(new Float32Array(6), [2, 3], [0, 0]), RangeError, "perm");
  assertThrows(() => transposeAxes(new Float32Array(6), [2, 3], [0]), RangeError, "perm");
  assertThrows(() => broadcastBinary("add", new Float32Array(6), [2, 3], new Float32Array(2), [2]));
});

Deno.test("fast cpu: x2 / x3 nearest upsample matches stock; its gradient is the block sum", () => {
  const rng = new Rng(21);
  // JS loops; oneDNN (>= 16,384 floats in): a reorder and ones-vector matmuls
  for (
    const [shape, f] of [[[2, 3, 4, 5], 2], [[1, 2, 2, 3], 3], [[3, 8, 6, 120], 2], [
      [1, 6, 5, 600],
      3,
    ]] as const
  ) {
    const [b, h, w, c] = shape;
    const x = randn(rng, [...shape]) as tf.Tensor4D;
    const dy = randn(rng, [b, h * f, w * f, c]);
    const size: [number, number] = [h * f, w * f];
    assertSameAsStock(() => tf.image.resizeNearestNeighbor(x, size), `resize x${f}`);
    // The stock ResizeNearestNeighborGrad of tfjs 4.22 mixes up images when the batch is > 1
    // (measured), so the reference here is the adjoint itself: each input pixel receives the
    // sum of dy over its f x f output block.
    const blockSum = tf.sum(tf.reshape(dy, [b, h, f, w, f, c]), [2, 4]);
    assert(enableFastCpu().enabled);
    const before = fallbackCount();
    const grad = tf.grad((v: tf.Tensor) =>
      tf.sum(tf.mul(tf.image.resizeNearestNeighbor(v as tf.Tensor4D, size), dy))
    )(x);
    assertEquals(fallbackCount(), before, "resize grad fell back to the stock kernel");
    disableFastCpu();
    const gv = grad.dataSync(), rv = blockSum.dataSync();
    gv.forEach((v, i) => assertLess(Math.abs(v - rv[i]), 1e-5 * (1 + Math.abs(rv[i]))));
    tf.dispose([x, dy, blockSum, grad]);
  }
});
