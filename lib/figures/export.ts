/**
 * Writes Plotly figures as SVG, PNG and PDF files through headless Chromium: plotly.js's own
 * `Plotly.toImage` for SVG and PNG, and the page's print-to-PDF of the drawn figure (one page
 * of exactly the figure's size) for PDF. Sizes come from each figure's `layout.width` and
 * `layout.height` (CSS px; PNG pixels at scale 1). Offline: plotly.js is inlined from
 * `plotly.js-dist-min`.
 * @module
 */
import { type Figure, loadPlotlyJs, plainJson } from "../notebook/show.ts";
import { withChromiumPage } from "./chromium.ts";

/** The file formats {@link exportFigures} writes. */
export const FIGURE_FORMATS = ["svg", "pdf", "png"] as const;

/** One of {@link FIGURE_FORMATS}. */
export type FigureFormat = typeof FIGURE_FORMATS[number];

/** A figure to export and its file stem. */
export interface FigureFile {
  /** File stem: files are `OUT/NAME.svg`, `.pdf`, `.png`. */
  name: string;
  /** The figure; its layout must have numeric `width` and `height`. */
  figure: Figure;
}

/** The size in CSS px of a figure, from its layout. Throws RangeError when missing. */
export function figureSize(fig: Figure, name = "figure"): { width: number; height: number } {
  const { width, height } = (fig.layout ?? {}) as { width?: unknown; height?: unknown };
  if (typeof width !== "number" || typeof height !== "number" || !(width > 0 && height > 0)) {
    throw new RangeError(`${name}: layout.width and layout.height must be positive numbers`);
  }
  return { width, height };
}

/** Decodes a `data:` URL (base64 or percent-encoded) to bytes. */
export function dataUrlBytes(url: string): Uint8Array {
  const m = /^data:[^,]*?(;base64)?,(.*)$/s.exec(url);
  if (!m) throw new TypeError(`not a data: URL: ${url.slice(0, 40)}`);
  return m[1]
    ? Uint8Array.from(atob(m[2]), (c) => c.charCodeAt(0))
    : new TextEncoder().encode(decodeURIComponent(m[2]));
}

/**
 * Writes each figure in each format into `outDir` (created if missing) and returns the paths
 * written, in order. Throws ChromiumMissingError (see `chromium.ts`) without Chromium.
 * @param files figures with names.
 * @param outDir output folder.
 * @param formats formats to write; default all of {@link FIGURE_FORMATS}.
 */
export async function exportFigures(
  files: readonly FigureFile[],
  outDir: string,
  formats: readonly FigureFormat[] = FIGURE_FORMATS,
): Promise<string[]> {
  const sizes = files.map((f) => figureSize(f.figure, f.name));
  const plotly = await loadPlotlyJs();
  if (plotly === null) throw new Error("plotly.js-dist-min is not installed: run `deno install`");
  await Deno.mkdir(outDir, { recursive: true });
  return await withChromiumPage(async (page) => {
    await page.setContent(
      `<!doctype html><html><head><meta charset="utf-8"><style>@page { margin: 0 }
html, body { margin: 0; padding: 0; overflow: hidden; background: white; }</style>
<script>${plotly.replace(/<\/(script)/gi, "<\\/$1")}</script></head>
<body><div id="fig"></div></body></html>`,
    );
    const written: string[] = [];
    for (const [i, f] of files.entries()) {
      const { width, height } = sizes[i];
      const spec = JSON.stringify(plainJson({ data: f.figure.data, layout: f.figure.layout }));
      for (const format of formats) {
        const path = `${outDir}/${f.name}.${format}`;
        if (format === "pdf") {
          await page.evaluate(`(async () => {
  const el = document.getElementById("fig");
  Plotly.purge(el);
  el.style.width = "${width}px";
  el.style.height = "${height}px";
  const spec = ${spec};
  await Plotly.newPlot(el, spec.data, spec.layout, { staticPlot: true });
  return true;
})()`);
          await Deno.writeFile(
            path,
            await page.pdf({ width: `${width}px`, height: `${height}px` }),
          );
        } else {
          const url = await page.evaluate(
            `Plotly.toImage(${spec}, { format: "${format}", width: ${width}, height: ${height} })`,
          );
          await Deno.writeFile(path, dataUrlBytes(String(url)));
        }
        written.push(path);
      }
    }
    if (page.errors.length > 0) throw new Error(`figure page errors: ${page.errors.join("; ")}`);
    return written;
  });
}
