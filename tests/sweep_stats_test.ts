import { assertAlmostEquals, assertEquals } from "@std/assert";
import { pairedDiff, sampleStats, summarizeRecords } from "../lib/sweep/stats.ts";
import { formatSummary, summaryCsv } from "../lib/sweep/sweep.ts";

// t_{0.975,4} and t_{0.975,2} (tables).
const T975_4 = 2.776445105;
const T975_2 = 4.302652730;
// Closed form of the t CDF at 4 degrees of freedom: F(t) = 1/2 + 3/4 (x - x^3 / 3), x = t / sqrt(t^2 + 4).
const cdf4 = (t: number) => {
  const x = t / Math.sqrt(t * t + 4);
  return 0.5 + 0.75 * (x - x ** 3 / 3);
};

const A = [1, 2, 3, 4, 5];
const B = [2, 2, 4, 5, 7];

Deno.test("sampleStats: mean, sd (n - 1) and the 95% t-interval by hand", () => {
  const s = sampleStats(A);
  assertEquals(s.n, 5);
  assertEquals(s.mean, 3);
  assertAlmostEquals(s.sd, Math.sqrt(10 / 4), 1e-12);
  const half = T975_4 * Math.sqrt(2.5) / Math.sqrt(5);
  assertAlmostEquals(s.ciLow, 3 - half, 1e-8);
  assertAlmostEquals(s.ciHigh, 3 + half, 1e-8);
});

Deno.test("sampleStats: n < 2 gives NaN spread and interval", () => {
  const s = sampleStats([4]);
  assertEquals([s.n, s.mean], [1, 4]);
  assertEquals([s.sd, s.ciLow, s.ciHigh].every(Number.isNaN), true);
});

Deno.test("pairedDiff: differences by seed, t-interval and two-sided p by hand", () => {
  const d = pairedDiff(B, A, "A"); // differences 1, 0, 1, 1, 2
  assertEquals(d.n, 5);
  assertEquals(d.mean, 1);
  const se = Math.sqrt(0.5) / Math.sqrt(5);
  assertAlmostEquals(d.ciLow, 1 - T975_4 * se, 1e-8);
  assertAlmostEquals(d.ciHigh, 1 + T975_4 * se, 1e-8);
  assertAlmostEquals(d.p, 2 * (1 - cdf4(1 / se)), 1e-9);
  assertAlmostEquals(d.p, 0.034109, 1e-5);
  // Zero spread: p is 1 for equal samples.
  assertEquals(pairedDiff(A, A, "A").p, 1);
});

Deno.test("summarizeRecords: missing seeds counted, paired on common seeds only", () => {
  const seeds = [0, 1, 2, 3, 4];
  const recs = [
    ...A.map((x, i) => ({ variant: "A", seed: i, metrics: { cfid: x } })),
    ...B.map((x, i) => ({ variant: "B", seed: i, metrics: { cfid: x } })),
    // C has seeds 0, 1, 2 only (two cells failed), and an out-of-spec seed 9 that is ignored.
    { variant: "C", seed: 0, metrics: { cfid: 3 } },
    { variant: "C", seed: 1, metrics: { cfid: 5 } },
    { variant: "C", seed: 2, metrics: { cfid: 4 } },
    { variant: "C", seed: 9, metrics: { cfid: 100 } },
  ];
  const rows = summarizeRecords(recs, ["A", "B", "C"], ["cfid"], seeds, "A");
  assertEquals(rows.map((r) => [r.variant, r.n, r.missing]), [["A", 5, 0], ["B", 5, 0], [
    "C",
    3,
    2,
  ]]);
  assertEquals(rows[0].diff, null);
  const c = rows[2];
  assertEquals(c.mean, 4);
  assertAlmostEquals(c.ciHigh, 4 + T975_2 * 1 / Math.sqrt(3), 1e-8);
  // C - A on seeds 0..2: 2, 3, 1 -> mean 2, sd 1.
  assertEquals(c.diff!.n, 3);
  assertEquals(c.diff!.mean, 2);
  assertAlmostEquals(c.diff!.ciLow, 2 - T975_2 / Math.sqrt(3), 1e-8);
  const summary = { sweep: "t", baseline: "A", metrics: ["cfid"], variants: [], rows };
  const csv = summaryCsv(summary).trim().split("\n");
  assertEquals(csv.length, 4);
  assertEquals(csv[3].split(",").slice(0, 5), ["C", "cfid", "3", "2", "4"]);
  assertEquals(formatSummary(summary).split("\n").length, 4);
});
