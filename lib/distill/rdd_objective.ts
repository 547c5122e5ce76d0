/**
 * The RDD distillation objective: a weighted sum of the PD pixel loss, the RCFD term, IS_P2P,
 * M_P2P and (optional, not in the reference) RKD terms, with every weight and temperature
 * explicit, plus the presets of the paper's comparisons (method.md section 5).
 *
 * Feature maps are NHWC `[B, h, w, C]` (the reference's NCHW transposed).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { pdLoss } from "./pd_target.ts";
import { checkNonNegative, checkShape, required } from "../core/checks.ts";
import { rcfdLoss } from "./rcfd.ts";
import { isp2pLoss } from "./isp2p.ts";
import { type EmbeddingLayout, MemoryQueue, mp2pLoss } from "./mp2p.ts";
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
  /** Weight of the PD pixel loss (0 in RDD's final rounds). */
  readonly pdMseWeight: number;
  /** Which PD pixel loss: "x", "eps" or "both" (max of the two per sample). */
  readonly pdLossKind: "x" | "eps" | "both";
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
  pdMseWeight: 0,
  pdLossKind: "both",
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

/** The PD pixel-loss inputs (all `[B, H, W, C]`), needed when `pdMseWeight > 0`. */
export interface PixelTargets {
  readonly studentX0: tf.Tensor4D;
  readonly studentEps: tf.Tensor4D;
  readonly xTarget: tf.Tensor4D;
  readonly epsTarget: tf.Tensor4D;
}

/** Result of {@link rddLoss}: unweighted terms (only those with a non-zero weight). */
export interface RddLossResult {
  /** sum of weight * term (scalar). */
  readonly total: tf.Scalar;
  readonly terms: {
    readonly pixel?: tf.Scalar;
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
  add("pixel", c.pdMseWeight, () => {
    const p = required("pixel", pixel, "config.pdMseWeight > 0");
    return pdLoss(p.studentX0, p.studentEps, p.xTarget, p.epsTarget, c.pdLossKind);
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
