/**
 * Figure data of a sweep for `show()`: a metric against a numeric grid axis (an override
 * path such as "optimizer.lr"), the mean over seeds as a line and the 95% CI as a band, one
 * line per group of the other overrides. (The per-variant figure with CI bars and paired
 * differences is `ablationFigure` of lib/figures/ablation.ts, on the same summary.)
 * @module
 */
import type { Figure, PlotlyTrace } from "../notebook/show.ts";
import type { SweepSummary } from "./sweep.ts";

/**
 * The figure of `metric` vs the numeric override `axis` of `summary`'s variants. Variants
 * without a numeric value at `axis` are left out; a RangeError names the axis when none has.
 */
export function sweepAxisFigure(summary: SweepSummary, metric: string, axis: string): Figure {
  const groups = new Map<string, { x: number; mean: number; lo: number; hi: number }[]>();
  for (const v of summary.variants) {
    const x = v.overrides[axis];
    const row = summary.rows.find((r) => r.variant === v.name && r.metric === metric);
    if (typeof x !== "number" || !row || row.n === 0) continue;
    const rest = Object.entries(v.overrides).filter(([k]) => k !== axis)
      .map(([k, val]) => `${k}=${JSON.stringify(val)}`).join(", ") || "all";
    const points = groups.get(rest) ?? [];
    points.push({ x, mean: row.mean, lo: row.ciLow, hi: row.ciHigh });
    groups.set(rest, points);
  }
  if (groups.size === 0) {
    throw new RangeError(`axis: no variant of "${summary.sweep}" has a numeric "${axis}" override`);
  }
  const data: PlotlyTrace[] = [];
  for (const [name, points] of groups) {
    points.sort((a, b) => a.x - b.x);
    const band = points.filter((p) => Number.isFinite(p.lo) && Number.isFinite(p.hi));
    data.push({
      type: "scatter",
      mode: "lines",
      x: [...band.map((p) => p.x), ...band.map((p) => p.x).reverse()],
      y: [...band.map((p) => p.hi), ...band.map((p) => p.lo).reverse()],
      fill: "toself",
      opacity: 0.25,
      line: { width: 0 },
      hoverinfo: "skip",
      showlegend: false,
      name: `${name} 95% CI`,
    });
    data.push({
      type: "scatter",
      mode: "lines+markers",
      x: points.map((p) => p.x),
      y: points.map((p) => p.mean),
      name,
    });
  }
  return {
    data,
    layout: {
      title: { text: `${summary.sweep}: ${metric} vs ${axis} (mean, 95% CI over seeds)` },
      xaxis: { title: { text: axis } },
      yaxis: { title: { text: metric } },
      width: 720,
      height: 420,
    },
  };
}
