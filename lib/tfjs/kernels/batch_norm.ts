/**
 * Float32 FusedBatchNorm (inference-mode batch normalisation with given statistics, as the
 * frozen classifier of RCFD/RDD runs it) for the tfjs CPU backend: per-channel coefficients
 * a = scale / sqrt(variance + eps) and b = offset - mean·a, then one pass y = x·a + b, a fused
 * oneDNN binary on large tensors. The stock kernel computes four wrapped indices per element.
 * And its input gradient dx = dy·a as one per-channel multiply ({@link batchNormGradConfig}).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { GradConfig, KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import { cpuBackend, f32Values, type KernelArgs } from "./cpu_access.ts";
import type { Dnnl } from "./dnnl.ts";
import { DNNL_MIN_ELEMENTS } from "./elementwise.ts";
import { type Alloc, freshArray, outputAlloc } from "../output_pool.ts";

/** The statistics and affine parameters of one call, each of length 1 or C. */
export interface BatchNormParams {
  mean: Float32Array;
  variance: Float32Array;
  offset?: Float32Array;
  scale?: Float32Array;
  epsilon: number;
}

/**
 * y = (x - mean) / sqrt(variance + eps) · scale + offset over x viewed as [x.length / c, c],
 * each parameter of length 1 (broadcast) or c; undefined when a length fits neither.
 */
export function batchNormChannels(
  x: Float32Array,
  c: number,
  p: BatchNormParams,
  dnnl?: Dnnl,
  alloc: Alloc = freshArray,
): Float32Array | undefined {
  const params = [p.mean, p.variance, p.offset, p.scale];
  if (x.length % c !== 0 || params.some((v) => v && v.length !== 1 && v.length !== c)) {
    return undefined;
  }
  const at = (v: Float32Array | undefined, k: number, none: number) =>
    v ? v[v.length === 1 ? 0 : k] : none;
  const a = new Float32Array(c), b = new Float32Array(c);
  for (let k = 0; k < c; k++) {
    const ak = at(p.scale, k, 1) / Math.sqrt(at(p.variance, k, 0) + p.epsilon);
    a[k] = ak;
    b[k] = at(p.offset, k, 0) - at(p.mean, k, 0) * ak;
  }
  const y = alloc(x.length);
  if (dnnl && x.length >= DNNL_MIN_ELEMENTS) {
    dnnl.scaleShift(x, a, b, y, [1, x.length / c, c], false);
    return y;
  }
  for (let o = 0; o < x.length; o += c) {
    for (let k = 0; k < c; k++) y[o + k] = x[o + k] * a[k] + b[k];
  }
  return y;
}

/**
 * The FusedBatchNorm kernel function (stock kernel for other dtypes, and for parameters that
 * are not per-channel vectors, e.g. a per-sample mean of shape [N, 1, 1, 1]).
 */
export function makeBatchNormKernels(
  stock: Record<string, KernelFunc>,
  dnnl: Dnnl | undefined,
): Record<string, KernelFunc> {
  return {
    FusedBatchNorm: (args: KernelArgs) => {
      const be = cpuBackend(args);
      const inputs = args.inputs as Record<string, TensorInfo | undefined>;
      const x = inputs.x!, xv = f32Values(be, x), c = x.shape[x.shape.length - 1];
      // A parameter broadcasts along the channel axis only: shape [..., 1, c] or all ones.
      const get = (name: string) => {
        const t = inputs[name];
        const perChannel = t &&
          t.shape.every((d, i) => d === 1 || (i === t.shape.length - 1 && d === c));
        return perChannel ? f32Values(be, t) : undefined;
      };
      const mean = get("mean"), variance = get("variance");
      const given = ["offset", "scale"].every((n) => !inputs[n] || get(n));
      if (!xv || !mean || !variance || !given || x.shape.length === 0) {
        return stock.FusedBatchNorm(args);
      }
      const { varianceEpsilon } = args.attrs as unknown as { varianceEpsilon: number };
      const y = batchNormChannels(
        xv,
        c,
        {
          mean,
          variance,
          offset: get("offset"),
          scale: get("scale"),
          epsilon: varianceEpsilon,
        },
        dnnl,
        outputAlloc(be),
      );
      return y ? be.makeTensorInfo(x.shape, "float32", y) : stock.FusedBatchNorm(args);
    },
  };
}

/**
 * FusedBatchNorm's gradient for per-channel statistics (mean of rank 1), each input's part
 * computed only when that input is differentiated: dx = dy · a with a = scale / sqrt(variance
 * + eps), one multiply by a per-channel vector; d offset = Σ dy, d mean = -a Σ dy, d scale =
 * Σ dy (x - mean) / sqrt(variance + eps), d variance = -a / (2 (variance + eps)) Σ dy (x - mean),
 * sums over every axis but the channels. The stock gradient (`stock`, kept for other shapes)
 * first computes x - mean and dy·scale over the whole activation, whatever is differentiated,
 * then tiles the reciprocal std to the activation's shape and multiplies twice: five full passes
 * where the frozen classifier of RCFD/RDD needs one.
 */
export function batchNormGradConfig(stock: GradConfig): GradConfig {
  return {
    ...stock,
    gradFunc: (dy, saved, attrs) => {
      const [x, mean, variance, scale] = saved;
      if (mean.rank !== 1) return stock.gradFunc(dy, saved, attrs);
      const { varianceEpsilon } = attrs as unknown as { varianceEpsilon: number };
      const g = dy as tf.Tensor;
      const r = () => tf.rsqrt(tf.add(variance, varianceEpsilon));
      const a = () => scale ? tf.mul(scale, r()) : r();
      /** Σ over every axis but the channels, in the statistics' shape (as stock). */
      const channelSum = (t: tf.Tensor) =>
        tf.reshape(tf.sum(t, tf.backend_util.getReductionAxes(mean.shape, t.shape)), mean.shape);
      const dyCentred = () => channelSum(tf.mul(g, tf.sub(x, mean)));
      return {
        x: () => tf.mul(g, a()),
        mean: () => tf.mul(tf.neg(a()), channelSum(g)),
        variance: () => tf.mul(tf.mul(a(), tf.mul(tf.square(r()), -0.5)), dyCentred()),
        scale: () => tf.mul(dyCentred(), r()),
        offset: () => channelSum(g),
      };
    },
  };
}
