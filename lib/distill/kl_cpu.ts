/**
 * The summed KL divergence of {@link klDivSum} as one op on the fast CPU path, for the large
 * logit matrices of the relational terms (M_P2P: B·h·w pixels x 4096 contrast rows; IS_P2P:
 * B·hw·B rows of hw). Composed of tfjs ops, the KL makes ~9 passes over the logits forward
 * (two log-softmaxes, exp, subtract, multiply) and ~7 backward, each with a fresh output
 * array. Here, with the native kernels (lib/tfjs/native.ts), each row's two log-sum-exps and
 * its KL are a few vectorised passes over data in cache, a thread per row, forward, and
 * dq = dy (softmax(q) - softmax(p)) one more backward, where nothing is stored between
 * the two but the inputs; without them (no C compiler) it is oneDNN's log-softmaxes, an exp,
 * a subtraction and a dot product, for at least `DNNL_MIN_ELEMENTS` logits.
 *
 * The op is a registered tfjs kernel ("RddKlDivSum", cpu backend) with a registered
 * gradient, so the target side's gradient (zero, as with the composed version's
 * stop-gradient) is only made when something upstream of the target is differentiated.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { fastCpuBlas, fastCpuDnnl, fastCpuNative } from "../tfjs/fast_cpu.ts";
import { DNNL_MIN_ELEMENTS } from "../tfjs/kernels/elementwise.ts";
import { type CpuBackendLike, f32Values, Scratch } from "../tfjs/kernels/cpu_access.ts";
import { opOutput, opValues } from "../tfjs/op_arrays.ts";

const KERNEL = "RddKlDivSum";

/** Which engine runs the KL of `n` float32 logits now, if any. */
function engine(n: number): "native" | "dnnl" | undefined {
  if (tf.getBackend() !== "cpu") return undefined;
  if (fastCpuNative()) return "native";
  return fastCpuDnnl() && fastCpuBlas() && n >= DNNL_MIN_ELEMENTS ? "dnnl" : undefined;
}

/** Buffers of the oneDNN version: log P, log Q (then log P - log Q), P. */
const scratch = { lp: new Scratch(), lq: new Scratch(), target: new Scratch() };

/** Σ_r KL(softmax(p_r) || softmax(q_r)) over the rows of k logits. */
function klSum(p: Float32Array, q: Float32Array, k: number): number {
  const native = fastCpuNative();
  if (native) {
    const rows = new Float64Array(p.length / k);
    native.klRows(p, q, k, rows);
    return rows.reduce((a, v) => a + v, 0);
  }
  const dnnl = fastCpuDnnl()!, blas = fastCpuBlas()!, n = p.length;
  const lp = scratch.lp.get(n), lq = scratch.lq.get(n), target = scratch.target.get(n);
  dnnl.softmax(p, lp, k, true);
  dnnl.softmax(q, lq, k, true);
  dnnl.eltwise("exp", lp, target);
  dnnl.binary("sub", lp, lq, [n], lp, [n]);
  const sum = new Float32Array(1);
  blas.sgemm(false, false, 1, 1, n, 1, target, n, lp, 1, 0, sum, 1);
  return sum[0];
}

tf.registerKernel({
  kernelName: KERNEL,
  backendName: "cpu",
  kernelFunc: ({ inputs, backend }) => {
    const cpu = backend as unknown as CpuBackendLike;
    const { p, q } = inputs as Record<"p" | "q", tf.TensorInfo>;
    const value = klSum(f32Values(cpu, p)!, f32Values(cpu, q)!, p.shape[p.shape.length - 1]);
    return cpu.makeTensorInfo([], "float32", Float32Array.of(value));
  },
});

tf.registerGradient({
  kernelName: KERNEL,
  inputsToSave: ["p", "q"],
  gradFunc: (dy, saved) => {
    const [p, q] = saved;
    return { p: () => tf.zerosLike(p), q: () => klLogitGrad(p, q, dy as tf.Scalar) };
  },
});

/**
 * Σ softmax(p) (log softmax(p) - log softmax(q)) over every row of the last axis, as one op
 * with a zero gradient in `p`, when the tfjs backend is "cpu" with the fast path's native
 * kernels (or, without them, its oneDNN and at least `DNNL_MIN_ELEMENTS` (16,384) logits) and
 * both are float32; undefined otherwise (the caller composes).
 * @param p target logits `[..., K]` (their gradient is zero).
 * @param q model logits, same shape.
 */
export function fusedKlDivSum(p: tf.Tensor, q: tf.Tensor): tf.Scalar | undefined {
  if (p.dtype !== "float32" || q.dtype !== "float32" || !engine(p.size)) return undefined;
  return tf.engine().runKernel(KERNEL, { p, q }) as tf.Scalar;
}

/**
 * The gradient in the logits q of `scale` Σ_rows KL(softmax(p) || softmax(q)):
 * scale (softmax(q) - softmax(p)) along the last axis, as one native pass on the fast CPU
 * path (two oneDNN softmaxes and two binary passes without the native kernels), composed
 * tfjs ops elsewhere.
 * @param p target logits `[..., K]`.
 * @param q model logits, same shape.
 * @param scale scalar factor (e.g. the upstream gradient over a temperature).
 * @returns `[..., K]`, q's shape.
 */
export function klLogitGrad(p: tf.Tensor, q: tf.Tensor, scale: tf.Scalar): tf.Tensor {
  const how = p.dtype === "float32" && q.dtype === "float32" ? engine(p.size) : undefined;
  if (!how) return tf.tidy(() => tf.mul(tf.sub(tf.softmax(q), tf.softmax(p)), scale));
  const k = p.shape[p.shape.length - 1], n = p.size, s = opValues(scale)[0];
  const pv = opValues(p), qv = opValues(q), dq = opOutput(n);
  if (how === "native") {
    fastCpuNative()!.klRowsGrad(pv, qv, k, s, dq);
  } else {
    const dnnl = fastCpuDnnl()!, sp = scratch.target.get(n);
    dnnl.softmax(qv, dq, k, false);
    dnnl.softmax(pv, sp, k, false);
    dnnl.binary("sub", dq, sp, [n], dq, [n]);
    dnnl.binary("mul", dq, Float32Array.of(s), [1], dq, [n]);
  }
  return tf.tensor(dq, q.shape, "float32");
}
