import { assertAlmostEquals, assertEquals, assertRejects } from "@std/assert";
import { type Batch, batch, randn, zeros } from "../lib/core/batch.ts";
import { Rng } from "../lib/core/rng.ts";
import type { Denoiser } from "../lib/diffusion/denoiser.ts";
import { cosineSchedule, type DiscreteSchedule } from "../lib/diffusion/schedule.ts";
import { gaussian, gaussianDenoiser } from "../lib/analytic/gaussian.ts";
import { sampleCovariance, sampleMean } from "../lib/analytic/distance.ts";
import { ddim } from "../lib/samplers/ddim.ts";
import { ddpm, fullPath } from "../lib/samplers/ddpm.ts";

const HAND: DiscreteSchedule = {
  name: "hand",
  betas: Float64Array.from([0.1, 1 - 0.5 / 0.9, 0.6]),
  alphasBar: Float64Array.from([0.9, 0.5, 0.2]),
  maxIndex: 2,
};

/** x0-denoiser x0 = c z + d at every t. */
function affine(c: number, d: number): Denoiser {
  return {
    parameterization: "x0",
    predict: (z: Batch) => batch(z.data.map((v) => c * v + d), z.shape),
  };
}

Deno.test("fullPath runs maxIndex..0 then lands on -1", () => {
  assertEquals(fullPath(HAND), [2, 1, 0, -1]);
});

Deno.test("ddpm fixed-small equals ddim with eta = 1 for the same noise", async () => {
  const sched = cosineSchedule(40);
  const den = gaussianDenoiser(gaussian([0.3, -0.2], [[0.2, 0.05], [0.05, 0.1]]), sched);
  const zT = randn([64, 2], new Rng(2));
  const a = await ddpm(den, sched, zT, { seed: 11 });
  const b = await ddim(den, sched, zT, { path: fullPath(sched), eta: 1, seed: 11 });
  for (let i = 0; i < a.data.length; i++) assertAlmostEquals(a.data[i], b.data[i], 1e-12);
});

Deno.test("ddpm step: hand-computed posterior mean, no noise on the final step", async () => {
  const z = 0.8, c = 0.5, d = 0.1;
  const [ab0, ab1] = [HAND.alphasBar[0], HAND.alphasBar[1]];
  const beta = 1 - ab1 / ab0;
  const mean = Math.sqrt(ab0) * beta / (1 - ab1) * (c * z + d) +
    Math.sqrt(ab1 / ab0) * (1 - ab0) / (1 - ab1) * z;
  for (const seed of [1, 2]) {
    for (const variance of ["fixed-small", "fixed-large"] as const) {
      const out = await ddpm(affine(c, d), HAND, batch(Float64Array.from([z]), [1, 1]), {
        path: [1, 0],
        seed,
        variance,
      });
      assertAlmostEquals(out.data[0], mean, 1e-12);
    }
  }
});

Deno.test("ddpm noise has the fixed-small / fixed-large variance on a strided path", async () => {
  // x0 = 0 and zT = 0: step 2 -> 1 gives N(0, v), step 1 -> 0 scales by cz without noise.
  const a = HAND.alphasBar;
  const beta21 = 1 - a[2] / a[1];
  const cz = Math.sqrt(a[1] / a[0]) * (1 - a[0]) / (1 - a[1]);
  const expected = {
    "fixed-small": beta21 * (1 - a[1]) / (1 - a[2]) * cz * cz,
    "fixed-large": beta21 * cz * cz,
  };
  for (const variance of ["fixed-small", "fixed-large"] as const) {
    const out = await ddpm(affine(0, 0), HAND, zeros([20000, 1]), { path: [2, 1, 0], variance });
    assertAlmostEquals(sampleCovariance(out)[0], expected[variance], 0.03 * expected[variance]);
  }
});

Deno.test("257-step ddpm with the exact Gaussian denoiser matches the data moments", async () => {
  // Stochastic: sampling error of 10k samples (~5e-3 per moment) plus discretisation, so the
  // tolerance is 2.5e-2 (fixed seeds; observed errors <= 1.2e-2).
  const sched = cosineSchedule(256);
  const mu = [0.4, -0.3], sigma = [[0.3, 0.1], [0.1, 0.15]];
  const den = gaussianDenoiser(gaussian(mu, sigma), sched);
  const zT = randn([10000, 2], new Rng(5));
  for (const variance of ["fixed-small", "fixed-large"] as const) {
    const out = await ddpm(den, sched, zT, { variance, seed: 3 });
    const m = sampleMean(out), cov = sampleCovariance(out);
    for (let i = 0; i < 2; i++) assertAlmostEquals(m[i], mu[i], 2.5e-2);
    for (let i = 0; i < 4; i++) assertAlmostEquals(cov[i], sigma[i >> 1][i & 1], 2.5e-2);
  }
});

Deno.test("ddpm rejects bad input with messages that name the parameter", async () => {
  const z = zeros([2, 1]);
  await assertRejects(
    () => ddpm(affine(1, 0), HAND, z, { variance: "learned" as "fixed-small" }),
    RangeError,
    "variance",
  );
  await assertRejects(() => ddpm(affine(1, 0), HAND, z, { path: [0, 1] }), RangeError, "path");
  await assertRejects(() => ddpm(affine(1, 0), HAND, z, { path: [5, 1] }), RangeError, "path[0]");
});
