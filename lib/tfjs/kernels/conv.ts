/**
 * NHWC Conv2D forward / input-gradient / filter-gradient / fused kernels for the tfjs CPU
 * backend, as im2col (or col2im) plus one BLAS sgemm per chunk of images.
 */
import { backend_util, type KernelFunc, type TensorInfo } from "@tensorflow/tfjs-core";
import type { Blas } from "./blas.ts";
import { type ConvPass, type Dnnl, dnnlSupports } from "./dnnl.ts";
import { col2imAdd, type ConvGeometry, im2col, isPointwise, patchSize } from "./im2col.ts";
import { biasActivationInPlace, isFastActivation } from "./activation.ts";
import {
  channelBias,
  cpuBackend,
  type CpuBackendLike,
  f32Values,
  type KernelArgs,
  Scratch,
} from "./cpu_access.ts";
import { type Alloc, freshArray, outputAlloc, outputArray } from "../output_pool.ts";
import {
  isShiftable,
  shiftedBackpropFilter,
  shiftedBackpropInput,
  shiftedForward,
} from "./shifted.ts";

/** oneDNN implementation names of convolutions that are not direct JIT kernels. */
const INDIRECT_IMPL = /^ref|(^|:)gemm:/;

/**
 * Default floats of scratch per chunk of images (64 MiB; the `chunkFloats` argument of the
 * conv functions); a chunk always holds at least one image.
 */
export const COL_CHUNK_FLOATS = 16 * 1024 * 1024;

type Pad = backend_util.PadInfo | number | "same" | "valid" | backend_util.ExplicitPadding;

interface ConvAttrs {
  strides: number | [number, number];
  pad: "same" | "valid" | number | backend_util.ExplicitPadding;
  dataFormat?: "NHWC" | "NCHW";
  dilations?: number | [number, number];
  dimRoundingMode?: "floor" | "round" | "ceil";
}

function isUnitDilation(d: number | [number, number] | undefined): boolean {
  return d === undefined || d === 1 || (Array.isArray(d) && d[0] === 1 && d[1] === 1);
}

/**
 * The geometry of an NHWC conv from tfjs attributes, or undefined when the fast path does not
 * apply (NCHW data, dilation > 1).
 */
export function convGeometry(
  inShape: readonly number[],
  filterShape: readonly number[],
  attrs: ConvAttrs,
): ConvGeometry | undefined {
  if ((attrs.dataFormat ?? "NHWC") !== "NHWC" || !isUnitDilation(attrs.dilations)) {
    return undefined;
  }
  const info = backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad as Pad as "same",
    attrs.dimRoundingMode,
    false,
    "channelsLast",
  );
  return {
    batch: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    inC: info.inChannels,
    outH: info.outHeight,
    outW: info.outWidth,
    outC: info.outChannels,
    kH: info.filterHeight,
    kW: info.filterWidth,
    strideH: info.strideHeight,
    strideW: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

/** Images per im2col chunk so that the column buffer stays under {@link COL_CHUNK_FLOATS}. */
function imagesPerChunk(g: ConvGeometry, chunkFloats: number): number {
  const perImage = g.outH * g.outW * patchSize(g);
  return Math.max(1, Math.min(g.batch, Math.floor(chunkFloats / Math.max(1, perImage))));
}

/** y [batch, outH, outW, outC] = conv(x [batch, inH, inW, inC], w [kH, kW, inC, outC]). */
export function conv2dForward(
  blas: Blas,
  scratch: [Scratch, Scratch],
  x: Float32Array,
  w: Float32Array,
  g: ConvGeometry,
  chunkFloats = COL_CHUNK_FLOATS,
  alloc: Alloc = freshArray,
): Float32Array {
  if (isShiftable(g)) return shiftedForward(blas, scratch, x, w, g, chunkFloats, alloc);
  const K = patchSize(g);
  const pixels = g.outH * g.outW;
  const y = alloc(g.batch * pixels * g.outC);
  if (isPointwise(g)) {
    blas.sgemm(false, false, g.batch * pixels, g.outC, K, 1, x, K, w, g.outC, 0, y, g.outC);
    return y;
  }
  const step = imagesPerChunk(g, chunkFloats);
  for (let b0 = 0; b0 < g.batch; b0 += step) {
    const nb = Math.min(step, g.batch - b0);
    const cols = scratch[0].get(nb * pixels * K);
    im2col(x, g, b0, nb, cols);
    const yChunk = y.subarray(b0 * pixels * g.outC);
    blas.sgemm(false, false, nb * pixels, g.outC, K, 1, cols, K, w, g.outC, 0, yChunk, g.outC);
  }
  return y;
}

/** dx [batch, inH, inW, inC] from dy [batch, outH, outW, outC] and w [kH, kW, inC, outC]. */
export function conv2dBackpropInput(
  blas: Blas,
  scratch: [Scratch, Scratch],
  dy: Float32Array,
  w: Float32Array,
  g: ConvGeometry,
  chunkFloats = COL_CHUNK_FLOATS,
  alloc: Alloc = freshArray,
): Float32Array {
  if (isShiftable(g)) return shiftedBackpropInput(blas, scratch, dy, w, g, chunkFloats, alloc);
  const K = patchSize(g);
  const pixels = g.outH * g.outW;
  const dx = alloc(g.batch * g.inH * g.inW * g.inC);
  if (isPointwise(g)) {
    blas.sgemm(false, true, g.batch * pixels, K, g.outC, 1, dy, g.outC, w, g.outC, 0, dx, K);
    return dx;
  }
  dx.fill(0); // col2imAdd accumulates
  const step = imagesPerChunk(g, chunkFloats);
  for (let b0 = 0; b0 < g.batch; b0 += step) {
    const nb = Math.min(step, g.batch - b0);
    const cols = scratch[0].get(nb * pixels * K);
    const dyChunk = dy.subarray(b0 * pixels * g.outC);
    blas.sgemm(false, true, nb * pixels, K, g.outC, 1, dyChunk, g.outC, w, g.outC, 0, cols, K);
    col2imAdd(cols, g, b0, nb, dx);
  }
  return dx;
}

/** dw [kH, kW, inC, outC] from x [batch, inH, inW, inC] and dy [batch, outH, outW, outC]. */
export function conv2dBackpropFilter(
  blas: Blas,
  scratch: [Scratch, Scratch],
  x: Float32Array,
  dy: Float32Array,
  g: ConvGeometry,
  chunkFloats = COL_CHUNK_FLOATS,
  alloc: Alloc = freshArray,
): Float32Array {
  if (isShiftable(g)) return shiftedBackpropFilter(blas, scratch, x, dy, g, chunkFloats, alloc);
  const K = patchSize(g);
  const pixels = g.outH * g.outW;
  const dw = alloc(K * g.outC);
  if (isPointwise(g)) {
    blas.sgemm(true, false, K, g.outC, g.batch * pixels, 1, x, K, dy, g.outC, 0, dw, g.outC);
    return dw;
  }
  const step = imagesPerChunk(g, chunkFloats);
  for (let b0 = 0; b0 < g.batch; b0 += step) {
    const nb = Math.min(step, g.batch - b0);
    const cols = scratch[0].get(nb * pixels * K);
    im2col(x, g, b0, nb, cols);
    const dyChunk = dy.subarray(b0 * pixels * g.outC);
    const beta = b0 === 0 ? 0 : 1;
    blas.sgemm(true, false, K, g.outC, nb * pixels, 1, cols, K, dyChunk, g.outC, beta, dw, g.outC);
  }
  return dw;
}

/** Shape of a conv output, NHWC. */
function outShape(g: ConvGeometry): number[] {
  return [g.batch, g.outH, g.outW, g.outC];
}

/**
 * The four conv kernel functions (Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter,
 * FusedConv2D): oneDNN's convolution primitives when `dnnl` is given and supports the
 * geometry, else the GEMM formulations above; `stock[name]` for cases neither handles.
 */
export function makeConvKernels(
  blas: Blas,
  stock: Record<string, KernelFunc>,
  dnnl?: Dnnl,
): Record<string, KernelFunc> {
  const scratch: [Scratch, Scratch] = [new Scratch(), new Scratch()];
  /**
   * Whether oneDNN runs `pass` of `g`: only where it has a direct kernel. Where it would run a
   * GEMM-based or reference convolution (a geometry its JIT kernels do not cover, e.g. one
   * output channel: the UNet's last convolution), the GEMM formulations here are faster:
   * measured per call at batch 32, 32x32, 3x3 on a Xeon with AVX-512 (2026-12-03), forward
   * 1.2x (16 -> 4 channels) to 4.1x (64 -> 3), weight gradient 2.2x (16 -> 1) to 4.3x (32 -> 1).
   */
  const useDnnl = (pass: ConvPass, g: ConvGeometry, withBias = false) =>
    dnnl !== undefined && dnnlSupports(g) &&
    !INDIRECT_IMPL.test(dnnl.convImplementation(pass, g, withBias));
  /**
   * An output array of `size` floats (lib/tfjs/output_pool.ts) filled by `run` when oneDNN runs
   * `pass` of `g` (its primitives write every element), else undefined.
   */
  const viaDnnl = (
    be: CpuBackendLike,
    pass: ConvPass,
    g: ConvGeometry,
    size: number,
    run: (d: Dnnl, out: Float32Array) => void,
    withBias = false,
  ) => {
    if (!useDnnl(pass, g, withBias)) return undefined;
    const out = outputArray(be, size);
    run(dnnl!, out);
    return out;
  };
  const forward = (
    be: CpuBackendLike,
    x: Float32Array,
    w: Float32Array,
    g: ConvGeometry,
    bias?: Float32Array,
  ) => {
    const withBias = bias?.length === g.outC;
    return viaDnnl(
      be,
      "fwd",
      g,
      g.batch * g.outH * g.outW * g.outC,
      (d, y) => d.forward(x, w, withBias ? bias : undefined, y, g),
      withBias,
    ) ?? conv2dForward(blas, scratch, x, w, g, COL_CHUNK_FLOATS, outputAlloc(be));
  };
  const conv2D: KernelFunc = (args: KernelArgs) => {
    const be = cpuBackend(args);
    const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
    const g = convGeometry(x.shape, filter.shape, args.attrs as unknown as ConvAttrs);
    const xv = f32Values(be, x), wv = f32Values(be, filter);
    if (!g || !xv || !wv) return stock.Conv2D(args);
    return be.makeTensorInfo(outShape(g), "float32", forward(be, xv, wv, g));
  };
  const backpropInput: KernelFunc = (args: KernelArgs) => {
    const be = cpuBackend(args);
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    const attrs = args.attrs as unknown as ConvAttrs & { inputShape: number[] };
    const g = convGeometry(attrs.inputShape, filter.shape, attrs);
    const dyv = f32Values(be, dy), wv = f32Values(be, filter);
    if (!g || !dyv || !wv) return stock.Conv2DBackpropInput(args);
    const dx = viaDnnl(
      be,
      "bwd_data",
      g,
      g.batch * g.inH * g.inW * g.inC,
      (d, out) => d.backwardData(dyv, wv, out, g),
    ) ?? conv2dBackpropInput(blas, scratch, dyv, wv, g, COL_CHUNK_FLOATS, outputAlloc(be));
    return be.makeTensorInfo([g.batch, g.inH, g.inW, g.inC], "float32", dx);
  };
  const backpropFilter: KernelFunc = (args: KernelArgs) => {
    const be = cpuBackend(args);
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    const attrs = args.attrs as unknown as ConvAttrs & { filterShape: number[] };
    const g = convGeometry(x.shape, attrs.filterShape, attrs);
    const xv = f32Values(be, x), dyv = f32Values(be, dy);
    if (!g || !xv || !dyv) return stock.Conv2DBackpropFilter(args);
    const dw = viaDnnl(
      be,
      "bwd_weights",
      g,
      g.kH * g.kW * g.inC * g.outC,
      (d, out) => d.backwardWeights(xv, dyv, out, g),
    ) ?? conv2dBackpropFilter(blas, scratch, xv, dyv, g, COL_CHUNK_FLOATS, outputAlloc(be));
    return be.makeTensorInfo([g.kH, g.kW, g.inC, g.outC], "float32", dw);
  };
  const fused: KernelFunc = (args: KernelArgs) => {
    const be = cpuBackend(args);
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<
      string,
      TensorInfo | undefined
    >;
    const attrs = args.attrs as unknown as ConvAttrs & {
      activation?: string;
      leakyreluAlpha?: number;
    };
    const g = convGeometry(x!.shape, filter!.shape, attrs);
    const xv = f32Values(be, x!), wv = f32Values(be, filter!);
    const bv = channelBias(be, bias, g?.outC ?? 0);
    const act = attrs.activation;
    if (!g || !xv || !wv || !bv.ok || preluActivationWeights || !isFastActivation(act)) {
      return stock.FusedConv2D(args);
    }
    const y = forward(be, xv, wv, g, bv.values);
    const fusedBias = bv.values?.length === g.outC && useDnnl("fwd", g, true);
    biasActivationInPlace(y, g.outC, fusedBias ? undefined : bv.values, act, attrs.leakyreluAlpha);
    return be.makeTensorInfo(outShape(g), "float32", y);
  };
  return {
    Conv2D: conv2D,
    Conv2DBackpropInput: backpropInput,
    Conv2DBackpropFilter: backpropFilter,
    FusedConv2D: fused,
  };
}
