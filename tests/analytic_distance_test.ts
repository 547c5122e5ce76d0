import { assert, assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { type Batch, batch, randn } from "../lib/core/batch.ts";
import { Rng } from "../lib/core/rng.ts";
import {
  distanceByStepCount,
  sampleCovariance,
  sampleMean,
  slicedWasserstein2,
  wasserstein2Sorted1d,
} from "../lib/analytic/distance.ts";

const f64 = (...v: number[]) => Float64Array.from(v);

Deno.test("exact 1-D W2^2 by quantile coupling (equal and unequal sizes)", () => {
  assertAlmostEquals(wasserstein2Sorted1d(f64(0, 1), f64(0.5)), 0.25, 1e-15);
  // Quantiles of {0,1,2} vs {0,2}: on (1/3,1/2) 1 vs 0, on (1/2,2/3) 1 vs 2, elsewhere equal.
  assertAlmostEquals(wasserstein2Sorted1d(f64(0, 1, 2), f64(0, 2)), 1 / 3, 1e-15);
  assertAlmostEquals(wasserstein2Sorted1d(f64(0, 2), f64(0, 1, 2)), 1 / 3, 1e-15);
  assertEquals(wasserstein2Sorted1d(f64(-1, 3, 4), f64(-1, 3, 4)), 0);
  assertThrows(() => wasserstein2Sorted1d(f64(), f64(1)), RangeError, "non-empty");
});

Deno.test("sliced W2: exact W2 in 1-D, zero on itself, symmetric, seeded", () => {
  const x = batch(f64(3, 0, 2, 1), [4, 1]);
  const y = batch(f64(0.5, 1.5, 2.5, 3.5), [4, 1]);
  assertAlmostEquals(slicedWasserstein2(x, y), 0.5, 1e-12); // directions are +-1 in 1-D
  const a = randn([300, 3], new Rng(1)), b = randn([200, 3], new Rng(2));
  assertEquals(slicedWasserstein2(a, a), 0);
  assertAlmostEquals(slicedWasserstein2(a, b), slicedWasserstein2(b, a), 1e-12);
  assertEquals(slicedWasserstein2(a, b, { seed: 5 }), slicedWasserstein2(a, b, { seed: 5 }));
  assert(slicedWasserstein2(a, b, { seed: 5 }) !== slicedWasserstein2(a, b, { seed: 6 }));
});

Deno.test("sliced W2 of a translation by c in D dims is |c| / sqrt(D) (many directions)", () => {
  const a = randn([100, 2], new Rng(3));
  const shifted = batch(a.data.map((v, i) => v + (i % 2 === 0 ? 0.3 : -0.4)), a.shape);
  // Each projection is a shift by <c, theta>; E <c, theta>^2 = |c|^2 / D for uniform theta.
  const d = slicedWasserstein2(a, shifted, { projections: 4000 });
  assertAlmostEquals(d, 0.5 / Math.SQRT2, 0.01);
});

Deno.test("sampleMean and sampleCovariance by hand", () => {
  const x = batch(f64(1, 2, 3, 6, 5, 10), [3, 2]);
  assertEquals(Array.from(sampleMean(x)), [3, 6]);
  assertEquals(Array.from(sampleCovariance(x)), [4, 8, 8, 16]);
  assertThrows(() => sampleCovariance(batch(f64(1, 2), [1, 2])), RangeError, "at least 2");
});

Deno.test("distanceByStepCount runs every step count from the same noise", async () => {
  const zT = randn([50, 2], new Rng(1));
  const reference = randn([80, 2], new Rng(2));
  const seen: [Batch, number][] = [];
  const sample = (z: Batch, steps: number) => {
    seen.push([z, steps]);
    return batch(z.data.map((v) => v / steps), z.shape);
  };
  const rows = await distanceByStepCount([1, 2, 4], zT, sample, reference, { seed: 3 });
  assertEquals(rows.map((r) => r.steps), [1, 2, 4]);
  assert(seen.every(([z]) => z === zT));
  rows.forEach((r) => {
    const direct = slicedWasserstein2(sample(zT, r.steps), reference, { seed: 3 });
    assertAlmostEquals(r.distance, direct, 1e-15);
  });
  await assertRejects(
    () => distanceByStepCount([0], zT, sample, reference),
    RangeError,
    "stepCounts",
  );
});

Deno.test("distance functions reject mismatched input naming the parameter", () => {
  const a = randn([5, 2], new Rng(0)), b = randn([5, 3], new Rng(0));
  assertThrows(() => slicedWasserstein2(a, b), RangeError, "y");
  assertThrows(() => slicedWasserstein2(a, a, { projections: 0 }), RangeError, "projections");
  assertThrows(() => sampleMean(batch(f64(1, 2), [2])), RangeError, "x");
});
