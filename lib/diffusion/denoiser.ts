/**
 * The one denoiser contract every sampler is written against, so that any model — a tfjs
 * network or an analytic function — plugs in.
 * @module
 */
import type { Batch } from "../core/batch.ts";

/** What a denoiser predicts: the clean image x0, the noise eps, or v = sqrt(abar) eps - sqrt(1-abar) x0. */
export type Parameterization = "x0" | "eps" | "v";

/** A denoiser: maps a noisy batch z_t at integer schedule index t to a prediction. */
export interface Denoiser {
  /** What {@link Denoiser.predict} returns. */
  readonly parameterization: Parameterization;
  /**
   * Predicts from the noisy batch `z` at step `t` (synchronously or as a promise).
   * @param z noisy batch `[B, ...dims]` (float64).
   * @param t integer index into the schedule's `alphasBar` table, shared by the batch.
   * @returns the prediction in `parameterization`, same shape as `z`.
   */
  predict(z: Batch, t: number): Batch | Promise<Batch>;
}
