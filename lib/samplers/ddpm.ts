/**
 * DDPM ancestral sampling (Ho et al., 2020) on any path of schedule indices.
 *
 * Step t -> s draws from the posterior q(z_s | z_t, x0) with x0 the denoiser's estimate at t
 * (clipped if `clipX0`). For a strided path the one-step beta is generalised to
 * beta_ts = 1 - abar_t / abar_s, and
 *   mean = sqrt(abar_s) beta_ts / (1 - abar_t) x0 + sqrt(abar_t / abar_s) (1 - abar_s) / (1 - abar_t) z_t,
 *   variance = beta_ts (1 - abar_s) / (1 - abar_t)   ("fixed-small", the posterior variance), or
 *   variance = beta_ts                               ("fixed-large").
 * The final step adds no noise (it returns the mean; landing on -1 the mean is x0).
 * @module
 */
import { axpby, type Batch } from "../core/batch.ts";
import { Rng } from "../core/rng.ts";
import type { Denoiser } from "../diffusion/denoiser.ts";
import { alphaBarAt, type DiscreteSchedule } from "../diffusion/schedule.ts";
import { addNoise, runSampler, type SamplerOptions, type SampleWithTrajectory } from "./common.ts";

/** The two classic DDPM variance choices. */
export type DdpmVariance = "fixed-small" | "fixed-large";

/** Options of {@link ddpm}. */
export interface DdpmOptions extends Omit<SamplerOptions, "path"> {
  /** Path (see `common.ts`); default every index maxIndex, ..., 0, then -1 (clean). */
  readonly path?: readonly number[];
  /** Variance of each step, default "fixed-small". */
  readonly variance?: DdpmVariance;
  /** Seed of the noise (default 0). */
  readonly seed?: number | string;
}

/** The full path maxIndex, maxIndex - 1, ..., 0, -1 of `schedule`. */
export function fullPath(schedule: DiscreteSchedule): number[] {
  return Array.from({ length: schedule.maxIndex + 2 }, (_, i) => schedule.maxIndex - i);
}

/** Runs DDPM ancestral sampling from zT `[B, ...dims]`; returns the sample (shape of zT). */
export function ddpm(
  denoiser: Denoiser,
  schedule: DiscreteSchedule,
  zT: Batch,
  options: DdpmOptions & { returnTrajectory: true },
): Promise<SampleWithTrajectory>;
/** Runs DDPM ancestral sampling from zT `[B, ...dims]`; returns the sample (shape of zT). */
export function ddpm(
  denoiser: Denoiser,
  schedule: DiscreteSchedule,
  zT: Batch,
  options?: DdpmOptions & { returnTrajectory?: false },
): Promise<Batch>;
/** Runs DDPM ancestral sampling; the sample, or the sample with its trajectory when `returnTrajectory`. */
export function ddpm(
  denoiser: Denoiser,
  schedule: DiscreteSchedule,
  zT: Batch,
  options: DdpmOptions,
): Promise<Batch | SampleWithTrajectory>;
export async function ddpm(
  denoiser: Denoiser,
  schedule: DiscreteSchedule,
  zT: Batch,
  options: DdpmOptions = {},
): Promise<Batch | SampleWithTrajectory> {
  const { variance = "fixed-small", seed = 0, path = fullPath(schedule) } = options;
  if (variance !== "fixed-small" && variance !== "fixed-large") {
    throw new RangeError(`variance must be "fixed-small" or "fixed-large", got "${variance}"`);
  }
  const rng = new Rng(seed);
  return await runSampler(
    denoiser,
    schedule,
    zT,
    { ...options, path },
    (z, { x0 }, t, s, i, total) => {
      const abT = alphaBarAt(schedule, t), abS = alphaBarAt(schedule, s);
      const betaTS = 1 - abT / abS;
      const mean = axpby(
        Math.sqrt(abS) * betaTS / (1 - abT),
        x0,
        Math.sqrt(abT / abS) * (1 - abS) / (1 - abT),
        z,
      );
      if (i === total - 1) return mean;
      const v = variance === "fixed-small" ? betaTS * (1 - abS) / (1 - abT) : betaTS;
      return addNoise(mean, Math.sqrt(v), rng);
    },
  );
}
