/**
 * DPM-Solver++(2M) (Lu et al., 2022): the multistep second-order solver of the probability-flow
 * ODE in data-prediction form, on a path of schedule indices.
 *
 * With alpha = sqrt(abar), sigma = sqrt(1 - abar), lambda = log(alpha / sigma) and, for the step
 * t_{i-1} -> t_i, h_i = lambda(t_i) - lambda(t_{i-1}):
 *   z_{t_i} = (sigma_{t_i} / sigma_{t_{i-1}}) z - alpha_{t_i} (exp(-h_i) - 1) D_i,
 * where D_i = x0_{i-1} (first order: the first step, which equals a DDIM step) or, with
 * r_i = h_{i-1} / h_i,  D_i = (1 + 1/(2 r_i)) x0_{i-1} - 1/(2 r_i) x0_{i-2}  (second order).
 *
 * Landing on -1 (clean data, sigma = 0, lambda = +Infinity): h = Infinity, exp(-h) = 0 and the
 * second-order weight 1/(2 r) = h / (2 h_prev) diverges, so that last step is always first
 * order and returns the last x0 estimate (as diffusers does for a zero final sigma). A schedule
 * with abar = 0 at the top index (zero terminal SNR, lambda = -Infinity) makes the first step
 * z = sigma_s z_T + alpha_s x0 and the next one first order (r = Infinity), which the formulas
 * give without special cases.
 * @module
 */
import { axpby, type Batch } from "../core/batch.ts";
import type { Denoiser } from "../diffusion/denoiser.ts";
import { alphaBarAt, type DiscreteSchedule } from "../diffusion/schedule.ts";
import { runSampler, type SamplerOptions, type SampleWithTrajectory } from "./common.ts";

/** Options of {@link dpmSolverPp2m}. */
export interface DpmSolverOptions extends SamplerOptions {
  /**
   * Use a first-order final step when the path has fewer than 15 steps (the diffusers
   * `lower_order_final` default, which steadies few-step sampling). Default true. A final step
   * onto -1 is first order regardless (see the module doc).
   */
  readonly lowerOrderFinal?: boolean;
}

/** lambda = log(sqrt(abar) / sqrt(1 - abar)); +Infinity at abar = 1, -Infinity at abar = 0. */
function halfLogSnr(abar: number): number {
  return 0.5 * (Math.log(abar) - Math.log1p(-abar));
}

/** Runs DPM-Solver++(2M) from zT `[B, ...dims]` along `options.path`; returns the sample. */
export function dpmSolverPp2m(
  denoiser: Denoiser,
  schedule: DiscreteSchedule,
  zT: Batch,
  options: DpmSolverOptions & { returnTrajectory: true },
): Promise<SampleWithTrajectory>;
/** Runs DPM-Solver++(2M) from zT `[B, ...dims]` along `options.path`; returns the sample. */
export function dpmSolverPp2m(
  denoiser: Denoiser,
  schedule: DiscreteSchedule,
  zT: Batch,
  options: DpmSolverOptions & { returnTrajectory?: false },
): Promise<Batch>;
/** Runs DPM-Solver++(2M); the sample, or the sample with its trajectory when `returnTrajectory`. */
export function dpmSolverPp2m(
  denoiser: Denoiser,
  schedule: DiscreteSchedule,
  zT: Batch,
  options: DpmSolverOptions,
): Promise<Batch | SampleWithTrajectory>;
export async function dpmSolverPp2m(
  denoiser: Denoiser,
  schedule: DiscreteSchedule,
  zT: Batch,
  options: DpmSolverOptions,
): Promise<Batch | SampleWithTrajectory> {
  const { lowerOrderFinal = true } = options;
  let prevX0: Batch | null = null;
  let prevH = 0;
  return await runSampler(denoiser, schedule, zT, options, (z, { x0 }, t, s, i, total) => {
    const abT = alphaBarAt(schedule, t), abS = alphaBarAt(schedule, s);
    const h = halfLogSnr(abS) - halfLogSnr(abT);
    const prev = prevX0;
    const secondOrder = prev !== null && h !== Infinity &&
      !(lowerOrderFinal && i === total - 1 && total < 15);
    const w = h / (2 * prevH); // = 1 / (2 r)
    const d = secondOrder ? axpby(1 + w, x0, -w, prev) : x0;
    prevX0 = x0;
    prevH = h;
    // -expm1(-h) = 1 - exp(-h), accurate for small h and 1 for h = Infinity.
    return axpby(Math.sqrt(1 - abS) / Math.sqrt(1 - abT), z, Math.sqrt(abS) * -Math.expm1(-h), d);
  });
}
