/**
 * Figures of quality against cost: cFID vs NFE (log axes) for every method, and cFID vs
 * measured ms/image (the speed-quality frontier). Both take {@link QualityPoint}s, with 95%
 * CI bars where the points have CIs.
 * @module
 */
import type { Figure } from "../notebook/show.ts";
import { PALETTE } from "../notebook/figures.ts";
import type { QualityPoint } from "./results.ts";
import { baseLayout, errorBars, figureAxis, type FigureSize } from "./style.ts";

function byMethod(points: readonly QualityPoint[]): Map<string, QualityPoint[]> {
  if (!Array.isArray(points) || points.length === 0) {
    throw new RangeError("points must be a non-empty array of QualityPoint");
  }
  const m = new Map<string, QualityPoint[]>();
  for (const p of points) m.set(p.method, [...(m.get(p.method) ?? []), p]);
  return m;
}

/** Caption fragment: whether the bars are 95% CIs or the points are single seeds. */
function barsNote(points: readonly QualityPoint[]): string {
  return points.some((p) => p.cfid.ciLow !== undefined) ? "bars: 95% CI over seeds" : "one seed";
}

/**
 * cFID vs NFE on log-log axes: one line per method through its points sorted by NFE, with
 * 95% CI bars.
 * @param points the points (>= 1).
 * @param size figure size; default 720 x 460.
 */
export function cfidVsNfeFigure(
  points: readonly QualityPoint[],
  size: FigureSize = { width: 720, height: 460 },
): Figure {
  const data = [...byMethod(points)].map(([method, ps], i) => {
    const sorted = [...ps].sort((a, b) => a.nfe - b.nfe);
    return {
      type: "scatter",
      mode: "lines+markers",
      name: method,
      x: sorted.map((p) => p.nfe),
      y: sorted.map((p) => p.cfid.mean),
      error_y: errorBars(sorted.map((p) => p.cfid)),
      line: { color: PALETTE[i % PALETTE.length], width: 2 },
      marker: { size: 7 },
    };
  });
  return {
    data,
    layout: {
      ...baseLayout(`cFID vs NFE (${barsNote(points)})`, size),
      xaxis: { ...figureAxis("NFE (network evaluations per image)", true), dtick: Math.log10(2) },
      yaxis: figureAxis("cFID (lower is better)", true),
    },
  };
}

/**
 * The points on the speed-quality frontier: those no other point beats in both ms/image and
 * cFID (ties count as beaten by neither), sorted by ms/image.
 * @param points points with `msPerImage`; the others are ignored.
 */
export function paretoFront(points: readonly QualityPoint[]): QualityPoint[] {
  const timed = points.filter((p) => p.msPerImage !== undefined);
  return timed.filter((p) =>
    !timed.some((q) =>
      q !== p && q.msPerImage!.mean <= p.msPerImage!.mean && q.cfid.mean <= p.cfid.mean &&
      (q.msPerImage!.mean < p.msPerImage!.mean || q.cfid.mean < p.cfid.mean)
    )
  ).sort((a, b) => a.msPerImage!.mean - b.msPerImage!.mean);
}

/**
 * cFID vs measured ms/image (log axes): one marker set per method labelled with its NFE,
 * 95% CI bars on both axes, and a dashed line through the frontier ({@link paretoFront}).
 * @param points points; those without `msPerImage` are left out (>= 1 must have it).
 * @param size figure size; default 720 x 460.
 */
export function speedQualityFigure(
  points: readonly QualityPoint[],
  size: FigureSize = { width: 720, height: 460 },
): Figure {
  const timed = points.filter((p) => p.msPerImage !== undefined);
  if (timed.length === 0) throw new RangeError("points must include one with msPerImage");
  const data: Record<string, unknown>[] = [...byMethod(timed)].map(([method, ps], i) => ({
    type: "scatter",
    mode: "markers+text",
    name: method,
    x: ps.map((p) => p.msPerImage!.mean),
    y: ps.map((p) => p.cfid.mean),
    text: ps.map((p) => `${p.nfe}`),
    textposition: "top right",
    error_x: errorBars(ps.map((p) => p.msPerImage!)),
    error_y: errorBars(ps.map((p) => p.cfid)),
    marker: { color: PALETTE[i % PALETTE.length], size: 9 },
  }));
  const front = paretoFront(timed);
  data.push({
    type: "scatter",
    mode: "lines",
    name: "frontier",
    x: front.map((p) => p.msPerImage!.mean),
    y: front.map((p) => p.cfid.mean),
    line: { color: "#888", dash: "dash", width: 1.5 },
    hoverinfo: "skip",
  });
  return {
    data,
    layout: {
      ...baseLayout(`Speed-quality frontier (labels: NFE; ${barsNote(timed)})`, size),
      xaxis: figureAxis("measured ms / image", true),
      yaxis: figureAxis("cFID (lower is better)", true),
    },
  };
}
