import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { batch, randn } from "../lib/core/batch.ts";
import { Rng } from "../lib/core/rng.ts";
import type { DiscreteSchedule } from "../lib/diffusion/schedule.ts";
import { cosineSchedule } from "../lib/diffusion/schedule.ts";
import { gaussian, gaussianDenoiser, sampleGaussian } from "../lib/analytic/gaussian.ts";
import { sampleCovariance, sampleMean } from "../lib/analytic/distance.ts";

/** A schedule whose last entry has alpha-bar exactly 0 (zero terminal SNR). */
const ZT: DiscreteSchedule = {
  name: "zero-terminal",
  betas: Float64Array.from([0.2, 0.5, 1]),
  alphasBar: Float64Array.from([0.8, 0.4, 0]),
  maxIndex: 2,
};

Deno.test("diagonal Gaussian: posterior mean is the per-coordinate scalar formula", async () => {
  const mu = [0.3, -0.5, 0.1], v = [0.2, 0.05, 1.5];
  const sched = cosineSchedule(50);
  const den = gaussianDenoiser(gaussian(mu, v), sched);
  const z = randn([4, 3], new Rng(1));
  for (const t of [0, 10, 25, 50]) {
    const ab = sched.alphasBar[t], a = Math.sqrt(ab);
    const out = await den.predict(z, t);
    for (let b = 0; b < 4; b++) {
      for (let i = 0; i < 3; i++) {
        const zi = z.data[b * 3 + i];
        const expected = mu[i] + a * v[i] / (ab * v[i] + 1 - ab) * (zi - a * mu[i]);
        assertAlmostEquals(out.data[b * 3 + i], expected, 1e-12);
      }
    }
  }
});

Deno.test("full 2-D Gaussian: posterior mean by the explicit 2x2 inverse", async () => {
  const mu = [0.4, -0.3], S = [[0.3, 0.1], [0.1, 0.15]];
  const sched = cosineSchedule(20);
  const den = gaussianDenoiser(gaussian(mu, S), sched);
  const z = batch(Float64Array.from([0.5, -1.2, 2, 0.3]), [2, 2]);
  for (const t of [0, 7, 20]) {
    const ab = sched.alphasBar[t], a = Math.sqrt(ab), s2 = 1 - ab;
    const c00 = ab * S[0][0] + s2, c01 = ab * S[0][1], c11 = ab * S[1][1] + s2;
    const det = c00 * c11 - c01 * c01;
    const out = await den.predict(z, t);
    for (let b = 0; b < 2; b++) {
      const r0 = z.data[2 * b] - a * mu[0], r1 = z.data[2 * b + 1] - a * mu[1];
      const y0 = (c11 * r0 - c01 * r1) / det, y1 = (c00 * r1 - c01 * r0) / det;
      assertAlmostEquals(out.data[2 * b], mu[0] + a * (S[0][0] * y0 + S[0][1] * y1), 1e-12);
      assertAlmostEquals(out.data[2 * b + 1], mu[1] + a * (S[1][0] * y0 + S[1][1] * y1), 1e-12);
    }
  }
});

Deno.test("clean data (t = -1) returns z; pure noise (abar = 0) returns the mean", async () => {
  const den = gaussianDenoiser(gaussian([0.4, -0.3], [[0.3, 0.1], [0.1, 0.15]]), ZT);
  const z = batch(Float64Array.from([0.7, 2.5]), [1, 2]);
  const clean = await den.predict(z, -1);
  assertAlmostEquals(clean.data[0], 0.7, 1e-12);
  assertAlmostEquals(clean.data[1], 2.5, 1e-12);
  assertEquals(Array.from((await den.predict(z, 2)).data), [0.4, -0.3]);
});

Deno.test("sampleGaussian has the requested mean and covariance", () => {
  const mu = [0.4, -0.3], S = [[0.3, 0.1], [0.1, 0.15]];
  const x = sampleGaussian(gaussian(mu, S), 40000, new Rng(9));
  assertEquals(x.shape, [40000, 2]);
  const m = sampleMean(x), c = sampleCovariance(x);
  // Standard errors: mean <= sqrt(0.3 / 4e4) = 2.7e-3, covariance entries <= 2.2e-3.
  for (let i = 0; i < 2; i++) assertAlmostEquals(m[i], mu[i], 8e-3);
  for (let k = 0; k < 4; k++) assertAlmostEquals(c[k], S[k >> 1][k & 1], 8e-3);
});

Deno.test("gaussian and its denoiser reject bad input naming the parameter", () => {
  assertThrows(() => gaussian([], []), RangeError, "mean");
  assertThrows(() => gaussian([0, NaN], [1, 1]), RangeError, "mean");
  assertThrows(() => gaussian([0, 0], [1]), RangeError, "cov");
  assertThrows(() => gaussian([0, 0], [[1, 0]]), RangeError, "cov");
  assertThrows(() => gaussian([0, 0], [[1, 0.2], [0.1, 1]]), RangeError, "symmetric");
  assertThrows(() => gaussian([0, 0], [[1, 2], [2, 1]]), RangeError, "positive definite");
  assertThrows(() => gaussian([0, 0], [1, 0]), RangeError, "positive definite");
  const den = gaussianDenoiser(gaussian([0, 0], [1, 1]), ZT);
  assertThrows(() => den.predict(randn([2, 3], new Rng(0)), 0), RangeError, "[B, 2]");
  assertThrows(() => den.predict(randn([2, 2], new Rng(0)), 3), RangeError, "t");
  assertThrows(() => den.predict(randn([2, 2], new Rng(0)), 0.5), RangeError, "t");
  assertThrows(() => sampleGaussian(gaussian([0], [1]), 0, new Rng(0)), RangeError, "n");
});
