/**
 * Gaussian-mixture data x0 ~ sum_k w_k N(mu_k, Sigma_k) and its exact denoiser.
 *
 * Under z_t = a x0 + s eps (a = sqrt(abar_t), s^2 = 1 - abar_t) component k gives
 * z_t ~ N(a mu_k, C_k), C_k = a^2 Sigma_k + s^2 I, so
 * E[x0 | z_t] = sum_k r_k(z_t) m_k(z_t), with responsibilities r_k proportional to
 * w_k N(z_t; a mu_k, C_k) (normalised with log-sum-exp) and m_k the per-component posterior
 * mean of `gaussian.ts`.
 * @module
 */
import { type Batch, zeros } from "../core/batch.ts";
import { checkPositiveInt, checkShape } from "../core/checks.ts";
import type { Rng } from "../core/rng.ts";
import type { Denoiser } from "../diffusion/denoiser.ts";
import type { DiscreteSchedule } from "../diffusion/schedule.ts";
import {
  type Gaussian,
  gaussian,
  noisyGaussian,
  perTimeCache,
  posteriorMeanInto,
  sampleGaussianInto,
} from "./gaussian.ts";

/** A validated mixture of Gaussians of one dimension D; weights sum to 1. */
export interface Mixture {
  /** Dimension D. */
  readonly dim: number;
  /** Component weights w_k > 0, summing to 1. */
  readonly weights: Float64Array;
  /** Components N(mu_k, Sigma_k). */
  readonly components: readonly Gaussian[];
}

/**
 * Builds a mixture. `weights` (positive, finite) are normalised to sum to 1.
 * @throws RangeError if lengths differ, a weight is not positive, or dimensions differ.
 */
export function mixture(weights: ArrayLike<number>, components: readonly Gaussian[]): Mixture {
  if (components.length < 1 || weights.length !== components.length) {
    throw new RangeError(
      `weights (length ${weights.length}) and components (length ${components.length}) must be non-empty and of equal length`,
    );
  }
  const w = Float64Array.from(weights);
  if (!w.every((x) => Number.isFinite(x) && x > 0)) {
    throw new RangeError(`weights must be finite and positive, got [${Array.from(w)}]`);
  }
  const dim = components[0].dim;
  if (components.some((c) => c.dim !== dim)) {
    throw new RangeError(`components must all have dimension ${dim}`);
  }
  const total = w.reduce((a, b) => a + b, 0);
  return { dim, weights: w.map((x) => x / total), components };
}

/**
 * The 2-D demo mixture: `count` equal-weight isotropic Gaussians with standard deviation `std`
 * whose means sit evenly on a circle of radius `radius` (first one at angle 0).
 * Defaults: 8 components, radius 0.7, std 0.05 (so the data lies well inside [-1, 1]^2).
 */
export function ringMixture(
  { count = 8, radius = 0.7, std = 0.05 }: { count?: number; radius?: number; std?: number } = {},
): Mixture {
  checkPositiveInt("count", count);
  if (!(radius >= 0 && Number.isFinite(radius))) {
    throw new RangeError(`radius must be finite and >= 0, got ${radius}`);
  }
  if (!(std > 0 && Number.isFinite(std))) {
    throw new RangeError(`std must be finite and > 0, got ${std}`);
  }
  const components = Array.from({ length: count }, (_, k) => {
    const angle = (2 * Math.PI * k) / count;
    return gaussian([radius * Math.cos(angle), radius * Math.sin(angle)], [std * std, std * std]);
  });
  return mixture(new Float64Array(count).fill(1), components);
}

/**
 * The exact denoiser for mixture data: predicts E[x0 | z_t] (parameterization "x0").
 * @param m the data distribution.
 * @param schedule maps the integer index t (-1..maxIndex, -1 = clean) to abar_t.
 * @returns a Denoiser on Batch [B, D].
 */
export function mixtureDenoiser(m: Mixture, schedule: DiscreteSchedule): Denoiser {
  const K = m.components.length, D = m.dim;
  const at = perTimeCache(schedule, (abar) => m.components.map((c) => noisyGaussian(c, abar)));
  const logW = Array.from(m.weights, Math.log);
  const means = new Float64Array(K * D);
  const logP = new Float64Array(K);
  const work = new Float64Array(2 * D);
  return {
    parameterization: "x0",
    predict(z: Batch, t: number): Batch {
      checkShape("z", z, ["B", D]);
      const noisy = at(t);
      const out = zeros(z.shape);
      for (let b = 0; b < z.shape[0]; b++) {
        let maxLogP = -Infinity;
        for (let k = 0; k < K; k++) {
          const quad = posteriorMeanInto(noisy[k], z.data, b * D, means, k * D, work);
          logP[k] = logW[k] - 0.5 * (noisy[k].logDetC + quad);
          if (logP[k] > maxLogP) maxLogP = logP[k];
        }
        let norm = 0;
        for (let k = 0; k < K; k++) {
          logP[k] = Math.exp(logP[k] - maxLogP);
          norm += logP[k];
        }
        for (let k = 0; k < K; k++) {
          const r = logP[k] / norm;
          for (let i = 0; i < D; i++) out.data[b * D + i] += r * means[k * D + i];
        }
      }
      return out;
    },
  };
}

/** `n` independent draws of the mixture as a Batch [n, D] (component chosen by a uniform draw). */
export function sampleMixture(m: Mixture, n: number, rng: Rng): Batch {
  checkPositiveInt("n", n);
  const out = zeros([n, m.dim]);
  const work = new Float64Array(m.dim);
  const last = m.components.length - 1;
  for (let b = 0; b < n; b++) {
    let u = rng.uniform(), k = 0;
    while (k < last && u >= m.weights[k]) u -= m.weights[k++];
    sampleGaussianInto(m.components[k], rng, out.data, b * m.dim, work);
  }
  return out;
}
