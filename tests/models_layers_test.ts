import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  ChannelBias,
  GroupNorm,
  groupNormGroups,
  silu,
  SinusoidalEmbedding,
  SpatialSelfAttention,
} from "../lib/models/layers.ts";

await tf.setBackend("cpu");
await tf.ready();

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, msg: string) {
  assertEquals(a.length, b.length, `${msg}: length`);
  for (let i = 0; i < a.length; i++) assertAlmostEquals(a[i], b[i], tol, `${msg}[${i}]`);
}

/** Deterministic pseudo-random values in [-2, 2). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = (s / 2147483648) * 4 - 2;
  }
  return out;
}

Deno.test("groupNormGroups picks the largest divisor <= 32", () => {
  const cases: [number, number][] = [
    [32, 32],
    [64, 32],
    [24, 24],
    [48, 24],
    [1, 1],
    [7, 7],
    [
      33,
      11,
    ],
    [96, 32],
    [37, 1],
  ];
  for (const [c, g] of cases) assertEquals(groupNormGroups(c), g, `channels ${c}`);
  assertEquals(groupNormGroups(12, 4), 4);
  assertThrows(() => groupNormGroups(0), RangeError, "channels");
  assertThrows(() => groupNormGroups(8, 0), RangeError, "maxGroups");
});

/** Plain-JS group norm of NHWC data with gamma = 1, beta = 0. */
function groupNormRef(x: Float32Array, [b, h, w, c]: number[], g: number): Float64Array {
  const out = new Float64Array(x.length);
  const cg = c / g;
  for (let n = 0; n < b; n++) {
    for (let gi = 0; gi < g; gi++) {
      const idx: number[] = [];
      for (let p = 0; p < h * w; p++) {
        for (let k = 0; k < cg; k++) idx.push((n * h * w + p) * c + gi * cg + k);
      }
      const mean = idx.reduce((s, i) => s + x[i], 0) / idx.length;
      const v = idx.reduce((s, i) => s + (x[i] - mean) ** 2, 0) / idx.length;
      for (const i of idx) out[i] = (x[i] - mean) / Math.sqrt(v + 1e-5);
    }
  }
  return out;
}

Deno.test("GroupNorm matches a plain per-group normalisation, with and without SiLU", () => {
  const shape = [2, 3, 3, 6];
  const data = values(2 * 3 * 3 * 6, 7);
  const ref = groupNormRef(data, shape, 6);
  const x = tf.tensor4d(data, shape as [number, number, number, number]);
  const plain = new GroupNorm().apply(x) as tf.Tensor;
  assertClose(plain.dataSync(), ref, 1e-4, "GN");
  const fused = new GroupNorm({ silu: true }).apply(x) as tf.Tensor;
  assertClose(fused.dataSync(), ref.map((v) => v / (1 + Math.exp(-v))), 1e-4, "GN+SiLU");
  // Fewer groups than channels: 6 channels with at most 4 groups -> 3 groups of 2.
  const g3 = new GroupNorm({ maxGroups: 4 }).apply(x) as tf.Tensor;
  assertClose(g3.dataSync(), groupNormRef(data, shape, 3), 1e-4, "GN(3 groups)");
  tf.dispose([x, plain, fused, g3]);
  assertThrows(() => new GroupNorm({ epsilon: 0 }), RangeError, "epsilon");
});

Deno.test("GroupNorm input gradient matches central finite differences", () => {
  const shape: [number, number, number, number] = [1, 2, 2, 4];
  const x0 = values(16, 3);
  const w = tf.tensor4d(values(16, 11), shape);
  const layer = new GroupNorm({ maxGroups: 2, silu: true });
  const f = (x: tf.Tensor) => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, w));
  const loss = (x: Float32Array) => tf.tidy(() => f(tf.tensor4d(x, shape)).dataSync()[0]);
  const grad = tf.tidy(() => tf.grad(f)(tf.tensor4d(x0, shape)).dataSync());
  const h = 1e-2;
  for (let i = 0; i < x0.length; i++) {
    const xp = x0.slice(), xm = x0.slice();
    xp[i] += h;
    xm[i] -= h;
    const fd = (loss(xp) - loss(xm)) / (2 * h);
    assertAlmostEquals(grad[i], fd, 5e-3 + 1e-2 * Math.abs(fd), `dL/dx[${i}]`);
  }
  w.dispose();
});

Deno.test("SinusoidalEmbedding interleaves sin and cos of t * 10000^(-2i/dim)", () => {
  const e = new SinusoidalEmbedding({ dim: 4 }).apply(tf.tensor1d([0, 5])) as tf.Tensor;
  assertEquals(e.shape, [2, 4]);
  const expected = [0, 1, 0, 1, Math.sin(5), Math.cos(5), Math.sin(0.05), Math.cos(0.05)];
  assertClose(e.dataSync(), expected, 1e-6, "embedding");
  e.dispose();
  assertThrows(() => new SinusoidalEmbedding({ dim: 3 }), RangeError, "dim");
});

Deno.test("ChannelBias adds a per-sample per-channel bias", () => {
  const h = tf.zeros([2, 2, 2, 3]);
  const bias = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
  const y = new ChannelBias({}).apply([h, bias]) as tf.Tensor;
  const d = y.dataSync();
  for (let i = 0; i < d.length; i++) {
    const n = Math.floor(i / 12);
    assertEquals(d[i], 1 + (i % 3) + 3 * n, `y[${i}]`);
  }
  tf.dispose([h, bias, y]);
});

Deno.test("SpatialSelfAttention equals softmax(q k^T / sqrt(C)) v computed by hand", () => {
  const [b, hw, c] = [2, 4, 3];
  const data = values(b * hw * 3 * c, 5);
  const x = tf.tensor4d(data, [b, 2, 2, 3 * c]);
  const y = new SpatialSelfAttention({}).apply(x) as tf.Tensor;
  assertEquals(y.shape, [b, 2, 2, c]);
  const expected: number[] = [];
  const at = (n: number, p: number, part: number, k: number) =>
    data[(n * hw + p) * 3 * c + part * c + k];
  for (let n = 0; n < b; n++) {
    for (let i = 0; i < hw; i++) {
      const logits = Array.from({ length: hw }, (_, j) => {
        let s = 0;
        for (let k = 0; k < c; k++) s += at(n, i, 0, k) * at(n, j, 1, k);
        return s / Math.sqrt(c);
      });
      const m = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - m));
      const z = e.reduce((s, v) => s + v, 0);
      for (let k = 0; k < c; k++) {
        expected.push(e.reduce((s, v, j) => s + (v / z) * at(n, j, 2, k), 0));
      }
    }
  }
  assertClose(y.dataSync(), expected, 1e-5, "attention");
  tf.dispose([x, y]);
});

Deno.test("silu is x * sigmoid(x)", () => {
  const y = silu(tf.tensor1d([-2, 0, 3]));
  assertClose(y.dataSync(), [-2 / (1 + Math.exp(2)), 0, 3 / (1 + Math.exp(-3))], 1e-6, "silu");
  y.dispose();
});
