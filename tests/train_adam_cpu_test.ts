import * as tf from "@tensorflow/tfjs";
import { assert, assertLess, assertThrows } from "@std/assert";
import { Rng } from "../lib/core/rng.ts";
import { enableFastCpu, fastCpuDnnl } from "../lib/tfjs/fast_cpu.ts";
import { type AdamArrays, adamArrays } from "../lib/train/adam_cpu.ts";
import { type AdamHyper, adamStepOps } from "../lib/train/optim.ts";

await tf.setBackend("cpu");

function inputs(n: number, seed: number): AdamArrays {
  const rng = new Rng(seed);
  const f = (k: number) => Float32Array.from(rng.normals(n), (x) => k * x);
  return {
    w: f(1),
    g: f(0.1),
    m: f(0.01),
    v: Float32Array.from(f(0.01), Math.abs),
    nw: new Float32Array(n),
    nm: new Float32Array(n),
    nv: new Float32Array(n),
  };
}

/** The update of `a`'s inputs by tfjs' elementwise ops (adamStepOps): [nw, nm, nv]. */
function byOps(a: AdamArrays, h: AdamHyper): Float32Array[] {
  const [w, m, v] = [a.w, a.m, a.v].map((x) => tf.variable(tf.tensor(x)));
  const g = tf.tensor(a.g);
  adamStepOps(w, g, m, v, h);
  const out = [w, m, v].map((x) => x.dataSync() as Float32Array);
  tf.dispose([w, m, v, g]);
  return out;
}

/** max |a - b| / max |b|. */
function relErr(a: Float32Array, b: Float32Array): number {
  let e = 0, s = 1e-30;
  for (let i = 0; i < a.length; i++) {
    e = Math.max(e, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return e / s;
}

const base: AdamHyper = {
  lr: 0.01,
  scale: 0.5,
  b1: 0.9,
  b2: 0.99,
  eps: 1e-8,
  bc1: 0.19,
  bc2: 0.0199,
  decay: 1e-3,
};

Deno.test("Adam arrays: the JS loop and the oneDNN passes equal the tfjs-ops update", () => {
  assert(enableFastCpu().enabled);
  const dnnl = fastCpuDnnl();
  assert(dnnl, "oneDNN is expected on the fast CPU path here");
  // oneDNN passes (>= 16,384 floats) and the JS loop below that
  for (const n of [151_072, 16_384, 5_000]) {
    const extremes = [{ ...base, b1: 1e-9 }, { ...base, decay: 1 }, { ...base, decay: 1.5 }];
    const variants = [base, { ...base, b1: 0 }, { ...base, b2: 0, bc2: 1 }, { ...base, decay: 0 }];
    for (const h of [...variants, ...extremes]) {
      const js = inputs(n, n), fast = inputs(n, n);
      adamArrays(js, h);
      adamArrays(fast, h, dnnl);
      const ref = byOps(js, h);
      for (const [i, a] of [[0, "w"], [1, "m"], [2, "v"]] as const) {
        const what = `n ${n}, b1 ${h.b1}, b2 ${h.b2}, decay ${h.decay}: ${a}`;
        const key = (["nw", "nm", "nv"] as const)[i];
        assertLess(relErr(js[key], ref[i]), 1e-6, `JS ${what}`);
        assertLess(relErr(fast[key], ref[i]), 1e-6, `oneDNN ${what}`);
      }
      // the update term itself, not only w (|w| ~ 1 hides it): nw - keep·w
      const step = (a: AdamArrays) => a.nw.map((x, j) => x - (1 - h.decay) * a.w[j]);
      assertLess(relErr(step(fast), step(js)), 1e-5, `oneDNN step, n ${n}, b1 ${h.b1}`);
    }
  }
});

Deno.test("Adam arrays: arrays of unequal length are a RangeError naming the array", () => {
  const a = { ...inputs(10, 1), nv: new Float32Array(9) };
  assertThrows(() => adamArrays(a, base), RangeError, "nv: expected length 10, got 9");
});
