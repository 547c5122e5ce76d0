/**
 * Float32 Slice, SplitV, PadV2, Concat, Tile and GatherV2 kernels for the tfjs CPU backend
 * (contiguous-run copies).
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

/**
 * Copies the box `begin` .. `begin + size` (per axis, elements) out of `x` (row-major, shape
 * `shape`). Throws RangeError when the box leaves the array.
 */
export function sliceBox(
  x: Float32Array,
  shape: readonly number[],
  begin: readonly number[],
  size: readonly number[],
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
  const out = new Float32Array(util.sizeFromShape(size as number[]));
  if (out.length === 0) return out;
  const xStrides = maskedStrides(shape, shape.map(() => true));
  let start = 0;
  for (let i = 0; i < shape.length; i++) start += begin[i] * xStrides[i];
  // Innermost contiguous run: axis k and every whole axis after it.
  let k = shape.length - 1;
  while (k > 0 && size[k] === shape[k]) k--;
  const n = k < 0 ? 1 : size.slice(k).reduce((p, v) => p * v, 1);
  const sizes = [...size.slice(0, Math.max(k, 0)), n];
  const src = [...xStrides.slice(0, Math.max(k, 0)), 1];
  const dst = maskedStrides(sizes, sizes.map(() => true));
  forEachRow(sizes, [src, dst], (off) => {
    copyRun(out, off[1], x, start + off[0], n);
  });
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
): { values: Float32Array; shape: number[] } {
  if (paddings.length !== shape.length || paddings.some(([b, a]) => !(b >= 0 && a >= 0))) {
    throw new RangeError(`paddings: expected ${shape.length} non-negative [before, after] pairs`);
  }
  const outShape = shape.map((s, i) => s + paddings[i][0] + paddings[i][1]);
  const out = new Float32Array(util.sizeFromShape(outShape));
  if (value !== 0) out.fill(value);
  if (x.length === 0) return { values: out, shape: outShape };
  const r = shape.length;
  const sizes = r === 0 ? [1] : [...shape];
  const outStrides = maskedStrides(outShape, outShape.map(() => true));
  const src = maskedStrides(sizes, sizes.map(() => true));
  const dst = r === 0 ? [1] : outStrides;
  const start = paddings.reduce((p, [b], i) => p + b * outStrides[i], 0);
  const n = sizes[sizes.length - 1];
  forEachRow(sizes, [src, dst], (off) => {
    copyRun(out, start + off[1], x, off[0], n);
  });
  return { values: out, shape: outShape };
}

function sliceInfo(be: CpuBackendLike, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  const xv = f32Values(be, x)!;
  return be.makeTensorInfo(size, "float32", sliceBox(xv, x.shape, begin, size));
}

/**
 * Concatenation of row-major arrays along `axis`: `shapes[i]` equal except on `axis`.
 * Returns the values and the output shape. Throws RangeError on mismatched shapes.
 */
export function concatAxis(
  parts: readonly Float32Array[],
  shapes: readonly (readonly number[])[],
  axis: number,
): { values: Float32Array; shape: number[] } {
  const shape = backend_util.computeOutShape(shapes as number[][], axis);
  shapes.forEach((s, i) => {
    if (s.length !== shape.length || s.some((n, j) => j !== axis && n !== shape[j])) {
      throw new RangeError(`shapes[${i}]: expected [${shape}] except on axis ${axis}, got [${s}]`);
    }
  });
  const values = new Float32Array(util.sizeFromShape(shape));
  const outer = util.sizeFromShape(shape.slice(0, axis));
  const row = util.sizeFromShape(shape.slice(axis));
  let offset = 0;
  parts.forEach((x, i) => {
    const inner = util.sizeFromShape(shapes[i].slice(axis));
    for (let o = 0; o < outer; o++) copyRun(values, o * row + offset, x, o * inner, inner);
    offset += inner;
  });
  return { values, shape };
}

/**
 * `x` (row-major, shape `shape`) repeated `reps[i]` times along each axis i (tfjs' Tile):
 * one pass per tiled axis, innermost first, each copying whole blocks. Returns the values and
 * the tiled shape. Throws RangeError unless `reps` has one non-negative integer per axis.
 */
export function tile(
  x: Float32Array,
  shape: readonly number[],
  reps: readonly number[],
): { values: Float32Array; shape: number[] } {
  if (reps.length !== shape.length || reps.some((r) => !Number.isInteger(r) || r < 0)) {
    throw new RangeError(`reps: expected ${shape.length} non-negative integers, got [${reps}]`);
  }
  const cur = [...shape];
  let values = x.slice();
  for (let ax = shape.length - 1; ax >= 0; ax--) {
    if (reps[ax] === 1) continue;
    const outer = util.sizeFromShape(cur.slice(0, ax)), block = util.sizeFromShape(cur.slice(ax));
    const next = new Float32Array(outer * block * reps[ax]);
    for (let o = 0, d = 0; o < outer; o++) {
      for (let r = 0; r < reps[ax]; r++, d += block) copyRun(next, d, values, o * block, block);
    }
    values = next;
    cur[ax] *= reps[ax];
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
 * Slice, SplitV, PadV2, Concat, Tile and GatherV2 kernel functions, falling back to
 * `stock[name]` for non-float32 data (and int indices other than int32, batch dims).
 */
export function makeSliceKernels(stock: Record<string, KernelFunc>): Record<string, KernelFunc> {
  return {
    Concat: (args: KernelArgs) => {
      const be = cpuBackend(args);
      const xs = args.inputs as unknown as TensorInfo[];
      const values = xs.map((x) => f32Values(be, x));
      if (xs.length === 0 || values.some((v) => !v)) return stock.Concat(args);
      const { axis } = args.attrs as unknown as { axis: number | number[] };
      const ax = util.parseAxisParam(axis, xs[0].shape)[0];
      const out = concatAxis(values as Float32Array[], xs.map((x) => x.shape), ax);
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
      const { values, shape } = padConstant(xv, x.shape, paddings, constantValue);
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
      return sliceInfo(be, x, b, s);
    },
    Tile: (args: KernelArgs) => {
      const be = cpuBackend(args);
      const { x } = args.inputs as { x: TensorInfo };
      const xv = f32Values(be, x);
      if (!xv) return stock.Tile(args);
      const { reps } = args.attrs as unknown as { reps: number[] };
      const out = tile(xv, x.shape, reps);
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
        const t = sliceInfo(be, x, [...begin], size);
        begin[ax] += len;
        return t;
      });
    },
  };
}
