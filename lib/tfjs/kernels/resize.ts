/**
 * Nearest-neighbour upsampling by an integer factor (the UNet's x2 upsample) and its gradient,
 * for the tfjs CPU backend, NHWC float32. With alignCorners = halfPixelCenters = false (what
 * `tf.layers.upSampling2d` uses) and out = f * in, output pixel (y, x) copies input pixel
 * (floor(y / f), floor(x / f)); the gradient sums each f x f block of dy. Other cases run the
 * stock kernels.
 * @module
 */
import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import { cpuBackend, f32Values, type KernelArgs } from "./cpu_access.ts";

/** x [B, H, W, C] -> [B, fH, fW, C], each pixel repeated in an f x f block. */
export function upsampleNearest(
  x: Float32Array,
  shape: readonly number[],
  f: number,
): Float32Array {
  const [b, h, w, c] = shape;
  const out = new Float32Array(b * h * f * w * f * c);
  const rowLen = w * f * c;
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

/** Adjoint of {@link upsampleNearest}: dy [B, fH, fW, C] -> dx [B, H, W, C], block sums. */
export function upsampleNearestGrad(
  dy: Float32Array,
  shape: readonly number[],
  f: number,
): Float32Array {
  const [b, h, w, c] = shape;
  const dx = new Float32Array(b * h * w * c);
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

/** ResizeNearestNeighbor and ResizeNearestNeighborGrad kernels (stock kernels otherwise). */
export function makeResizeKernels(stock: Record<string, KernelFunc>): Record<string, KernelFunc> {
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
      return be.makeTensorInfo([b, oh, ow, c], "float32", upsampleNearest(xv, images.shape, f));
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
      const dx = upsampleNearestGrad(dv, images.shape, f);
      return be.makeTensorInfo([...images.shape], "float32", dx);
    },
  };
}
