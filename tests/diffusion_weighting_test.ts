import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import * as tf from "@tensorflow/tfjs";
import {
  DIFFUSION_LOSS_KINDS,
  diffusionLoss,
  type DiffusionLossKind,
  perSampleMse,
} from "../lib/diffusion/weighting.ts";

await tf.setBackend("cpu");
await tf.ready();

// Two samples of shape [1, 2, 1] (NHWC). Per-sample MSEs, by hand:
// sample 0: x err (1, 1) -> mse_x 1;    eps err (2, 0) -> mse_eps 2
// sample 1: x err (0, 2) -> mse_x 2;    eps err (0, 1) -> mse_eps 0.5
const x0 = [[[[0]], [[0]]], [[[1]], [[1]]]];
const predX0 = [[[[1]], [[-1]]], [[[1]], [[3]]]];
const eps = [[[[0]], [[0]]], [[[0]], [[0]]]];
const predEps = [[[[2]], [[0]]], [[[0]], [[1]]]];
const ABAR = [0.36, 0.64]; // sqrt: 0.6, 0.8; SNR: 0.5625, 16/9.

function loss(kind: DiffusionLossKind, extra: { gamma?: number } = {}): number {
  return tf.tidy(() =>
    diffusionLoss({
      kind,
      predX0: tf.tensor4d(predX0),
      x0: tf.tensor4d(x0),
      predEps: tf.tensor4d(predEps),
      eps: tf.tensor4d(eps),
      alphaBar: ABAR,
      ...extra,
    }).arraySync()
  );
}

Deno.test("perSampleMse averages over all but the batch axis", () => {
  tf.tidy(() => {
    const m = perSampleMse(tf.tensor4d(predX0), tf.tensor4d(x0));
    assertEquals(m.shape, [2]);
    const v = m.arraySync();
    assertAlmostEquals(v[0], 1, 1e-6);
    assertAlmostEquals(v[1], 2, 1e-6);
    assertEquals(perSampleMse(tf.tensor1d([1, 2]), tf.tensor1d([0, 0])).arraySync(), [1, 4]);
  });
  tf.tidy(() => {
    assertThrows(
      () => perSampleMse(tf.zeros([2, 3]), tf.zeros([2, 4])),
      RangeError,
      "b must have the shape of a",
    );
  });
});

Deno.test("each weighting matches hand-computed values", () => {
  const before = tf.memory().numTensors;
  assertAlmostEquals(loss("x"), (1 + 2) / 2, 1e-6);
  assertAlmostEquals(loss("eps"), (2 + 0.5) / 2, 1e-6);
  assertAlmostEquals(loss("both"), (2 + 2) / 2, 1e-6);
  // (SNR + 1) = 1 / (1 - abar): 1/0.64 and 1/0.36.
  assertAlmostEquals(loss("snr+1"), (1 / 0.64 + 2 / 0.36) / 2, 1e-5);
  // v error = sqrt(abar) eps_err - sqrt(1-abar) x_err:
  // sample 0: 0.6*(2,0) - 0.8*(1,-1) = (0.4, 0.8)  -> mse 0.4
  // sample 1: 0.8*(0,1) - 0.6*(0,2)  = (0, -0.4)   -> mse 0.08
  assertAlmostEquals(loss("v"), (0.4 + 0.08) / 2, 1e-6);
  // min-SNR-gamma, eps form: weight min(1, gamma / SNR); SNR = 0.5625, 1.7778.
  assertAlmostEquals(loss("min-snr"), (2 + 0.5) / 2, 1e-6); // gamma 5: both weights 1
  assertAlmostEquals(
    loss("min-snr", { gamma: 1 }),
    (2 * 1 + 0.5 * (1 / (16 / 9))) / 2,
    1e-6,
  );
  assertEquals(tf.memory().numTensors, before, "no leaked tensors");
});

Deno.test("min-snr weight is 1 at SNR 0 and 0 at SNR inf; alphaBar may be a tensor", () => {
  const got = tf.tidy(() =>
    diffusionLoss({
      kind: "min-snr",
      predEps: tf.tensor4d(predEps),
      eps: tf.tensor4d(eps),
      alphaBar: tf.tensor1d([0, 1]),
    }).arraySync()
  );
  assertAlmostEquals(got, (2 * 1 + 0.5 * 0) / 2, 1e-6);
});

Deno.test("the gradient of the x loss is 2 (pred - x0) / (B * D)", () => {
  const g = tf.tidy(() =>
    tf.grad((p: tf.Tensor) => diffusionLoss({ kind: "x", predX0: p, x0: tf.tensor4d(x0) }))(
      tf.tensor4d(predX0),
    ).arraySync() as number[][][][]
  );
  const want = [[[[0.5]], [[-0.5]]], [[[0]], [[1]]]]; // 2 * err / 4
  g.flat(3).forEach((v, i) => assertAlmostEquals(v, want.flat(3)[i], 1e-6));
});

Deno.test("diffusionLoss validates kind, inputs, shapes, alphaBar and gamma", () => {
  const before = tf.memory().numTensors;
  const a = tf.tensor4d(x0);
  const t = () => a;
  const wrongShape = tf.zeros([2, 2, 1, 2]);
  const threeAbar = tf.tensor1d([0.5, 0.5, 0.5]);
  assertThrows(
    // @ts-expect-error: an unknown kind is a type error and a run-time error.
    () => diffusionLoss({ kind: "l1", predX0: t(), x0: t() }),
    RangeError,
    "kind",
  );
  assertThrows(() => diffusionLoss({ kind: "eps", predX0: t(), x0: t() }), TypeError, "predEps");
  assertThrows(
    () => diffusionLoss({ kind: "snr+1", predX0: t(), x0: t() }),
    TypeError,
    "alphaBar",
  );
  assertThrows(
    () => diffusionLoss({ kind: "x", predX0: t(), x0: wrongShape }),
    RangeError,
    "x0 must have the shape of predX0",
  );
  assertThrows(
    () => diffusionLoss({ kind: "v", predX0: t(), x0: t(), predEps: t(), eps: t(), alphaBar: [1] }),
    RangeError,
    "alphaBar must have length B = 2",
  );
  assertThrows(
    () =>
      diffusionLoss({ kind: "v", predX0: t(), x0: t(), predEps: t(), eps: t(), alphaBar: [1, 2] }),
    RangeError,
    "alphaBar[1]",
  );
  assertThrows(
    () =>
      diffusionLoss({
        kind: "min-snr",
        predEps: t(),
        eps: t(),
        alphaBar: threeAbar,
      }),
    RangeError,
    "alphaBar must have shape [2]",
  );
  assertThrows(
    () => diffusionLoss({ kind: "min-snr", predEps: t(), eps: t(), alphaBar: ABAR, gamma: 0 }),
    RangeError,
    "gamma",
  );
  assertEquals(DIFFUSION_LOSS_KINDS.length, 6);
  tf.dispose([a, wrongShape, threeAbar]);
  assertEquals(tf.memory().numTensors, before, "no leaked tensors on the error paths");
});

Deno.test("with the eps implied by predX0: v-MSE = SNR+1 weighting, both = max(SNR, 1)", () => {
  tf.tidy(() => {
    const abar = [0.2, 0.5, 0.9];
    const shape: [number, number, number, number] = [3, 4, 4, 1];
    const x = tf.randomNormal(shape, 0, 1, "float32", 1);
    const e = tf.randomNormal(shape, 0, 1, "float32", 2);
    const px = tf.randomNormal(shape, 0, 1, "float32", 3);
    const a = tf.tensor4d(abar.map(Math.sqrt), [3, 1, 1, 1]);
    const s = tf.tensor4d(abar.map((v) => Math.sqrt(1 - v)), [3, 1, 1, 1]);
    const z = a.mul(x).add(s.mul(e));
    const pe = z.sub(a.mul(px)).div(s); // eps implied by predX0
    const input = { predX0: px, x0: x, predEps: pe, eps: e, alphaBar: abar };
    const v = diffusionLoss({ kind: "v", ...input }).arraySync();
    assertAlmostEquals(diffusionLoss({ kind: "snr+1", ...input }).arraySync(), v, 1e-5 * v);
    const mx = perSampleMse(px, x).arraySync();
    const want = mx.reduce((acc, m, i) => acc + Math.max(abar[i] / (1 - abar[i]), 1) * m, 0) / 3;
    assertAlmostEquals(diffusionLoss({ kind: "both", ...input }).arraySync(), want, 1e-5 * want);
  });
});
