/**
 * Float32 Slice, SplitV, PadV2, Concat, Tile, GatherV2 and Transpose kernels for the tfjs CPU
 * backend (contiguous-run copies; oneDNN reorders for the larger strided ones).
 */
import {
  backend_util,
  type KernelFunc,
  slice_util,
  type TensorInfo,
  util,
} from "@tensorflow/tfjs-core";
import { copyRun, forEachRow, maskedStrides } from "./strided.ts";
import { cpuBackend, type CpuBackendLike, f32Values, type KernelArgs } from "./cpu_access.ts";
import type { Dnnl } from "./dnnl.ts";
import { type Alloc, freshArray, outputAlloc } from "../output_pool.ts";

/**
 * A strided n-d copy: for every index i of the box `dims`, dst[Σ i_k dstStrides_k] =
 * src[Σ i_k srcStrides_k] (element strides from each view's start). {@link jsBoxCopy}, or
 * oneDNN's reorder (`Dnnl.copy`, 2-3x faster on the short channel runs of NHWC concats).
 */
export type BoxCopy = (
  src: Float32Array,
  srcStrides: readonly number[],
  dst: Float32Array,
  dstStrides: readonly number[],
  dims: readonly number[],
) => void;

/** {@link BoxCopy} as JS loops: axes contiguous in both arrays merge into one run per row. */
export const jsBoxCopy: BoxCopy = (src, srcStrides, dst, dstStrides, dims) => {
  if (dims.some((d) => d === 0)) return;
  let k = dims.length, n = 1;
  while (k > 0 && srcStrides[k - 1] === n && dstStrides[k - 1] === n) n *= dims[--k];
  const sizes = [...dims.slice(0, k), n];
  forEachRow(sizes, [[...srcStrides.slice(0, k), 1], [...dstStrides.slice(0, k), 1]], (off) => {
    copyRun(dst, off[1], src, off[0], n);
  });
};

/**
 * Copies of at least this many floats go to oneDNN when it is there: its fixed cost is ~10 µs
 * a call, and in runs of 16 floats it took 12 µs against the JS loops' 24 µs at 1,024 floats,
 * 91 µs against 1.8 ms at 262,144 (Xeon with AVX-512, 2026-12-03).
 */
const DNNL_COPY_MIN = 1024;

/** `dnnl`'s copy for boxes of at least {@link DNNL_COPY_MIN} floats, else {@link jsBoxCopy}. */
export function boxCopyWith(dnnl?: Pick<Dnnl, "copy">): BoxCopy {
  if (!dnnl) return jsBoxCopy;
  return (src, srcStrides, dst, dstStrides, dims) =>
    (util.sizeFromShape(dims as number[]) >= DNNL_COPY_MIN ? dnnl.copy : jsBoxCopy)(
      src,
      srcStrides,
      dst,
      dstStrides,
      dims,
    );
}

/**
 * Copies the box `begin` .. `begin + size` (per axis, elements) out of `x` (row-major, shape
 * `shape`). Throws RangeError when the box leaves the array.
 */
export function sliceBox(
  x: Float32Array,
  shape: readonly number[],
  begin: readonly number[],
  size: readonly number[],
  copy: BoxCopy = jsBoxCopy,
  alloc: Alloc = freshArray,
): Float32Array {
  if (begin.length !== shape.length || size.length !== shape.length) {
    throw new RangeError(
      `begin, size: expected length ${shape.length}, got ${begin.length}, ${size.length}`,
    );
  }
  shape.forEach((s, i) => {
    if (begin[i] < 0 || size[i] < 0 || begin[i] + size[i] > s) {
      throw new RangeError(
        `begin/size: axis ${i} box [${begin[i]}, +${size[i]}) exceeds size ${s}`,
      );
    }
  });
  const out = alloc(util.sizeFromShape(size as number[]));
  if (out.length === 0) return out;
  const xStrides = maskedStrides(shape, shape.map(() => true));
  const start = begin.reduce((p, b, i) => p + b * xStrides[i], 0);
  copy(x.subarray(start), xStrides, out, maskedStrides(size, size.map(() => true)), size);
  return out;
}

/**
 * Constant padding: `x` (row-major, shape `shape`) placed into an array of shape
 * shape[i] + before[i] + after[i] filled with `value`. `paddings[i] = [before, after]`,
 * non-negative. Returns the values and the padded shape.
 */
export function padConstant(
  x: Float32Array,
  shape: readonly number[],
  paddings: readonly (readonly [number, number])[],
  value: number,
  copy: BoxCopy = jsBoxCopy,
  alloc: Alloc = freshArray,
): { values: Float32Array; shape: number[] } {
  if (paddings.length !== shape.length || paddings.some(([b, a]) => !(b >= 0 && a >= 0))) {
    throw new RangeError(`paddings: expected ${shape.length} non-negative [before, after] pairs`);
  }
  const outShape = shape.map((s, i) => s + paddings[i][0] + paddings[i][1]);
  const out = alloc(util.sizeFromShape(outShape)).fill(value);
  if (x.length === 0) return { values: out, shape: outShape };
  const outStrides = maskedStrides(outShape, outShape.map(() => true));
  const start = paddings.reduce((p, [b], i) => p + b * outStrides[i], 0);
  copy(x, maskedStrides(shape, shape.map(() => true)), out.subarray(start), outStrides, shape);
  return { values: out, shape: outShape };
}

function sliceInfo(
  be: CpuBackendLike,
  x: TensorInfo,
  begin: number[],
  size: number[],
  copy: BoxCopy,
): TensorInfo {
  const xv = f32Values(be, x)!;
  const values = sliceBox(xv, x.shape, begin, size, copy, outputAlloc(be));
  return be.makeTensorInfo(size, "float32", values);
}

/**
 * Concatenation of row-major arrays along `axis`: `shapes[i]` equal except on `axis`.
 * Returns the values and the output shape. Throws RangeError on mismatched shapes.
 */
export function concatAxis(
  parts: readonly Float32Array[],
  shapes: readonly (readonly number[])[],
  axis: number,
  copy: BoxCopy = jsBoxCopy,
  alloc: Alloc = freshArray,
): { values: Float32Array; shape: number[] } {
  const shape = backend_util.computeOutShape(shapes as number[][], axis);
  shapes.forEach((s, i) => {
    if (s.length !== shape.length || s.some((n, j) => j !== axis && n !== shape[j])) {
      throw new RangeError(`shapes[${i}]: expected [${shape}] except on axis ${axis}, got [${s}]`);
    }
  });
  const values = alloc(util.sizeFromShape(shape));
  const outer = util.sizeFromShape(shape.slice(0, axis));
  const row = util.sizeFromShape(shape.slice(axis));
  let offset = 0;
  parts.forEach((x, i) => {
    const inner = util.sizeFromShape(shapes[i].slice(axis));
    copy(x, [inner, 1], values.subarray(offset), [row, 1], [outer, inner]);
    offset += inner;
  });
  return { values, shape };
}

/**
 * `x` (row-major, shape `shape`) with its axes permuted: out axis k is x's axis `perm[k]`
 * (tfjs' Transpose), as one strided copy; axes that stay in order merge, so the identity
 * permutation (which tfjs-layers' Dense applies to its kernel on rank > 2 inputs) is one
 * contiguous copy. Returns the values and the permuted shape. Throws RangeError unless `perm`
 * is a permutation of the axes.
 */
export function transposeAxes(
  x: Float32Array,
  shape: readonly number[],
  perm: readonly number[],
  copy: BoxCopy = jsBoxCopy,
  alloc: Alloc = freshArray,
): { values: Float32Array; shape: number[] } {
  const sorted = [...perm].sort((a, b) => a - b);
  if (perm.length !== shape.length || sorted.some((p, i) => p !== i)) {
    throw new RangeError(`perm: expected a permutation of 0..${shape.length - 1}, got [${perm}]`);
  }
  const outShape = perm.map((p) => shape[p]);
  const xStrides = maskedStrides(shape, shape.map(() => true));
  const values = alloc(x.length);
  if (x.length === 0) return { values, shape: outShape };
  const outStrides = maskedStrides(outShape, outShape.map(() => true));
  copy(x, perm.map((p) => xStrides[p]), values, outStrides, outShape);
  return { values, shape: outShape };
}

/**
 * `x` (row-major, shape `shape`) repeated `reps[i]` times along each axis i (tfjs' Tile):
 * one pass per tiled axis, innermost first, each copying whole blocks within the one output
 * array (back to front, so that no block is overwritten before it is read). Returns the values
 * and the tiled shape. Throws RangeError unless `reps` has one non-negative integer per axis.
 */
export function tile(
  x: Float32Array,
  shape: readonly number[],
  reps: readonly number[],
  alloc: Alloc = freshArray,
): { values: Float32Array; shape: number[] } {
  if (reps.length !== shape.length || reps.some((r) => !Number.isInteger(r) || r < 0)) {
    throw new RangeError(`reps: expected ${shape.length} non-negative integers, got [${reps}]`);
  }
  const cur = [...shape];
  const values = alloc(x.length * reps.reduce((a, r) => a * r, 1));
  if (values.length === 0) return { values, shape: shape.map((d, i) => d * reps[i]) };
  values.set(x);
  for (let ax = shape.length - 1; ax >= 0; ax--) {
    const n = reps[ax];
    if (n === 1) continue;
    const outer = util.sizeFromShape(cur.slice(0, ax)), block = util.sizeFromShape(cur.slice(ax));
    for (let o = outer - 1; o >= 0; o--) {
      for (let r = n - 1; r >= (o === 0 ? 1 : 0); r--) {
        copyRun(values, (o * n + r) * block, values, o * block, block);
      }
    }
    cur[ax] *= n;
  }
  return { values, shape: cur };
}

/**
 * tfjs' GatherV2 without batch dims: the slices `x[..., indices[j], ...]` of axis `axis`, out
 * shape x.shape[:axis] + [indices.length] + x.shape[axis + 1:]. Undefined when an index is
 * outside [0, x.shape[axis]) (the caller then runs the stock kernel, which reports it).
 */
export function gatherAxis(
  x: Float32Array,
  shape: readonly number[],
  indices: ArrayLike<number>,
  axis: number,
): Float32Array | undefined {
  const n = shape[axis], m = indices.length;
  for (let j = 0; j < m; j++) {
    if (!(indices[j] >= 0 && indices[j] < n)) return undefined;
  }
  const outer = util.sizeFromShape(shape.slice(0, axis) as number[]);
  const inner = util.sizeFromShape(shape.slice(axis + 1) as number[]);
  const out = new Float32Array(outer * m * inner);
  for (let o = 0, d = 0; o < outer; o++) {
    for (let j = 0; j < m; j++, d += inner) {
      copyRun(out, d, x, (o * n + indices[j]) * inner, inner);
    }
  }
  return out;
}

/**
 * Slice, SplitV, PadV2, Concat, Tile, GatherV2 and Transpose kernel functions, falling back to
 * `stock[name]` for non-float32 data (and int indices other than int32, batch dims). With
 * `dnnl`, large Slice, SplitV, PadV2, Concat and Transpose copies run as oneDNN reorders.
 */
export function makeSliceKernels(
  stock: Record<string, KernelFunc>,
  dnnl?: Dnnl,
): Record<string, KernelFunc> {
  const copy = boxCopyWith(dnnl);
  return {
    Concat: (args: KernelArgs) => {
      const be = cpuBackend(args);
      const xs = args.inputs as unknown as TensorInfo[];
      const values = xs.map((x) => f32Values(be, x));
      if (xs.length === 0 || values.some((v) => !v)) return stock.Concat(args);
      const { axis } = args.attrs as unknown as { axis: number | number[] };
      const ax = util.parseAxisParam(axis, xs[0].shape)[0];
      const out = concatAxis(
        values as Float32Array[],
        xs.map((x) => x.shape),
        ax,
        copy,
        outputAlloc(be),
      );
      return be.makeTensorInfo(out.shape, "float32", out.values);
    },
    PadV2: (args: KernelArgs) => {
      const be = cpuBackend(args);
      const { x } = args.inputs as { x: TensorInfo };
      const { paddings, constantValue } = args.attrs as unknown as {
        paddings: [number, number][];
        constantValue: number;
      };
      const xv = f32Values(be, x);
      if (!xv) return stock.PadV2(args);
      const { values, shape } = padConstant(
        xv,
        x.shape,
        paddings,
        constantValue,
        copy,
        outputAlloc(be),
      );
      return be.makeTensorInfo(shape, "float32", values);
    },
    Slice: (args: KernelArgs) => {
      const be = cpuBackend(args);
      const { x } = args.inputs as { x: TensorInfo };
      const { begin, size } = args.attrs as unknown as {
        begin: number | number[];
        size: number | number[];
      };
      if (!f32Values(be, x)) return stock.Slice(args);
      const [b, s] = slice_util.parseSliceParams(x as never, begin, size);
      return sliceInfo(be, x, b, s, copy);
    },
    Tile: (args: KernelArgs) => {
      const be = cpuBackend(args);
      const { x } = args.inputs as { x: TensorInfo };
      const xv = f32Values(be, x);
      if (!xv) return stock.Tile(args);
      const { reps } = args.attrs as unknown as { reps: number[] };
      const out = tile(xv, x.shape, reps, outputAlloc(be));
      return be.makeTensorInfo(out.shape, "float32", out.values);
    },
    GatherV2: (args: KernelArgs) => {
      const be = cpuBackend(args);
      const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
      const { axis, batchDims } = args.attrs as unknown as { axis: number; batchDims: number };
      const xv = f32Values(be, x);
      const iv = be.data.get(indices.dataId).values;
      if (!xv || batchDims !== 0 || !(iv instanceof Int32Array)) return stock.GatherV2(args);
      const ax = util.parseAxisParam(axis, x.shape)[0];
      const values = gatherAxis(xv, x.shape, iv, ax);
      if (!values) return stock.GatherV2(args);
      const shape = [...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)];
      return be.makeTensorInfo(shape, "float32", values);
    },
    Transpose: (args: KernelArgs) => {
      const be = cpuBackend(args);
      const { x } = args.inputs as { x: TensorInfo };
      const xv = f32Values(be, x);
      if (!xv) return stock.Transpose(args);
      const { perm } = args.attrs as unknown as { perm: number[] };
      const out = transposeAxes(xv, x.shape, perm, copy, outputAlloc(be));
      return be.makeTensorInfo(out.shape, "float32", out.values);
    },
    SplitV: (args: KernelArgs) => {
      const be = cpuBackend(args);
      const { x } = args.inputs as { x: TensorInfo };
      const { numOrSizeSplits, axis } = args.attrs as unknown as {
        numOrSizeSplits: number | number[];
        axis: number;
      };
      if (!f32Values(be, x)) return stock.SplitV(args);
      const ax = util.parseAxisParam(axis, x.shape)[0];
      const splits = backend_util.prepareSplitSize(x as never, numOrSizeSplits, ax);
      const begin = x.shape.map(() => 0);
      return splits.map((len) => {
        const size = [...x.shape];
        size[ax] = len;
        const t = sliceInfo(be, x, [...begin], size, copy);
        begin[ax] += len;
        return t;
      });
    },
  };
}
