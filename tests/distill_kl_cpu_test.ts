import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertLess } from "@std/assert";
import { fusedKlDivSum, klLogitGrad } from "../lib/distill/kl_cpu.ts";
import { klDivSum } from "../lib/distill/rcfd.ts";
import { disableFastCpu, enableFastCpu, fastCpuNative } from "../lib/tfjs/fast_cpu.ts";

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

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) {
  let max = 0;
  for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(want[i]));
  assertEquals(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    assertLess(Math.abs(got[i] - want[i]), tol * max + 1e-7, `${what} [${i}]`);
  }
}

const fast = enableFastCpu();
const hasNative = fast.native !== undefined;
disableFastCpu();

/** The fast path's engines for the KL: native kernels, and oneDNN alone. */
const ENGINES = [
  { name: "native", options: {}, ignore: !hasNative },
  { name: "oneDNN", options: { native: false }, ignore: !fast.dnnlPrimitives },
];

/** Shapes (and logit scales) every engine is checked on: K of 1, 17, 1000 and 4096. */
const CASES = [
  [[70, 1000], 1],
  [[2, 40, 1000], 20],
  [[512, 17], 3],
  [[9, 4096], 5],
  [[300, 1], 1],
] as const;

for (const { name, options, ignore } of ENGINES) {
  Deno.test({
    name:
      `fusedKlDivSum (${name}) equals the composed KL in value and q-gradient; p's gradient is zero`,
    ignore,
    fn() {
      for (const [shape, scale] of CASES) {
        const size = (shape as readonly number[]).reduce((a, b) => a * b, 1);
        if (name === "oneDNN" && size < 16384) continue;
        const p = tf.mul(tf.randomNormal([...shape], 0, 1, "float32", 1), scale);
        const q = tf.mul(tf.randomNormal([...shape], 0, 1, "float32", 2), scale);
        const [wantValue, wantGrad] = reference(p, q);
        enableFastCpu(options);
        const direct = fusedKlDivSum(p, q);
        assert(direct !== undefined, `the fused op applies to ${shape}`);
        direct.dispose();
        const { value, grads } = tf.valueAndGrads((pp: tf.Tensor, qq: tf.Tensor) =>
          klDivSum(pp, qq)
        )([p, q]);
        assertClose([value.dataSync()[0]], [wantValue], 1e-4, `value ${shape}`);
        assertClose(grads[1].dataSync(), wantGrad, 1e-4, `grad ${shape}`);
        assertEquals(grads[0].dataSync().some((v) => v !== 0), false, "gradient in p");
        disableFastCpu();
        tf.dispose([p, q, value, ...grads]);
      }
    },
  });

  Deno.test({
    name: `fusedKlDivSum (${name}): KL(P || P) and KL of shifted logits are 0`,
    ignore,
    fn() {
      enableFastCpu(options);
      const p = tf.mul(tf.randomNormal([100, 1000], 0, 1, "float32", 3), 4);
      const shifted = tf.add(p, 30);
      for (const q of [p, shifted]) {
        const kl = fusedKlDivSum(p, q);
        assert(kl !== undefined);
        assertLess(Math.abs(kl.dataSync()[0]), 2e-3, "100 rows of KL 0");
        kl.dispose();
      }
      disableFastCpu();
      tf.dispose([p, shifted]);
    },
  });

  Deno.test({
    name: `klLogitGrad (${name}) equals scale (softmax(q) - softmax(p)) of the stock kernels`,
    ignore,
    fn() {
      for (const shape of [[64, 300], [2048, 16]]) {
        const p = tf.randomNormal(shape, 0, 3, "float32", 4);
        const q = tf.randomNormal(shape, 0, 3, "float32", 5);
        const scale = tf.scalar(-0.7);
        const want = tf.mul(tf.sub(tf.softmax(q), tf.softmax(p)), scale);
        enableFastCpu(options);
        const got = klLogitGrad(p, q, scale);
        assertEquals(got.shape, shape);
        assertClose(got.dataSync(), want.dataSync(), 1e-5, `${shape}`);
        disableFastCpu();
        tf.dispose([p, q, scale, want, got]);
      }
    },
  });
}

Deno.test({
  name: "fusedKlDivSum: composed ops with the fast path off, and for small inputs without native",
  ignore: !fast.dnnlPrimitives,
  fn() {
    const p = tf.randomNormal([10, 100]), q = tf.randomNormal([10, 100]);
    assertEquals(fusedKlDivSum(p, q), undefined, "fast path off");
    enableFastCpu({ native: false });
    assertEquals(fusedKlDivSum(p, q), undefined, "1,000 logits, oneDNN only");
    disableFastCpu();
    if (hasNative) {
      enableFastCpu();
      assert(fastCpuNative());
      const kl = fusedKlDivSum(p, q);
      assert(kl !== undefined, "native: any size");
      kl.dispose();
      disableFastCpu();
    }
    tf.dispose([p, q]);
  },
});

Deno.test({
  name: "fusedKlDivSum: a gradient through the target side (upstream of p) is zero",
  ignore: !hasNative,
  fn() {
    enableFastCpu();
    const x = tf.randomNormal([4, 50], 0, 1, "float32", 6);
    const q = tf.randomNormal([4, 50], 0, 1, "float32", 7);
    const g = tf.grad((xx: tf.Tensor) => klDivSum(tf.mul(xx, 2), q))(x);
    assertEquals(g.shape, [4, 50]);
    assertEquals(g.dataSync().some((v) => v !== 0), false);
    disableFastCpu();
    tf.dispose([x, q, g]);
  },
});
