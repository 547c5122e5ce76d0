import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  AdamOptimizer,
  adamStepLoop,
  adamStepOps,
  clipByGlobalNorm,
  learningRateAt,
} from "../lib/train/optim.ts";
import { Ema } from "../lib/train/ema.ts";

await tf.setBackend("cpu");

Deno.test("learningRateAt: linear warmup then cosine to minLr", () => {
  const c = { kind: "adam" as const, lr: 1e-3, warmupSteps: 10, totalSteps: 110, minLr: 1e-5 };
  assertAlmostEquals(learningRateAt(c, 0), 1e-4, 1e-15);
  assertAlmostEquals(learningRateAt(c, 9), 1e-3, 1e-15);
  assertAlmostEquals(learningRateAt(c, 10), 1e-3, 1e-15);
  const mid = 1e-5 + (1e-3 - 1e-5) * (1 + Math.cos(Math.PI * 0.5)) / 2;
  assertAlmostEquals(learningRateAt(c, 60), mid, 1e-15);
  assertAlmostEquals(learningRateAt(c, 110), 1e-5, 1e-15);
  assertAlmostEquals(learningRateAt({ ...c, cosineDecay: false }, 80), 1e-3, 1e-15);
});

Deno.test("clipByGlobalNorm scales to the max norm only when above it", () => {
  const a = tf.tensor([3, 0]), b = tf.tensor([[0, 4]]);
  const { grads, norm } = clipByGlobalNorm([a, b], 1);
  assertAlmostEquals(norm, 5, 1e-6);
  assertEquals(Array.from(grads[0].dataSync()).map((x) => +x.toFixed(6)), [0.6, 0]);
  assertEquals(Array.from(grads[1].dataSync()).map((x) => +x.toFixed(6)), [0, 0.8]);
  const same = clipByGlobalNorm([a, b], 10);
  assertAlmostEquals(same.grads[1].dataSync()[1], 4, 1e-6);
  assertThrows(() => clipByGlobalNorm([a], 0), RangeError, "maxNorm");
});

Deno.test("Adam and AdamW: two steps equal hand-computed values", () => {
  for (const kind of ["adam", "adamw"] as const) {
    const w = tf.variable(tf.tensor([1, -2]));
    const wd = 0.1, lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    const opt = new AdamOptimizer([w], {
      kind,
      lr,
      weightDecay: wd,
      totalSteps: 10,
      cosineDecay: false,
    });
    let ref = [1, -2], m = [0, 0], v = [0, 0];
    const gs = [[0.5, -1], [0.25, 2]];
    gs.forEach((g, k) => {
      const gt = tf.tensor(g);
      opt.apply([gt]);
      gt.dispose();
      ref = ref.map((x, i) => {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        const mh = m[i] / (1 - b1 ** (k + 1)), vh = v[i] / (1 - b2 ** (k + 1));
        const decayed = kind === "adamw" ? x - lr * wd * x : x;
        return decayed - lr * mh / (Math.sqrt(vh) + eps);
      });
      m = [...m];
      v = [...v];
    });
    const got = w.dataSync();
    assertAlmostEquals(got[0], ref[0], 1e-6);
    assertAlmostEquals(got[1], ref[1], 1e-6);
    assertEquals(opt.step, 2);
    opt.dispose();
    w.dispose();
  }
});

Deno.test("Adam state export/import continues bit-exactly", async () => {
  const mk = () => tf.variable(tf.tensor([0.3, -0.7, 1.1]));
  const cfg = { kind: "adam" as const, lr: 0.05, totalSteps: 10 };
  const g = tf.tensor([0.2, -0.4, 0.9]);
  const w1 = mk(), o1 = new AdamOptimizer([w1], cfg);
  o1.apply([g]);
  const st = await o1.exportState();
  const w2 = tf.variable(w1.clone()), o2 = new AdamOptimizer([w2], cfg);
  o2.importState(st);
  o1.apply([g]);
  o2.apply([g]);
  assertEquals(Array.from(w1.dataSync()), Array.from(w2.dataSync()));
  assertThrows(() => o2.importState({ step: 1, m: [], v: [] }), RangeError, "mismatched");
  [o1, o2].forEach((o) => o.dispose());
});

Deno.test("optimizer config errors name the field", () => {
  const w = tf.variable(tf.zeros([1]));
  assertThrows(
    () => new AdamOptimizer([w], { kind: "adam", lr: -1, totalSteps: 1 }),
    RangeError,
    "lr",
  );
  assertThrows(
    () => new AdamOptimizer([w], { kind: "adam", lr: 1, totalSteps: 1, beta1: 1 }),
    RangeError,
    "beta1",
  );
  assertThrows(
    // deno-lint-ignore no-explicit-any
    () => new AdamOptimizer([w], { kind: "sgd" as any, lr: 1, totalSteps: 1 }),
    RangeError,
    "kind",
  );
});

Deno.test("Ema follows the closed form decay^k w0 + (1 - decay^k) w", async () => {
  const w = tf.variable(tf.tensor([2, 4]));
  const ema = new Ema([w], 0.9);
  w.assign(tf.tensor([0, 1]));
  for (let k = 0; k < 3; k++) ema.update();
  const [s] = await ema.exportState();
  const d = 0.9 ** 3;
  assertAlmostEquals(s[0], d * 2 + (1 - d) * 0, 1e-6);
  assertAlmostEquals(s[1], d * 4 + (1 - d) * 1, 1e-6);
  const inside = await ema.withEmaWeights(() => Array.from(w.dataSync()));
  assertAlmostEquals(inside[1], s[1], 0);
  assertEquals(Array.from(w.dataSync()), [0, 1]);
  assertThrows(() => new Ema([w], 1), RangeError, "decay");
  ema.dispose();
});

Deno.test("Adam: the CPU loop update equals the tfjs-ops update", () => {
  // step 2 of an unclipped plain Adam (tests/train_adam_cpu_test.ts covers clipping and decay)
  const h = { lr: 0.003, scale: 1, b1: 0.8, b2: 0.95, eps: 1e-6, bc1: 0.36, bc2: 0.0975, decay: 0 };
  const mk = (seed: number) => tf.variable(tf.randomNormal([5, 3], 0, 1, "float32", seed));
  const [w1, m1, v1] = [mk(1), mk(2), tf.variable(tf.abs(mk(3)))];
  const [w2, m2, v2] = [tf.variable(w1.clone()), tf.variable(m1.clone()), tf.variable(v1.clone())];
  const g = tf.randomNormal([5, 3], 0, 1, "float32", 4);
  adamStepLoop(w1, g, m1, v1, h);
  adamStepOps(w2, g, m2, v2, h);
  for (const [a, b] of [[w1, w2], [m1, m2], [v1, v2]]) {
    const x = a.dataSync(), y = b.dataSync();
    x.forEach((xi, i) => assertAlmostEquals(xi, y[i], 1e-6 * (1 + Math.abs(y[i]))));
  }
});
