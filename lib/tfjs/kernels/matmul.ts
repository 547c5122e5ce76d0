/** BatchMatMul and _FusedMatMul kernels for the tfjs CPU backend on BLAS sgemm and oneDNN matmul. */
import { broadcast_util, type KernelFunc, type TensorInfo, util } from "@tensorflow/tfjs-core";
import type { Blas } from "./blas.ts";
import type { Dnnl } from "./dnnl.ts";
import { biasActivationInPlace, isFastActivation } from "./activation.ts";
import { channelBias, cpuBackend, f32Values, type KernelArgs } from "./cpu_access.ts";
import { type Alloc, freshArray, outputAlloc } from "../output_pool.ts";

/** Batch size from which equal batches run as one oneDNN matmul instead of a GEMM each. */
const DNNL_MATMUL_MIN_BATCH = 2;

/** Sizes of a (broadcast) batched product op(A) [m, k] @ op(B) [k, n]. */
export interface MatMulPlan {
  readonly batchA: number;
  readonly batchB: number;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  /** Output shape: broadcast batch dims + [m, n]. */
  readonly outShape: number[];
}

/**
 * Plans a tfjs batched matmul of a [...batchA, rows, cols] and b [...batchB, rows, cols].
 * Returns undefined when the batch sizes are neither equal nor 1 (left to the stock kernel).
 * Throws RangeError when the inner dimensions differ.
 */
export function planMatMul(
  aShape: readonly number[],
  bShape: readonly number[],
  transA: boolean,
  transB: boolean,
): MatMulPlan | undefined {
  if (aShape.length < 2 || bShape.length < 2) {
    throw new RangeError(`a, b: expected rank >= 2, got [${aShape}] and [${bShape}]`);
  }
  const ra = aShape.length, rb = bShape.length;
  const k = transA ? aShape[ra - 2] : aShape[ra - 1];
  const kb = transB ? bShape[rb - 1] : bShape[rb - 2];
  if (k !== kb) {
    throw new RangeError(
      `b: inner dimension ${kb} of [${bShape}] (transposeB=${transB}) must equal ${k} of ` +
        `a [${aShape}] (transposeA=${transA})`,
    );
  }
  const batchA = util.sizeFromShape(aShape.slice(0, -2));
  const batchB = util.sizeFromShape(bShape.slice(0, -2));
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) return undefined;
  const m = transA ? aShape[ra - 1] : aShape[ra - 2];
  const n = transB ? bShape[rb - 2] : bShape[rb - 1];
  const outer = broadcast_util.assertAndGetBroadcastShape(aShape.slice(0, -2), bShape.slice(0, -2));
  return { batchA, batchB, m, n, k, outShape: [...outer, m, n] };
}

/** The libraries the products run on: the BLAS sgemm, and oneDNN's matmul when present. */
export interface MatMulLibs {
  blas: Blas;
  dnnl?: Dnnl;
}

/**
 * out [batch, m, n] = op(a) @ op(b) (+ bias) per batch (a batch of 1 is broadcast), float32:
 * one tall GEMM when every A shares B, one oneDNN matmul execution for equal batches of at
 * least {@link DNNL_MATMUL_MIN_BATCH}, else one GEMM per batch index. `bias` ([n], or [1]
 * for a scalar) is added to every row: the GEMMs accumulate onto rows prefilled with it (the
 * oneDNN matmul's output gets it added afterwards).
 */
export function batchMatMul(
  libs: MatMulLibs,
  a: Float32Array,
  b: Float32Array,
  p: MatMulPlan,
  transA: boolean,
  transB: boolean,
  bias?: Float32Array,
  alloc: Alloc = freshArray,
): Float32Array {
  const { batchA, batchB, m, n, k } = p;
  const { blas, dnnl } = libs;
  const batch = Math.max(batchA, batchB);
  if (k === 0) {
    // An empty inner dimension: zeros (+ bias). BLAS rejects lda = 0.
    const zeros = new Float32Array(batch * m * n);
    if (bias) prefillRows(zeros, bias, n);
    return zeros;
  }
  // Every path below writes every value (oneDNN, GEMMs with beta 0 or onto prefilled rows).
  const out = alloc(batch * m * n);
  const lda = transA ? m : k, ldb = transB ? k : n;
  if (dnnl && batchA === batchB && batch >= DNNL_MATMUL_MIN_BATCH && m * n > 0) {
    dnnl.matmul(a, b, out, { batch, m, n, k }, transA, transB);
    if (bias) biasActivationInPlace(out, n, bias, "linear");
    return out;
  }
  const beta = bias ? (prefillRows(out, bias, n), 1) : 0;
  if (batchB === 1 && !transA) {
    // Every A shares B: one tall product [batch * m, k] @ [k, n].
    blas.sgemm(false, transB, batch * m, n, k, 1, a, lda, b, ldb, beta, out, n);
    return out;
  }
  for (let i = 0; i < batch; i++) {
    const ai = a.subarray((batchA === 1 ? 0 : i) * m * k);
    const bi = b.subarray((batchB === 1 ? 0 : i) * k * n);
    blas.sgemm(transA, transB, m, n, k, 1, ai, lda, bi, ldb, beta, out.subarray(i * m * n), n);
  }
  return out;
}

/**
 * Every row of `out` ([rows, n]) set to `bias` ([n], or [1]: every value): the first row,
 * then copies doubling in length (memory speed; a JS add loop costs ~1 ns a value).
 */
export function prefillRows(out: Float32Array, bias: Float32Array, n: number): void {
  if (out.length === 0) return;
  if (bias.length === 1) {
    out.fill(bias[0]);
    return;
  }
  out.set(bias, 0);
  for (let filled = n; filled < out.length; filled *= 2) {
    out.copyWithin(filled, 0, Math.min(filled, out.length - filled));
  }
}

/** BatchMatMul and _FusedMatMul kernel functions, falling back to `stock[name]`. */
export function makeMatMulKernels(
  libs: MatMulLibs,
  stock: Record<string, KernelFunc>,
): Record<string, KernelFunc> {
  const run = (args: KernelArgs, name: string) => {
    const be = cpuBackend(args);
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<
      string,
      TensorInfo | undefined
    >;
    const attrs = args.attrs as unknown as {
      transposeA: boolean;
      transposeB: boolean;
      activation?: string;
      leakyreluAlpha?: number;
    };
    const transA = !!attrs.transposeA, transB = !!attrs.transposeB;
    const p = planMatMul(a!.shape, b!.shape, transA, transB);
    const av = f32Values(be, a!), bv = f32Values(be, b!);
    const biasV = channelBias(be, bias, p?.n ?? 0);
    const act = attrs.activation;
    if (!p || !av || !bv || !biasV.ok || preluActivationWeights || !isFastActivation(act)) {
      return stock[name](args);
    }
    const fused = name === "_FusedMatMul" && p.n > 0;
    const addend = fused ? biasV.values : undefined;
    const out = batchMatMul(libs, av, bv, p, transA, transB, addend, outputAlloc(be));
    if (fused) biasActivationInPlace(out, p.n, undefined, act, attrs.leakyreluAlpha);
    return be.makeTensorInfo(p.outShape, "float32", out);
  };
  return {
    BatchMatMul: (args: KernelArgs) => run(args, "BatchMatMul"),
    _FusedMatMul: (args: KernelArgs) => run(args, "_FusedMatMul"),
  };
}
