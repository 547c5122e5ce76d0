/**
 * Training objectives the {@link Trainer} calls each step: the diffusion teacher loss of the
 * reference (method.md section 2) and the classifier's cross-entropy.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Parameterization } from "../diffusion/denoiser.ts";
import type { DiscreteSchedule } from "../diffusion/schedule.ts";
import { qSampleTensor, toX0AndEpsTensors } from "../diffusion/param_tf.ts";
import { diffusionLoss, type DiffusionLossKind } from "../diffusion/weighting.ts";
import type { StepContext, StepLoss } from "./trainer.ts";
import { checkInt, checkPositiveInt } from "../core/checks.ts";

/** Settings of {@link teacherObjective}. */
export interface TeacherObjectiveOptions {
  /** Network mapping [x: [B,H,W,C], t: [B]] to a prediction [B,H,W,C]. */
  model: tf.LayersModel;
  /** The schedule table (indices 0..maxIndex); t is drawn uniformly from 0..maxT. */
  schedule: DiscreteSchedule;
  /** What the network predicts. Default "x0" (the reference). */
  parameterization?: Parameterization;
  /** Loss weighting. Default "both" (mean over batch of max(mse_x0, mse_eps)). */
  lossKind?: DiffusionLossKind;
  /**
   * Largest t (in time-scaled units, i.e. before multiplying by `timeScale`). Default
   * `schedule.maxIndex / timeScale` (the reference's 0..T).
   */
  maxT?: number;
  /**
   * The reference trainer's `time_scale` s (integer >= 1 dividing `schedule.maxIndex`):
   * t is drawn from 0..maxT, and both the table (alpha-bar) and the network are read at the
   * index t * s of the SAME table, e.g. a cosine table built with T * s + 1 betas. Default 1.
   */
  timeScale?: number;
}

/** Draws a noise tensor of `shape` from the run's RNG (float32). */
export function noiseTensor(shape: number[], rng: StepContext<unknown>["rng"]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from(rng.normals(n)), shape, "float32");
}

/**
 * The teacher's diffusion loss on a batch of clean images x0 `[B,H,W,C]` in [-1, 1]:
 * t ~ U{0..maxT} and eps ~ N(0, I) from the run's RNG, j = t * timeScale,
 * z = sqrt(abar_j) x0 + sqrt(1-abar_j) eps, the network sees (z, j), and its prediction is
 * turned into (x0, eps) for the weighting `lossKind`. Metrics: mse_x0, mse_eps.
 */
export function teacherObjective(
  opts: TeacherObjectiveOptions,
): (ctx: StepContext<tf.Tensor4D>) => StepLoss {
  const p = opts.parameterization ?? "x0";
  const kind = opts.lossKind ?? "both";
  const scale = opts.timeScale ?? 1;
  const maxIndex = opts.schedule.maxIndex;
  checkPositiveInt("timeScale", scale);
  if (maxIndex % scale !== 0) {
    throw new RangeError(`timeScale must divide schedule.maxIndex ${maxIndex}, got ${scale}`);
  }
  const maxT = opts.maxT ?? maxIndex / scale;
  checkInt("maxT", maxT, 0, maxIndex / scale);
  return ({ batch: x0, rng }) => {
    const B = x0.shape[0];
    const index = Array.from({ length: B }, () => rng.int(0, maxT) * scale);
    const abar = index.map((i) => opts.schedule.alphasBar[i]);
    const eps = noiseTensor(x0.shape, rng);
    const z = qSampleTensor(abar, x0, eps);
    const pred = opts.model.apply([z, tf.tensor1d(index, "float32")], {
      training: true,
    }) as tf.Tensor;
    const { x0: px0, eps: peps } = toX0AndEpsTensors(z, pred, p, abar);
    const loss = diffusionLoss({
      kind,
      predX0: px0,
      predEps: peps,
      x0,
      eps,
      alphaBar: abar,
    });
    return {
      loss,
      metrics: {
        mse_x0: tf.losses.meanSquaredError(x0, px0) as tf.Scalar,
        mse_eps: tf.losses.meanSquaredError(eps, peps) as tf.Scalar,
      },
    };
  };
}

/** A labelled batch for classifier training: images `[B,H,W,C]` and integer labels `[B]`. */
export interface LabelledBatch {
  /** Images `[B, H, W, C]`. */
  x: tf.Tensor4D;
  /** Integer class labels `[B]` (any numeric dtype). */
  y: tf.Tensor1D;
}

/**
 * Cross-entropy of a classifier whose LAST output is the logits `[B, numClasses]` (our
 * classifier returns [featureMap, pooled, logits]). Metric: accuracy on the batch.
 */
export function classifierObjective(
  model: tf.LayersModel,
  numClasses: number,
): (ctx: StepContext<LabelledBatch>) => StepLoss {
  return ({ batch }) => {
    const out = model.apply(batch.x, { training: true }) as tf.Tensor | tf.Tensor[];
    const logits = (Array.isArray(out) ? out[out.length - 1] : out) as tf.Tensor2D;
    const onehot = tf.oneHot(batch.y.toInt(), numClasses);
    const loss = tf.losses.softmaxCrossEntropy(onehot, logits) as tf.Scalar;
    const acc = tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), batch.y.toInt()), "float32"));
    return { loss, metrics: { accuracy: acc as tf.Scalar } };
  };
}
