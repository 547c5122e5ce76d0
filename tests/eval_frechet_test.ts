import { assertAlmostEquals, assertThrows } from "@std/assert";
import { frechetDistance, gaussianStats } from "../lib/eval/frechet.ts";
import { Rng } from "../lib/core/rng.ts";

function stats(mu: number[], sigma: number[][]) {
  return { n: 100, mu: Float64Array.from(mu), sigma: Float64Array.from(sigma.flat()) };
}

Deno.test("frechetDistance: diagonal closed form sum (m1-m2)^2 + (sqrt s1 - sqrt s2)^2", () => {
  const a = stats([0, 1, 2], [[4, 0, 0], [0, 1, 0], [0, 0, 9]]);
  const b = stats([1, 1, 0], [[1, 0, 0], [0, 1, 0], [0, 0, 4]]);
  const want = 1 + 0 + 4 + (2 - 1) ** 2 + 0 + (3 - 2) ** 2;
  assertAlmostEquals(frechetDistance(a, b), want, 1e-10);
  assertAlmostEquals(frechetDistance(a, a), 0, 1e-10);
});

Deno.test("frechetDistance: rotation-invariant and finite for singular covariances", () => {
  // Full-rank 2-D case: S1 = I, S2 = R diag(4, 1) R^T, W2^2 = (2-1)^2 + 0.
  const c = Math.cos(0.3), s = Math.sin(0.3);
  const s2 = [[4 * c * c + s * s, 3 * c * s], [3 * c * s, 4 * s * s + c * c]];
  assertAlmostEquals(frechetDistance(stats([0, 0], [[1, 0], [0, 1]]), stats([0, 0], s2)), 1, 1e-10);
  // Rank-1 covariances: the distance of two degenerate Gaussians on one line.
  const d = frechetDistance(stats([0, 0], [[1, 0], [0, 0]]), stats([0, 0], [[4, 0], [0, 0]]));
  assertAlmostEquals(d, 1, 1e-10);
});

Deno.test("gaussianStats: matches two-pass mean and unbiased covariance", () => {
  const rng = new Rng(5);
  const x = Array.from({ length: 200 * 2 }, () => rng.normal());
  const st = gaussianStats(x, 2);
  let m0 = 0;
  for (let i = 0; i < 200; i++) m0 += x[2 * i] / 200;
  let c01 = 0;
  let m1 = 0;
  for (let i = 0; i < 200; i++) m1 += x[2 * i + 1] / 200;
  for (let i = 0; i < 200; i++) c01 += (x[2 * i] - m0) * (x[2 * i + 1] - m1) / 199;
  assertAlmostEquals(st.mu[0], m0, 1e-12);
  assertAlmostEquals(st.sigma[1], c01, 1e-12);
  assertAlmostEquals(st.sigma[2], c01, 1e-12);
  assertThrows(() => gaussianStats([1, 2, 3], 2), RangeError, "dim");
  assertThrows(() => gaussianStats([1, 2], 2), RangeError, "at least 2");
});
