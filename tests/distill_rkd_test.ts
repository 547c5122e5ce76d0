import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertGreater, assertThrows } from "@std/assert";
import { rkdAngleLoss, rkdDistanceLoss } from "../lib/distill/rkd.ts";
import { checkGradFd, dotJs, randn, unitJs, useCpu } from "./distill_helpers.ts";

await useCpu();

const huber = (x: number) => Math.abs(x) < 1 ? 0.5 * x * x : Math.abs(x) - 0.5;
const sub = (a: number[], b: number[]) => a.map((v, i) => v - b[i]);

/** Park et al. distance-wise loss with plain loops (ordered pairs i != j). */
function distanceJs(S: number[][], T: number[][]): number {
  const B = S.length;
  const norm = (F: number[][]) => {
    const d: number[][] = F.map((a) => F.map((b) => Math.hypot(...sub(a, b))));
    let mu = 0;
    for (let i = 0; i < B; i++) for (let j = 0; j < B; j++) if (i !== j) mu += d[i][j];
    mu /= B * (B - 1);
    return d.map((r) => r.map((v) => v / mu));
  };
  const ds = norm(S), dt = norm(T);
  let total = 0;
  for (let i = 0; i < B; i++) {
    for (let j = 0; j < B; j++) if (i !== j) total += huber(ds[i][j] - dt[i][j]);
  }
  return total / (B * (B - 1));
}

/** Park et al. angle-wise loss with plain loops (distinct ordered triplets, vertex j). */
function angleJs(S: number[][], T: number[][]): number {
  const B = S.length;
  const cos = (F: number[][], i: number, j: number, k: number) =>
    dotJs(unitJs(sub(F[i], F[j])), unitJs(sub(F[k], F[j])));
  let total = 0;
  for (let i = 0; i < B; i++) {
    for (let j = 0; j < B; j++) {
      for (let k = 0; k < B; k++) {
        if (i !== j && j !== k && i !== k) total += huber(cos(S, i, j, k) - cos(T, i, j, k));
      }
    }
  }
  return total / (B * (B - 1) * (B - 2));
}

Deno.test("rkd: hand values on tiny inputs (B=3, D=2), incl. the |x| >= 1 Huber branch", () => {
  const S = [[0, 0], [1, 0], [0, 2]], T = [[0, 0], [3, 0], [0, 0.5]];
  const s = tf.tensor2d(S), t = tf.tensor2d(T);
  assertAlmostEquals(rkdDistanceLoss(s, t).dataSync()[0], distanceJs(S, T), 1e-6);
  assertAlmostEquals(rkdAngleLoss(s, t).dataSync()[0], angleJs(S, T), 1e-6);
  const S2 = [[0, 0], [1, 0], [2, 0.01]], T2 = [[0, 0], [1, 0], [-1, 0.01]]; // cosines flip sign
  const a2 = rkdAngleLoss(tf.tensor2d(S2), tf.tensor2d(T2)).dataSync()[0];
  assertAlmostEquals(a2, angleJs(S2, T2), 1e-6);
  assertGreater(a2, 0.3);
  tf.dispose([s, t]);
});

Deno.test("rkd: random B=5, D=4 matches loops; zero when equal and invariant to scaling", () => {
  const s = randn([5, 4], 1) as tf.Tensor2D, t = randn([5, 4], 2) as tf.Tensor2D;
  const S = s.arraySync(), T = t.arraySync();
  assertAlmostEquals(rkdDistanceLoss(s, t).dataSync()[0], distanceJs(S, T), 1e-5);
  assertAlmostEquals(rkdAngleLoss(s, t).dataSync()[0], angleJs(S, T), 1e-5);
  assertGreater(rkdDistanceLoss(s, t).dataSync()[0], 0);
  assertGreater(rkdAngleLoss(s, t).dataSync()[0], 0);
  const scaled = tf.mul(t, 3.5) as tf.Tensor2D;
  assertAlmostEquals(rkdDistanceLoss(scaled, t).dataSync()[0], 0, 1e-6);
  assertAlmostEquals(rkdAngleLoss(scaled, t).dataSync()[0], 0, 1e-6);
  assertAlmostEquals(rkdDistanceLoss(t, t).dataSync()[0], 0, 1e-7);
  tf.dispose([s, t, scaled]);
});

Deno.test("rkd: gradients match central differences", () => {
  const s = randn([4, 3], 3), t = randn([4, 3], 4) as tf.Tensor2D;
  checkGradFd((x) => rkdDistanceLoss(x as tf.Tensor2D, t), s);
  checkGradFd((x) => rkdAngleLoss(x as tf.Tensor2D, t), s, { seed: 2 });
  tf.dispose([s, t]);
});

Deno.test("rkd: bad input throws naming the parameter", () => {
  const a = tf.zeros([2, 3]) as tf.Tensor2D;
  assertThrows(() => rkdAngleLoss(a, a), RangeError, "B >= 3");
  assertThrows(() => rkdDistanceLoss(a, tf.zeros([2, 4]) as tf.Tensor2D), RangeError, "fStudent");
  a.dispose();
});
