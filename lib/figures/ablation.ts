/**
 * The ablation figure: per variant of a sweep, a metric's mean with its 95% CI (left), and the
 * paired difference to the baseline with its CI and p-value (right; 0 = no effect).
 * @module
 */
import type { Figure } from "../notebook/show.ts";
import type { SweepSummary } from "../sweep/sweep.ts";
import { baseLayout, errorBars, figureAxis, type FigureSize } from "./style.ts";

/**
 * The ablation figure of `summary` for `metric`: variants on the y axis in the summary's
 * order (the baseline first), two panels sharing it.
 * @param summary a sweep summary with rows for `metric`.
 * @param metric the metric to show; default "cfid".
 * @param size figure size; default 860 x (140 + 34 per variant).
 */
export function ablationFigure(
  summary: SweepSummary,
  metric = "cfid",
  size?: FigureSize,
): Figure {
  const rows = summary.variants
    .map((v) => summary.rows.find((r) => r.variant === v.name && r.metric === metric))
    .filter((r) => r !== undefined);
  if (rows.length === 0) {
    throw new RangeError(`summary "${summary.sweep}" has no rows for metric "${metric}"`);
  }
  rows.sort((a, b) =>
    Number(b.variant === summary.baseline) - Number(a.variant === summary.baseline)
  );
  const labels = rows.map((r) => `${r.variant} (n=${r.n})`);
  const diffs = rows.filter((r) => r.diff !== null);
  const s = size ?? { width: 860, height: 140 + 34 * rows.length };
  return {
    data: [
      {
        type: "scatter",
        mode: "markers",
        name: `${metric} (95% CI)`,
        x: rows.map((r) => r.mean),
        y: labels,
        error_x: errorBars(rows),
        marker: { size: 9, color: "#1f77b4" },
        xaxis: "x",
        yaxis: "y",
      },
      {
        type: "scatter",
        mode: "markers",
        name: `paired difference to ${summary.baseline ?? "baseline"} (95% CI)`,
        x: diffs.map((r) => r.diff!.mean),
        y: diffs.map((r) => `${r.variant} (n=${r.n})`),
        text: diffs.map((
          r,
        ) => (Number.isFinite(r.diff!.p) ? `p = ${r.diff!.p.toPrecision(2)}` : "n < 2")),
        error_x: errorBars(diffs.map((r) => r.diff!)),
        marker: { size: 9, color: "#d62728", symbol: "diamond" },
        xaxis: "x2",
        yaxis: "y",
      },
    ],
    layout: {
      ...baseLayout(`Ablation "${summary.sweep}": ${metric}`, s),
      margin: { l: 220, r: 20, t: 60, b: 90 },
      xaxis: { ...figureAxis(metric), domain: [0, 0.48] },
      xaxis2: {
        ...figureAxis(`${metric} minus ${summary.baseline ?? "baseline"} (paired)`),
        domain: [0.52, 1],
        zeroline: true,
        zerolinecolor: "#888",
      },
      yaxis: { ...figureAxis(""), type: "category", categoryarray: labels, autorange: "reversed" },
      legend: { orientation: "h", y: -0.25 },
    },
  };
}
