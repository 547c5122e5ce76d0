/**
 * The paper figures as Plotly figure objects, and their export (package subpath `./figures`):
 * the shared style, the validated results files they read, quality-vs-cost and ablation plots,
 * sample sheets, loss curves, finding their inputs on disk ({@link collectFigures}), and
 * writing SVG, PNG and PDF files through the system's headless Chromium.
 * @module
 */
export * from "./style.ts";
export * from "./results.ts";
export * from "./quality.ts";
export * from "./ablation.ts";
export * from "./samples.ts";
export * from "./loss_curves.ts";
export * from "./sources.ts";
export * from "./shipped_samples.ts";
export * from "./catalog.ts";
export * from "./chromium.ts";
export * from "./export.ts";
export * from "./chain_exports.ts";
