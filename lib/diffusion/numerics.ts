/**
 * Numerics modes of the schedule coefficients, for comparing runs with the PyTorch reference.
 *
 * - "exact" (the default everywhere): every coefficient is evaluated in float64 from the
 *   float64 schedule table and used as is.
 * - "reference": what the reference computes. It keeps its tables (sqrt(abar),
 *   sqrt(1 - abar), ...) in float64 but casts every coefficient it gathers at an index to
 *   float32 before using it, so a gathered coefficient c becomes `Math.fround(c)`; and PD's
 *   ratio r = sqrt(1 - abar_{t-2}) / sqrt(1 - abar_t) and the x~ denominator
 *   sqrt(abar_{t-2}) - r sqrt(abar_t) are then computed in float32 arithmetic from those
 *   rounded coefficients (see `pdTarget`).
 *
 * Where the option exists: the float64 conversions of `param.ts` (and so every sampler's
 * (x0, eps) estimate) and DDIM's update (`SamplerOptions.numerics`), and the PD target
 * (`PdTargetOptions.numerics`, `RddConfig.numerics`). Tensors of the tfjs paths are float32
 * in both modes (their coefficients are cast to float32 anyway); there the modes differ in
 * PD's ratio and denominator only.
 * @module
 */
import { checkOneOf } from "../core/checks.ts";

/** "exact" (float64 coefficients) or "reference" (gathered coefficients rounded to float32). */
export type Numerics = "exact" | "reference";

/** The accepted {@link Numerics} modes. */
export const NUMERICS: readonly Numerics[] = ["exact", "reference"];

/**
 * Throws a RangeError naming `name` unless `numerics` is a {@link Numerics} mode.
 * @param name the parameter's name. @param numerics the value received.
 */
export function checkNumerics(name: string, numerics: unknown): asserts numerics is Numerics {
  checkOneOf(name, numerics, NUMERICS);
}

/**
 * A coefficient gathered from a schedule table, as the mode uses it: itself ("exact") or
 * rounded to the nearest float32 ("reference").
 * @param value the float64 coefficient.
 * @param numerics the mode.
 */
export function gathered(value: number, numerics: Numerics): number {
  return numerics === "reference" ? Math.fround(value) : value;
}
