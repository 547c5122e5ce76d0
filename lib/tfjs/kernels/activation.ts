/** In-place bias + activation epilogue shared by the fused conv and matmul kernels. */

/** Activations the fast fused kernels apply themselves (others fall back to tfjs). */
export const FAST_ACTIVATIONS = ["linear", "relu", "relu6", "elu", "leakyrelu", "sigmoid"] as const;

/** One of {@link FAST_ACTIVATIONS}. */
export type FastActivation = typeof FAST_ACTIVATIONS[number];

/** True when `name` (a tfjs fused `activation` attribute; undefined = linear) is supported. */
export function isFastActivation(name: string | undefined): name is FastActivation | undefined {
  return name === undefined || (FAST_ACTIVATIONS as readonly string[]).includes(name);
}

/**
 * y[i] = act(y[i] + bias[i % channels]) over `y` viewed as [rows, channels] (row-major).
 * `bias` has length `channels` or 1, or is undefined for no bias; `alpha` is the leaky-ReLU
 * slope. Matches tfjs' fused ops (bias first, then activation).
 */
export function biasActivationInPlace(
  y: Float32Array,
  channels: number,
  bias: Float32Array | undefined,
  activation: FastActivation | undefined,
  alpha = 0.2,
): void {
  if (!Number.isInteger(channels) || channels < 1 || y.length % channels !== 0) {
    throw new RangeError(`channels: expected a divisor of y.length ${y.length}, got ${channels}`);
  }
  if (bias && bias.length !== channels && bias.length !== 1) {
    throw new RangeError(`bias: expected length ${channels} or 1, got ${bias.length}`);
  }
  if (bias) {
    if (bias.length === 1) {
      const b0 = bias[0];
      for (let i = 0; i < y.length; i++) y[i] += b0;
    } else {
      for (let r = 0; r < y.length; r += channels) {
        for (let c = 0; c < channels; c++) y[r + c] += bias[c];
      }
    }
  }
  switch (activation ?? "linear") {
    case "linear":
      return;
    case "relu":
      for (let i = 0; i < y.length; i++) if (y[i] < 0) y[i] = 0;
      return;
    case "relu6":
      for (let i = 0; i < y.length; i++) y[i] = Math.min(Math.max(y[i], 0), 6);
      return;
    case "elu":
      for (let i = 0; i < y.length; i++) if (y[i] < 0) y[i] = Math.exp(y[i]) - 1;
      return;
    case "leakyrelu":
      for (let i = 0; i < y.length; i++) if (y[i] < 0) y[i] *= alpha;
      return;
    case "sigmoid":
      for (let i = 0; i < y.length; i++) y[i] = 1 / (1 + Math.exp(-y[i]));
      return;
  }
}
