import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertLess } from "@std/assert";
import { fusedKlDivSum } from "../lib/distill/kl_cpu.ts";
import { klDivSum } from "../lib/distill/rcfd.ts";
import { disableFastCpu, enableFastCpu, fastCpuDnnl } from "../lib/tfjs/fast_cpu.ts";

await tf.setBackend("cpu");

/** The composed KL on the stock kernels: value and gradient in q. */
function reference(p: tf.Tensor, q: tf.Tensor): [number, Float32Array] {
  disableFastCpu();
  const f = (qq: tf.Tensor) => {
    const logP = tf.logSoftmax(p), logQ = tf.logSoftmax(qq);
    return tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ))) as tf.Scalar;
  };
  const { value, grad } = tf.valueAndGrad(f)(q);
  const out: [number, Float32Array] = [value.dataSync()[0], grad.dataSync() as Float32Array];
  tf.dispose([value, grad]);
  return out;
}

const fast = enableFastCpu();
disableFastCpu();

Deno.test({
  name: "fusedKlDivSum equals the composed KL in value and q-gradient; no gradient reaches p",
  ignore: !fast.dnnlPrimitives,
  fn() {
    for (const [shape, scale] of [[[70, 1000], 1], [[2, 40, 1000], 20]] as const) {
      const p = tf.mul(tf.randomNormal([...shape], 0, 1, "float32", 1), scale);
      const q = tf.mul(tf.randomNormal([...shape], 0, 1, "float32", 2), scale);
      const [wantValue, wantGrad] = reference(p, q);
      enableFastCpu();
      assert(fastCpuDnnl());
      const direct = fusedKlDivSum(p, q);
      assert(direct !== undefined, "the fused op applies");
      direct.dispose();
      const { value, grads } = tf.valueAndGrads((pp: tf.Tensor, qq: tf.Tensor) => klDivSum(pp, qq))(
        [
          p,
          q,
        ],
      );
      const got = value.dataSync()[0];
      assertLess(Math.abs(got - wantValue), 1e-4 * Math.abs(wantValue), `value ${shape}`);
      const g = grads[1].dataSync(), gmax = wantGrad.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      g.forEach((v, i) => assertLess(Math.abs(v - wantGrad[i]), 1e-4 * gmax, `grad ${shape} ${i}`));
      assertEquals(grads[0].dataSync().some((v) => v !== 0), false, "gradient in p");
      disableFastCpu();
      tf.dispose([p, q, value, ...grads]);
    }
  },
});

Deno.test({
  name:
    "fusedKlDivSum leaves small inputs, and everything with the fast path off, to the composed ops",
  ignore: !fast.dnnlPrimitives,
  fn() {
    const p = tf.randomNormal([10, 100]), q = tf.randomNormal([10, 100]);
    assertEquals(fusedKlDivSum(p, q), undefined, "fast path off");
    enableFastCpu();
    assertEquals(fusedKlDivSum(p, q), undefined, "1,000 logits");
    const big = tf.randomNormal([100, 1000]);
    const kl = fusedKlDivSum(big, big);
    assert(kl !== undefined && Math.abs(kl.dataSync()[0]) < 1e-3, "KL(P || P) = 0");
    disableFastCpu();
    tf.dispose([p, q, big, kl!]);
  },
});
