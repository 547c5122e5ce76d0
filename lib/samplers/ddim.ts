/**
 * DDIM (Song et al., 2021) on a path of schedule indices, deterministic (eta = 0) or
 * stochastic (eta > 0), and the reference's strided DDIM.
 *
 * Step t -> s with (x0, eps) estimated at t (x0 clipped and eps re-derived if `clipX0`):
 *   sigma = eta * sqrt((1 - abar_s) / (1 - abar_t)) * sqrt(1 - abar_t / abar_s),
 *   z_s = sqrt(abar_s) x0 + sqrt(1 - abar_s - sigma^2) eps + sigma n,  n ~ N(0, I).
 * With eta = 0 this is exactly the reference's update z <- sqrt(abar_s) x0 + sqrt(1-abar_s) eps.
 * With eta = 1 it is DDPM ancestral sampling with the posterior variance. Landing on s = -1
 * (abar_s = 1) gives sigma = 0 and z = x0.
 * @module
 */
import { axpby, type Batch } from "../core/batch.ts";
import { Rng } from "../core/rng.ts";
import type { Denoiser } from "../diffusion/denoiser.ts";
import { gathered } from "../diffusion/numerics.ts";
import { alphaBarAt, type DiscreteSchedule } from "../diffusion/schedule.ts";
import { strideTimesteps } from "../diffusion/timesteps.ts";
import { addNoise, runSampler, type SamplerOptions, type SampleWithTrajectory } from "./common.ts";

/** Options of {@link ddim}. */
export interface DdimOptions extends SamplerOptions {
  /** Stochasticity eta >= 0 (0 = deterministic DDIM, 1 = DDPM posterior variance). Default 0. */
  readonly eta?: number;
  /** Seed of the noise when eta > 0 (default 0). */
  readonly seed?: number | string;
}

/** Runs DDIM from zT `[B, ...dims]` along `options.path`; returns the sample (shape of zT). */
export function ddim(
  denoiser: Denoiser,
  schedule: DiscreteSchedule,
  zT: Batch,
  options: DdimOptions & { returnTrajectory: true },
): Promise<SampleWithTrajectory>;
/** Runs DDIM from zT `[B, ...dims]` along `options.path`; returns the sample (shape of zT). */
export function ddim(
  denoiser: Denoiser,
  schedule: DiscreteSchedule,
  zT: Batch,
  options: DdimOptions & { returnTrajectory?: false },
): Promise<Batch>;
/** Runs DDIM; the sample, or the sample with its trajectory when `returnTrajectory`. */
export function ddim(
  denoiser: Denoiser,
  schedule: DiscreteSchedule,
  zT: Batch,
  options: DdimOptions,
): Promise<Batch | SampleWithTrajectory>;
export async function ddim(
  denoiser: Denoiser,
  schedule: DiscreteSchedule,
  zT: Batch,
  options: DdimOptions,
): Promise<Batch | SampleWithTrajectory> {
  const { eta = 0, seed = 0 } = options;
  if (!(eta >= 0 && Number.isFinite(eta))) {
    throw new RangeError(`eta must be a finite number >= 0, got ${eta}`);
  }
  const rng = new Rng(seed);
  return await runSampler(denoiser, schedule, zT, options, (_z, { x0, eps }, t, s) => {
    const abT = alphaBarAt(schedule, t), abS = alphaBarAt(schedule, s);
    const sigma = eta === 0 ? 0 : eta * Math.sqrt((1 - abS) / (1 - abT) * (1 - abT / abS));
    const dir2 = 1 - abS - sigma * sigma;
    if (dir2 < -1e-12) {
      throw new RangeError(
        `eta=${eta} is too large for the step ${t} -> ${s}: sigma^2 exceeds 1 - abar_s`,
      );
    }
    const numerics = options.numerics ?? "exact";
    const zs = axpby(
      gathered(Math.sqrt(abS), numerics),
      x0,
      gathered(Math.sqrt(Math.max(0, dir2)), numerics),
      eps,
    );
    return sigma > 0 ? addNoise(zs, sigma, rng) : zs;
  });
}

/**
 * The reference's `ddim(x_T, stride, clip)`: deterministic DDIM along
 * [k*stride, ..., stride, 0] (k = floor(T / stride)), landing on index 0, then the final clip of
 * the sample to [-1, 1]. A model with T steps and time scale `ts` lives on a schedule with
 * maxIndex = T * ts and is queried at index time_step * ts, so the path is scaled by
 * ts = schedule.maxIndex / T (must be an integer).
 * @param zT noise `[B, ...dims]`. @param T the model's number of steps. @param stride 1..T.
 * @param options.clipX0 clip x0 to [-1, 1] at each step (the reference's `clip`, default true).
 */
export async function referenceDdim(
  denoiser: Denoiser,
  schedule: DiscreteSchedule,
  zT: Batch,
  T: number,
  stride: number,
  { clipX0 = true }: { clipX0?: boolean } = {},
): Promise<Batch> {
  const path = referenceDdimPath(schedule, T, stride);
  return await ddim(denoiser, schedule, zT, { path, clipX0, clipOutput: true });
}

/**
 * The table indices the reference's strided DDIM visits: [k*stride, ..., stride, 0] * ts with
 * k = floor(T / stride) and ts = schedule.maxIndex / T (must be a positive integer).
 */
export function referenceDdimPath(schedule: DiscreteSchedule, T: number, stride: number): number[] {
  const timeScale = schedule.maxIndex / T;
  if (!Number.isInteger(timeScale) || timeScale < 1) {
    throw new RangeError(
      `T must divide schedule.maxIndex=${schedule.maxIndex} (maxIndex = T * timeScale), got ${T}`,
    );
  }
  return strideTimesteps(T, stride).map((i) => i * timeScale);
}
