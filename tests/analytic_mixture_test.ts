import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { batch, randn } from "../lib/core/batch.ts";
import { Rng } from "../lib/core/rng.ts";
import { cosineSchedule } from "../lib/diffusion/schedule.ts";
import { gaussian, gaussianDenoiser } from "../lib/analytic/gaussian.ts";
import { mixture, mixtureDenoiser, ringMixture, sampleMixture } from "../lib/analytic/mixture.ts";
import { sampleMean } from "../lib/analytic/distance.ts";

const SCHED = cosineSchedule(100);
const MIX = mixture([1, 3, 2], [
  gaussian([0.5, 0.2], [[0.04, 0.01], [0.01, 0.02]]),
  gaussian([-0.4, 0.3], [0.01, 0.05]),
  gaussian([0.1, -0.6], [[0.09, -0.02], [-0.02, 0.03]]),
]);

/** log p_t(z) of MIX at alpha-bar ab, by explicit 2x2 densities (independent of the library). */
function logDensity(ab: number, z0: number, z1: number): number {
  const a = Math.sqrt(ab);
  let p = 0;
  MIX.components.forEach((c, k) => {
    const S = c.cov;
    const c00 = ab * S[0] + 1 - ab, c01 = ab * S[1], c11 = ab * S[3] + 1 - ab;
    const det = c00 * c11 - c01 * c01;
    const r0 = z0 - a * c.mean[0], r1 = z1 - a * c.mean[1];
    const q = (c11 * r0 * r0 - 2 * c01 * r0 * r1 + c00 * r1 * r1) / det;
    p += MIX.weights[k] * Math.exp(-0.5 * q) / (2 * Math.PI * Math.sqrt(det));
  });
  return Math.log(p);
}

Deno.test("mixture denoiser satisfies Tweedie: E[x0|z] = (z + (1-abar) grad log p_t(z)) / a", async () => {
  const den = mixtureDenoiser(MIX, SCHED);
  const z = randn([6, 2], new Rng(4));
  const h = 1e-5;
  for (const t of [5, 30, 60, 90]) {
    const ab = SCHED.alphasBar[t];
    const out = await den.predict(z, t);
    for (let b = 0; b < 6; b++) {
      const [z0, z1] = [z.data[2 * b], z.data[2 * b + 1]];
      const g0 = (logDensity(ab, z0 + h, z1) - logDensity(ab, z0 - h, z1)) / (2 * h);
      const g1 = (logDensity(ab, z0, z1 + h) - logDensity(ab, z0, z1 - h)) / (2 * h);
      const a = Math.sqrt(ab);
      assertAlmostEquals(out.data[2 * b], (z0 + (1 - ab) * g0) / a, 1e-6);
      assertAlmostEquals(out.data[2 * b + 1], (z1 + (1 - ab) * g1) / a, 1e-6);
    }
  }
});

Deno.test("a one-component mixture is the Gaussian denoiser", async () => {
  const g = MIX.components[2];
  const a = mixtureDenoiser(mixture([5], [g]), SCHED);
  const b = gaussianDenoiser(g, SCHED);
  const z = randn([10, 2], new Rng(1));
  for (const t of [-1, 0, 50, 100]) {
    const [x, y] = [await a.predict(z, t), await b.predict(z, t)];
    for (let i = 0; i < 20; i++) assertAlmostEquals(x.data[i], y.data[i], 1e-12);
  }
});

Deno.test("responsibilities stay finite far from the data (log-sum-exp)", async () => {
  const den = mixtureDenoiser(ringMixture({ std: 0.01 }), SCHED);
  // At t = 0 the noisy components are very narrow; z far out on the +x axis picks component 0.
  const out = await den.predict(batch(Float64Array.from([50, 0.001, -1e3, 1e3]), [2, 2]), 0);
  assert(out.data.every(Number.isFinite));
  const posterior = await gaussianDenoiser(ringMixture({ std: 0.01 }).components[0], SCHED)
    .predict(batch(Float64Array.from([50, 0.001]), [1, 2]), 0);
  assertAlmostEquals(out.data[0], posterior.data[0], 1e-9);
  assertAlmostEquals(out.data[1], posterior.data[1], 1e-9);
});

Deno.test("mixture normalises weights; sampleMixture follows them", () => {
  assertEquals(Array.from(MIX.weights), [1 / 6, 3 / 6, 2 / 6]);
  const m = mixture([0.2, 0.8], [gaussian([-5], [0.01]), gaussian([5], [0.01])]);
  const x = sampleMixture(m, 20000, new Rng(3));
  const right = x.data.filter((v) => v > 0).length / 20000;
  assertAlmostEquals(right, 0.8, 0.01); // standard error 2.8e-3
  assertAlmostEquals(sampleMean(x)[0], -5 * 0.2 + 5 * 0.8, 0.1);
});

Deno.test("ringMixture puts equal-weight components on a circle", () => {
  const ring = ringMixture({ count: 6, radius: 0.5, std: 0.1 });
  assertEquals(ring.components.length, 6);
  ring.components.forEach((c, k) => {
    assertAlmostEquals(Math.hypot(c.mean[0], c.mean[1]), 0.5, 1e-12);
    assertAlmostEquals(
      Math.atan2(c.mean[1], c.mean[0]),
      Math.atan2(Math.sin(k * Math.PI / 3), Math.cos(k * Math.PI / 3)),
      1e-12,
    );
    [0.01, 0, 0, 0.01].forEach((v, i) => assertAlmostEquals(c.cov[i], v, 1e-15));
    assertAlmostEquals(ring.weights[k], 1 / 6, 1e-15);
  });
  assertEquals(ringMixture().components.length, 8);
});

Deno.test("mixture rejects bad input naming the parameter", () => {
  const g = gaussian([0, 0], [1, 1]);
  assertThrows(() => mixture([], []), RangeError, "weights");
  assertThrows(() => mixture([1, 1], [g]), RangeError, "weights");
  assertThrows(() => mixture([1, -1], [g, g]), RangeError, "positive");
  assertThrows(() => mixture([1, 1], [g, gaussian([0], [1])]), RangeError, "dimension");
  assertThrows(() => ringMixture({ count: 0 }), RangeError, "count");
  assertThrows(() => ringMixture({ std: 0 }), RangeError, "std");
  assertThrows(() => ringMixture({ radius: -1 }), RangeError, "radius");
  assertThrows(
    () => mixtureDenoiser(MIX, SCHED).predict(randn([1, 3], new Rng(0)), 0),
    RangeError,
    "z",
  );
  assertThrows(() => sampleMixture(MIX, 1.5, new Rng(0)), RangeError, "n");
});
