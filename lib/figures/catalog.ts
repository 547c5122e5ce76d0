/**
 * Every paper figure that the results on disk allow, with the reason for each one they do
 * not: the one place that decides which file feeds which figure (used by `deno task figures`
 * and notebook 06).
 *
 * - `quality_vs_nfe`, `speed_quality`: `RESULTS/reproduction/summary.json` when it exists (mean
 *   and 95% CI over seeds), else the newest `RESULTS/demo_*.json` (one seed);
 * - `ablation`: `RESULTS/ablation/summary.json`;
 * - `samples`: the sheets in `RESULTS/reproduction/samples/` when there are any, else generated
 *   from the shipped models in `DATA/` (seconds; needs a tfjs backend);
 * - `loss_curves`: `RESULTS/reproduction/loss_curves.json` (every chain round, a band over
 *   seeds) when it exists, else every run directory with logged losses under `RESULTS/` and
 *   `DATA/`.
 * @module
 */
import type { Figure } from "../notebook/show.ts";
import {
  type QualityPoint,
  qualityPointsFromDemo,
  qualityPointsFromSummary,
  readDemoResults,
  readSweepSummary,
} from "./results.ts";
import { cfidVsNfeFigure, speedQualityFigure } from "./quality.ts";
import { ablationFigure } from "./ablation.ts";
import { sampleGridFigure } from "./samples.ts";
import { lossCurvesFigure } from "./loss_curves.ts";
import { findLossRuns, readLossCurves, samplePanelsFromDir } from "./sources.ts";
import { pathExists } from "../train/checkpoint.ts";
import { shippedSamplePanels } from "./shipped_samples.ts";

/** The names of the paper figures, in the order they are rendered. */
export const FIGURE_NAMES = [
  "quality_vs_nfe",
  "ablation",
  "samples",
  "speed_quality",
  "loss_curves",
] as const;

/** One of {@link FIGURE_NAMES}. */
export type FigureName = typeof FIGURE_NAMES[number];

/** A figure with the file(s) it was made from. */
export interface NamedFigure {
  /** File stem of the figure. */
  name: FigureName;
  /** The Plotly figure (layout has width and height). */
  figure: Figure;
  /** What it was made from, for the user. */
  source: string;
}

/** A figure that the results do not allow yet, and why. */
export interface SkippedFigure {
  /** File stem of the figure. */
  name: FigureName;
  /** Why it was skipped (which file is missing). */
  reason: string;
}

/** What {@link collectFigures} found. */
export interface FigureSet {
  /** Figures that could be made, in {@link FIGURE_NAMES} order. */
  figures: NamedFigure[];
  /** Figures that could not, with reasons. */
  skipped: SkippedFigure[];
}

/** Options of {@link collectFigures}. */
export interface CollectOptions {
  /** Results folder; default "docs/results". */
  results?: string;
  /** Folder of the shipped runs and models; default "data". */
  data?: string;
  /** Generate sample sheets from the shipped models when none are shipped; default true. */
  generateSamples?: boolean;
  /** Awaited once before sheets are generated from models, e.g. to select a tfjs backend. */
  beforeGenerate?: () => Promise<unknown>;
}

/** The newest `demo_*.json` of `dir` by name (names carry the date), or undefined. */
async function newestDemo(dir: string): Promise<string | undefined> {
  if (!(await pathExists(dir))) return undefined;
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && /^demo_.*\.json$/.test(e.name)) names.push(e.name);
  }
  return names.sort().pop()?.replace(/^/, `${dir}/`);
}

async function qualityPoints(results: string): Promise<[QualityPoint[], string] | undefined> {
  const repro = `${results}/reproduction/summary.json`;
  if (await pathExists(repro)) {
    return [qualityPointsFromSummary(await readSweepSummary(repro)), repro];
  }
  const demo = await newestDemo(results);
  if (demo) return [qualityPointsFromDemo(await readDemoResults(demo)), demo];
  return undefined;
}

/**
 * Builds every figure the files allow (see the module doc); a missing input skips its figure
 * with a reason, a malformed one throws naming the file.
 */
export async function collectFigures(o: CollectOptions = {}): Promise<FigureSet> {
  const results = o.results ?? "docs/results";
  const data = o.data ?? "data";
  const made = new Map<FigureName, NamedFigure>();
  const skipped: SkippedFigure[] = [];
  const add = (name: FigureName, figure: Figure, source: string) =>
    made.set(name, { name, figure, source });

  const quality = await qualityPoints(results);
  if (quality) {
    const [points, source] = quality;
    add("quality_vs_nfe", cfidVsNfeFigure(points), source);
    if (points.some((p) => p.msPerImage !== undefined)) {
      add("speed_quality", speedQualityFigure(points), source);
    } else skipped.push({ name: "speed_quality", reason: `${source} has no msPerImage` });
  } else {
    const reason = `no ${results}/reproduction/summary.json and no ${results}/demo_*.json`;
    skipped.push({ name: "quality_vs_nfe", reason }, { name: "speed_quality", reason });
  }

  const ablation = `${results}/ablation/summary.json`;
  if (await pathExists(ablation)) {
    add("ablation", ablationFigure(await readSweepSummary(ablation)), ablation);
  } else skipped.push({ name: "ablation", reason: `no ${ablation} yet` });

  const sheets = `${results}/reproduction/samples`;
  const shipped = await samplePanelsFromDir(sheets);
  if (shipped.length > 0) add("samples", sampleGridFigure(shipped), `${sheets}/`);
  else if ((o.generateSamples ?? true) && (await pathExists(`${data}/student_2step/model`))) {
    await o.beforeGenerate?.();
    add(
      "samples",
      sampleGridFigure(await shippedSamplePanels({ dataDir: data })),
      `${data}/ models`,
    );
  } else skipped.push({ name: "samples", reason: `no ${sheets}/*_Kstep.png` });

  const curves = `${results}/reproduction/loss_curves.json`;
  const [runs, runsSource] = await pathExists(curves)
    ? [await readLossCurves(curves), curves]
    : [await findLossRuns([results, data]), `metrics.jsonl under ${results}, ${data}`];
  if (runs.length > 0) add("loss_curves", lossCurvesFigure(runs), runsSource);
  else {skipped.push({
      name: "loss_curves",
      reason: `no run with metrics.jsonl under ${results}, ${data}`,
    });}

  return {
    figures: FIGURE_NAMES.filter((n) => made.has(n)).map((n) => made.get(n)!),
    skipped: FIGURE_NAMES.flatMap((n) => skipped.filter((s) => s.name === n)),
  };
}
