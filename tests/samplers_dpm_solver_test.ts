import { assert, assertAlmostEquals, assertLess, assertRejects } from "@std/assert";
import { type Batch, batch, randn, zeros } from "../lib/core/batch.ts";
import { Rng } from "../lib/core/rng.ts";
import type { Denoiser } from "../lib/diffusion/denoiser.ts";
import { cosineSchedule, type DiscreteSchedule } from "../lib/diffusion/schedule.ts";
import { spacedTimesteps } from "../lib/diffusion/timesteps.ts";
import { gaussian, gaussianDenoiser } from "../lib/analytic/gaussian.ts";
import { mixtureDenoiser, ringMixture, sampleMixture } from "../lib/analytic/mixture.ts";
import { sampleCovariance, sampleMean, slicedWasserstein2 } from "../lib/analytic/distance.ts";
import { ddim } from "../lib/samplers/ddim.ts";
import { dpmSolverPp2m } from "../lib/samplers/dpm_solver.ts";

const HAND: DiscreteSchedule = {
  name: "hand",
  betas: Float64Array.from([0.1, 1 - 0.5 / 0.9, 0.6]),
  alphasBar: Float64Array.from([0.9, 0.5, 0.2]),
  maxIndex: 2,
};

/** x0-denoiser x0 = c[t] z + d[t]. */
function affine(c: number[], d: number[]): Denoiser {
  return {
    parameterization: "x0",
    predict: (z: Batch, t: number) => batch(z.data.map((v) => c[t] * v + d[t]), z.shape),
  };
}

const C = [0.8, 0.6, 0.3], D = [0.01, -0.05, 0.1];

Deno.test("first-order steps of DPM-Solver++(2M) are DDIM steps", async () => {
  const zT = batch(Float64Array.from([0.4, -1.1]), [2, 1]);
  for (const path of [[2, 1], [2, 0, -1], [1, -1]]) {
    const a = await dpmSolverPp2m(affine(C, D), HAND, zT, { path });
    const b = await ddim(affine(C, D), HAND, zT, { path });
    for (let i = 0; i < 2; i++) assertAlmostEquals(a.data[i], b.data[i], 1e-12);
  }
});

Deno.test("second-order step matches the hand formula; lowerOrderFinal makes it DDIM", async () => {
  const z2 = 0.4;
  const a = HAND.alphasBar;
  const al = (i: number) => Math.sqrt(a[i]), sg = (i: number) => Math.sqrt(1 - a[i]);
  const lam = (i: number) => Math.log(al(i) / sg(i));
  const h1 = lam(1) - lam(2), h2 = lam(0) - lam(1), r = h1 / h2;
  const x0a = C[2] * z2 + D[2];
  const z1 = sg(1) / sg(2) * z2 - al(1) * (Math.exp(-h1) - 1) * x0a;
  const x0b = C[1] * z1 + D[1];
  const dd = (1 + 1 / (2 * r)) * x0b - 1 / (2 * r) * x0a;
  const z0 = sg(0) / sg(1) * z1 - al(0) * (Math.exp(-h2) - 1) * dd;
  const zT = batch(Float64Array.from([z2]), [1, 1]);
  const path = [2, 1, 0];
  const second = await dpmSolverPp2m(affine(C, D), HAND, zT, { path, lowerOrderFinal: false });
  assertAlmostEquals(second.data[0], z0, 1e-12);
  const lower = await dpmSolverPp2m(affine(C, D), HAND, zT, { path });
  const plain = await ddim(affine(C, D), HAND, zT, { path });
  assertAlmostEquals(lower.data[0], plain.data[0], 1e-12);
  assert(Math.abs(second.data[0] - plain.data[0]) > 1e-3);
});

/** Affinely maps the rows of x [N, 2] to sample mean 0 and sample covariance I. */
function whiten(x: Batch): Batch {
  const m = sampleMean(x), c = sampleCovariance(x);
  const l00 = Math.sqrt(c[0]), l10 = c[2] / l00, l11 = Math.sqrt(c[3] - l10 * l10);
  const out = zeros(x.shape);
  for (let b = 0; b < x.shape[0]; b++) {
    const u = x.data[2 * b] - m[0], v = x.data[2 * b + 1] - m[1];
    out.data[2 * b] = u / l00;
    out.data[2 * b + 1] = (v - l10 * u / l00) / l11;
  }
  return out;
}

Deno.test("on Gaussian data DPM-Solver++(2M) converges much faster than DDIM", async () => {
  // Whitened noise + affine sampler (exact Gaussian denoiser): the output's sample moments are
  // the sampler's exact moments, so the error below is discretisation only.
  const sched = cosineSchedule(1000);
  const mu = [0.4, -0.3], sigma = [[0.3, 0.1], [0.1, 0.15]];
  const den = gaussianDenoiser(gaussian(mu, sigma), sched);
  const zT = whiten(randn([500, 2], new Rng(1)));
  const error = (out: Batch) => {
    const m = sampleMean(out), c = sampleCovariance(out);
    return Math.max(
      ...m.map((v, i) => Math.abs(v - mu[i])),
      ...c.map((v, k) => Math.abs(v - sigma[k >> 1][k & 1])),
    );
  };
  const path = (n: number) => spacedTimesteps(sched.maxIndex + 1, n, "trailing");
  const dpm32 = error(await dpmSolverPp2m(den, sched, zT, { path: path(32) }));
  const ddim32 = error(await ddim(den, sched, zT, { path: path(32) }));
  const ddim256 = error(await ddim(den, sched, zT, { path: path(256) }));
  assertLess(dpm32, 2e-3);
  assertLess(dpm32 * 10, ddim32);
  assertLess(dpm32, ddim256);
});

Deno.test("on the ring mixture, 8-step DPM-Solver++(2M) lands closer to the data than DDIM", async () => {
  const sched = cosineSchedule(1000);
  const mix = ringMixture();
  const den = mixtureDenoiser(mix, sched);
  const data = sampleMixture(mix, 10000, new Rng(101));
  const zT = randn([4000, 2], new Rng(1));
  // "trailing" spacing: [1000, 875, ..., 124, -1]. With "linspace"/"leading" on this cosine
  // table the step onto index 0 jumps 3.6 in lambda after a 0.7 step, the extrapolation weight
  // 1/(2r) reaches 2.5 and the 2M solver overshoots (it is then worse than DDIM at 8 steps).
  const path = spacedTimesteps(sched.maxIndex + 1, 8, "trailing");
  const dDdim = slicedWasserstein2(await ddim(den, sched, zT, { path }), data);
  const dDpm = slicedWasserstein2(await dpmSolverPp2m(den, sched, zT, { path }), data);
  assertLess(dDpm, dDdim * 0.95);
  const many = await dpmSolverPp2m(den, sched, zT, {
    path: spacedTimesteps(1001, 100, "trailing"),
  });
  assertLess(slicedWasserstein2(many, data), dDpm);
});

Deno.test("dpmSolverPp2m rejects bad input with messages that name the parameter", async () => {
  const z = zeros([2, 1]);
  await assertRejects(() => dpmSolverPp2m(affine(C, D), HAND, z, { path: [] }), RangeError, "path");
  await assertRejects(
    () => dpmSolverPp2m(affine(C, D), HAND, z, { path: [2, 3] }),
    RangeError,
    "path[1]",
  );
  const wrong: Denoiser = { parameterization: "x0", predict: () => zeros([3, 1]) };
  await assertRejects(
    () => dpmSolverPp2m(wrong, HAND, z, { path: [2, 1] }),
    RangeError,
    "denoiser output",
  );
});
