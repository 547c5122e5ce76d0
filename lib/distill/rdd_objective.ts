/**
 * The RDD distillation objective: a weighted sum of the PD pixel loss, the RCFD term, IS_P2P,
 * M_P2P and (optional, not in the reference) RKD terms, with every weight and temperature
 * explicit, plus the presets of the paper's comparisons (method.md section 5).
 *
 * Feature maps are NHWC `[B, h, w, C]` (the reference's NCHW transposed).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Numerics } from "../diffusion/numerics.ts";
import { perSampleMse } from "../diffusion/weighting.ts";
import { pdLoss } from "./pd_target.ts";
import {
  checkNonNegative,
  checkSameShape,
  checkShape,
  checkShapePair,
  required,
} from "../core/checks.ts";
import { rcfdLoss, stopGradient } from "./rcfd.ts";
import { isp2pLoss } from "./isp2p.ts";
import { type EmbeddingLayout, type HeadMode, MemoryQueue, mp2pLoss } from "./mp2p.ts";
import { rkdAngleLoss, rkdDistanceLoss } from "./rkd.ts";

/** What the frozen classifier gives for one batch of images. */
export interface ClassifierFeatures {
  /** Last feature map before global pooling (after BN and ReLU), `[B, h, w, C]`. */
  readonly featureMap: tf.Tensor4D;
  /** Global average pool of the ReLU'd map, `[B, C]`. */
  readonly pooled: tf.Tensor2D;
}

/** Weights and temperatures of {@link rddLoss}; a weight of 0 skips its term. */
export interface RddConfig {
  /** Weight of the RCFD term KL(softmax(f_T / rcfdTau) || softmax(f_S)). */
  readonly rcfdWeight: number;
  /** RCFD teacher-side temperature. */
  readonly rcfdTau: number;
  /** Weight of IS_P2P. */
  readonly isp2pWeight: number;
  /** IS_P2P temperature (both sides, no tau^2). */
  readonly isp2pTau: number;
  /** IS_P2P anchor chunk (samples); 0 = whole batch at once. Does not change the value. */
  readonly isp2pChunkSize: number;
  /** Weight of M_P2P (the reference's "factor" 0.1). */
  readonly mp2pWeight: number;
  /** M_P2P queue temperature dividing the cosine similarities to the contrast rows. */
  readonly mp2pTau: number;
  /** M_P2P KD temperature: both sides divided by it, loss multiplied by its square. */
  readonly mp2pKdTau: number;
  /** Memory queue size M (used by whoever builds the {@link MemoryQueue}). */
  readonly queueSize: number;
  /** Contrast rows K read from the queue each step. */
  readonly contrastSize: number;
  /** Teacher embeddings enqueued per step (used by whoever builds the queue). */
  readonly enqueuePerStep: number;
  /** Layout of the enqueued teacher embeddings. */
  readonly embeddingLayout: EmbeddingLayout;
  /** How the M_P2P projection head runs: "train" (the reference) or "inference". */
  readonly mp2pHeadMode: HeadMode;
  /** Weight of the PD pixel loss (0 in RDD's final rounds). */
  readonly pdMseWeight: number;
  /** Which PD pixel loss: "x", "eps" or "both" (max of the two per sample). */
  readonly pdLossKind: "x" | "eps" | "both";
  /**
   * The reference's `logits` switch: adds the PD pixel loss (`pdLossKind`, weight 1) to the
   * other terms; the same as raising `pdMseWeight` by 1 (term "pixel").
   */
  readonly logits: boolean;
  /**
   * The reference's `gt` switch: adds (weight 1, term "gt") the pixel loss against the DATA,
   * mean over the batch of max(mse(x0 of the teacher's first DDIM step, x0), mse(student
   * eps, noise)) per sample, with x0 the clean images and noise the eps that made z_t. Its
   * x part does not depend on the student (it only decides which side of the max is taken);
   * the gradient flows through the student's eps only. Needs {@link PixelTargets.data}.
   */
  readonly gt: boolean;
  /**
   * Numerics of the PD target ("exact" float64, or "reference": PD's ratio and denominator
   * in float32 from float32-rounded coefficients, as the PyTorch reference; see
   * `lib/diffusion/numerics.ts`). Used by whoever builds the target (`pdBatchSource`).
   */
  readonly numerics: Numerics;
  /** Weight of the RKD distance-wise term on pooled features. */
  readonly rkdDistanceWeight: number;
  /** Weight of the RKD angle-wise term on pooled features. */
  readonly rkdAngleWeight: number;
}

/** The reference RDD configuration: RCFD + 1.0 IS_P2P + 0.1 M_P2P, no pixel MSE. */
export const RDD_DEFAULTS: RddConfig = Object.freeze({
  rcfdWeight: 1,
  rcfdTau: 0.9,
  isp2pWeight: 1,
  isp2pTau: 1,
  isp2pChunkSize: 16,
  mp2pWeight: 0.1,
  mp2pTau: 0.1,
  mp2pKdTau: 1,
  queueSize: 20000,
  contrastSize: 4096,
  enqueuePerStep: 128,
  embeddingLayout: "per-pixel",
  mp2pHeadMode: "train",
  pdMseWeight: 0,
  pdLossKind: "both",
  logits: false,
  gt: false,
  numerics: "exact",
  rkdDistanceWeight: 0,
  rkdAngleWeight: 0,
});

/** Names of the presets of {@link rddPreset}. */
export type RddPresetName = "pd" | "rcfd" | "rdd";

/**
 * A preset configuration: "pd" = pixel loss only (plain progressive distillation), "rcfd" =
 * the RCFD term only, "rdd" = {@link RDD_DEFAULTS}. Overrides are applied on top.
 * @param name preset name.
 * @param overrides fields to change.
 */
export function rddPreset(name: RddPresetName, overrides: Partial<RddConfig> = {}): RddConfig {
  const off = { rcfdWeight: 0, isp2pWeight: 0, mp2pWeight: 0, pdMseWeight: 0 };
  const presets: Record<RddPresetName, Partial<RddConfig>> = {
    pd: { ...off, pdMseWeight: 1 },
    rcfd: { ...off, rcfdWeight: 1 },
    rdd: {},
  };
  if (!(name in presets)) throw new RangeError(`name must be "pd", "rcfd" or "rdd", got ${name}`);
  return Object.freeze({ ...RDD_DEFAULTS, ...presets[name], ...overrides });
}

/**
 * The M_P2P memory queue a config asks for (`queueSize` rows, `enqueuePerStep` per step).
 * @param config the objective's config.
 * @param dim teacher feature channels C.
 * @param seed seed of the initial bank and of the enqueue choice.
 */
export function createRddQueue(
  config: RddConfig,
  dim: number,
  seed: number | string = 0,
): MemoryQueue {
  return new MemoryQueue(dim, {
    size: config.queueSize,
    enqueuePerStep: config.enqueuePerStep,
    seed,
  });
}

/** What the `gt` term compares against (all `[B, H, W, C]`, detached). */
export interface DataTargets {
  /** The clean images x0 the batch was noised from. */
  readonly x0: tf.Tensor4D;
  /** The noise eps of z_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps. */
  readonly noise: tf.Tensor4D;
  /** The teacher's x0 prediction at z_t (its first DDIM step, `PdTarget.teacherX0`). */
  readonly teacherX0: tf.Tensor4D;
}

/**
 * The pixel-loss inputs (all `[B, H, W, C]`), needed when `pdMseWeight > 0`, `logits` or
 * `gt` is on; `data` is needed for `gt` only.
 */
export interface PixelTargets {
  /** The student's x0 prediction. */
  readonly studentX0: tf.Tensor4D;
  /** The noise implied by it at z_t. */
  readonly studentEps: tf.Tensor4D;
  /** The PD target x~. */
  readonly xTarget: tf.Tensor4D;
  /** eps~ implied by x~ at z_t. */
  readonly epsTarget: tf.Tensor4D;
  /** Clean data, noise and the teacher's first-step x0 (for `gt`). */
  readonly data?: DataTargets;
}

/** Result of {@link rddLoss}: unweighted terms (only those with a non-zero weight). */
export interface RddLossResult {
  /** sum of weight * term (scalar). */
  readonly total: tf.Scalar;
  /** The unweighted terms that had a non-zero weight (scalars), by name. */
  readonly terms: {
    readonly pixel?: tf.Scalar;
    readonly gt?: tf.Scalar;
    readonly rcfd?: tf.Scalar;
    readonly isp2p?: tf.Scalar;
    readonly mp2p?: tf.Scalar;
    readonly rkdDistance?: tf.Scalar;
    readonly rkdAngle?: tf.Scalar;
  };
  /** Embedding layout of the M_P2P queue update, or null when M_P2P is off. */
  readonly embeddingLayout: EmbeddingLayout | null;
}

function checkConfig(config: RddConfig): void {
  for (const [k, v] of Object.entries(config)) {
    if (typeof v === "number") checkNonNegative(`config.${k}`, v);
  }
}

function checkFeatures(name: string, f: ClassifierFeatures): ClassifierFeatures {
  checkShape(`${name}.featureMap`, f.featureMap, ["B", "h", "w", "C"]);
  checkShape(`${name}.pooled`, f.pooled, ["B", "C"]);
  return f;
}

/**
 * The `gt` term ({@link RddConfig.gt}): mean over the batch of
 * max(mse(teacherX0, x0), mse(studentEps, noise)) per sample. The first mse does not depend
 * on the student.
 * @param studentEps the noise implied by the student's prediction, `[B, H, W, C]`.
 * @param data clean images, noise and the teacher's first-step x0, same shape (detached).
 * @returns scalar, squared image units.
 */
export function gtLoss(studentEps: tf.Tensor4D, data: DataTargets): tf.Scalar {
  checkShapePair("studentEps", studentEps, "data.noise", data.noise, ["B", "H", "W", "C"]);
  checkSameShape("studentEps", studentEps, "data.x0", data.x0);
  checkSameShape("studentEps", studentEps, "data.teacherX0", data.teacherX0);
  return tf.tidy(() =>
    tf.mean(
      tf.maximum(
        perSampleMse(stopGradient(data.teacherX0), stopGradient(data.x0)),
        perSampleMse(studentEps, stopGradient(data.noise)),
      ),
    ) as tf.Scalar
  );
}

/**
 * The distillation loss of one step. Call it inside `tf.variableGrads` over the student's
 * (and the head's) variables; the teacher side is detached everywhere. With M_P2P on it
 * enqueues this step's teacher embeddings into `queue` and updates the head's BN moving
 * statistics (call it once per step).
 * @param studentFeats classifier features of the student's x0 prediction (null if only the
 *   pixel term is on).
 * @param teacherFeats classifier features of the teacher target x~ (same shapes).
 * @param queue M_P2P memory queue of dim C, matching the config's size and per-step count
 *   ({@link createRddQueue}); null when `mp2pWeight` is 0.
 * @param head M_P2P projection head C_s -> C (null: identity).
 * @param config weights and temperatures ({@link rddPreset}).
 * @param pixel PD pixel-loss inputs (needed when `pdMseWeight > 0`).
 * @returns total and unweighted terms, all created in the current tfjs scope.
 */
export function rddLoss(
  studentFeats: ClassifierFeatures | null,
  teacherFeats: ClassifierFeatures | null,
  queue: MemoryQueue | null,
  head: tf.LayersModel | null,
  config: RddConfig = RDD_DEFAULTS,
  pixel?: PixelTargets,
): RddLossResult {
  checkConfig(config);
  const c = config;
  const featuresOn = c.rcfdWeight > 0 || c.isp2pWeight > 0 || c.mp2pWeight > 0 ||
    c.rkdDistanceWeight > 0 || c.rkdAngleWeight > 0;
  const why = "a classifier term has a non-zero weight";
  const s = featuresOn
    ? checkFeatures("studentFeats", required("studentFeats", studentFeats, why))
    : null;
  const t = featuresOn
    ? checkFeatures("teacherFeats", required("teacherFeats", teacherFeats, why))
    : null;
  const terms: Record<string, tf.Scalar> = {};
  const weighted: tf.Scalar[] = [];
  const add = (name: string, weight: number, make: () => tf.Scalar) => {
    if (weight === 0) return;
    const value = make();
    terms[name] = value;
    weighted.push(tf.mul(value, weight));
  };
  let layout: EmbeddingLayout | null = null;
  add("pixel", c.pdMseWeight + (c.logits ? 1 : 0), () => {
    const p = required("pixel", pixel, "config.pdMseWeight > 0 or config.logits");
    return pdLoss(p.studentX0, p.studentEps, p.xTarget, p.epsTarget, c.pdLossKind);
  });
  add("gt", c.gt ? 1 : 0, () => {
    const p = required("pixel", pixel, "config.gt");
    return gtLoss(p.studentEps, required("pixel.data", p.data, "config.gt"));
  });
  if (s && t) {
    add("rcfd", c.rcfdWeight, () => rcfdLoss(s.pooled, t.pooled, { tau: c.rcfdTau }));
    add("isp2p", c.isp2pWeight, () =>
      isp2pLoss(s.featureMap, t.featureMap, {
        tau: c.isp2pTau,
        chunkSize: c.isp2pChunkSize > 0 ? c.isp2pChunkSize : undefined,
      }));
    add("mp2p", c.mp2pWeight, () => {
      const q = required("queue", queue, "config.mp2pWeight > 0");
      if (q.size !== c.queueSize || q.enqueuePerStep !== c.enqueuePerStep) {
        throw new RangeError(
          `queue (size ${q.size}, ${q.enqueuePerStep} per step) must match config.queueSize ` +
            `${c.queueSize} and config.enqueuePerStep ${c.enqueuePerStep} (see createRddQueue)`,
        );
      }
      const r = mp2pLoss(s.featureMap, t.featureMap, q, head, {
        tau: c.mp2pTau,
        kdTau: c.mp2pKdTau,
        layout: c.embeddingLayout,
        contrastSize: c.contrastSize,
        headMode: c.mp2pHeadMode,
      });
      layout = r.layout;
      return r.loss;
    });
    add("rkdDistance", c.rkdDistanceWeight, () => rkdDistanceLoss(s.pooled, t.pooled));
    add("rkdAngle", c.rkdAngleWeight, () => rkdAngleLoss(s.pooled, t.pooled));
  }
  if (weighted.length === 0) {
    throw new RangeError("config must give at least one term a weight > 0");
  }
  const total = weighted.length === 1 ? weighted[0] : tf.addN(weighted) as tf.Scalar;
  return { total, terms, embeddingLayout: layout };
}
