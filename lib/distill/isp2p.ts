/**
 * RDD's IS_P2P ("intra-sample pixel-to-pixel") relational loss. Despite the name it relates
 * every pixel of sample b to every pixel of every sample d of the batch, b = d included.
 *
 * Layout: feature maps are NHWC `[B, h, w, C]`, i.e. the reference's NCHW `[B, C, h, w]`
 * transposed; pixels are numbered row-major (i = y * w + x), as in the reference's flatten.
 *
 * Memory. Let N = B * h * w. Unchunked, the forward pass holds a handful (about 6) of
 * `[N, N]` float32 tensors = B^2 (hw)^2 floats each, and autodiff keeps them for the
 * backward pass. With `chunkSize = n` the anchor samples are processed n at a time: forward
 * and backward each hold about 6 tensors of n * B * (hw)^2 floats at once (the backward
 * pass recomputes each chunk's softmaxes instead of storing them), plus O(N * C) for the
 * inputs and the gradient. Example: B = 128, hw = 16: 16.8 MB per full tensor (~100 MB
 * unchunked), 2.1 MB per tensor with n = 16.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { checkInt, checkPositive, checkShapePair } from "../core/checks.ts";
import { klLogitGrad } from "./kl_cpu.ts";
import { klDivSum, l2NormalizeLastAxis, stopGradient } from "./rcfd.ts";

/** Options of {@link isp2pLoss}. */
export interface Isp2pOptions {
  /** Temperature dividing both sides' similarities (> 0); the reference uses 1. No tau^2. */
  readonly tau?: number;
  /**
   * Anchor samples per chunk (integer >= 1). Omitted (or >= B): the whole batch at once.
   * The value and the gradient do not depend on it (up to float rounding).
   */
  readonly chunkSize?: number;
}

/**
 * Similarity logits of `anchors` against every pixel of the batch, one row per
 * (anchor pixel, other sample) pair.
 * @param anchors `[n * hw, C]` unit pixel vectors of n samples.
 * @param all `[B * hw, C]` unit pixel vectors of the whole batch.
 * @returns `[n * hw * B, hw]`: row (b, i, d) holds <a_{b,i}, x_{d,j}> / tau over j.
 */
function pairLogits(anchors: tf.Tensor2D, all: tf.Tensor2D, hw: number, tau: number): tf.Tensor2D {
  return tf.tidy(() =>
    tf.reshape(tf.div(tf.matMul(anchors, all, false, true), tau), [-1, hw]) as tf.Tensor2D
  );
}

/** Start and size of each anchor chunk over B samples. */
function chunks(B: number, n: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let b = 0; b < B; b += n) out.push([b, Math.min(n, B - b)]);
  return out;
}

/** Sum over all rows of KL(softmax(T-row) || softmax(S-row)), the whole batch at once. */
function rowKlSum(s: tf.Tensor2D, t: tf.Tensor2D, hw: number, tau: number): tf.Scalar {
  return tf.tidy(() => klDivSum(pairLogits(t, t, hw, tau), pairLogits(s, s, hw, tau)));
}

/**
 * The same sum computed chunk by chunk, with a hand-written backward pass that recomputes
 * each chunk (so the backward pass never holds more than one chunk's logits). The gradient
 * with respect to the teacher `t` is zero (it is a detached target).
 */
function rowKlSumChunked(
  s: tf.Tensor2D,
  t: tf.Tensor2D,
  hw: number,
  tau: number,
  n: number,
): tf.Scalar {
  const B = s.shape[0] / hw;
  const parts = chunks(B, n);
  const slice = (x: tf.Tensor2D, b0: number, nb: number) =>
    tf.slice(x, [b0 * hw, 0], [nb * hw, -1]);
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [s2, t2, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    save([s2, t2]);
    let total: tf.Tensor = tf.scalar(0);
    for (const [b0, nb] of parts) {
      const next = tf.tidy(() =>
        tf.add(
          total,
          klDivSum(
            pairLogits(slice(t2, b0, nb), t2, hw, tau),
            pairLogits(slice(s2, b0, nb), s2, hw, tau),
          ),
        )
      );
      total.dispose();
      total = next;
    }
    return {
      value: total,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sv, tv] = saved as tf.Tensor2D[];
        // d(sum KL)/d(logit) = (q - p) / tau per row; logit(b,i; d,j) = <s_{b,i}, s_{d,j}>.
        let dCols: tf.Tensor = tf.zerosLike(sv);
        const dRows: tf.Tensor[] = [];
        for (const [b0, nb] of parts) {
          const [rowPart, nextCols] = tf.tidy(() => {
            const sc = slice(sv, b0, nb);
            const q = pairLogits(sc, sv, hw, tau);
            const p = pairLogits(slice(tv, b0, nb), tv, hw, tau);
            const g = tf.reshape(klLogitGrad(p, q, tf.div(dy, tau)), [nb * hw, -1]);
            return [tf.matMul(g, sv), tf.add(dCols, tf.matMul(g, sc, true, false))];
          });
          dCols.dispose();
          dCols = nextCols;
          dRows.push(rowPart);
        }
        const ds = tf.add(tf.concat(dRows, 0), dCols);
        tf.dispose([...dRows, dCols]);
        return [ds, tf.zerosLike(tv)];
      },
    };
  });
  return f(s, t) as tf.Scalar;
}

/**
 * IS_P2P loss. Both maps are L2-normalised over channels; for every pair of samples (b, d)
 * the hw x hw cosine-similarity map between the pixels of b (rows) and of d (columns) is
 * built; each row is a logit vector, and the loss is
 *   sum over the B * B * hw rows of KL(softmax(T_row / tau) || softmax(S_row / tau))
 *   divided by B * B * hw
 * (PyTorch "batchmean" over the rows of the reference's reshape), no tau^2 factor. The
 * teacher map is a detached target.
 * @param fStudent classifier feature map of the student's x0 prediction, `[B, h, w, C]`.
 * @param fTeacher classifier feature map of the teacher target x~, `[B, h, w, C]`.
 * @param options `tau` (default 1), `chunkSize` (default: unchunked); see the module doc
 *   for memory as a function of B, hw and the chunk size.
 * @returns scalar, nats per row.
 */
export function isp2pLoss(
  fStudent: tf.Tensor4D,
  fTeacher: tf.Tensor4D,
  options: Isp2pOptions = {},
): tf.Scalar {
  checkShapePair("fStudent", fStudent, "fTeacher", fTeacher, ["B", "h", "w", "C"]);
  const tau = options.tau ?? 1;
  checkPositive("options.tau", tau);
  const [B, h, w, C] = fStudent.shape;
  const n = options.chunkSize ?? B;
  checkInt("options.chunkSize", n);
  const hw = h * w;
  return tf.tidy(() => {
    const s = tf.reshape(l2NormalizeLastAxis(fStudent), [B * hw, C]) as tf.Tensor2D;
    const t = tf.reshape(l2NormalizeLastAxis(stopGradient(fTeacher)), [B * hw, C]) as tf.Tensor2D;
    const sum = n >= B ? rowKlSum(s, t, hw, tau) : rowKlSumChunked(s, t, hw, tau, n);
    return tf.div(sum, B * B * hw) as tf.Scalar;
  });
}
