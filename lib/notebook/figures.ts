/**
 * Small builders of Plotly figures (line plots, scatter plots, side-by-side panels) and tables
 * for notebooks. They return plain data ({@link Figure}, {@link Table}) that `show()` displays.
 * For image grids use `imageGrid` of `lib/data/png.ts` (PNG bytes) and `show(png, {width})`.
 * @module
 */
import { checkTable, type Figure, type PlotlyTrace, type Table } from "./show.ts";

/** One curve or point cloud. */
export interface Series {
  /** Legend label. Series of the same name in {@link sideBySide} share one legend entry. */
  name?: string;
  /** Abscissae, same length as `y`; default 0..n-1. */
  x?: ArrayLike<number>;
  /** Ordinates. */
  y: ArrayLike<number>;
  /** Plotly drawing mode; default "lines" in {@link linePlot}, "markers" in {@link scatterPlot}. */
  mode?: "lines" | "markers" | "lines+markers";
  /** CSS colour; default the palette colour of the series' index. */
  color?: string;
  /** Line dash ("solid", "dash", "dot", ...). */
  dash?: string;
  /** Marker size in px (markers modes). Default 4. */
  markerSize?: number;
  /** Opacity in [0, 1]. Default 1 for lines, 0.6 for markers. */
  opacity?: number;
  /** Show this series in the legend. Default true when it has a name. */
  showLegend?: boolean;
}

/** Axis and size options of the plot builders. */
export interface PlotOptions {
  /** Figure title. */
  title?: string;
  /** x axis title. */
  xTitle?: string;
  /** y axis title. */
  yTitle?: string;
  /** Logarithmic x axis. */
  logX?: boolean;
  /** Logarithmic y axis. */
  logY?: boolean;
  /** Same scale on x and y (for 2-D point clouds). */
  equalAspect?: boolean;
  /** Width in CSS px; default: the notebook's width. */
  width?: number;
  /** Height in CSS px; default 400. */
  height?: number;
}

/** The default colour cycle (10 colours); series i gets `PALETTE[i % 10]`. */
export const PALETTE: readonly string[] = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

function checkSeries(series: readonly Series[]): void {
  if (!Array.isArray(series) || series.length < 1) {
    throw new RangeError("series must be a non-empty array of {x?, y}");
  }
  series.forEach((s, i) => {
    if (!s || typeof s.y?.length !== "number") {
      throw new TypeError(`series[${i}].y must be an array of numbers`);
    }
    if (s.x !== undefined && s.x.length !== s.y.length) {
      throw new RangeError(
        `series[${i}].x must have the length of series[${i}].y (${s.y.length}), got ${s.x.length}`,
      );
    }
  });
}

function trace(s: Series, i: number, defaultMode: Series["mode"]): PlotlyTrace {
  const mode = s.mode ?? defaultMode;
  const color = s.color ?? PALETTE[i % PALETTE.length];
  const markers = mode !== "lines";
  const t: PlotlyTrace = {
    type: "scatter",
    mode,
    x: s.x === undefined ? Array.from({ length: s.y.length }, (_, k) => k) : Array.from(s.x),
    y: Array.from(s.y),
    line: { color, ...(s.dash ? { dash: s.dash } : {}) },
    opacity: s.opacity ?? (markers ? 0.6 : 1),
    showlegend: s.showLegend ?? s.name !== undefined,
  };
  if (s.name !== undefined) {
    t.name = s.name;
    t.legendgroup = s.name;
  }
  if (markers) t.marker = { color, size: s.markerSize ?? 4 };
  return t;
}

function layout(o: PlotOptions): Record<string, unknown> {
  const axis = (title: string | undefined, log: boolean | undefined) => ({
    ...(title ? { title: { text: title } } : {}),
    ...(log ? { type: "log" } : {}),
  });
  const out: Record<string, unknown> = {
    xaxis: axis(o.xTitle, o.logX),
    yaxis: { ...axis(o.yTitle, o.logY), ...(o.equalAspect ? { scaleanchor: "x" } : {}) },
    height: o.height ?? 400,
    margin: { l: 60, r: 20, t: o.title ? 50 : 20, b: 50 },
  };
  if (o.title) out.title = { text: o.title };
  if (o.width !== undefined) out.width = o.width;
  return out;
}

/**
 * A line plot: one trace per series (mode "lines" unless a series says otherwise).
 * @param series curves; `x` defaults to 0..n-1.
 * @param options titles, log axes, size.
 */
export function linePlot(series: readonly Series[], options: PlotOptions = {}): Figure {
  checkSeries(series);
  return { data: series.map((s, i) => trace(s, i, "lines")), layout: layout(options) };
}

/**
 * A scatter plot: one point cloud per series (mode "markers", size 4, opacity 0.6 by default).
 * Trajectories can be added as series with `mode: "lines"`.
 * @param series point clouds; `x` and `y` of equal length.
 * @param options titles, log axes, `equalAspect` for 2-D data, size.
 */
export function scatterPlot(series: readonly Series[], options: PlotOptions = {}): Figure {
  checkSeries(series);
  return { data: series.map((s, i) => trace(s, i, "markers")), layout: layout(options) };
}

/**
 * A Plotly annotation that titles the subplot on axes `x{suffix}`/`y{suffix}`: centred, just
 * above the plot area.
 * @param text the title.
 * @param suffix the axis suffix ("" for the first subplot, "2", "3", ...).
 * @param y vertical position in the subplot's domain units (1 = top edge).
 */
export function subplotTitle(text: string, suffix: string, y = 1): Record<string, unknown> {
  return {
    text,
    showarrow: false,
    xref: `x${suffix} domain`,
    yref: `y${suffix} domain`,
    x: 0.5,
    y,
    xanchor: "center",
    yanchor: "bottom",
  };
}

/**
 * Places figures next to each other in one row of subplots (independent axes). Each figure's
 * title becomes its subplot title; a series name shown in several panels gets one legend entry.
 * @param figures panels, left to right (1..8, built by {@link linePlot} / {@link scatterPlot}).
 * @param options `title` of the whole figure and `height` in CSS px (default 400).
 */
export function sideBySide(
  figures: readonly Figure[],
  options: { title?: string; height?: number } = {},
): Figure {
  if (!Array.isArray(figures) || figures.length < 1 || figures.length > 8) {
    throw new RangeError(`figures must hold 1..8 figures, got ${figures?.length}`);
  }
  const data: PlotlyTrace[] = [];
  const annotations: Record<string, unknown>[] = [];
  const shown = new Set<unknown>();
  const lay: Record<string, unknown> = {
    grid: { rows: 1, columns: figures.length, pattern: "independent" },
    height: options.height ?? 400,
    margin: { l: 60, r: 20, t: options.title ? 80 : 50, b: 50 },
  };
  if (options.title) lay.title = { text: options.title };
  figures.forEach((f, k) => {
    const suffix = k === 0 ? "" : String(k + 1);
    for (const t of f.data) {
      const dup = t.legendgroup !== undefined && shown.has(t.legendgroup);
      if (t.showlegend !== false) shown.add(t.legendgroup);
      data.push({
        ...t,
        xaxis: `x${suffix}`,
        yaxis: `y${suffix}`,
        ...(dup ? { showlegend: false } : {}),
      });
    }
    const fl = f.layout ?? {};
    const yaxis = { ...(fl.yaxis as Record<string, unknown> | undefined) };
    if (yaxis.scaleanchor !== undefined) yaxis.scaleanchor = `x${suffix}`;
    lay[`xaxis${suffix}`] = { ...(fl.xaxis as Record<string, unknown> | undefined) };
    lay[`yaxis${suffix}`] = yaxis;
    const title = (fl.title as { text?: string } | undefined)?.text;
    if (title) annotations.push(subplotTitle(title, suffix, 1.02));
  });
  if (annotations.length) lay.annotations = annotations;
  return { data, layout: lay };
}

/**
 * A {@link Table} for `show()`.
 * @param columns headers, length C >= 1.
 * @param rows rows of C cells each (numbers or strings).
 * @param options `digits`: significant digits of non-integer numbers (1..17, default 6);
 *   `caption`: text above the table.
 */
export function table(
  columns: readonly string[],
  rows: readonly (readonly (string | number)[])[],
  options: { digits?: number; caption?: string } = {},
): Table {
  const t: Table = {
    kind: "table",
    columns,
    rows,
    digits: options.digits ?? 6,
    caption: options.caption,
  };
  checkTable(t);
  return t;
}
