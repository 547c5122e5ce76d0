/**
 * Relational knowledge distillation (Park, Kim, Lu, Cho, CVPR 2019) on pooled classifier
 * features, an optional extra term of the RDD objective (not part of the RDD reference).
 *
 * For features f_1..f_B (rows of `[B, D]`, student s or teacher t):
 * - distance-wise: d_ij = ||f_i - f_j||_2, mu = mean of d_ij over the B(B-1) ordered pairs
 *   i != j, and L_D = mean over i != j of smoothL1(d^s_ij / mu^s - d^t_ij / mu^t);
 * - angle-wise: for distinct i, j, k, with vertex j, e_ji = (f_i - f_j) / ||f_i - f_j||,
 *   a_ijk = <e_ji, e_jk> (cosine of the angle at f_j), and L_A = mean over the B(B-1)(B-2)
 *   ordered distinct triplets of smoothL1(a^s_ijk - a^t_ijk);
 * where smoothL1(x) = x^2 / 2 for |x| < 1 and |x| - 1/2 otherwise (Huber, delta 1).
 * The teacher side is detached. Unlike some public implementations, degenerate pairs and
 * triplets (repeated indices) are excluded from the means rather than counted as zeros.
 * Memory: O(B^2) for the distance term, O(B^2 D + B^3) for the angle term.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { checkShapePair } from "../core/checks.ts";
import { l2NormalizeLastAxis, stopGradient } from "./rcfd.ts";

/** Elementwise smooth-L1 (Huber with delta 1): 0.5 min(|x|, 1)^2 + (|x| - min(|x|, 1)). */
function smoothL1(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const a = tf.abs(x);
    const inner = tf.minimum(a, 1);
    return tf.add(tf.mul(0.5, tf.square(inner)), tf.sub(a, inner));
  });
}

/** Mean of `values` over the entries where `mask` is 1. */
function maskedMean(values: tf.Tensor, mask: tf.Tensor, count: number): tf.Scalar {
  return tf.tidy(() => tf.div(tf.sum(tf.mul(values, mask)), count) as tf.Scalar);
}

/** 1 off the diagonal of a B x B matrix, 0 on it. */
function offDiagonal(B: number): tf.Tensor2D {
  return tf.tidy(() => tf.sub(tf.onesLike(tf.eye(B)), tf.eye(B)) as tf.Tensor2D);
}

/** Pairwise distances `[B, B]`, d_ii clamped to 1e-6 so the square root stays smooth. */
function pairwiseDistances(f: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const sq = tf.sum(tf.square(f), 1, true);
    const d2 = tf.sub(tf.add(sq, tf.transpose(sq)), tf.mul(2, tf.matMul(f, f, false, true)));
    return tf.sqrt(tf.maximum(d2, 1e-12)) as tf.Tensor2D;
  });
}

function checkPair(fStudent: tf.Tensor2D, fTeacher: tf.Tensor2D, minB: number): number {
  checkShapePair("fStudent", fStudent, "fTeacher", fTeacher, ["B", "D"]);
  const B = fStudent.shape[0];
  if (B < minB) {
    throw new RangeError(`fStudent must have B >= ${minB} rows, got [${fStudent.shape}]`);
  }
  return B;
}

/**
 * RKD distance-wise loss L_D (see the module doc).
 * @param fStudent pooled student features `[B, D]`, B >= 2.
 * @param fTeacher pooled teacher features `[B, D]`.
 * @returns scalar (dimensionless).
 */
export function rkdDistanceLoss(fStudent: tf.Tensor2D, fTeacher: tf.Tensor2D): tf.Scalar {
  const B = checkPair(fStudent, fTeacher, 2);
  return tf.tidy(() => {
    const mask = offDiagonal(B);
    const count = B * (B - 1);
    const normalised = (f: tf.Tensor2D) => {
      const d = pairwiseDistances(f);
      return tf.div(d, maskedMean(d, mask, count));
    };
    const diff = tf.sub(normalised(fStudent), normalised(stopGradient(fTeacher)));
    return maskedMean(smoothL1(diff), mask, count);
  });
}

/**
 * RKD angle-wise loss L_A (see the module doc).
 * @param fStudent pooled student features `[B, D]`, B >= 3.
 * @param fTeacher pooled teacher features `[B, D]`.
 * @returns scalar (dimensionless).
 */
export function rkdAngleLoss(fStudent: tf.Tensor2D, fTeacher: tf.Tensor2D): tf.Scalar {
  const B = checkPair(fStudent, fTeacher, 3);
  return tf.tidy(() => {
    const eye = tf.eye(B);
    const off = tf.sub(1, eye);
    // mask[j, i, k] = (i != j)(k != j)(i != k)
    const mask = tf.mul(
      tf.mul(tf.reshape(off, [B, B, 1]), tf.reshape(off, [B, 1, B])),
      tf.reshape(off, [1, B, B]),
    );
    const cosines = (f: tf.Tensor2D) => {
      // e[j, i] = unit(f_i - f_j); cos[j, i, k] = <e[j, i], e[j, k]>
      const e = l2NormalizeLastAxis(tf.sub(tf.expandDims(f, 0), tf.expandDims(f, 1)));
      return tf.matMul(e, e, false, true);
    };
    const diff = tf.sub(cosines(fStudent), cosines(stopGradient(fTeacher)));
    return maskedMean(smoothL1(diff), mask, B * (B - 1) * (B - 2));
  });
}
