/**
 * Sample sheets side by side: one row per method, one column per step count (1, 2, 4, ...),
 * each cell a PNG sample grid (e.g. {@link imageGrid} of `lib/data/png.ts`) generated from the
 * same starting noise, drawn as a Plotly image trace.
 * @module
 */
import { type Figure, pngSize, toBase64 } from "../notebook/show.ts";
import { subplotTitle } from "../notebook/figures.ts";
import { baseLayout, type FigureSize } from "./style.ts";

/** One cell of the sample figure. */
export interface SamplePanel {
  /** Row label, e.g. "teacher DDIM". */
  method: string;
  /** Sampling steps (column). */
  steps: number;
  /** PNG bytes of the sample sheet. */
  png: Uint8Array;
}

/**
 * The sample figure: rows in order of first appearance of each method, columns by increasing
 * step count; a missing (method, steps) cell stays empty. Cells keep their pixel aspect.
 * @param panels >= 1 panels; at most one per (method, steps).
 * @param cellPx the displayed size of one cell in CSS px; default 220.
 */
export function sampleGridFigure(panels: readonly SamplePanel[], cellPx = 220): Figure {
  if (panels.length === 0) throw new RangeError("panels must hold at least one SamplePanel");
  const methods = [...new Set(panels.map((p) => p.method))];
  const steps = [...new Set(panels.map((p) => p.steps))].sort((a, b) => a - b);
  const seen = new Set<string>();
  const layout: Record<string, unknown> = {};
  const annotations: Record<string, unknown>[] = [];
  const data = panels.map((p) => {
    const key = `${p.method}@${p.steps}`;
    if (seen.has(key)) throw new RangeError(`panels hold two cells for ${key}`);
    seen.add(key);
    const { width, height } = pngSize(p.png);
    const [r, c] = [methods.indexOf(p.method), steps.indexOf(p.steps)];
    const k = r * steps.length + c + 1;
    const sfx = k === 1 ? "" : String(k);
    const hidden = { visible: false, showgrid: false, zeroline: false };
    layout[`xaxis${sfx}`] = { ...hidden, range: [0, width] };
    layout[`yaxis${sfx}`] = { ...hidden, range: [height, 0], scaleanchor: `x${sfx}` };
    annotations.push(subplotTitle(`${p.method}, ${p.steps} step${p.steps === 1 ? "" : "s"}`, sfx));
    return {
      type: "image",
      name: key,
      source: `data:image/png;base64,${toBase64(p.png)}`,
      xaxis: `x${sfx}`,
      yaxis: `y${sfx}`,
      hoverinfo: "skip",
    };
  });
  const size: FigureSize = {
    width: 40 + cellPx * steps.length,
    height: 80 + (cellPx + 30) * methods.length,
  };
  return {
    data,
    layout: {
      ...baseLayout("Samples from the same starting noise", size),
      ...layout,
      grid: { rows: methods.length, columns: steps.length, pattern: "independent" },
      margin: { l: 20, r: 20, t: 70, b: 10 },
      annotations,
    },
  };
}
