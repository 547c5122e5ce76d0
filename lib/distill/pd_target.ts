/**
 * The progressive-distillation (PD) target of Salimans & Ho 2022, as computed by the RDD /
 * RCFD reference: two deterministic DDIM steps of the teacher, and the x0 for which ONE
 * student DDIM step lands where the teacher's two steps land (method.md section 4).
 *
 * Index units. The teacher has T steps and `timeScale` s on a table of `alphasBar` with
 * indices 0..T*s (the reference cosine has T*s + 1 entries). Teacher time indices t are in
 * 0..T; the table (and the network) is read at t * s. The student of the next round has T/2
 * steps and time scale 2s; its step k = t/2 reads the same table at k * 2s = t * s. So the
 * student is queried at exactly the network index the teacher's first step used, which
 * {@link PdTarget.netIndex} returns.
 *
 * Tensors are NHWC `[B, H, W, C]` float32; the per-sample coefficients are computed in
 * float64 and then cast (`numerics: "reference"` computes PD's ratio and denominator in
 * float32 instead, as the reference does; `lib/diffusion/numerics.ts`).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Rng } from "../core/rng.ts";
import type { DiscreteSchedule } from "../diffusion/schedule.ts";
import {
  checkInt,
  checkLength,
  checkOneOf,
  checkSameShape,
  checkShapePair,
} from "../core/checks.ts";
import { checkNumerics, gathered, type Numerics } from "../diffusion/numerics.ts";
import { stopGradient } from "./rcfd.ts";

/**
 * What the PD target needs of a schedule: a `DiscreteSchedule` or just its `alphasBar`
 * table (values in [0, 1], non-increasing).
 */
export type AlphasBarTable = Pick<DiscreteSchedule, "alphasBar">;

/** A teacher's prediction at noisy `z`: clean image and noise, both `[B, H, W, C]`. */
export interface X0EpsPrediction {
  /** The clean-image prediction. */
  readonly x0: tf.Tensor4D;
  /** The noise prediction. */
  readonly eps: tf.Tensor4D;
}

/**
 * The teacher network: `z` `[B, H, W, C]` at network (table) indices `tIndex` `[B]`
 * (int32) -> either both predictions, or one tensor read as x0 or eps according to
 * {@link PdTargetOptions.teacherPredicts}.
 */
export type PdTeacher = (z: tf.Tensor4D, tIndex: tf.Tensor1D) => tf.Tensor4D | X0EpsPrediction;

/** Options of {@link pdTarget}. */
export interface PdTargetOptions {
  /** Teacher time scale s >= 1 (table index = t * s). Default 1. */
  readonly timeScale?: number;
  /** How a single-tensor teacher output is read: "x0" (default, the reference) or "eps". */
  readonly teacherPredicts?: "x0" | "eps";
  /**
   * Target for samples whose second teacher step ends at t - 2 = 0 (all samples of the
   * last round, teacher 2 steps -> student 1 step). "identity" (default, the reference):
   * the formula above. "teacher-x0": the PD paper's last-round variant, x~ = the teacher's
   * x0 prediction at z_{t-1} (the limit of the identity target when abar_{t-2} -> 1; the
   * reference table's index 0 is slightly noisy, so the two differ a little there).
   */
  readonly finalStepTarget?: "identity" | "teacher-x0";
  /**
   * "exact" (default): r and the x~ denominator in float64. "reference": in float32 from
   * float32-rounded coefficients, as the PyTorch reference ({@link pdRatio}). The other
   * coefficients are float32 tensors in both modes.
   */
  readonly numerics?: Numerics;
}

/** Result of {@link pdTarget}; every tensor is `[B, H, W, C]` except `netIndex`. */
export interface PdTarget {
  /** Noisy input z_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps (the student's input). */
  readonly zt: tf.Tensor4D;
  /** x~: the x0 for which one student DDIM step from z_t lands on `zTeacher`. */
  readonly xTarget: tf.Tensor4D;
  /** eps~ = (z_t - sqrt(abar_t) x~) / sqrt(1 - abar_t). */
  readonly epsTarget: tf.Tensor4D;
  /** z_{t-2} after the teacher's two DDIM steps (no clipping). */
  readonly zTeacher: tf.Tensor4D;
  /** The teacher's x0 prediction at z_t (its first step), for RDD's `gt` term. */
  readonly teacherX0: tf.Tensor4D;
  /** Network index t * timeScale `[B]` (int32) at which the student must be queried. */
  readonly netIndex: tf.Tensor1D;
}

/**
 * Draws the reference's PD time indices t = 2k, k uniform in 1..T/2 (teacher units).
 * @param rng seeded generator.
 * @param batchSize B >= 1.
 * @param teacherSteps T, even and >= 2.
 * @returns Int32Array of length B with even values in 2..T.
 */
export function samplePdTimesteps(rng: Rng, batchSize: number, teacherSteps: number): Int32Array {
  checkInt("batchSize", batchSize);
  if (!Number.isInteger(teacherSteps) || teacherSteps < 2 || teacherSteps % 2 !== 0) {
    throw new RangeError(`teacherSteps must be an even integer >= 2, got ${teacherSteps}`);
  }
  const t = new Int32Array(batchSize);
  for (let i = 0; i < batchSize; i++) t[i] = 2 * rng.int(1, teacherSteps / 2);
  return t;
}

/** Per-sample float64 coefficients as a `[B, 1, 1, 1]` float32 tensor. */
function perSample(values: Float64Array): tf.Tensor4D {
  return tf.tensor4d(Float32Array.from(values), [values.length, 1, 1, 1]);
}

/** sqrt(abar) and sqrt(1 - abar) at the given table indices. */
function coefficients(abar: Float64Array, idx: Int32Array): [Float64Array, Float64Array] {
  const a = new Float64Array(idx.length), s = new Float64Array(idx.length);
  idx.forEach((j, i) => {
    a[i] = Math.sqrt(abar[j]);
    s[i] = Math.sqrt(1 - abar[j]);
  });
  return [a, s];
}

/** PD's per-sample ratio and x~ denominator, see {@link pdRatio}. */
export interface PdRatio {
  /** r = sqrt(1 - abar_{t-2}) / sqrt(1 - abar_t), per sample. */
  readonly r: Float64Array;
  /** sqrt(abar_{t-2}) - r sqrt(abar_t), per sample. */
  readonly denom: Float64Array;
}

/**
 * The ratio r and the denominator of the PD target x~ = (z_{t-2} - r z_t) / denom at table
 * indices `from` (t) and `to` (t - 2). "exact": float64 throughout. "reference": the four
 * gathered coefficients rounded to float32, then r = fl(s_to / s_from) and
 * denom = fl(a_to - fl(r a_from)) in float32 arithmetic (fl = round to float32), as the
 * PyTorch reference computes them on float32 tensors.
 * @param abar the `alphasBar` table.
 * @param from table indices of z_t, one per sample. @param to table indices of z_{t-2}.
 * @param numerics "exact" (default) or "reference".
 */
export function pdRatio(
  abar: Float64Array,
  from: Int32Array,
  to: Int32Array,
  numerics: Numerics = "exact",
): PdRatio {
  checkNumerics("numerics", numerics);
  checkLength("to", to.length, from.length, "from.length");
  const f = numerics === "reference" ? Math.fround : (x: number) => x;
  const [aFrom, sFrom] = coefficients(abar, from).map((c) => c.map((v) => gathered(v, numerics)));
  const [aTo, sTo] = coefficients(abar, to).map((c) => c.map((v) => gathered(v, numerics)));
  const r = sTo.map((v, i) => f(v / sFrom[i]));
  const denom = aTo.map((v, i) => f(v - f(r[i] * aFrom[i])));
  return { r, denom };
}

/** One deterministic DDIM step (no clipping) of the teacher from table index `from` to `to`. */
function teacherStep(
  teacher: PdTeacher,
  reads: "x0" | "eps",
  abar: Float64Array,
  z: tf.Tensor4D,
  from: Int32Array,
  to: Int32Array,
): { z: tf.Tensor4D; x0: tf.Tensor4D } {
  const [aFrom, sFrom] = coefficients(abar, from).map(perSample);
  const [aTo, sTo] = coefficients(abar, to).map(perSample);
  const out = teacher(z, tf.tensor1d(from, "int32"));
  let x0: tf.Tensor4D, eps: tf.Tensor4D;
  if (out instanceof tf.Tensor) {
    checkSameShape("z", z, "teacher output", out);
    if (reads === "x0") {
      x0 = out;
      eps = tf.div(tf.sub(z, tf.mul(aFrom, x0)), sFrom);
    } else {
      eps = out;
      x0 = tf.div(tf.sub(z, tf.mul(sFrom, eps)), aFrom);
    }
  } else {
    if (!(out?.x0 instanceof tf.Tensor) || !(out?.eps instanceof tf.Tensor)) {
      throw new TypeError("teacher must return a tf.Tensor4D or {x0, eps} tensors");
    }
    checkSameShape("z", z, "teacher output x0", out.x0);
    checkSameShape("z", z, "teacher output eps", out.eps);
    ({ x0, eps } = out);
  }
  return { z: tf.add(tf.mul(aTo, x0), tf.mul(sTo, eps)), x0 };
}

/**
 * Computes z_t, the teacher's two DDIM steps z_t -> z_{t-1} -> z_{t-2} (no clipping, both
 * steps of stride 1 in teacher units) and the PD target
 *   r = sqrt(1 - abar_{t-2}) / sqrt(1 - abar_t),
 *   x~ = (z_{t-2} - r z_t) / (sqrt(abar_{t-2}) - r sqrt(abar_t)),
 *   eps~ = (z_t - sqrt(abar_t) x~) / sqrt(1 - abar_t),
 * with every abar read at (teacher index) * timeScale. Run it outside any gradient tape
 * (the target is constant for the student).
 * @param schedule the teacher's table (a `DiscreteSchedule` or `{alphasBar}`).
 * @param t teacher time indices per sample, integers in 2..T where T = maxIndex / timeScale
 *   (the reference draws t = 2k, see {@link samplePdTimesteps}).
 * @param x0 clean data `[B, H, W, C]`.
 * @param eps standard normal noise, same shape.
 * @param teacher the frozen teacher network.
 * @param options time scale, teacher parameterisation, last-round variant.
 * @returns {@link PdTarget}; the caller disposes its tensors.
 */
export function pdTarget(
  schedule: AlphasBarTable,
  t: ArrayLike<number>,
  x0: tf.Tensor4D,
  eps: tf.Tensor4D,
  teacher: PdTeacher,
  options: PdTargetOptions = {},
): PdTarget {
  const abar = schedule?.alphasBar;
  if (!(abar instanceof Float64Array) || abar.length < 3) {
    throw new TypeError("schedule.alphasBar must be a Float64Array with at least 3 entries");
  }
  const s = options.timeScale ?? 1;
  if (!Number.isInteger(s) || s < 1 || (abar.length - 1) % s !== 0) {
    throw new RangeError(
      `options.timeScale must be an integer >= 1 dividing maxIndex ${abar.length - 1}, got ${s}`,
    );
  }
  const reads = options.teacherPredicts ?? "x0";
  checkOneOf("options.teacherPredicts", reads, ["x0", "eps"]);
  const finalTarget = options.finalStepTarget ?? "identity";
  checkOneOf("options.finalStepTarget", finalTarget, ["identity", "teacher-x0"]);
  const numerics = options.numerics ?? "exact";
  checkNumerics("options.numerics", numerics);
  checkShapePair("x0", x0, "eps", eps, ["B", "H", "W", "C"]);
  const B = x0.shape[0];
  const T = (abar.length - 1) / s;
  checkLength("t", t?.length, B, "B");
  const i0 = new Int32Array(B), i1 = new Int32Array(B), i2 = new Int32Array(B);
  for (let i = 0; i < B; i++) {
    checkInt(`t[${i}]`, t[i], 2, T);
    [i0[i], i1[i], i2[i]] = [t[i] * s, (t[i] - 1) * s, (t[i] - 2) * s];
  }
  for (const j of [...i0, ...i1, ...i2]) {
    if (!(abar[j] >= 0 && abar[j] <= 1)) {
      throw new RangeError(`schedule.alphasBar[${j}] must be in [0, 1], got ${abar[j]}`);
    }
  }
  for (const j of [...i0, ...i1]) {
    if (!(abar[j] < 1) || (reads === "eps" && !(abar[j] > 0))) {
      throw new RangeError(
        `schedule.alphasBar[${j}] must be in ${reads === "eps" ? "(0, 1)" : "[0, 1)"} ` +
          `at the teacher's input indices, got ${abar[j]}`,
      );
    }
  }
  const [a0, s0] = coefficients(abar, i0);
  const { r, denom } = pdRatio(abar, i0, i2, numerics);
  denom.forEach((d, i) => {
    if (!(d > 0)) {
      throw new RangeError(
        `schedule.alphasBar must decrease: sqrt(abar_{t-2}) - r sqrt(abar_t) = ${d} at t[${i}]`,
      );
    }
  });
  const useTeacherX0 = Float64Array.from(
    i2,
    (j) => (finalTarget === "teacher-x0" && j === 0) ? 1 : 0,
  );
  return tf.tidy(() => {
    const zt = tf.add(tf.mul(perSample(a0), x0), tf.mul(perSample(s0), eps)) as tf.Tensor4D;
    const step1 = teacherStep(teacher, reads, abar, zt, i0, i1);
    const step2 = teacherStep(teacher, reads, abar, step1.z, i1, i2);
    const identity = tf.div(tf.sub(step2.z, tf.mul(perSample(r), zt)), perSample(denom));
    const mask = perSample(useTeacherX0);
    const xTarget = tf.add(
      tf.mul(mask, step2.x0),
      tf.mul(tf.sub(1, mask), identity),
    ) as tf.Tensor4D;
    const epsTarget = tf.div(
      tf.sub(zt, tf.mul(perSample(a0), xTarget)),
      perSample(s0),
    ) as tf.Tensor4D;
    return {
      zt,
      xTarget,
      epsTarget,
      zTeacher: step2.z,
      teacherX0: step1.x0,
      netIndex: tf.tensor1d(i0, "int32"),
    };
  });
}

/**
 * The PD loss on per-sample mean squared errors: mse_x = mean over pixels of
 * (studentX0 - xTarget)^2, mse_eps likewise; "x": mean over the batch of mse_x, "eps": of
 * mse_eps, "both": of max(mse_x, mse_eps) (the truncated-SNR weighting; the reference's
 * default). Targets are detached.
 * @param studentX0 student's x0 prediction `[B, H, W, C]`.
 * @param studentEps noise implied by it at z_t, same shape.
 * @param xTarget x~ from {@link pdTarget}, same shape.
 * @param epsTarget eps~ from {@link pdTarget}, same shape.
 * @param kind "x" | "eps" | "both".
 * @returns scalar, squared image units.
 */
export function pdLoss(
  studentX0: tf.Tensor4D,
  studentEps: tf.Tensor4D,
  xTarget: tf.Tensor4D,
  epsTarget: tf.Tensor4D,
  kind: "x" | "eps" | "both" = "both",
): tf.Scalar {
  checkShapePair("studentX0", studentX0, "studentEps", studentEps, ["B", "H", "W", "C"]);
  checkSameShape("studentX0", studentX0, "xTarget", xTarget);
  checkSameShape("studentX0", studentX0, "epsTarget", epsTarget);
  checkOneOf("kind", kind, ["x", "eps", "both"]);
  return tf.tidy(() => {
    const perSampleMse = (a: tf.Tensor4D, b: tf.Tensor4D) =>
      tf.mean(tf.square(tf.sub(a, stopGradient(b))), [1, 2, 3]);
    if (kind === "x") return tf.mean(perSampleMse(studentX0, xTarget)) as tf.Scalar;
    if (kind === "eps") return tf.mean(perSampleMse(studentEps, epsTarget)) as tf.Scalar;
    return tf.mean(
      tf.maximum(perSampleMse(studentX0, xTarget), perSampleMse(studentEps, epsTarget)),
    ) as tf.Scalar;
  });
}
