import { assert, assertEquals, assertThrows } from "@std/assert";
import { encode } from "fast-png";
import type { SweepSummary } from "../lib/sweep/sweep.ts";
import { REPRO, row } from "./figures_fixtures.ts";
import { qualityPointsFromDemo, qualityPointsFromSummary } from "../lib/figures/results.ts";
import { cfidVsNfeFigure, paretoFront, speedQualityFigure } from "../lib/figures/quality.ts";
import { ablationFigure } from "../lib/figures/ablation.ts";
import { lossBand, lossCurvesFigure } from "../lib/figures/loss_curves.ts";
import { sampleGridFigure } from "../lib/figures/samples.ts";
import { errorBars } from "../lib/figures/style.ts";

Deno.test("qualityPointsFromSummary: chains give one point per K, eval rows one point", () => {
  const pts = qualityPointsFromSummary(REPRO);
  assertEquals(pts.map((p) => [p.method, p.nfe, p.cfid.mean, p.msPerImage?.mean]), [
    ["ddim", 8, 4, 30],
    ["pd", 4, 2.5, 16],
    ["pd", 2, 5, 8],
    ["pd", 1, 10, 4],
  ]);
  assertEquals(pts[1].cfid, { mean: 2.5, ciLow: 1.5, ciHigh: 4.5 });
});

Deno.test("qualityPointsFromDemo groups the demo's models by method", () => {
  const pts = qualityPointsFromDemo({
    table: [
      { model: "teacher DDIM", steps: 2, nfe: 2, cfid: 19, n: 500, msPerImage: 7 },
      { model: "PD student (shipped)", steps: 2, nfe: 2, cfid: 5, n: 500, msPerImage: 7 },
      { model: "RDD 2->1 (this run)", steps: 1, nfe: 1, cfid: 6, n: 500, msPerImage: 4 },
    ],
  });
  assertEquals(pts.map((p) => p.method), ["teacher DDIM", "PD", "RDD"]);
  assertEquals(pts[2].cfid, { mean: 6 });
});

Deno.test("errorBars: asymmetric CI to mean, hidden without CIs", () => {
  const e = errorBars([{ mean: 5, ciLow: 4, ciHigh: 7 }, { mean: 1 }]);
  assertEquals([e.array, e.arrayminus, e.visible], [[2, 0], [1, 0], true]);
  assertEquals(errorBars([{ mean: 1 }]).visible, false);
});

Deno.test("cfidVsNfeFigure: one trace per method sorted by NFE, log axes, CI bars", () => {
  const f = cfidVsNfeFigure(qualityPointsFromSummary(REPRO));
  assertEquals(f.data.map((t) => t.name), ["ddim", "pd"]);
  assertEquals(f.data[1].x, [1, 2, 4]);
  assertEquals(f.data[1].y, [10, 5, 2.5]);
  assertEquals((f.data[1].error_y as { array: number[] }).array, [2, 2, 2]);
  const lay = f.layout as Record<string, { type?: string }>;
  assertEquals([lay.xaxis.type, lay.yaxis.type], ["log", "log"]);
  assertEquals([lay.width, lay.height], [720, 460] as unknown[]);
  assertThrows(() => cfidVsNfeFigure([]), RangeError, "points");
});

Deno.test("paretoFront keeps the undominated points; the frontier figure draws it", () => {
  const p = (method: string, ms: number, cfid: number) => ({
    method,
    nfe: 1,
    cfid: { mean: cfid },
    msPerImage: { mean: ms },
  });
  const pts = [p("a", 1, 10), p("b", 2, 5), p("c", 3, 6), p("d", 4, 1), p("e", 0.5, 20)];
  assertEquals(paretoFront(pts).map((q) => q.method), ["e", "a", "b", "d"]);
  const f = speedQualityFigure(pts);
  const front = f.data.find((t) => t.name === "frontier")!;
  assertEquals(front.x, [0.5, 1, 2, 4]);
  assertEquals(f.data.length, 6);
  assertThrows(() => speedQualityFigure([{ method: "a", nfe: 1, cfid: { mean: 1 } }]), RangeError);
});

Deno.test("ablationFigure: baseline first, means with CIs, paired differences with p", () => {
  const diff = { baseline: "base", n: 5, mean: -1.5, ciLow: -2, ciHigh: -1, p: 0.012 };
  const s: SweepSummary = {
    sweep: "abl",
    baseline: "base",
    metrics: ["cfid"],
    variants: [{ name: "noIS", overrides: { "rdd.isp2pWeight": 0 } }, {
      name: "base",
      overrides: {},
    }],
    rows: [row("noIS", "cfid", 6, 1, diff), row("base", "cfid", 7.5), row("base", "nfe", 1, 0)],
  };
  const f = ablationFigure(s);
  assertEquals(f.data[0].y, ["base (n=5)", "noIS (n=5)"]);
  assertEquals(f.data[0].x, [7.5, 6]);
  assertEquals(f.data[1].x, [-1.5]);
  assertEquals(f.data[1].text, ["p = 0.012"]);
  assertEquals((f.data[1].error_x as { arrayminus: number[] }).arrayminus, [0.5]);
  assertThrows(() => ablationFigure(s, "finalLoss"), RangeError, "finalLoss");
});

Deno.test("lossBand: mean, min and max at the shared steps", () => {
  const b = lossBand([
    { round: "r", seed: 0, steps: [1, 2, 3], loss: [4, 2, 1] },
    { round: "r", seed: 1, steps: [2, 3, 4], loss: [6, 3, 9] },
  ]);
  assertEquals(b, { steps: [2, 3], mean: [4, 2], low: [2, 1], high: [6, 3], runs: 2 });
  const f = lossCurvesFigure([
    { round: "PD 2 -> 1", seed: 0, steps: [1, 2], loss: [2, 1] },
    { round: "RDD 2 -> 1", seed: 0, steps: [1, 2], loss: [3, 1] },
  ]);
  assertEquals(f.data.map((t) => t.name), [
    "PD 2 -> 1 band",
    "PD 2 -> 1 (1 seed)",
    "RDD 2 -> 1 band",
    "RDD 2 -> 1 (1 seed)",
  ]);
  assertEquals(f.data[0].x, [1, 2, 2, 1]);
  assertThrows(() => lossBand([{ round: "r", seed: 0, steps: [1], loss: [] }]), RangeError);
});

Deno.test("sampleGridFigure: a cell per (method, steps) on its own axes, PNG sources", () => {
  const png = encode({ width: 6, height: 4, data: new Uint8Array(24), channels: 1 });
  const f = sampleGridFigure([
    { method: "teacher", steps: 4, png },
    { method: "teacher", steps: 1, png },
    { method: "PD", steps: 2, png },
  ]);
  // Columns 1, 2, 4; rows teacher, PD: teacher@4 is cell 3, teacher@1 cell 1, PD@2 cell 5.
  assertEquals(f.data.map((t) => t.xaxis), ["x3", "x", "x5"]);
  assert(String(f.data[0].source).startsWith("data:image/png;base64,iVBOR"));
  const lay = f.layout as Record<string, Record<string, unknown>>;
  assertEquals(lay.grid, { rows: 2, columns: 3, pattern: "independent" });
  assertEquals(lay.yaxis3.range, [4, 0]);
  assertThrows(
    () => sampleGridFigure([{ method: "a", steps: 1, png }, { method: "a", steps: 1, png }]),
    RangeError,
    "a@1",
  );
});

Deno.test("one-seed rows (NaN CI, null in JSON) give points and bars without a CI", () => {
  const s: SweepSummary = {
    ...REPRO,
    rows: [
      { ...row("ddim-8", "cfid", 4), sd: NaN, ciLow: NaN, ciHigh: NaN, n: 1 },
      row("ddim-8", "nfe", 8, 0),
      { ...row("pd", "cfid@1", NaN), n: 0 },
    ],
  };
  const pts = qualityPointsFromSummary(s);
  assertEquals(pts.map((p) => [p.method, p.cfid]), [["ddim", { mean: 4 }]]);
  assertEquals(errorBars([{ mean: 4, ciLow: NaN, ciHigh: NaN }]).array, [0]);
});
