import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertEquals, assertLess, assertThrows } from "@std/assert";
import { Rng } from "../lib/core/rng.ts";
import {
  pdLoss,
  pdRatio,
  pdTarget,
  type PdTeacher,
  samplePdTimesteps,
} from "../lib/distill/pd_target.ts";
import { maxAbsDiff, randn, useCpu } from "./distill_helpers.ts";

await useCpu();

/** The reference cosine table (s = 0.008) with n = T * timeScale + 1 betas, float64. */
function cosineTable(n: number): Float64Array {
  const f = (i: number) => Math.cos(((i / n + 0.008) / 1.008) * Math.PI / 2) ** 2;
  const abar = new Float64Array(n);
  let prod = 1;
  for (let i = 1; i <= n; i++) {
    prod *= 1 - Math.min(1 - f(i) / f(i - 1), 0.999);
    abar[i - 1] = prod;
  }
  return abar;
}

// Data x0 ~ N(MU, SIG^2) per element: the exact E[x0 | z_t] is affine in z_t.
const MU = 0.3, SIG = 0.6;
const posteriorMean = (a: number, z: number) =>
  MU + (SIG * SIG * Math.sqrt(a) * (z - Math.sqrt(a) * MU)) / (a * SIG * SIG + 1 - a);

/** The analytic teacher in tfjs; records the network indices it is called with. */
function analyticTeacher(abar: Float64Array, seen: number[][]): PdTeacher {
  const table = tf.tensor1d(Float32Array.from(abar));
  return (z, tIndex) => {
    seen.push(Array.from(tIndex.dataSync()));
    return tf.tidy(() => {
      const a = tf.reshape(tf.gather(table, tIndex), [-1, 1, 1, 1]);
      const sa = tf.sqrt(a);
      const gain = tf.div(tf.mul(SIG * SIG, sa), tf.add(tf.mul(a, SIG * SIG), tf.sub(1, a)));
      return tf.add(MU, tf.mul(gain, tf.sub(z, tf.mul(sa, MU)))) as tf.Tensor4D;
    });
  };
}

/** Two teacher DDIM steps in float64 JS, elementwise, from z_t at table indices i0 > i1 > i2. */
function teacherTwoStepsJs(abar: Float64Array, z: number, i0: number, i1: number, i2: number) {
  const step = (zz: number, from: number, to: number) => {
    const x0 = posteriorMean(abar[from], zz);
    const eps = (zz - Math.sqrt(abar[from]) * x0) / Math.sqrt(1 - abar[from]);
    return { z: Math.sqrt(abar[to]) * x0 + Math.sqrt(1 - abar[to]) * eps, x0 };
  };
  const s1 = step(z, i0, i1);
  return { zPrev1: s1.z, ...step(s1.z, i1, i2) };
}

const CASES = [
  { T: 8, timeScale: 1, t: [2, 4, 6, 8], zeroSnr: false },
  { T: 4, timeScale: 2, t: [2, 4, 2, 4], zeroSnr: false },
  { T: 16, timeScale: 2, t: [2, 10, 16, 6], zeroSnr: false },
  { T: 4, timeScale: 1, t: [4, 2, 4], zeroSnr: true }, // abar_T = 0 (zero terminal SNR)
];

for (const { T, timeScale, t, zeroSnr } of CASES) {
  const name = `T=${T}, timeScale=${timeScale}${zeroSnr ? ", zero terminal SNR" : ""}`;
  Deno.test(`pdTarget: PD identity and teacher steps, ${name}`, () => {
    const abar = cosineTable(T * timeScale + 1);
    if (zeroSnr) abar[T * timeScale] = 0;
    const B = t.length;
    const x0 = randn([B, 2, 3, 1], 1, 0.5) as tf.Tensor4D,
      eps = randn([B, 2, 3, 1], 2) as tf.Tensor4D;
    const seen: number[][] = [];
    const r = pdTarget({ alphasBar: abar }, t, x0, eps, analyticTeacher(abar, seen), { timeScale });
    // the teacher is queried at t*s then (t-1)*s; the student at t*s
    assertEquals(seen, [t.map((v) => v * timeScale), t.map((v) => (v - 1) * timeScale)]);
    assertEquals(Array.from(r.netIndex.dataSync()), t.map((v) => v * timeScale));
    const zt = r.zt.dataSync(), xT = r.xTarget.dataSync(), eT = r.epsTarget.dataSync();
    const zTeacher = r.zTeacher.dataSync(), x0d = x0.dataSync(), epsd = eps.dataSync();
    const teacherX0 = r.teacherX0.dataSync();
    const per = zt.length / B;
    for (let k = 0; k < zt.length; k++) {
      const b = Math.floor(k / per);
      const [i0, i1, i2] = [t[b] * timeScale, (t[b] - 1) * timeScale, (t[b] - 2) * timeScale];
      const z = Math.sqrt(abar[i0]) * x0d[k] + Math.sqrt(1 - abar[i0]) * epsd[k];
      assertAlmostEquals(zt[k], z, 1e-5);
      // the teacher's first-step x0 (for RDD's gt term)
      assertAlmostEquals(teacherX0[k], posteriorMean(abar[i0], z), 1e-4);
      const ref = teacherTwoStepsJs(abar, z, i0, i1, i2);
      assertAlmostEquals(zTeacher[k], ref.z, 1e-4, `teacher z_{t-2}, t=${t[b]}`);
      // eps~ is implied by x~ at z_t
      const implied = (zt[k] - Math.sqrt(abar[i0]) * xT[k]) / Math.sqrt(1 - abar[i0]);
      assertAlmostEquals(eT[k], implied, 1e-4 * Math.max(1, Math.abs(implied)));
      // ONE student DDIM step from z_t with (x~, eps~) lands on the teacher's z_{t-2}
      const student = Math.sqrt(abar[i2]) * xT[k] + Math.sqrt(1 - abar[i2]) * eT[k];
      assertAlmostEquals(student, ref.z, 2e-4, `PD identity, t=${t[b]}`);
    }
    tf.dispose([x0, eps, ...Object.values(r)]);
  });
}

Deno.test("pdTarget: eps-predicting and {x0, eps} teachers give the same target", () => {
  const abar = cosineTable(9), t = [2, 6, 8];
  const x0 = randn([3, 2, 2, 1], 3) as tf.Tensor4D, eps = randn([3, 2, 2, 1], 4) as tf.Tensor4D;
  const xTeacher = analyticTeacher(abar, []);
  const table = tf.tensor1d(Float32Array.from(abar));
  const impliedEps = (z: tf.Tensor4D, i: tf.Tensor1D) => {
    const a = tf.reshape(tf.gather(table, i), [-1, 1, 1, 1]);
    return tf.div(
      tf.sub(z, tf.mul(tf.sqrt(a), xTeacher(z, i) as tf.Tensor4D)),
      tf.sqrt(tf.sub(1, a)),
    ) as tf.Tensor4D;
  };
  const base = pdTarget({ alphasBar: abar }, t, x0, eps, xTeacher);
  const viaEps = pdTarget({ alphasBar: abar }, t, x0, eps, impliedEps, { teacherPredicts: "eps" });
  const both = pdTarget({ alphasBar: abar }, t, x0, eps, (z, i) => ({
    x0: xTeacher(z, i) as tf.Tensor4D,
    eps: impliedEps(z, i),
  }));
  assertLess(maxAbsDiff(base.xTarget, viaEps.xTarget), 1e-3);
  assertLess(maxAbsDiff(base.xTarget, both.xTarget), 1e-5);
  tf.dispose([x0, eps, table]);
  [base, viaEps, both].forEach((r) => tf.dispose(Object.values(r)));
});

Deno.test("pdTarget: finalStepTarget 'teacher-x0' replaces x~ only where t - 2 = 0", () => {
  const abar = cosineTable(9), t = [2, 4];
  const x0 = randn([2, 1, 3, 1], 5) as tf.Tensor4D, eps = randn([2, 1, 3, 1], 6) as tf.Tensor4D;
  const teacher = analyticTeacher(abar, []);
  const plain = pdTarget({ alphasBar: abar }, t, x0, eps, teacher);
  const last = pdTarget({ alphasBar: abar }, t, x0, eps, teacher, {
    finalStepTarget: "teacher-x0",
  });
  const zt = plain.zt.dataSync(), xl = last.xTarget.dataSync(), xp = plain.xTarget.dataSync();
  for (let k = 0; k < 3; k++) {
    const ref = teacherTwoStepsJs(abar, zt[k], 2, 1, 0);
    assertAlmostEquals(xl[k], ref.x0, 1e-5); // teacher's x0 at z_{t-1}
    assertLess(Math.abs(xl[k] - xp[k]), 0.05); // close to the identity target (abar_0 ~ 1)
  }
  for (let k = 3; k < 6; k++) assertEquals(xl[k], xp[k]);
  tf.dispose([x0, eps]);
  [plain, last].forEach((r) => tf.dispose(Object.values(r)));
});

// abar_t and abar_{t-2} close together: the x~ denominator cancels, so float32 rounding of
// the coefficients shows (relative change ~1.8e-4 in the denominator).
const CLOSE_TABLE = Float64Array.of(0.5, 0.49995, 0.4999);

Deno.test("pdRatio: reference numerics = float32 arithmetic on float32-rounded coefficients", () => {
  const f = Math.fround;
  const [a2, s2] = [Math.sqrt(0.5), Math.sqrt(0.5)]; // t - 2 = index 0
  const [a0, s0] = [Math.sqrt(0.4999), Math.sqrt(1 - 0.4999)]; // t = index 2
  const from = Int32Array.of(2), to = Int32Array.of(0);
  const exact = pdRatio(CLOSE_TABLE, from, to);
  assertEquals([exact.r[0], exact.denom[0]], [s2 / s0, a2 - (s2 / s0) * a0]);
  const ref = pdRatio(CLOSE_TABLE, from, to, "reference");
  const r32 = f(f(s2) / f(s0));
  assertEquals([ref.r[0], ref.denom[0]], [r32, f(f(a2) - f(r32 * f(a0)))]);
  // Visibly different from float64 (and from float64 rounded once to float32).
  assertLess(1e-4, Math.abs(ref.denom[0] - exact.denom[0]) / exact.denom[0]);
  assertLess(1e-4, Math.abs(ref.denom[0] - f(exact.denom[0])) / exact.denom[0]);
  assertThrows(() => pdRatio(CLOSE_TABLE, from, to, "fp16" as "exact"), RangeError, "numerics");
});

Deno.test("pdTarget numerics: x~ = fl(fl(z_{t-2} - fl(r z_t)) / denom) with each mode's r, denom", () => {
  const f = Math.fround;
  const x0 = tf.tensor4d([0.7, -0.4, 0.2, 0.9], [2, 1, 2, 1]);
  const eps = tf.tensor4d([0.1, 1.3, -0.8, 0.5], [2, 1, 2, 1]);
  const teacher: PdTeacher = (z) => tf.mul(z, 0.3) as tf.Tensor4D;
  const xs: Record<string, Float32Array> = {};
  for (const numerics of ["exact", "reference"] as const) {
    const r = pdTarget({ alphasBar: CLOSE_TABLE }, [2, 2], x0, eps, teacher, { numerics });
    const { r: ratio, denom } = pdRatio(CLOSE_TABLE, Int32Array.of(2), Int32Array.of(0), numerics);
    const zt = r.zt.dataSync(), z2 = r.zTeacher.dataSync();
    const want = Float32Array.from(zt, (z, k) => f(f(z2[k] - f(f(ratio[0]) * z)) / f(denom[0])));
    xs[numerics] = r.xTarget.dataSync() as Float32Array;
    assertEquals(Array.from(xs[numerics]), Array.from(want));
    tf.dispose(Object.values(r));
  }
  const diff = Math.max(...xs.exact.map((v, k) => Math.abs(v - xs.reference[k])));
  const rel = diff / Math.max(...xs.exact.map(Math.abs));
  assertLess(1e-5, rel); // float32 rounding of the coefficients changes the target
  tf.dispose([x0, eps]);
});

Deno.test("pdLoss: x, eps and both = mean of per-sample max (hand values)", () => {
  const sx = tf.tensor4d([0, 0, 1, 1], [2, 1, 2, 1]), tx = tf.tensor4d([1, 1, 1, 3], [2, 1, 2, 1]);
  const se = tf.tensor4d([0, 0, 0, 0], [2, 1, 2, 1]),
    te = tf.tensor4d([0.5, 0.5, 3, 3], [2, 1, 2, 1]);
  // per-sample mse_x = [1, 2], mse_eps = [0.25, 9]
  const v = (k: "x" | "eps" | "both") => tf.tidy(() => pdLoss(sx, se, tx, te, k).dataSync()[0]);
  assertAlmostEquals(v("x"), 1.5, 1e-6);
  assertAlmostEquals(v("eps"), 4.625, 1e-6);
  assertAlmostEquals(v("both"), (1 + 9) / 2, 1e-6);
  const g = tf.grad((x: tf.Tensor) => pdLoss(x as tf.Tensor4D, se, tx, te, "x"))(sx);
  assertEquals(Array.from(g.dataSync()), [-0.5, -0.5, 0, -1]); // 2 (x - t) / (2 * 2)
  tf.dispose([sx, tx, se, te, g]);
});

Deno.test("samplePdTimesteps: even t in 2..T, every value reached, seeded", () => {
  const a = samplePdTimesteps(new Rng(1), 400, 8), b = samplePdTimesteps(new Rng(1), 400, 8);
  assertEquals(Array.from(a), Array.from(b));
  assertEquals([...new Set(a)].sort(), [2, 4, 6, 8]);
  assertThrows(() => samplePdTimesteps(new Rng(1), 4, 7), RangeError, "teacherSteps");
});

Deno.test("pdTarget / pdLoss: bad input throws naming the parameter", () => {
  const abar = cosineTable(9);
  const x = tf.zeros([2, 1, 1, 1]) as tf.Tensor4D;
  const teacher: PdTeacher = (z) => tf.zerosLike(z);
  assertThrows(() => pdTarget({ alphasBar: abar }, [1, 2], x, x, teacher), RangeError, "t[0]");
  assertThrows(() => pdTarget({ alphasBar: abar }, [2, 10], x, x, teacher), RangeError, "t[1]");
  assertThrows(() => pdTarget({ alphasBar: abar }, [2], x, x, teacher), RangeError, "t must");
  assertThrows(
    () => pdTarget({ alphasBar: abar }, [2, 2], x, x, teacher, { timeScale: 3 }),
    RangeError,
    "options.timeScale",
  );
  assertThrows(
    () => pdTarget({ alphasBar: abar.slice().reverse() }, [2, 2], x, x, teacher),
    RangeError,
    "alphasBar",
  );
  assertThrows(
    () => pdLoss(x, x, x, tf.zeros([2, 1, 1, 2]) as tf.Tensor4D),
    RangeError,
    "epsTarget",
  );
  x.dispose();
});
