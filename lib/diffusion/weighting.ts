/**
 * Training-loss weightings of diffusion models as pure tfjs tensor functions (differentiable in
 * the predictions). Notation per sample b: abar_b = alpha-bar of its time index,
 * SNR_b = abar_b / (1 - abar_b), mse_x(b) = mean over pixels of (predX0 - x0)^2,
 * mse_eps(b) = mean over pixels of (predEps - eps)^2.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { checkLength, checkSameShape, checkShape, required } from "../core/checks.ts";

/**
 * Per-sample mean squared error: mean over all axes but the first of (a - b)^2.
 * @param a `[B, ...]` (e.g. NHWC `[B, H, W, C]`). @param b same shape as a.
 * @returns `[B]`.
 */
export function perSampleMse(a: tf.Tensor, b: tf.Tensor): tf.Tensor1D {
  if (a.rank < 1) throw new RangeError(`a must have rank >= 1, got shape [${a.shape}]`);
  checkSameShape("a", a, "b", b);
  return tf.tidy(() => {
    const d = tf.squaredDifference(a, b);
    return (a.rank === 1 ? d : d.reshape([a.shape[0], -1]).mean(1)) as tf.Tensor1D;
  });
}

/**
 * Loss kinds of {@link diffusionLoss}:
 * - "x": mean_b mse_x(b).
 * - "eps": mean_b mse_eps(b).
 * - "v": mean_b of the per-sample MSE between v_pred = sqrt(abar) predEps - sqrt(1-abar) predX0
 *   and v = sqrt(abar) eps - sqrt(1-abar) x0.
 * - "both": mean_b max(mse_x(b), mse_eps(b)) — the reference's loss for x0 models, the
 *   "truncated SNR" weighting max(SNR, 1) of progressive distillation (Salimans & Ho, 2022)
 *   when predEps is the eps implied by predX0.
 * - "snr+1": mean_b (SNR_b + 1) mse_x(b) — the "SNR+1" weighting of Salimans & Ho (2022); it
 *   equals the v-MSE when predEps is the eps implied by predX0.
 * - "min-snr": mean_b min(1, gamma / SNR_b) mse_eps(b) — min-SNR-gamma weighting of Hang et al.
 *   (ICCV 2023) in its eps-prediction form (the x0-MSE weight min(SNR, gamma) divided by SNR,
 *   since mse_x = mse_eps / SNR); weight 1 at SNR = 0, 0 at SNR = inf.
 */
export type DiffusionLossKind = "x" | "eps" | "v" | "both" | "snr+1" | "min-snr";

/** The kinds {@link diffusionLoss} accepts. */
export const DIFFUSION_LOSS_KINDS: readonly DiffusionLossKind[] = [
  "x",
  "eps",
  "v",
  "both",
  "snr+1",
  "min-snr",
];

/** Which of the predictions each kind reads. */
const NEEDS: Record<DiffusionLossKind, { x: boolean; eps: boolean; abar: boolean }> = {
  "x": { x: true, eps: false, abar: false },
  "eps": { x: false, eps: true, abar: false },
  "v": { x: true, eps: true, abar: true },
  "both": { x: true, eps: true, abar: false },
  "snr+1": { x: true, eps: false, abar: true },
  "min-snr": { x: false, eps: true, abar: true },
};

/** Inputs of {@link diffusionLoss}; all tensors `[B, ...]` of one shape (NHWC for images). */
export interface DiffusionLossInput {
  /** Which weighting; see {@link DiffusionLossKind}. */
  kind: DiffusionLossKind;
  /** Predicted clean data (needed by "x", "v", "both", "snr+1"). */
  predX0?: tf.Tensor;
  /** Predicted noise (needed by "eps", "v", "both", "min-snr"). */
  predEps?: tf.Tensor;
  /** Target clean data (needed with predX0). */
  x0?: tf.Tensor;
  /** Target noise (needed with predEps). */
  eps?: tf.Tensor;
  /**
   * Per-sample alpha-bar in [0, 1], `[B]` (needed by "v", "snr+1", "min-snr"). A number[] is
   * range-checked here; a tensor is not read back (no device sync), so the caller keeps it valid.
   */
  alphaBar?: tf.Tensor1D | readonly number[];
  /** gamma of "min-snr", > 0. Default 5. Ignored by the other kinds. */
  gamma?: number;
}

/** Per-sample alpha-bar as a `[B]` tensor, checked against the batch size. */
function alphaBarTensor(alphaBar: tf.Tensor1D | readonly number[], B: number): tf.Tensor1D {
  if (alphaBar instanceof tf.Tensor) {
    checkShape("alphaBar", alphaBar, [B]);
    return alphaBar.toFloat();
  }
  checkLength("alphaBar", alphaBar.length, B, "B");
  alphaBar.forEach((a, i) => {
    if (typeof a !== "number" || !(a >= 0 && a <= 1)) {
      throw new RangeError(`alphaBar[${i}] must be in [0, 1], got ${a}`);
    }
  });
  return tf.tensor1d(alphaBar as number[]);
}

/** Broadcasts a `[B]` tensor against a `[B, ...]` tensor of the given rank. */
function perSample(w: tf.Tensor, rank: number): tf.Tensor {
  return w.reshape([w.shape[0], ...Array(rank - 1).fill(1)]);
}

/**
 * Diffusion training loss with the weighting `kind` (formulas at {@link DiffusionLossKind}).
 * @returns a scalar tensor (mean over the batch), differentiable in predX0 / predEps.
 * @throws RangeError naming `kind` for an unknown kind; TypeError naming a missing input;
 *   RangeError for mismatched shapes or alphaBar / gamma out of range.
 */
export function diffusionLoss(input: DiffusionLossInput): tf.Scalar {
  const { kind, gamma = 5 } = input;
  if (!Object.hasOwn(NEEDS, kind)) {
    throw new RangeError(
      `kind must be one of ${DIFFUSION_LOSS_KINDS.map((k) => `"${k}"`).join(", ")}, got "${kind}"`,
    );
  }
  const needs = NEEDS[kind];
  const used = ([
    ["predX0", needs.x],
    ["x0", needs.x],
    ["predEps", needs.eps],
    ["eps", needs.eps],
  ] as const).filter(([, n]) => n).map(([name]) =>
    [name, required(name, input[name], `kind is "${kind}"`)] as const
  );
  const [refName, ref] = used[0];
  for (const [name, x] of used.slice(1)) checkSameShape(refName, ref, name, x);
  const { predX0, x0, predEps, eps } = input;
  if (kind === "min-snr" && (typeof gamma !== "number" || !(gamma > 0))) {
    throw new RangeError(`gamma must be > 0, got ${gamma}`);
  }
  const B = ref.shape[0];
  const abarRaw = needs.abar
    ? required("alphaBar", input.alphaBar, `kind is "${kind}"`)
    : undefined;

  return tf.tidy(() => {
    const abar = abarRaw === undefined ? undefined : alphaBarTensor(abarRaw, B);
    const mseX = () => perSampleMse(predX0!, x0!);
    const mseEps = () => perSampleMse(predEps!, eps!);
    let perB: tf.Tensor1D;
    switch (kind) {
      case "x":
        perB = mseX();
        break;
      case "eps":
        perB = mseEps();
        break;
      case "both":
        perB = tf.maximum(mseX(), mseEps());
        break;
      case "v": {
        const a = perSample(abar!.sqrt(), ref.rank);
        const s = perSample(tf.sub(1, abar!).sqrt(), ref.rank);
        const v = (xx: tf.Tensor, ee: tf.Tensor) => tf.sub(tf.mul(a, ee), tf.mul(s, xx));
        perB = perSampleMse(v(predX0!, predEps!), v(x0!, eps!));
        break;
      }
      case "snr+1":
        // SNR + 1 = 1 / (1 - abar) (infinite at abar = 1).
        perB = tf.div(mseX(), tf.sub(1, abar!));
        break;
      case "min-snr": {
        // min(1, gamma / SNR) = min(1, gamma (1 - abar) / abar); gamma / 0 = inf -> weight 1.
        const w = tf.minimum(1, tf.div(tf.mul(gamma, tf.sub(1, abar!)), abar!));
        perB = tf.mul(w, mseEps());
        break;
      }
    }
    return perB.mean() as tf.Scalar;
  });
}
