/**
 * Float32 broadcast binary ops (Add, Sub, Multiply, RealDiv), reductions (Sum, Mean) and
 * last-axis Softmax for the tfjs CPU backend, as row loops over merged strided axes.
 */
import {
  backend_util,
  broadcast_util,
  type KernelFunc,
  type TensorInfo,
  util,
} from "@tensorflow/tfjs-core";
import { forEachRow, maskedStrides, mergeAxes } from "./strided.ts";
import { cpuBackend, f32Values, type KernelArgs } from "./cpu_access.ts";
import type { Dnnl, DnnlBinary } from "./dnnl.ts";
import type { Blas } from "./blas.ts";
import { type Alloc, freshArray, outputAlloc, outputArray } from "../output_pool.ts";

/**
 * Outputs smaller than this many elements stay on the JS loops: a oneDNN primitive is created
 * (~0.1-1 ms) per distinct shape, which only pays off on large tensors.
 */
export const DNNL_MIN_ELEMENTS = 16384;

/** Binary ops with a fast float32 path (sqdiff: tfjs' SquaredDifference, (a - b)²). */
export type BinaryOp = "add" | "sub" | "mul" | "div" | "sqdiff";

const BINARY_EXPR: Record<BinaryOp, string> = {
  add: "x + y",
  sub: "x - y",
  mul: "x * y",
  div: "x / y",
  sqdiff: "(x - y) * (x - y)",
};

/**
 * Block kernel over the last two merged axes: o[po + i * so1 + j] = op(a[pa + i * sa1 + j * ia],
 * b[pb + i * sb1 + j * ib]) for i < n1, j < n0, with ia, ib in {0, 1}.
 */
type BinaryBlock = (
  o: Float32Array,
  po: number,
  a: Float32Array,
  pa: number,
  b: Float32Array,
  pb: number,
  n1: number,
  so1: number,
  sa1: number,
  sb1: number,
  n0: number,
  ia: number,
  ib: number,
) => void;

/**
 * Compiles the block kernel of one op with the op inlined (one function per op keeps every
 * loop monomorphic); the three inner loops cover both-contiguous, b-broadcast and a-broadcast.
 */
function compileBlock(expr: string): BinaryBlock {
  const loop = (x: string, y: string, pre: string) =>
    `${pre} for (let j = 0; j < n0; j++) { const x = ${x}, y = ${y}; o[qo + j] = ${expr}; }`;
  return new Function(
    "o, po, a, pa, b, pb, n1, so1, sa1, sb1, n0, ia, ib",
    `for (let i = 0; i < n1; i++) {
      const qo = po + i * so1, qa = pa + i * sa1, qb = pb + i * sb1;
      if (ia === 1 && ib === 1) { ${loop("a[qa + j]", "b[qb + j]", "")} }
      else if (ib === 0 && ia === 1) { ${loop("a[qa + j]", "yb", "const yb = b[qb];")} }
      else if (ia === 0 && ib === 1) { ${loop("xa", "b[qb + j]", "const xa = a[qa];")} }
      else { ${loop("a[qa]", "b[qb]", "")} }
    }`,
  ) as BinaryBlock;
}

const BINARY_BLOCKS = Object.fromEntries(
  Object.entries(BINARY_EXPR).map(([op, expr]) => [op, compileBlock(expr)]),
) as Record<BinaryOp, BinaryBlock>;

/** Prepends size-1 axes so that the shape has rank >= 2 (block kernels need two axes). */
function atLeast2(sizes: number[], kinds: string[], kind: string): void {
  while (sizes.length < 2) sizes.unshift(1), kinds.unshift(kind);
}

/**
 * out = a (op) b with numpy broadcasting; `a`, `b` row-major of shapes `aShape`, `bShape`.
 * Returns the values and the broadcast shape. Throws when the shapes do not broadcast.
 */
export function broadcastBinary(
  op: BinaryOp,
  a: Float32Array,
  aShape: readonly number[],
  b: Float32Array,
  bShape: readonly number[],
  alloc: Alloc = freshArray,
): { values: Float32Array; shape: number[] } {
  const shape = broadcast_util.assertAndGetBroadcastShape(aShape as number[], bShape as number[]);
  const r = shape.length;
  const pad = (s: readonly number[]) => [...new Array(r - s.length).fill(1), ...s];
  const as = pad(aShape), bs = pad(bShape);
  const kinds = shape.map((_, i) => `${as[i] === 1 ? 0 : 1}${bs[i] === 1 ? 0 : 1}`);
  const m = mergeAxes(shape, kinds);
  const out = alloc(util.sizeFromShape(shape));
  if (out.length === 0) return { values: out, shape };
  atLeast2(m.sizes, m.kinds, "11");
  const sa = maskedStrides(m.sizes, m.kinds.map((k) => k[0] === "1"));
  const sb = maskedStrides(m.sizes, m.kinds.map((k) => k[1] === "1"));
  const so = maskedStrides(m.sizes, m.kinds.map(() => true));
  const r0 = m.sizes.length - 1, r1 = r0 - 1;
  const n1 = m.sizes[r1], n0 = m.sizes[r0];
  const block = BINARY_BLOCKS[op];
  forEachRow(
    m.sizes.slice(0, r0),
    [so, sa, sb],
    (off) =>
      block(out, off[0], a, off[1], b, off[2], n1, so[r1], sa[r1], sb[r1], n0, sa[r0], sb[r0]),
  );
  return { values: out, shape };
}

/**
 * A reduction: its identity, and its inner loops (a fold of one row, an elementwise fold into
 * an accumulator row), each its own function so that V8 compiles it for one reduction: a
 * shared per-value callback cannot be inlined and cost ~20 ns a value.
 */
interface Reducer {
  readonly init: number;
  /** `acc` folded with x[p .. p + n). */
  readonly row: (acc: number, x: Float32Array, p: number, n: number) => number;
  /** acc[q + j] folded with x[p + j] for j < n. */
  readonly into: (acc: Float64Array, q: number, x: Float32Array, p: number, n: number) => void;
}

/** Sum, and tfjs' Max (NaN-propagating: once NaN, a max stays NaN). */
const REDUCERS = {
  sum: {
    init: 0,
    row(acc, x, p, n) {
      for (let j = 0; j < n; j++) acc += x[p + j];
      return acc;
    },
    into(acc, q, x, p, n) {
      for (let j = 0; j < n; j++) acc[q + j] += x[p + j];
    },
  },
  max: {
    init: -Infinity,
    // the NaN itself is kept (not Math.max's), as tfjs' stock kernel does
    row(acc, x, p, n) {
      for (let j = 0; j < n; j++) {
        const v = x[p + j];
        acc = v > acc || v !== v ? v : acc;
      }
      return acc;
    },
    into(acc, q, x, p, n) {
      for (let j = 0; j < n; j++) {
        const v = x[p + j];
        if (v > acc[q + j] || v !== v) acc[q + j] = v;
      }
    },
  },
} as const satisfies Record<string, Reducer>;

/**
 * Sum of `x` (row-major, shape `shape`) over `axes` (non-negative, any order), accumulated in
 * float64. Returns the values in the order of the kept axes (reduced axes removed).
 */
export function reduceSum(
  x: Float32Array,
  shape: readonly number[],
  axes: readonly number[],
): Float32Array {
  return reduceAxes(x, shape, axes, REDUCERS.sum);
}

/** Maximum of `x` over `axes`, as {@link reduceSum} (NaN where a reduced value is NaN). */
export function reduceMax(
  x: Float32Array,
  shape: readonly number[],
  axes: readonly number[],
): Float32Array {
  return reduceAxes(x, shape, axes, REDUCERS.max);
}

function reduceAxes(
  x: Float32Array,
  shape: readonly number[],
  axes: readonly number[],
  r: Reducer,
): Float32Array {
  for (const ax of axes) {
    if (!Number.isInteger(ax) || ax < 0 || ax >= shape.length) {
      throw new RangeError(`axes: expected integers in [0, ${shape.length}), got [${axes}]`);
    }
  }
  const kinds = shape.map((_, i) => (axes.includes(i) ? "r" : "k"));
  const m = mergeAxes(shape, kinds);
  const outSize = shape.reduce((p, s, i) => (axes.includes(i) ? p : p * s), 1);
  const acc = new Float64Array(outSize).fill(r.init);
  if (x.length === 0) return Float32Array.from(acc);
  atLeast2(m.sizes, m.kinds, "k");
  const sx = maskedStrides(m.sizes, m.kinds.map(() => true));
  const so = maskedStrides(m.sizes, m.kinds.map((k) => k === "k"));
  const r0 = m.sizes.length - 1, r1 = r0 - 1;
  const n1 = m.sizes[r1], n0 = m.sizes[r0], sx1 = sx[r1], so1 = so[r1];
  const outer = m.sizes.slice(0, r0);
  if (m.kinds[r0] === "r") {
    forEachRow(outer, [sx, so], (off) => {
      for (let i = 0; i < n1; i++) {
        const q = off[1] + i * so1;
        acc[q] = r.row(acc[q], x, off[0] + i * sx1, n0);
      }
    });
  } else {
    forEachRow(outer, [sx, so], (off) => {
      for (let i = 0; i < n1; i++) r.into(acc, off[1] + i * so1, x, off[0] + i * sx1, n0);
    });
  }
  return Float32Array.from(acc);
}

/** Softmax over the last axis of `x` viewed as [rows, n] (max-subtracted, float32 out). */
export function softmaxLastAxis(x: Float32Array, n: number): Float32Array {
  if (!Number.isInteger(n) || n < 1 || x.length % n !== 0) {
    throw new RangeError(`n: expected a divisor of x.length ${x.length}, got ${n}`);
  }
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length; r += n) {
    let mx = -Infinity;
    for (let j = 0; j < n; j++) if (x[r + j] > mx) mx = x[r + j];
    let s = 0;
    for (let j = 0; j < n; j++) {
      const e = Math.exp(x[r + j] - mx);
      out[r + j] = e;
      s += e;
    }
    for (let j = 0; j < n; j++) out[r + j] /= s;
  }
  return out;
}

/**
 * out = a (op) b by oneDNN's binary primitive when one operand has the full broadcast shape
 * (a, or b for the commutative add and mul); undefined when it does not apply.
 */
function dnnlBinary(
  dnnl: Dnnl,
  op: DnnlBinary,
  a: Float32Array,
  aShape: readonly number[],
  b: Float32Array,
  bShape: readonly number[],
  alloc: Alloc,
): { values: Float32Array; shape: number[] } | undefined {
  const shape = broadcast_util.assertAndGetBroadcastShape(aShape as number[], bShape as number[]);
  const size = util.sizeFromShape(shape);
  if (size < DNNL_MIN_ELEMENTS) return undefined;
  const r = shape.length;
  const pad = (s: readonly number[]) => [...new Array(r - s.length).fill(1), ...s];
  const as = pad(aShape), bs = pad(bShape);
  const m = mergeAxes(shape, shape.map((_, i) => `${as[i] === 1 ? 0 : 1}${bs[i] === 1 ? 0 : 1}`));
  const full = (k: number) => m.kinds.every((kind) => kind[k] === "1");
  const small = (k: number) => m.sizes.map((n, i) => (m.kinds[i][k] === "1" ? n : 1));
  const aFull = full(0);
  if (!aFull && !(full(1) && (op === "add" || op === "mul"))) return undefined;
  const values = alloc(size);
  if (aFull) dnnl.binary(op, a, b, small(1), values, m.sizes);
  else dnnl.binary(op, b, a, small(0), values, m.sizes);
  return { values, shape };
}

/**
 * `shape` with its reduced (`axes`) and kept axes merged into [n1, n0] and their kinds ("r"
 * reduced, "k" kept), when that takes at most two runs (a full reduction is [1, n]);
 * undefined otherwise.
 */
function twoAxisView(shape: readonly number[], axes: readonly number[]) {
  const m = reductionView(shape, axes);
  return m.sizes.length === 2 ? m : undefined;
}

/** `shape` with its reduced and kept axes merged (kinds "r" / "k"); a full reduction is [1, n]. */
function reductionView(shape: readonly number[], axes: readonly number[]) {
  const m = mergeAxes(shape, shape.map((_, i) => (axes.includes(i) ? "r" : "k")));
  if (m.sizes.length === 1 && m.kinds[0] === "r") atLeast2(m.sizes, m.kinds, "k");
  return m;
}

/**
 * Reduced rows per kept row from which a middle-axis sum ([n2, n1, n0] -> [n2, n0], e.g. the
 * per-(sample, channel) sums of NHWC activations) runs one ones-vector GEMM per kept row.
 * Per call against the JS loop (Xeon with AVX-512, 1 thread, 2026-12-03): [32, 1024, 16]
 * 0.08 vs 1.2 ms, [32, 64, 32] 0.024 vs 0.33 ms, [256, 64, 16] 0.13 vs 1.3 ms.
 */
const GEMV_MIN_ROWS = 16;

/**
 * Sum of x over `axes` natively when the merged reduction is over trailing axes (oneDNN
 * reduction), leading axes (a ones-vector GEMM) or middle axes of at least
 * {@link GEMV_MIN_ROWS} rows (one such GEMM per leading index); undefined otherwise.
 */
function nativeSum(
  native: { dnnl?: Dnnl; blas?: Blas },
  x: Float32Array,
  shape: readonly number[],
  axes: readonly number[],
): Float32Array | undefined {
  if (x.length < DNNL_MIN_ELEMENTS) return undefined;
  const m = reductionView(shape, axes);
  const blas = native.blas;
  if (m.kinds.join("") === "krk" && blas && m.sizes[1] >= GEMV_MIN_ROWS) {
    const [n2, n1, n0] = m.sizes;
    const out = new Float32Array(n2 * n0), row = n1 * n0;
    for (let i = 0; i < n2; i++) {
      const xi = x.subarray(i * row, (i + 1) * row), oi = out.subarray(i * n0, (i + 1) * n0);
      blas.sgemm(false, false, 1, n0, n1, 1, ones(n1), n1, xi, n0, 0, oi, n0);
    }
    return out;
  }
  if (m.sizes.length !== 2) return undefined;
  const [n1, n0] = m.sizes;
  if (m.kinds[1] === "r" && native.dnnl) {
    const out = new Float32Array(n1);
    native.dnnl.reduce("sum", x, [n1, n0], out, [n1, 1]);
    return out;
  }
  if (m.kinds[0] === "r" && blas) {
    const out = new Float32Array(n0);
    blas.sgemm(false, false, 1, n0, n1, 1, ones(n1), n1, x, n0, 0, out, n0);
    return out;
  }
  return undefined;
}

/**
 * Shortest reduced run for which oneDNN's max (with its NaN-check sum) beats the JS loop:
 * 0.44 vs 0.54 ms at [1024, 128], 0.76 vs 7.2 ms at [512, 4096], 3.2 vs 1.1 ms at [8192, 16]
 * (Xeon with AVX-512, 2026-12-03).
 */
const DNNL_MAX_MIN_RUN = 128;

/**
 * Max of x over `axes` by oneDNN reductions when the merged reduction is one long trailing
 * run (over leading axes oneDNN 2.x only has its reference kernel); undefined otherwise, or
 * when a reduced value may be NaN: oneDNN's max skips NaN where tfjs' Max returns it, so a
 * second reduction sums the same values (a NaN anywhere makes its sum NaN, as do +Infinity
 * and -Infinity together) and any NaN sum leaves the call to the JS loops.
 */
function nativeMax(
  dnnl: Dnnl | undefined,
  x: Float32Array,
  shape: readonly number[],
  axes: readonly number[],
): Float32Array | undefined {
  const m = dnnl && x.length >= DNNL_MIN_ELEMENTS ? twoAxisView(shape, axes) : undefined;
  if (!m || m.kinds[1] !== "r" || m.sizes[1] < DNNL_MAX_MIN_RUN) return undefined;
  const [n1, n0] = m.sizes;
  const out = new Float32Array(n1), sums = new Float32Array(n1);
  dnnl!.reduce("max", x, [n1, n0], out, [n1, 1]);
  dnnl!.reduce("sum", x, [n1, n0], sums, [n1, 1]);
  return sums.some((v) => v !== v) ? undefined : out;
}

let onesCache = new Float32Array(0);

/** A vector of at least `n` ones (shared, read-only). */
export function ones(n: number): Float32Array {
  if (onesCache.length < n) onesCache = new Float32Array(n).fill(1);
  return onesCache;
}

const BINARY: Record<string, BinaryOp> = {
  Add: "add",
  Sub: "sub",
  Multiply: "mul",
  RealDiv: "div",
  SquaredDifference: "sqdiff",
};

/** Kernel names served by {@link makeElementwiseKernels}. */
export const ELEMENTWISE_KERNELS: readonly string[] = [
  ...Object.keys(BINARY),
  "Sum",
  "Max",
  "Mean",
  "Softmax",
];

/**
 * Elementwise / reduction kernel functions, falling back to `stock[name]` for non-float32.
 * With `native.dnnl`, large binary ops, trailing-axis sums, Softmax and Sigmoid run as oneDNN
 * primitives (vectorised, threaded); with `native.blas`, leading-axis sums as a GEMM.
 */
export function makeElementwiseKernels(
  stock: Record<string, KernelFunc>,
  native: { dnnl?: Dnnl; blas?: Blas } = {},
): Record<string, KernelFunc> {
  const dnnl = native.dnnl;
  const kernels: Record<string, KernelFunc> = {};
  for (const [name, op] of Object.entries(BINARY)) {
    kernels[name] = (args: KernelArgs) => {
      const be = cpuBackend(args);
      const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
      const av = f32Values(be, a), bv = f32Values(be, b);
      if (!av || !bv) return stock[name](args);
      // oneDNN 2.x has no squared-difference algorithm: that one is a JS loop
      const alloc = outputAlloc(be);
      const native = op !== "sqdiff" && dnnl &&
        dnnlBinary(dnnl, op, av, a.shape, bv, b.shape, alloc);
      const { values, shape } = native || broadcastBinary(op, av, a.shape, bv, b.shape, alloc);
      return be.makeTensorInfo(shape, "float32", values);
    };
  }
  /**
   * A reduction kernel: `compute(values, shape, axes, reducedCount)` over the axes named by
   * the attribute `axisAttr` (stock kernel for non-float32 or empty inputs).
   */
  const reduce = (
    name: string,
    axisAttr: "axis" | "reductionIndices",
    compute: (x: Float32Array, shape: number[], axes: number[], count: number) => Float32Array,
  ): KernelFunc =>
  (args: KernelArgs) => {
    const be = cpuBackend(args);
    const { x } = args.inputs as { x: TensorInfo };
    const attrs = args.attrs as unknown as Record<string, number | number[] | boolean>;
    const xv = f32Values(be, x);
    if (!xv || xv.length === 0) return stock[name](args);
    const axes = util.parseAxisParam(attrs[axisAttr] as number | number[], x.shape);
    const [outShape, reduceShape] = backend_util.computeOutAndReduceShapes(x.shape, axes);
    const values = compute(xv, x.shape, axes, util.sizeFromShape(reduceShape));
    const shape = attrs.keepDims ? backend_util.expandShapeToKeepDim(outShape, axes) : outShape;
    return be.makeTensorInfo(shape, "float32", values);
  };
  const sum = (x: Float32Array, shape: number[], axes: number[]) =>
    nativeSum(native, x, shape, axes) ?? reduceSum(x, shape, axes);
  kernels.Sum = reduce("Sum", "axis", sum);
  kernels.Mean = reduce("Mean", "axis", (x, shape, axes, count) => {
    const values = sum(x, shape, axes), inv = 1 / count;
    for (let i = 0; i < values.length; i++) values[i] *= inv;
    return values;
  });
  kernels.Max = reduce(
    "Max",
    "reductionIndices",
    (x, shape, axes) => nativeMax(dnnl, x, shape, axes) ?? reduceMax(x, shape, axes),
  );
  kernels.Softmax = (args: KernelArgs) => {
    const be = cpuBackend(args);
    const { logits } = args.inputs as { logits: TensorInfo };
    const { dim } = args.attrs as unknown as { dim: number };
    const xv = f32Values(be, logits);
    const r = logits.shape.length;
    if (!xv || r === 0 || (dim !== -1 && dim !== r - 1)) return stock.Softmax(args);
    const n = logits.shape[r - 1];
    let y: Float32Array;
    if (dnnl && xv.length > 0) {
      y = outputArray(be, xv.length);
      dnnl.softmax(xv, y, n);
    } else {
      y = softmaxLastAxis(xv, n);
    }
    return be.makeTensorInfo(logits.shape, "float32", y);
  };
  return kernels;
}
