/**
 * The shared look of the paper figures: explicit size, font and margins, and error bars from
 * estimates (mean and 95% CI). Every figure of `lib/figures/` carries `layout.width`/`height` in CSS px,
 * which the export uses as the image size.
 * @module
 */
import type { PlotlyTrace } from "../notebook/show.ts";

/** The font of every exported figure (DejaVu Sans ships with Debian's Chromium). */
export const FIGURE_FONT = { family: "DejaVu Sans, Arial, sans-serif", size: 13, color: "#222" };

/** Figure size in CSS px (= SVG/PDF size, PNG pixels at scale 1). */
export interface FigureSize {
  /** Width in CSS px. */
  width: number;
  /** Height in CSS px. */
  height: number;
}

/** The base layout of a figure: title, size, font, white background, margins. */
export function baseLayout(title: string, size: FigureSize): Record<string, unknown> {
  return {
    title: { text: title, x: 0.5, xanchor: "center" },
    width: size.width,
    height: size.height,
    font: FIGURE_FONT,
    paper_bgcolor: "white",
    plot_bgcolor: "white",
    margin: { l: 70, r: 20, t: 60, b: 60 },
    legend: { bgcolor: "rgba(255,255,255,0.8)" },
  };
}

/** An axis with grid lines and an optional log scale. */
export function figureAxis(title: string, log = false): Record<string, unknown> {
  return {
    title: { text: title },
    ...(log ? { type: "log" } : {}),
    showline: true,
    linecolor: "#444",
    gridcolor: "#e5e5e5",
    zeroline: false,
  };
}

/**
 * Plotly error bars (`error_y` / `error_x`) of estimates: asymmetric, from each CI to its mean;
 * a missing or NaN CI (one seed) draws no bar, and `visible` is false when none has a CI.
 */
export function errorBars(
  es: readonly { mean: number; ciLow?: number; ciHigh?: number }[],
): PlotlyTrace {
  const has = (e: { ciLow?: number; ciHigh?: number }) =>
    Number.isFinite(e.ciLow) && Number.isFinite(e.ciHigh);
  return {
    type: "data",
    symmetric: false,
    array: es.map((e) => (has(e) ? e.ciHigh! - e.mean : 0)),
    arrayminus: es.map((e) => (has(e) ? e.mean - e.ciLow! : 0)),
    visible: es.some(has),
    thickness: 1.5,
    width: 4,
  };
}
