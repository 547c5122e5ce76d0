import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertGreater, assertLess, assertThrows } from "@std/assert";
import { isp2pLoss } from "../lib/distill/isp2p.ts";
import {
  checkGradFd,
  dotJs,
  klLogitsJs,
  maxAbsDiff,
  randn,
  unitJs,
  useCpu,
} from "./distill_helpers.ts";

await useCpu();

/** IS_P2P from its definition with plain loops; map[b][p] is the C-vector of pixel p. */
function isp2pJs(S: number[][][], T: number[][][], tau: number): number {
  const B = S.length, hw = S[0].length;
  const s = S.map((m) => m.map(unitJs)), t = T.map((m) => m.map(unitJs));
  let total = 0;
  for (let b = 0; b < B; b++) {
    for (let d = 0; d < B; d++) {
      for (let i = 0; i < hw; i++) {
        const rowS = s[d].map((v) => dotJs(s[b][i], v) / tau);
        const rowT = t[d].map((v) => dotJs(t[b][i], v) / tau);
        total += klLogitsJs(rowT, rowS);
      }
    }
  }
  return total / (B * B * hw);
}

const toNested = (x: tf.Tensor4D) => {
  const [B, h, w, C] = x.shape;
  return (x.reshape([B, h * w, C]).arraySync() as number[][][]);
};

Deno.test("isp2pLoss: matches the plain-loop definition on B=2, hw=2, C=2", () => {
  const S = [[[1, 0.5], [-0.3, 2]], [[0.2, 0.2], [1.5, -1]]];
  const T = [[[0.1, 1], [1, 1]], [[-1, 0.4], [0.7, 0.3]]];
  for (const tau of [1, 0.5]) {
    const got = tf.tidy(() =>
      isp2pLoss(tf.tensor4d(S.flat(2), [2, 1, 2, 2]), tf.tensor4d(T.flat(2), [2, 1, 2, 2]), { tau })
        .dataSync()[0]
    );
    assertAlmostEquals(got, isp2pJs(S, T, tau), 1e-6);
  }
});

Deno.test("isp2pLoss: random B=3, 2x2 map, C=4 matches loops; zero when equal; non-negative", () => {
  const fS = randn([3, 2, 2, 4], 1) as tf.Tensor4D, fT = randn([3, 2, 2, 4], 2) as tf.Tensor4D;
  const got = tf.tidy(() => isp2pLoss(fS, fT).dataSync()[0]);
  assertAlmostEquals(got, isp2pJs(toNested(fS), toNested(fT), 1), 1e-5);
  assertGreater(got, 0);
  // positive scaling per pixel does not change cosine similarities: still zero
  const same = tf.tidy(() => isp2pLoss(tf.mul(fT, 3), fT).dataSync()[0]);
  assertAlmostEquals(same, 0, 1e-6);
  for (let seed = 10; seed < 14; seed++) {
    const v = tf.tidy(() =>
      isp2pLoss(
        randn([2, 2, 3, 3], seed) as tf.Tensor4D,
        randn([2, 2, 3, 3], seed + 9) as tf.Tensor4D,
        {
          tau: 0.3,
        },
      ).dataSync()[0]
    );
    assertGreater(v, 0);
  }
  tf.dispose([fS, fT]);
});

Deno.test("isp2pLoss: chunked equals unchunked, values and gradients (B=5, chunks 1, 2, 3)", () => {
  const fS = randn([5, 2, 3, 4], 3) as tf.Tensor4D, fT = randn([5, 2, 3, 4], 4) as tf.Tensor4D;
  const value = (chunkSize?: number) =>
    tf.tidy(() => isp2pLoss(fS, fT, { tau: 0.7, chunkSize }).dataSync()[0]);
  const grad = (chunkSize?: number) =>
    tf.grad((x: tf.Tensor) => isp2pLoss(x as tf.Tensor4D, fT, { tau: 0.7, chunkSize }))(fS);
  const v0 = value(), g0 = grad();
  for (const n of [1, 2, 3]) {
    assertAlmostEquals(value(n), v0, 1e-6);
    const g = grad(n);
    assertLess(maxAbsDiff(g, g0), 1e-6);
    g.dispose();
  }
  g0.dispose();
  tf.dispose([fS, fT]);
});

Deno.test("isp2pLoss: gradient matches central differences (unchunked and chunked)", () => {
  const fS = randn([3, 2, 2, 3], 5), fT = randn([3, 2, 2, 3], 6) as tf.Tensor4D;
  checkGradFd((x) => isp2pLoss(x as tf.Tensor4D, fT, { tau: 0.5 }), fS);
  checkGradFd((x) => isp2pLoss(x as tf.Tensor4D, fT, { tau: 0.5, chunkSize: 2 }), fS, { seed: 3 });
  tf.dispose([fS, fT]);
});

Deno.test("isp2pLoss: chunked forward and backward release their intermediates", () => {
  const fS = randn([4, 2, 2, 3], 7), fT = randn([4, 2, 2, 3], 8) as tf.Tensor4D;
  const before = tf.memory().numTensors;
  const g = tf.grad((x: tf.Tensor) => isp2pLoss(x as tf.Tensor4D, fT, { chunkSize: 1 }))(fS);
  g.dispose();
  tf.tidy(() => {
    isp2pLoss(fS as tf.Tensor4D, fT, { chunkSize: 3 });
  });
  assertAlmostEquals(tf.memory().numTensors, before, 0);
  tf.dispose([fS, fT]);
});

Deno.test("isp2pLoss: B=128 with a 4x4 map runs chunked and matches the whole batch", () => {
  const fS = randn([128, 4, 4, 8], 9) as tf.Tensor4D,
    fT = randn([128, 4, 4, 8], 10) as tf.Tensor4D;
  const chunked = tf.tidy(() => isp2pLoss(fS, fT, { chunkSize: 16 }).dataSync()[0]);
  const whole = tf.tidy(() => isp2pLoss(fS, fT).dataSync()[0]);
  assertAlmostEquals(chunked, whole, 1e-5 * Math.abs(whole));
  tf.dispose([fS, fT]);
});

Deno.test("isp2pLoss: bad input throws naming the parameter", () => {
  const a = tf.zeros([2, 2, 2, 3]) as tf.Tensor4D, b = tf.zeros([2, 2, 2, 4]) as tf.Tensor4D;
  assertThrows(() => isp2pLoss(a, b), RangeError, "fStudent");
  assertThrows(() => isp2pLoss(a, a, { chunkSize: 0 }), RangeError, "options.chunkSize");
  assertThrows(() => isp2pLoss(a, a, { tau: -1 }), RangeError, "options.tau");
  tf.dispose([a, b]);
});
