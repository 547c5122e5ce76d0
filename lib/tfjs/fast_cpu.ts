/**
 * Fast tfjs CPU backend. Replaces, on the tfjs "cpu" backend:
 * - Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter, FusedConv2D by oneDNN's convolution
 *   primitives (when the library is oneDNN 2.x; else stride-1 convs as one GEMM per filter tap
 *   on a padded copy, others as im2col + GEMM), BatchMatMul and _FusedMatMul by
 *   single-precision GEMMs from oneDNN (`dnnl_sgemm`) or OpenBLAS (`cblas_sgemm`), via Deno FFI;
 * - the float32 ops Add, Sub, Multiply, RealDiv (broadcasting), Sum, Mean, Max, last-axis
 *   Softmax, Exp, Neg, Relu, Sigmoid, FusedBatchNorm: oneDNN binary / reduction / softmax /
 *   eltwise primitives on large tensors, strided row loops otherwise (the stock ones compute an
 *   n-d index per element); Step, Floor, Slice, SplitV, PadV2, Concat, Tile, GatherV2 and
 *   Transpose by row loops, contiguous-run copies and oneDNN reorders; the integer-factor
 *   nearest-neighbour upsample (ResizeNearestNeighbor) and its gradient by block copies and
 *   sums (a oneDNN reorder and ones-vector matmuls on large tensors).
 * Cases the fast kernels do not cover (NCHW, dilation > 1, non-float32, PReLU, unusual bias
 * shapes, non-broadcast batch dims) run the original tfjs kernels. Enabling also applies the
 * glibc malloc settings of lib/tfjs/malloc.ts to the process (`tuneMalloc: false` does not),
 * and makes the kernels write their outputs into the arrays of disposed tensors instead of
 * new zero-filled ones (lib/tfjs/output_pool.ts; `outputPoolMiB: 0` turns that off), and
 * builds and loads the toolkit's native GroupNorm, dropout-mask and KL kernels (lib/tfjs/native.ts;
 * `native: false` or env RDD_NATIVE=0 keeps their oneDNN / JS versions).
 *
 * Usage: `enableFastCpu()` once, before or after `tf.setBackend("cpu")`; needs `--allow-ffi`
 * and libdnnl.so.2 or libopenblas.so.0. Without them it changes nothing and says why. The
 * native kernels also need a C compiler and `--allow-run` for it on their first use on a
 * machine (see {@link FastCpuStatus.nativeReason} when they are off).
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { type Blas, loadBlas } from "./kernels/blas.ts";
import { makeConvKernels } from "./kernels/conv.ts";
import { type Dnnl, openDnnl } from "./kernels/dnnl.ts";
import { makeMatMulKernels } from "./kernels/matmul.ts";
import { ELEMENTWISE_KERNELS, makeElementwiseKernels } from "./kernels/elementwise.ts";
import { makeSliceKernels } from "./kernels/slice.ts";
import { makeUnaryKernels, UNARY_KERNELS } from "./kernels/unary.ts";
import { batchNormGradConfig, makeBatchNormKernels } from "./kernels/batch_norm.ts";
import { makeResizeKernels } from "./kernels/resize.ts";
import { tuneMalloc } from "./malloc.ts";
import { outputPool, PoolState, setOutputPool } from "./output_pool.ts";
import { type NativeKernels, openNative } from "./native.ts";

/** Kernel names the fast path replaces on the "cpu" backend. */
export const FAST_CPU_KERNELS: readonly string[] = [
  "Conv2D",
  "Conv2DBackpropInput",
  "Conv2DBackpropFilter",
  "FusedConv2D",
  "BatchMatMul",
  "_FusedMatMul",
  ...ELEMENTWISE_KERNELS,
  ...UNARY_KERNELS,
  "Slice",
  "SplitV",
  "PadV2",
  "Concat",
  "Tile",
  "GatherV2",
  "Transpose",
  "ResizeNearestNeighbor",
  "ResizeNearestNeighborGrad",
  "FusedBatchNorm",
];

/** Outcome of {@link enableFastCpu}. */
export interface FastCpuStatus {
  /** True when the fast kernels are registered. */
  readonly enabled: boolean;
  /** Kernel names now served by the fast path (empty when disabled). */
  readonly registered: readonly string[];
  /** Shared library in use. */
  readonly library?: string;
  /**
   * True when convolutions, softmax, SiLU and sigmoid run as oneDNN primitives (else as GEMMs
   * and JS loops).
   */
  readonly dnnlPrimitives?: boolean;
  /** BLAS worker threads. */
  readonly threads?: number;
  /** True when the glibc malloc settings were applied (lib/tfjs/malloc.ts). */
  readonly mallocTuned?: boolean;
  /** Cap of the output pool (lib/tfjs/output_pool.ts), MiB; 0 when it is off. */
  readonly outputPoolMiB?: number;
  /** The toolkit's native kernels in use (lib/tfjs/native.ts), or undefined. */
  readonly native?: string;
  /** Why the native kernels are off (no C compiler, not permitted, turned off). */
  readonly nativeReason?: string;
  /** Why the fast path is off (library missing, no --allow-ffi, ...). */
  readonly reason?: string;
}

/** Options of {@link enableFastCpu}. */
export interface FastCpuOptions {
  /** CBLAS library paths to try (default: common OpenBLAS locations; env RDD_BLAS_LIB first). */
  readonly libraryPaths?: readonly string[];
  /**
   * GEMM worker threads (default: env RDD_BLAS_THREADS, else 1). One thread is the default
   * because on a shared or busy machine multi-threaded GEMMs of these sizes lose far more in
   * barrier waits than they gain (measured: 1 thread 10-20x faster per attention-sized call
   * at load 6 on 2 cores); use 2 on an idle 2-core machine.
   */
  readonly threads?: number;
  /** Apply the glibc malloc settings of lib/tfjs/malloc.ts to this process (default true). */
  readonly tuneMalloc?: boolean;
  /**
   * MiB of disposed tensors' arrays kept for reuse as kernel outputs (lib/tfjs/output_pool.ts;
   * default: env RDD_OUTPUT_POOL_MIB, else {@link DEFAULT_OUTPUT_POOL_MIB}); 0 turns it off.
   */
  readonly outputPoolMiB?: number;
  /**
   * Build and use the native GroupNorm, dropout-mask and KL kernels (lib/tfjs/native.ts; default:
   * true unless env RDD_NATIVE is 0).
   */
  readonly native?: boolean;
}

/** Default cap of the output pool, MiB. */
export const DEFAULT_OUTPUT_POOL_MIB = 1024;

interface Active {
  blas: Blas;
  dnnl?: Dnnl;
  native?: NativeKernels;
  stock: Map<string, tf.KernelConfig>;
  /**
   * The stock FusedBatchNorm gradient, replaced while the fast path is on; undefined when no
   * gradients are registered (tfjs-core alone, without @tensorflow/tfjs), then left alone.
   */
  stockBatchNormGrad?: tf.GradConfig;
  status: FastCpuStatus;
}

let active: Active | undefined;
const fallbacks = new Map<string, number>();

/**
 * Registers the fast kernels on the tfjs "cpu" backend (idempotent) and returns what was
 * registered; on failure returns `{ enabled: false, reason }` and leaves tfjs untouched.
 */
export function enableFastCpu(options: FastCpuOptions = {}): FastCpuStatus {
  if (active) return active.status;
  if (
    options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1)
  ) {
    throw new RangeError(`options.threads: expected an integer >= 1, got ${options.threads}`);
  }
  const poolMiB = options.outputPoolMiB ?? envNumber("RDD_OUTPUT_POOL_MIB") ??
    DEFAULT_OUTPUT_POOL_MIB;
  if (!(poolMiB >= 0)) {
    const source = options.outputPoolMiB === undefined
      ? "env RDD_OUTPUT_POOL_MIB"
      : "options.outputPoolMiB";
    throw new RangeError(`${source}: expected a number >= 0, got ${poolMiB}`);
  }
  let blas: Blas;
  try {
    blas = loadBlas(options.libraryPaths);
  } catch (e) {
    return { enabled: false, registered: [], reason: e instanceof Error ? e.message : String(e) };
  }
  blas.setThreads(options.threads ?? defaultThreads());
  const dnnl = openPrimitives(blas.path);
  const stock = new Map<string, tf.KernelConfig>();
  for (const name of FAST_CPU_KERNELS) {
    const config = tf.getKernel(name, "cpu");
    if (!config) {
      blas.close();
      return { enabled: false, registered: [], reason: `tfjs cpu backend lacks kernel ${name}` };
    }
    stock.set(name, config);
  }
  const stockFuncs = Object.fromEntries(
    [...stock].map(([n, c]): [string, tf.KernelFunc] => [n, (args) => {
      fallbacks.set(n, (fallbacks.get(n) ?? 0) + 1);
      return c.kernelFunc(args);
    }]),
  );
  const funcs = {
    ...makeConvKernels(blas, stockFuncs, dnnl),
    ...makeMatMulKernels({ blas, dnnl }, stockFuncs),
    ...makeElementwiseKernels(stockFuncs, { dnnl, blas }),
    ...makeUnaryKernels(stockFuncs, dnnl),
    ...makeSliceKernels(stockFuncs, dnnl),
    ...makeBatchNormKernels(stockFuncs, dnnl),
    ...makeResizeKernels(stockFuncs, dnnl),
  };
  for (const name of FAST_CPU_KERNELS) {
    tf.unregisterKernel(name, "cpu");
    tf.registerKernel({ ...stock.get(name)!, kernelFunc: funcs[name] });
  }
  const stockBatchNormGrad = tf.getGradient("FusedBatchNorm");
  if (stockBatchNormGrad) tf.registerGradient(batchNormGradConfig(stockBatchNormGrad));
  const base: FastCpuStatus = {
    enabled: true,
    registered: [...FAST_CPU_KERNELS],
    library: blas.path,
    dnnlPrimitives: dnnl !== undefined,
    threads: blas.threads(),
    mallocTuned: (options.tuneMalloc ?? true) && tuneMalloc(),
    outputPoolMiB: poolMiB,
  };
  const native = (options.native ?? readEnv("RDD_NATIVE") !== "0")
    ? openNative()
    : { reason: "turned off (native: false or RDD_NATIVE=0)" };
  const kernels = "kernels" in native ? native.kernels : undefined;
  const status: FastCpuStatus = {
    ...base,
    ...(kernels
      ? { native: kernels.path }
      : { nativeReason: (native as { reason: string }).reason }),
  };
  setOutputPool(new PoolState(poolMiB * 2 ** 20));
  active = { blas, dnnl, native: kernels, stock, stockBatchNormGrad, status };
  return status;
}

/** Restores the stock tfjs cpu kernels and unloads the BLAS library (no-op when disabled). */
export function disableFastCpu(): void {
  if (!active) return;
  for (const [name, config] of active.stock) {
    tf.unregisterKernel(name, "cpu");
    tf.registerKernel(config);
  }
  if (active.stockBatchNormGrad) tf.registerGradient(active.stockBatchNormGrad);
  outputPool()?.close();
  setOutputPool(undefined);
  active.dnnl?.close();
  active.native?.close();
  active.blas.close();
  active = undefined;
}

/**
 * oneDNN's primitives (convolutions, softmax, SiLU, sigmoid) when the GEMM library is oneDNN
 * 2.x, else undefined (convs then run as GEMMs, the rest as JS loops). Env RDD_DNNL=0 turns
 * them off (to compare the two paths).
 */
function openPrimitives(path: string): Dnnl | undefined {
  if (!path.includes("dnnl") || readEnv("RDD_DNNL") === "0") return undefined;
  try {
    return openDnnl(path);
  } catch {
    return undefined;
  }
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** The number in env `name`, or undefined when unset or empty. */
function envNumber(name: string): number | undefined {
  const env = readEnv(name);
  return env ? Number(env) : undefined;
}

function defaultThreads(): number {
  const env = readEnv("RDD_BLAS_THREADS");
  const n = Number(env);
  return env && Number.isInteger(n) && n >= 1 ? n : 1;
}

/**
 * Sets the GEMM worker threads of the enabled fast path (returns false when it is disabled).
 * Throws RangeError for `n` not an integer >= 1.
 */
export function setFastCpuThreads(n: number): boolean {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`n: expected an integer >= 1, got ${n}`);
  }
  if (!active) return false;
  active.blas.setThreads(n);
  active.status = { ...active.status, threads: active.blas.threads() };
  return true;
}

/**
 * The oneDNN primitives of the enabled fast path (for fused ops such as GroupNorm+SiLU that
 * need a vectorised SiLU), or undefined when the fast path or oneDNN is off.
 */
export function fastCpuDnnl(): Dnnl | undefined {
  return active?.dnnl;
}

/**
 * The native GroupNorm, dropout-mask and KL kernels of the enabled fast path (lib/tfjs/native.ts),
 * or undefined when the fast path is off or they could not be built.
 */
export function fastCpuNative(): NativeKernels | undefined {
  return active?.native;
}

/**
 * The GEMM library of the enabled fast path (for fused ops that reduce through a GEMM), or
 * undefined when the fast path is off.
 */
export function fastCpuBlas(): Blas | undefined {
  return active?.blas;
}

/** Current state of the fast path. */
export function fastCpuStatus(): FastCpuStatus {
  return active?.status ?? { enabled: false, registered: [], reason: "enableFastCpu() not called" };
}

/**
 * How many calls each fast kernel handed to the stock tfjs kernel (unsupported case) since the
 * process started; kernels never falling back are absent.
 */
export function fastCpuFallbacks(): Record<string, number> {
  return Object.fromEntries(fallbacks);
}
