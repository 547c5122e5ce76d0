/**
 * Nearest-neighbour upsampling by an integer factor (the UNet's x2 upsample) and its gradient,
 * for the tfjs CPU backend, NHWC float32. With alignCorners = halfPixelCenters = false (what
 * `tf.layers.upSampling2d` uses) and out = f * in, output pixel (y, x) copies input pixel
 * (floor(y / f), floor(x / f)); the gradient sums each f x f block of dy. Other cases run the
 * stock kernels. With oneDNN, tensors of at least {@link DNNL_MIN_ELEMENTS} floats run as one
 * reorder (the upsample: a copy whose source strides are 0 on the repeat axes) and two batched
 * ones-vector matmuls (the gradient: rows, then columns); oneDNN 2.6's reduction over the
 * block axes is its reference kernel, ~10x slower than the JS loop.
 * @module
 */
import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import { cpuBackend, f32Values, type KernelArgs, Scratch } from "./cpu_access.ts";
import type { Dnnl } from "./dnnl.ts";
import { DNNL_MIN_ELEMENTS, ones } from "./elementwise.ts";
import { type Alloc, freshArray, outputAlloc } from "../output_pool.ts";

/**
 * x [B, H, W, C] -> [B, fH, fW, C], each pixel repeated in an f x f block. With `dnnl`, one
 * oneDNN reorder: out viewed as [B·H, f, W, f, C] copies x [B·H, 1, W, 1, C] (source strides 0
 * on both f axes), 1.5-2.9x the JS loop at [32, 16, 16, 32] to [64, 16, 16, 32] (AVX-512 Xeon,
 * one thread, 2026-12-03).
 */
export function upsampleNearest(
  x: Float32Array,
  shape: readonly number[],
  f: number,
  dnnl?: Dnnl,
  alloc: Alloc = freshArray,
): Float32Array {
  const [b, h, w, c] = shape;
  const out = alloc(b * h * f * w * f * c);
  const rowLen = w * f * c;
  if (dnnl) {
    dnnl.copy(x, [w * c, 0, c, 0, 1], out, [f * rowLen, rowLen, f * c, c, 1], [b * h, f, w, f, c]);
    return out;
  }
  let o = 0;
  for (let r = 0; r < b * h; r++) {
    // Build output row f * r once, then copy it to the next f - 1 rows.
    const first = o;
    for (let xx = 0; xx < w; xx++) {
      const src = (r * w + xx) * c;
      for (let rep = 0; rep < f; rep++) {
        for (let k = 0; k < c; k++) out[o++] = x[src + k];
      }
    }
    for (let rep = 1; rep < f; rep++, o += rowLen) out.copyWithin(o, first, first + rowLen);
  }
  return out;
}

/** The row sums of {@link upsampleNearestGrad}'s oneDNN path, [B·H, W·f, C]. */
const rowSums = new Scratch();

/**
 * Adjoint of {@link upsampleNearest}: dy [B, fH, fW, C] -> dx [B, H, W, C], block sums. With
 * `dnnl`, two batched ones-vector matmuls: the f rows of each block ([B·H] x ([f, W·f·C] ->
 * [1, W·f·C])), then its f columns ([B·H·W] x ([f, C] -> [1, C])), 1.3-2.2x the JS loop at the
 * shapes above.
 */
export function upsampleNearestGrad(
  dy: Float32Array,
  shape: readonly number[],
  f: number,
  dnnl?: Dnnl,
  alloc: Alloc = freshArray,
): Float32Array {
  const [b, h, w, c] = shape;
  // The matmuls write every value; the JS loop accumulates into zeros.
  const dx = dnnl ? alloc(b * h * w * c) : new Float32Array(b * h * w * c);
  if (dnnl) {
    const rows = rowSums.get(b * h * w * f * c);
    const one = (n: number) => ones(n).subarray(0, n);
    dnnl.matmul(one(b * h * f), dy, rows, { batch: b * h, m: 1, n: w * f * c, k: f }, false, false);
    dnnl.matmul(one(b * h * w * f), rows, dx, { batch: b * h * w, m: 1, n: c, k: f }, false, false);
    return dx;
  }
  const ow = w * f;
  let o = 0;
  for (let i = 0; i < b; i++) {
    for (let y = 0; y < h * f; y++) {
      const row = (i * h + Math.floor(y / f)) * w * c;
      for (let xx = 0; xx < ow; xx++) {
        const dst = row + Math.floor(xx / f) * c;
        for (let k = 0; k < c; k++) dx[dst + k] += dy[o++];
      }
    }
  }
  return dx;
}

/** The integer factor f when `out` = f * `inp` on both axes and f >= 1, else 0. */
function factor(inH: number, inW: number, outH: number, outW: number): number {
  const f = outH / inH;
  return Number.isInteger(f) && f >= 1 && outW === f * inW ? f : 0;
}

interface ResizeAttrs {
  alignCorners: boolean;
  halfPixelCenters: boolean;
  size?: [number, number];
}

/**
 * ResizeNearestNeighbor and ResizeNearestNeighborGrad kernels (stock kernels otherwise), on
 * oneDNN for large tensors when `dnnl` is given.
 */
export function makeResizeKernels(
  stock: Record<string, KernelFunc>,
  dnnl?: Dnnl,
): Record<string, KernelFunc> {
  /** oneDNN for tensors of at least DNNL_MIN_ELEMENTS floats, else undefined (the JS loops). */
  const dnnlFor = (n: number) => n >= DNNL_MIN_ELEMENTS ? dnnl : undefined;
  return {
    ResizeNearestNeighbor: (args: KernelArgs) => {
      const be = cpuBackend(args);
      const { images } = args.inputs as { images: TensorInfo };
      const a = args.attrs as unknown as ResizeAttrs;
      const xv = f32Values(be, images);
      const [b, h, w, c] = images.shape;
      const [oh, ow] = a.size!;
      const f = factor(h, w, oh, ow);
      if (!xv || a.alignCorners || a.halfPixelCenters || f === 0) {
        return stock.ResizeNearestNeighbor(args);
      }
      const out = upsampleNearest(xv, images.shape, f, dnnlFor(xv.length), outputAlloc(be));
      return be.makeTensorInfo([b, oh, ow, c], "float32", out);
    },
    ResizeNearestNeighborGrad: (args: KernelArgs) => {
      const be = cpuBackend(args);
      const { images, dy } = args.inputs as { images: TensorInfo; dy: TensorInfo };
      const a = args.attrs as unknown as ResizeAttrs;
      const dv = f32Values(be, dy);
      const [, h, w] = images.shape;
      const f = factor(h, w, dy.shape[1], dy.shape[2]);
      if (!dv || a.alignCorners || a.halfPixelCenters || f === 0) {
        return stock.ResizeNearestNeighborGrad(args);
      }
      const dx = upsampleNearestGrad(dv, images.shape, f, dnnlFor(dv.length), outputAlloc(be));
      return be.makeTensorInfo([...images.shape], "float32", dx);
    },
  };
}
