/**
 * Float32 unary kernels for the tfjs CPU backend: Exp, Neg, Relu, Sigmoid as oneDNN eltwise
 * primitives on large tensors (vectorised), JS loops on small ones and without oneDNN; Step
 * with alpha 0 (the ReLU derivative) as oneDNN's ReLU backward on large tensors; other Steps
 * and Floor as JS loops. The stock kernels cost ~45 ns per element (an
 * `Exp` of the RDD contrast logits [512, 4096] took 90 ms).
 */
import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import { cpuBackend, f32Values, type KernelArgs } from "./cpu_access.ts";
import type { Dnnl, DnnlEltwise } from "./dnnl.ts";
import { DNNL_MIN_ELEMENTS, ones } from "./elementwise.ts";
import { type Alloc, outputAlloc } from "../output_pool.ts";

/** Logistic sigmoid 1 / (1 + exp(-x)), elementwise (float32 out). */
export function sigmoid(x: Float32Array): Float32Array {
  return Float32Array.from(x, (v) => 1 / (1 + Math.exp(-v)));
}

/** tfjs' Step: 1 where x > 0, `alpha` where x <= 0, NaN where x is NaN. */
export function step(x: Float32Array, alpha: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    y[i] = v > 0 ? 1 : v !== v ? v : alpha;
  }
  return y;
}

/** The JS loop of each oneDNN-backed function. */
const JS: Record<Exclude<DnnlEltwise, "silu">, (x: Float32Array) => Float32Array> = {
  exp: (x) => Float32Array.from(x, Math.exp),
  neg: (x) => Float32Array.from(x, (v) => -v),
  relu: (x) => Float32Array.from(x, (v) => (v < 0 ? 0 : v)),
  sigmoid,
};

const NATIVE = { Exp: "exp", Neg: "neg", Relu: "relu", Sigmoid: "sigmoid" } as const;

/** Kernel names served by {@link makeUnaryKernels}. */
export const UNARY_KERNELS: readonly string[] = [...Object.keys(NATIVE), "Step", "Floor"];

/** The unary kernel functions, falling back to `stock[name]` for non-float32 inputs. */
export function makeUnaryKernels(
  stock: Record<string, KernelFunc>,
  dnnl: Dnnl | undefined,
): Record<string, KernelFunc> {
  /** A kernel computing `f(x, args, alloc)`; `alloc` makes arrays `f` fills completely. */
  const unary = (
    name: string,
    f: (x: Float32Array, args: KernelArgs, alloc: Alloc) => Float32Array,
  ) =>
  (
    args: KernelArgs,
  ) => {
    const be = cpuBackend(args);
    const { x } = args.inputs as { x: TensorInfo };
    const xv = f32Values(be, x);
    if (!xv) return stock[name](args);
    return be.makeTensorInfo(x.shape, "float32", f(xv, args, outputAlloc(be)));
  };
  const kernels: Record<string, KernelFunc> = {};
  for (const [name, f] of Object.entries(NATIVE)) {
    kernels[name] = unary(name, (x, _, alloc) => {
      if (!dnnl || x.length < DNNL_MIN_ELEMENTS) return JS[f](x);
      const y = alloc(x.length);
      dnnl.eltwise(f, x, y);
      return y;
    });
  }
  kernels.Step = unary("Step", (x, args, alloc) => {
    const alpha = (args.attrs as { alpha: number }).alpha;
    if (dnnl && alpha === 0 && x.length >= DNNL_MIN_ELEMENTS) {
      // ReLU's derivative, 1 where x > 0 else 0, as oneDNN's ReLU backward of ones; it maps
      // NaN to 0, so a sum of x (NaN when any x is, or both infinities are) sends such
      // inputs to the exact loop. A branchy JS loop costs ~7 ns a value on random signs.
      const y = alloc(x.length), sum = new Float32Array(1);
      dnnl.eltwiseBackward("relu", x, ones(x.length).subarray(0, x.length), y);
      dnnl.reduce("sum", x, [x.length], sum, [1]);
      if (sum[0] === sum[0]) return y;
    }
    return step(x, alpha);
  });
  kernels.Floor = unary("Floor", (x) => {
    const y = new Float32Array(x.length);
    for (let i = 0; i < y.length; i++) y[i] = Math.floor(x[i]);
    return y;
  });
  return kernels;
}
