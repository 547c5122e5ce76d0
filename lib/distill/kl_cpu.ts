/**
 * The summed KL divergence of {@link klDivSum} as one fused op on the fast CPU path, for the
 * large logit matrices of the relational terms (M_P2P: B·h·w pixels x 4096 contrast rows).
 * Composed of tfjs ops, the KL makes ~9 passes over the logits forward (two log-softmaxes,
 * exp, subtract, multiply) and ~7 backward, each with a fresh output array; here it is two
 * oneDNN log-softmaxes, an exp, a subtraction and one dot product forward, and
 * dq = dy (softmax(q) - P) backward (exp, subtract, scale). The target side's gradient is
 * zero, as with the composed version's stop-gradient.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { fastCpuBlas, fastCpuDnnl } from "../tfjs/fast_cpu.ts";
import { DNNL_MIN_ELEMENTS } from "../tfjs/kernels/elementwise.ts";
import { opOutput, opValues } from "../tfjs/op_arrays.ts";

/**
 * Σ softmax(p) (log softmax(p) - log softmax(q)) over every row of the last axis, as one op
 * with a zero gradient in `p`, when the tfjs backend is "cpu" with the fast path's oneDNN, both
 * are float32 and there are at least `DNNL_MIN_ELEMENTS` (16,384) logits, the fast kernels'
 * size for oneDNN; undefined otherwise (the caller composes).
 * @param p target logits `[..., K]` (their gradient is zero).
 * @param q model logits, same shape.
 */
export function fusedKlDivSum(p: tf.Tensor, q: tf.Tensor): tf.Scalar | undefined {
  const dnnl = fastCpuDnnl(), blas = fastCpuBlas();
  if (
    !dnnl || !blas || tf.getBackend() !== "cpu" || p.size < DNNL_MIN_ELEMENTS ||
    p.dtype !== "float32" || q.dtype !== "float32"
  ) return undefined;
  const k = p.shape[p.shape.length - 1], n = p.size;
  const values = (t: unknown) => opValues(t as tf.Tensor);
  const op = tf.customGrad((pt, qt) => {
    const lp = new Float32Array(n), lq = new Float32Array(n), target = new Float32Array(n);
    dnnl.softmax(values(pt), lp, k, true);
    dnnl.softmax(values(qt), lq, k, true);
    dnnl.eltwise("exp", lp, target);
    dnnl.binary("sub", lp, lq, [n], lp, [n]);
    const sum = new Float32Array(1);
    blas.sgemm(false, false, 1, 1, n, 1, target, n, lp, 1, 0, sum, 1);
    return {
      value: tf.scalar(sum[0]),
      gradFunc: (dy: tf.Tensor) => {
        const dq = opOutput(n);
        dnnl.eltwise("exp", lq, dq);
        dnnl.binary("sub", dq, target, [n], dq, [n]);
        dnnl.binary("mul", dq, values(dy), [1], dq, [n]);
        return [tf.zerosLike(p), tf.tensor(dq, q.shape, "float32")];
      },
    };
  });
  return op(p, q) as tf.Scalar;
}
