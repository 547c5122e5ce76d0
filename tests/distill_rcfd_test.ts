import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertGreater, assertThrows } from "@std/assert";
import {
  klDivBatchmean,
  klDivSum,
  l2NormalizeLastAxis,
  rcfdLoss,
  stopGradient,
} from "../lib/distill/rcfd.ts";
import { checkGradFd, klLogitsJs, randn, useCpu } from "./distill_helpers.ts";

await useCpu();

Deno.test("klDivBatchmean: hand-computed 2x3 value, divided by the first axis", () => {
  const p = [[1, 0, -1], [0.5, 0.5, 2]], q = [[0, 0, 0], [2, -1, 0.3]];
  const expected = (klLogitsJs(p[0], q[0]) + klLogitsJs(p[1], q[1])) / 2;
  const got = tf.tidy(() => klDivBatchmean(tf.tensor2d(p), tf.tensor2d(q)).dataSync()[0]);
  assertAlmostEquals(got, expected, 1e-6);
  const got3 = tf.tidy(() => klDivBatchmean(tf.tensor3d([p]), tf.tensor3d([q])).dataSync()[0] // [1, 2, 3]: / 1
  );
  assertAlmostEquals(got3, 2 * expected, 1e-6);
  const sum = tf.tidy(() => klDivSum(tf.tensor2d(p), tf.tensor2d(q)).dataSync()[0]);
  assertAlmostEquals(sum, 2 * expected, 1e-6);
});

Deno.test("rcfdLoss: tau on the teacher side only, no tau^2 (hand values, B=2, C=2)", () => {
  const fS = [[0.3, -0.2], [1.0, 0.5]], fT = [[0.8, 0.1], [-0.4, 0.9]];
  for (const tau of [0.9, 0.5]) {
    const expected = (klLogitsJs(fT[0].map((v) => v / tau), fS[0]) +
      klLogitsJs(fT[1].map((v) => v / tau), fS[1])) / 2;
    const got = tf.tidy(() => rcfdLoss(tf.tensor2d(fS), tf.tensor2d(fT), { tau }).dataSync()[0]);
    assertAlmostEquals(got, expected, 1e-6);
  }
});

Deno.test("rcfdLoss: zero at fS = fT / tau, positive at fS = fT when tau != 1", () => {
  const fT = randn([4, 6], 1) as tf.Tensor2D;
  const atOptimum = tf.tidy(() => rcfdLoss(tf.div(fT, 0.9), fT).dataSync()[0]);
  assertAlmostEquals(atOptimum, 0, 1e-6);
  const tau1 = tf.tidy(() => rcfdLoss(fT, fT, { tau: 1 }).dataSync()[0]);
  assertAlmostEquals(tau1, 0, 1e-6);
  const equal = tf.tidy(() => rcfdLoss(fT, fT).dataSync()[0]);
  assertGreater(equal, 1e-4);
  fT.dispose();
});

Deno.test("rcfdLoss: non-negative on random inputs; gradient matches central differences", () => {
  for (let seed = 0; seed < 5; seed++) {
    const v = tf.tidy(() =>
      rcfdLoss(randn([3, 5], seed, 2) as tf.Tensor2D, randn([3, 5], seed + 50, 2) as tf.Tensor2D)
        .dataSync()[0]
    );
    assertGreater(v, 0);
  }
  const fT = randn([3, 5], 11) as tf.Tensor2D, fS = randn([3, 5], 12);
  checkGradFd((x) => rcfdLoss(x as tf.Tensor2D, fT), fS);
  tf.dispose([fT, fS]);
});

Deno.test("stopGradient: passes the value, blocks the gradient", () => {
  const x = tf.tensor1d([1, 2, 3]);
  const g = tf.grad((a: tf.Tensor) => tf.sum(tf.add(tf.square(a), stopGradient(tf.square(a)))))(x);
  assertAlmostEquals(maxOf(tf.sub(g, tf.mul(2, x))), 0, 1e-6);
  assertAlmostEquals(tf.tidy(() => tf.sum(stopGradient(x)).dataSync()[0]), 6, 1e-6);
  tf.dispose([x, g]);
});

Deno.test("l2NormalizeLastAxis: unit rows, zero row stays zero with finite gradient", () => {
  const x = tf.tensor2d([[3, 4], [0, 0]]);
  const y = l2NormalizeLastAxis(x).arraySync();
  assertAlmostEquals(y[0][0], 0.6, 1e-6);
  assertAlmostEquals(y[0][1], 0.8, 1e-6);
  assertAlmostEquals(y[1][0], 0, 0);
  const g = tf.grad((a: tf.Tensor) =>
    tf.sum(tf.mul(l2NormalizeLastAxis(a), tf.tensor2d([[1, 2], [3, 4]])))
  )(x);
  for (const v of g.dataSync()) assert(Number.isFinite(v), `gradient ${v}`);
  tf.dispose([x, g]);
});

Deno.test("rcfdLoss / klDivBatchmean: bad input throws naming the parameter", () => {
  const a = tf.zeros([2, 3]) as tf.Tensor2D, b = tf.zeros([2, 4]) as tf.Tensor2D;
  assertThrows(() => rcfdLoss(a, b), RangeError, "fStudent");
  assertThrows(() => rcfdLoss(a, a, { tau: 0 }), RangeError, "options.tau");
  assertThrows(() => klDivBatchmean(tf.zeros([3]), tf.zeros([3])), RangeError, "pLogitsTarget");
  tf.dispose([a, b]);
});

function maxOf(x: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(x)).dataSync()[0]);
}
