/**
 * Parameterisations of a variance-preserving diffusion: the forward process q(z_t | x0) and the
 * conversions between x0, eps and v, with
 *   z = sqrt(abar) x0 + sqrt(1 - abar) eps,   v = sqrt(abar) eps - sqrt(1 - abar) x0.
 *
 * Each conversion is ONE coefficient function of alpha-bar (a number) returning the pair
 * `[c1, c2]` of a linear combination; the Batch-level functions apply that pair per sample with
 * `axpby`. Time `t` is a schedule index (-1 = clean data, alpha-bar 1), either one number for the
 * whole batch or one index per sample. Every Batch-level function takes an optional last
 * argument `numerics`: "exact" (default, float64 coefficients) or "reference" (each gathered
 * coefficient rounded to float32 first, as the PyTorch reference; `numerics.ts`).
 * @module
 */
import { axpby, type Batch } from "../core/batch.ts";
import { checkInRange, checkLength, checkSameShape } from "../core/checks.ts";
import type { Parameterization } from "./denoiser.ts";
import { checkNumerics, gathered, type Numerics } from "./numerics.ts";
import { alphaBarAt, checkTimeIndex, type DiscreteSchedule } from "./schedule.ts";

/** Coefficients `[c1, c2]` of a conversion `out = c1 * first + c2 * second`. */
export type CoefPair = [number, number];

function scales(abar: number): { a: number; s: number } {
  checkInRange("abar", abar, 0, 1);
  return { a: Math.sqrt(abar), s: Math.sqrt(1 - abar) };
}

/** q(z_t | x0): `z = c1 * x0 + c2 * eps` with [c1, c2] = [sqrt(abar), sqrt(1-abar)]. */
export function qSampleCoef(abar: number): CoefPair {
  const { a, s } = scales(abar);
  return [a, s];
}

/**
 * `x0 = c1 * z + c2 * eps` with [c1, c2] = [1/sqrt(abar), -sqrt(1-abar)/sqrt(abar)].
 * @throws RangeError at abar = 0 (pure noise carries no information about x0).
 */
export function x0FromEpsCoef(abar: number): CoefPair {
  const { a, s } = scales(abar);
  if (a === 0) throw new RangeError(`abar must be > 0 to recover x0 from eps, got ${abar}`);
  return [1 / a, -s / a];
}

/**
 * `eps = c1 * z + c2 * x0` with [c1, c2] = [1/sqrt(1-abar), -sqrt(abar)/sqrt(1-abar)].
 * @throws RangeError at abar = 1 (t = -1: clean data carries no noise to recover).
 */
export function epsFromX0Coef(abar: number): CoefPair {
  const { a, s } = scales(abar);
  if (s === 0) {
    throw new RangeError(
      `abar must be < 1 to recover eps from x0 (t = -1 is clean data), got ${abar}`,
    );
  }
  return [1 / s, -a / s];
}

/** `v = c1 * x0 + c2 * eps` with [c1, c2] = [-sqrt(1-abar), sqrt(abar)]. */
export function vFromX0EpsCoef(abar: number): CoefPair {
  const { a, s } = scales(abar);
  return [-s, a];
}

/** `x0 = c1 * z + c2 * v` with [c1, c2] = [sqrt(abar), -sqrt(1-abar)]. */
export function x0FromVCoef(abar: number): CoefPair {
  const { a, s } = scales(abar);
  return [a, -s];
}

/** `eps = c1 * z + c2 * v` with [c1, c2] = [sqrt(1-abar), sqrt(abar)]. */
export function epsFromVCoef(abar: number): CoefPair {
  const { a, s } = scales(abar);
  return [s, a];
}

/**
 * Time index for a batch: one schedule index shared by all samples, or one per sample
 * (length B). Indices are integers in -1..maxIndex (-1 = clean data).
 */
export type TimeIndex = number | Int32Array | readonly number[];

/**
 * Applies the coefficient function `coef` at time `t` to `(first, second)`, per sample, each
 * coefficient as `numerics` uses it (float64, or rounded to float32 as the reference's
 * gathered tables). Validates the shapes (named `nameFirst`, `nameSecond`) and `t`.
 */
function combine(
  coef: (abar: number) => CoefPair,
  schedule: DiscreteSchedule,
  t: TimeIndex,
  first: Batch,
  second: Batch,
  nameFirst: string,
  nameSecond: string,
  numerics: Numerics,
): Batch {
  checkSameShape(nameFirst, first, nameSecond, second);
  checkNumerics("numerics", numerics);
  const at = (i: number) => coef(alphaBarAt(schedule, i)).map((c) => gathered(c, numerics));
  if (typeof t === "number") {
    const [c1, c2] = at(t);
    return axpby(c1, first, c2, second);
  }
  const B = first.shape[0];
  checkLength("t", t.length, B, "B");
  const c1 = new Float64Array(B), c2 = new Float64Array(B);
  for (let i = 0; i < B; i++) {
    checkTimeIndex(t[i], schedule.maxIndex, `t[${i}]`);
    [c1[i], c2[i]] = at(t[i]);
  }
  return axpby(c1, first, c2, second);
}

/**
 * Draws from q(z_t | x0) given the noise: z = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps.
 * @param x0 clean batch `[B, ...dims]`. @param t index(es) in -1..maxIndex.
 * @param eps noise, same shape as x0. @returns z_t, same shape.
 */
export function qSample(
  schedule: DiscreteSchedule,
  x0: Batch,
  t: TimeIndex,
  eps: Batch,
  numerics: Numerics = "exact",
): Batch {
  return combine(qSampleCoef, schedule, t, x0, eps, "x0", "eps", numerics);
}

/**
 * A Batch-level conversion `out = c1(abar_t) * first + c2(abar_t) * second` per sample, for
 * `first`, `second` `[B, ...dims]` of one shape and `t` one index or one per sample;
 * `numerics` defaults to "exact".
 */
export type Conversion = (
  schedule: DiscreteSchedule,
  first: Batch,
  second: Batch,
  t: TimeIndex,
  numerics?: Numerics,
) => Batch;

/** The {@link Conversion} of `coef`, naming its arguments `nameFirst`, `nameSecond` in errors. */
function conversion(coef: (abar: number) => CoefPair, nameFirst: string, nameSecond: string) {
  const f: Conversion = (schedule, first, second, t, numerics = "exact") =>
    combine(coef, schedule, t, first, second, nameFirst, nameSecond, numerics);
  return f;
}

/** x0 = (z - sqrt(1-abar) eps) / sqrt(abar): `x0FromEps(schedule, z, eps, t)`. Throws where abar = 0. */
export const x0FromEps: Conversion = conversion(x0FromEpsCoef, "z", "eps");

/** eps = (z - sqrt(abar) x0) / sqrt(1-abar): `epsFromX0(schedule, z, x0, t)`. Throws at t = -1. */
export const epsFromX0: Conversion = conversion(epsFromX0Coef, "z", "x0");

/** v = sqrt(abar) eps - sqrt(1-abar) x0: `vFromX0Eps(schedule, x0, eps, t)`. */
export const vFromX0Eps: Conversion = conversion(vFromX0EpsCoef, "x0", "eps");

/** x0 = sqrt(abar) z - sqrt(1-abar) v: `x0FromV(schedule, z, v, t)`. */
export const x0FromV: Conversion = conversion(x0FromVCoef, "z", "v");

/** eps = sqrt(1-abar) z + sqrt(abar) v: `epsFromV(schedule, z, v, t)`. */
export const epsFromV: Conversion = conversion(epsFromVCoef, "z", "v");

/**
 * Turns a denoiser's prediction in any parameterisation into the pair (x0, eps) that samplers
 * and losses use. z and pred are `[B, ...dims]`; t must be a noisy index (0..maxIndex) for "x0"
 * (needs abar < 1) and one with abar > 0 for "eps". For "x0" the returned x0 is `pred` itself.
 * `numerics` (default "exact"): see `numerics.ts`.
 */
export function toX0AndEps(
  schedule: DiscreteSchedule,
  z: Batch,
  pred: Batch,
  parameterization: Parameterization,
  t: TimeIndex,
  numerics: Numerics = "exact",
): { x0: Batch; eps: Batch } {
  switch (parameterization) {
    case "x0":
      return { x0: pred, eps: epsFromX0(schedule, z, pred, t, numerics) };
    case "eps":
      return { x0: x0FromEps(schedule, z, pred, t, numerics), eps: pred };
    case "v":
      return {
        x0: x0FromV(schedule, z, pred, t, numerics),
        eps: epsFromV(schedule, z, pred, t, numerics),
      };
    default:
      throw new RangeError(
        `parameterization must be "x0", "eps" or "v", got ${JSON.stringify(parameterization)}`,
      );
  }
}
