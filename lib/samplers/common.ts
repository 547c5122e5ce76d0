/**
 * What the samplers share: options, progress reports, the path/shape checks and the one loop
 * that walks a path, queries the denoiser and applies a sampler's step rule.
 *
 * Path convention: `path` is a strictly descending list of integer schedule indices in
 * -1..maxIndex (length >= 2, so at most maxIndex + 1 steps). The denoiser is evaluated at every
 * element but the last; the sampler lands on the last element (-1 = clean data, abar = 1).
 * @module
 */
import { type Batch, clip, zeros } from "../core/batch.ts";
import { checkSameShape } from "../core/checks.ts";
import type { Rng } from "../core/rng.ts";
import type { Denoiser } from "../diffusion/denoiser.ts";
import { epsFromX0, toX0AndEps } from "../diffusion/param.ts";
import type { Numerics } from "../diffusion/numerics.ts";
import type { DiscreteSchedule } from "../diffusion/schedule.ts";
import { checkPath } from "../diffusion/timesteps.ts";

/** Progress report after each step. */
export interface SamplerStepInfo {
  /** 1-based number of the step just done. */
  readonly step: number;
  /** Number of steps (path.length - 1 = network evaluations). */
  readonly total: number;
  /** Index the denoiser was evaluated at. */
  readonly t: number;
  /** Index the step landed on. */
  readonly s: number;
}

/** Options every sampler takes. */
export interface SamplerOptions {
  /** Strictly descending schedule indices, see the module doc. */
  readonly path: readonly number[];
  /** Clip the x0 prediction to [-1, 1] before the update, and re-derive eps from it. Default false. */
  readonly clipX0?: boolean;
  /** Clip the final sample to [-1, 1]. Default false. */
  readonly clipOutput?: boolean;
  /** Called after each step. */
  readonly onStep?: (info: SamplerStepInfo) => void;
  /** Also return every z along the way (see {@link SampleWithTrajectory}). Default false. */
  readonly returnTrajectory?: boolean;
  /**
   * "exact" (default, float64 coefficients) or "reference" (each coefficient gathered from the
   * schedule rounded to float32 first, as the PyTorch reference; `numerics.ts`). Applies to
   * the (x0, eps) conversions of every sampler and to DDIM's update; the DDPM and
   * DPM-Solver++ updates stay float64.
   */
  readonly numerics?: Numerics;
}

/** A sample with its trajectory. */
export interface SampleWithTrajectory {
  /** The final sample, shape of zT. */
  readonly sample: Batch;
  /** path.length Batches: zT, then z after each step; the last one is `sample`. */
  readonly trajectory: Batch[];
}

/** The denoiser's estimates at one step, both shaped like z. */
export interface X0EpsEstimate {
  /** Estimated clean data. */
  readonly x0: Batch;
  /** Estimated noise. */
  readonly eps: Batch;
}

/**
 * A sampler's update from index t to index s.
 * @param step 0-based number of this step; `total` is the number of steps.
 * @returns z_s, shape of z.
 */
export type StepRule = (
  z: Batch,
  est: X0EpsEstimate,
  t: number,
  s: number,
  step: number,
  total: number,
) => Batch;

/**
 * Queries `denoiser` at (z, t) and converts its prediction to (x0, eps). With `clipX0`, x0 is
 * clipped to [-1, 1] and eps re-derived from the clipped x0 (eps = (z - sqrt(abar_t) x0) /
 * sqrt(1 - abar_t)), as the reference sampler does for both of its parameterisations.
 * `numerics` (default "exact") as in {@link SamplerOptions.numerics}.
 * @throws RangeError if the output's shape differs from z or it holds non-finite values.
 */
export async function estimateX0Eps(
  denoiser: Denoiser,
  schedule: DiscreteSchedule,
  z: Batch,
  t: number,
  clipX0: boolean,
  numerics: Numerics = "exact",
): Promise<X0EpsEstimate> {
  const pred = await denoiser.predict(z, t);
  checkSameShape("zT", z, "denoiser output", pred);
  if (!pred.data.every(Number.isFinite)) {
    throw new RangeError(`denoiser output at t=${t} must be finite, got NaN or Infinity`);
  }
  const est = toX0AndEps(schedule, z, pred, denoiser.parameterization, t, numerics);
  if (!clipX0) return est;
  const x0 = clip(est.x0, -1, 1);
  return { x0, eps: epsFromX0(schedule, z, x0, t, numerics) };
}

/** Returns z + sigma * n with n ~ N(0, I) drawn from `rng` (z.data.length draws). */
export function addNoise(z: Batch, sigma: number, rng: Rng): Batch {
  const out = zeros(z.shape);
  for (let i = 0; i < z.data.length; i++) out.data[i] = z.data[i] + sigma * rng.normal();
  return out;
}

/**
 * Walks `options.path` from `zT`: at each (t, s) estimates (x0, eps) at t and applies `rule`.
 * Validates the path against the schedule and zT (finite, [B, ...dims]).
 * @returns the sample, or the sample with its trajectory when `returnTrajectory`.
 */
export async function runSampler(
  denoiser: Denoiser,
  schedule: DiscreteSchedule,
  zT: Batch,
  options: SamplerOptions,
  rule: StepRule,
): Promise<Batch | SampleWithTrajectory> {
  const { path, clipX0 = false, clipOutput = false, onStep, returnTrajectory = false } = options;
  const numerics = options.numerics ?? "exact";
  checkPath(path, schedule.maxIndex);
  if (zT.shape.length < 2 || !zT.data.every(Number.isFinite)) {
    throw new RangeError(`zT must be a finite Batch [B, ...dims], got shape [${zT.shape}]`);
  }
  const total = path.length - 1;
  const trajectory = [zT];
  let z = zT;
  for (let i = 0; i < total; i++) {
    const t = path[i], s = path[i + 1];
    z = rule(z, await estimateX0Eps(denoiser, schedule, z, t, clipX0, numerics), t, s, i, total);
    if (i === total - 1 && clipOutput) z = clip(z, -1, 1);
    if (returnTrajectory) trajectory.push(z);
    onStep?.({ step: i + 1, total, t, s });
  }
  return returnTrajectory ? { sample: z, trajectory } : z;
}
