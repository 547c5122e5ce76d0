/** Fixture sweep summaries for the figure tests (written by the tests, never shipped). */
import type { SweepSummary } from "../lib/sweep/sweep.ts";

type Row = SweepSummary["rows"][number];
/** One summary row: CI [mean - half, mean + 2 half] (asymmetric, to test the bars). */
export const row = (
  variant: string,
  metric: string,
  mean: number,
  half = 1,
  diff: Row["diff"] = null,
) => ({
  variant,
  metric,
  n: 5,
  missing: 0,
  mean,
  sd: half,
  ciLow: mean - half,
  ciHigh: mean + 2 * half,
  diff,
});

/** A fixture reproduction: a training-free DDIM row and a PD chain with 4-, 2- and 1-step rows. */
export const REPRO: SweepSummary = {
  sweep: "reproduction",
  baseline: "pd",
  metrics: ["cfid", "nfe", "msPerImage"],
  variants: [
    { name: "ddim-8", overrides: { sampler: "ddim", steps: 8 } },
    { name: "pd", overrides: { method: "pd" } },
  ],
  rows: [
    row("ddim-8", "cfid", 4),
    row("ddim-8", "nfe", 8, 0),
    row("ddim-8", "msPerImage", 30, 0.5),
    ...[4, 2, 1].flatMap((k) => [
      row("pd", `cfid@${k}`, 10 / k),
      row("pd", `msPerImage@${k}`, 4 * k, 0.1),
    ]),
    row("pd", "cfid", 2.5),
  ],
};
