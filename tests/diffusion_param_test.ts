import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { type Batch, batch, randn } from "../lib/core/batch.ts";
import { Rng } from "../lib/core/rng.ts";
import {
  epsFromV,
  epsFromX0,
  epsFromX0Coef,
  qSample,
  qSampleCoef,
  toX0AndEps,
  vFromX0Eps,
  x0FromEps,
  x0FromEpsCoef,
  x0FromV,
} from "../lib/diffusion/param.ts";
import { cosineSchedule, rescaleZeroTerminalSnr } from "../lib/diffusion/schedule.ts";

const sch = cosineSchedule(16);
const SHAPE = [3, 4, 4, 2];

function maxAbsDiff(a: Batch, b: Batch): number {
  assertEquals(a.shape, b.shape);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}

function setup(seed: number) {
  const rng = new Rng(seed);
  return { x0: randn(SHAPE, rng), eps: randn(SHAPE, rng) };
}

// Shared index, and per-sample indices (Int32Array and number[]).
const TIMES = [0, 5, 15, 16, [0, 7, 16], Int32Array.from([3, 3, 12])];

Deno.test("qSample is sqrt(abar) x0 + sqrt(1-abar) eps, element by element", () => {
  const { x0, eps } = setup(1);
  const z = qSample(sch, x0, [2, 9, 16], eps);
  const per = x0.data.length / 3;
  for (const i of [0, per + 5, 2 * per + 31]) {
    const t = [2, 9, 16][Math.floor(i / per)];
    const a = sch.alphasBar[t];
    assertAlmostEquals(
      z.data[i],
      Math.sqrt(a) * x0.data[i] + Math.sqrt(1 - a) * eps.data[i],
      1e-15,
    );
  }
  // t = -1 is clean data.
  assertEquals(maxAbsDiff(qSample(sch, x0, -1, eps), x0), 0);
});

Deno.test("qSample then x0FromEps / epsFromX0 with the truth recovers x0 / eps to 1e-12", () => {
  const { x0, eps } = setup(2);
  for (const t of TIMES) {
    const z = qSample(sch, x0, t, eps);
    assertAlmostEquals(maxAbsDiff(x0FromEps(sch, z, eps, t), x0), 0, 1e-12, `t=${t}`);
    assertAlmostEquals(maxAbsDiff(epsFromX0(sch, z, x0, t), eps), 0, 1e-12, `t=${t}`);
  }
});

Deno.test("v conversions round-trip to 1e-12", () => {
  const { x0, eps } = setup(3);
  for (const t of TIMES) {
    const z = qSample(sch, x0, t, eps);
    const v = vFromX0Eps(sch, x0, eps, t);
    assertAlmostEquals(maxAbsDiff(x0FromV(sch, z, v, t), x0), 0, 1e-12, `t=${t}`);
    assertAlmostEquals(maxAbsDiff(epsFromV(sch, z, v, t), eps), 0, 1e-12, `t=${t}`);
  }
  // At t = -1 (abar = 1): v = eps.
  const v = vFromX0Eps(sch, x0, eps, -1);
  assertEquals(maxAbsDiff(v, eps), 0);
});

Deno.test("toX0AndEps agrees for every parameterization", () => {
  const { x0, eps } = setup(4);
  for (const t of TIMES) {
    const z = qSample(sch, x0, t, eps);
    const preds = { x0, eps, v: vFromX0Eps(sch, x0, eps, t) } as const;
    for (const p of ["x0", "eps", "v"] as const) {
      const r = toX0AndEps(sch, z, preds[p], p, t);
      assertAlmostEquals(maxAbsDiff(r.x0, x0), 0, 1e-12, `${p} t=${t}`);
      assertAlmostEquals(maxAbsDiff(r.eps, eps), 0, 1e-12, `${p} t=${t}`);
    }
  }
  const z = qSample(sch, x0, 4, eps);
  assertStrictEquals(toX0AndEps(sch, z, x0, "x0", 4).x0, x0);
  assertThrows(
    // @ts-expect-error: an unknown parameterization is a type error and a run-time error.
    () => toX0AndEps(sch, z, x0, "score", 4),
    RangeError,
    "parameterization",
  );
});

Deno.test("coefficients: hand values at abar = 0.36", () => {
  // sqrt(abar) = 0.6, sqrt(1 - abar) = 0.8.
  const near = (got: number[], want: number[]) =>
    got.forEach((g, i) => assertAlmostEquals(g, want[i], 1e-15));
  near(qSampleCoef(0.36), [0.6, 0.8]);
  near(x0FromEpsCoef(0.36), [1 / 0.6, -0.8 / 0.6]);
  near(epsFromX0Coef(0.36), [1 / 0.8, -0.6 / 0.8]);
  assertThrows(() => qSampleCoef(1.5), RangeError, "abar");
  assertThrows(() => qSampleCoef(NaN), RangeError, "abar");
});

Deno.test("division by zero at the ends throws instead of returning Inf/NaN", () => {
  const { x0, eps } = setup(5);
  assertThrows(() => epsFromX0(sch, x0, x0, -1), RangeError, "abar must be < 1");
  assertThrows(() => epsFromX0(sch, x0, x0, [0, -1, 2]), RangeError, "abar must be < 1");
  assertThrows(() => toX0AndEps(sch, x0, x0, "x0", -1), RangeError, "t = -1");
  const zsnr = rescaleZeroTerminalSnr(sch);
  assertThrows(() => x0FromEps(zsnr, x0, eps, 16), RangeError, "abar must be > 0");
  // At abar = 0 the v-parameterization still works: x0 = -v, eps = z.
  const z = qSample(zsnr, x0, 16, eps);
  const r = toX0AndEps(zsnr, z, vFromX0Eps(zsnr, x0, eps, 16), "v", 16);
  assertAlmostEquals(maxAbsDiff(r.x0, x0), 0, 1e-15);
});

Deno.test("shapes and t are validated, naming the parameter", () => {
  const { x0, eps } = setup(6);
  const rng = new Rng(7);
  assertThrows(() => qSample(sch, x0, 3, randn([3, 4, 4, 1], rng)), RangeError, "eps");
  assertThrows(() => x0FromEps(sch, x0, randn([2, 4, 4, 2], rng), 3), RangeError, "eps");
  assertThrows(() => qSample(sch, x0, 17, eps), RangeError, "t must be an integer in -1..16");
  assertThrows(() => qSample(sch, x0, 2.5, eps), RangeError, "t");
  assertThrows(
    () => qSample(sch, x0, [1, 2], eps),
    RangeError,
    "t must have length B = 3",
  );
  assertThrows(() => qSample(sch, x0, [1, 2, 40], eps), RangeError, "t[2]");
});

Deno.test("qSample numerics 'reference': sqrt(abar) and sqrt(1 - abar) rounded to float32", () => {
  const schedule = cosineSchedule(16);
  const x0 = batch(Float64Array.of(0.3, -0.7), [2, 1]);
  const eps = batch(Float64Array.of(1.2, 0.4), [2, 1]);
  const ab = schedule.alphasBar[5];
  const want = (r: (x: number) => number) =>
    [0, 1].map((i) => r(Math.sqrt(ab)) * x0.data[i] + r(Math.sqrt(1 - ab)) * eps.data[i]);
  const ref = qSample(schedule, x0, 5, eps, "reference");
  assertEquals(Array.from(ref.data), want(Math.fround));
  assertEquals(Array.from(qSample(schedule, x0, 5, eps).data), want((x) => x));
  assert(ref.data[0] !== qSample(schedule, x0, 5, eps).data[0]);
  assertThrows(() => qSample(schedule, x0, 5, eps, "half" as "exact"), RangeError, "numerics");
});
