/**
 * The RCFD feature-distillation term and the small tensor helpers every relational loss in
 * `lib/distill` shares (batch-mean KL divergence, channel L2 normalisation, stop-gradient;
 * argument checks live in `lib/core/checks.ts`).
 *
 * RCFD (Sun et al. 2022, as used by RDD): a frozen classifier embeds the teacher target x~
 * and the student's x0 prediction; its pooled features are treated as logits and the
 * student's distribution is pulled towards the teacher's. The temperature sits on the
 * teacher side only, and there is no tau^2 factor (method.md section 5).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { checkPositive, checkSameShape, checkShapePair } from "../core/checks.ts";
import { fusedKlDivSum } from "./kl_cpu.ts";

/**
 * The teacher side of every loss here is a fixed target: its value passes through and its
 * gradient is zero (PyTorch's `.detach()`), so differentiating a loss with respect to a
 * tensor that feeds both sides only sees the student side.
 * @param x any tensor.
 * @returns a copy of `x` whose gradient is zero.
 */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: (args[0] as tf.Tensor).clone(),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  }));
  return f(x) as T;
}

/**
 * L2-normalises along the last axis (the channel axis of NHWC maps, the feature axis of
 * `[N, C]` matrices): `x / max(||x||, 1e-12)`, like PyTorch's `F.normalize`. An all-zero
 * vector (common after a ReLU) stays zero with a finite (zero) gradient.
 * @param x tensor of rank >= 1, float.
 * @returns tensor of the same shape, unit norm along the last axis (or zero).
 */
export function l2NormalizeLastAxis<T extends tf.Tensor>(x: T): T {
  if (x.rank < 1) throw new RangeError(`x must have rank >= 1, got shape [${x.shape}]`);
  return tf.tidy(() => {
    const sq = tf.sum(tf.square(x), -1, true);
    return tf.div(x, tf.sqrt(tf.maximum(sq, 1e-24))) as T;
  });
}

/**
 * Summed KL divergence: P = softmax(pLogitsTarget), Q = softmax(qLogits) along the LAST
 * axis, and the pointwise terms P (log P - log Q) summed over every element (every row's
 * KL, added up). The target side is detached ({@link stopGradient}). Large inputs on the
 * fast CPU path run as one fused op ({@link fusedKlDivSum}).
 * @param pLogitsTarget target logits, shape `[..., K]` (rank >= 1).
 * @param qLogits model logits, same shape.
 * @returns scalar, nats, >= 0.
 */
export function klDivSum(pLogitsTarget: tf.Tensor, qLogits: tf.Tensor): tf.Scalar {
  if (!(pLogitsTarget instanceof tf.Tensor) || pLogitsTarget.rank < 1) {
    throw new TypeError(
      `pLogitsTarget must be a tf.Tensor of shape [..., K], got ${pLogitsTarget}`,
    );
  }
  checkSameShape("pLogitsTarget", pLogitsTarget, "qLogits", qLogits);
  return tf.tidy(() => {
    const fused = fusedKlDivSum(pLogitsTarget, qLogits);
    if (fused) return fused;
    const logP = tf.logSoftmax(stopGradient(pLogitsTarget));
    const logQ = tf.logSoftmax(qLogits);
    return tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ))) as tf.Scalar;
  });
}

/**
 * KL(P || Q) with PyTorch's "batchmean" reduction: {@link klDivSum} divided by the size of
 * the FIRST axis. For `[N, K]` inputs this is the mean over the N rows of the row-wise KL;
 * for `[B, R, K]` it is the sum over the R rows of each sample, averaged over B. No
 * temperature is applied here: scale the logits before calling.
 * @param pLogitsTarget target logits (detached), shape `[N, ..., K]` (rank >= 2).
 * @param qLogits model logits, same shape.
 * @returns scalar, nats, >= 0.
 */
export function klDivBatchmean(pLogitsTarget: tf.Tensor, qLogits: tf.Tensor): tf.Scalar {
  if (!(pLogitsTarget instanceof tf.Tensor) || pLogitsTarget.rank < 2) {
    throw new RangeError(
      `pLogitsTarget must be a tf.Tensor of shape [N, ..., K], got [${pLogitsTarget?.shape}]`,
    );
  }
  return tf.tidy(() => tf.div(klDivSum(pLogitsTarget, qLogits), pLogitsTarget.shape[0]));
}

/** Options of {@link rcfdLoss}. */
export interface RcfdOptions {
  /** Teacher-side temperature (dimensionless, > 0); the reference uses 0.9. */
  readonly tau?: number;
}

/**
 * RCFD feature loss: KL(softmax(fT / tau) || softmax(fS)), batchmean over the B samples.
 * The temperature divides the teacher's features only and there is no tau^2 factor.
 * @param fStudent pooled classifier features of the student's x0 prediction, `[B, C]`.
 * @param fTeacher pooled classifier features of the teacher target x~, `[B, C]` (detached).
 * @param options `tau` (default 0.9).
 * @returns scalar, nats per sample.
 */
export function rcfdLoss(
  fStudent: tf.Tensor2D,
  fTeacher: tf.Tensor2D,
  options: RcfdOptions = {},
): tf.Scalar {
  const tau = options.tau ?? 0.9;
  checkPositive("options.tau", tau);
  checkShapePair("fStudent", fStudent, "fTeacher", fTeacher, ["B", "C"]);
  return tf.tidy(() => klDivBatchmean(tf.div(fTeacher, tau), fStudent));
}
