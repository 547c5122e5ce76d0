/**
 * `deno task figures [--results DIR] [--data DIR] [--out DIR] [--formats svg,pdf,png]`
 *
 * Renders every paper figure that the shipped results allow (see `lib/figures/catalog.ts`)
 * into `--out` (default docs/figures) as SVG, PDF and PNG, through headless Chromium (Debian's
 * `chromium`, driven by puppeteer-core; no network, no training: seconds). Prints each file
 * written, and each figure skipped with the reason (a missing results file is not an error).
 * @module
 */
import { runCommand, UsageError } from "./args.ts";
import { collectFigures } from "../figures/catalog.ts";
import { exportFigures, FIGURE_FORMATS, type FigureFormat } from "../figures/export.ts";
import { ChromiumMissingError } from "../figures/chromium.ts";
import { selectBackend } from "../tfjs/backend.ts";

/** The command line of `deno task figures`. */
export const FIGURES_COMMAND = {
  usage: "deno task figures [--results DIR] [--data DIR] [--out DIR] [--formats svg,pdf,png]",
  summary: "Renders every figure the shipped results allow as SVG, PDF and PNG through " +
    "headless Chromium (no training; seconds), and says which figures it skipped and why.",
  flags: {
    results: {
      type: "string",
      description: "results folder",
      default: "docs/results",
      placeholder: "DIR",
    },
    data: {
      type: "string",
      description: "shipped runs and models",
      default: "data",
      placeholder: "DIR",
    },
    out: {
      type: "string",
      description: "output folder",
      default: "docs/figures",
      placeholder: "DIR",
    },
    formats: {
      type: "string",
      description: "comma-separated formats (svg, pdf, png)",
      default: "svg,pdf,png",
      placeholder: "LIST",
    },
  },
} as const;

/**
 * Parses `--formats`: comma-separated, each one of {@link FIGURE_FORMATS}, no duplicates.
 * Throws a UsageError naming the flag.
 */
export function parseFormats(text: string): FigureFormat[] {
  const parts = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const bad = parts.find((p) => !(FIGURE_FORMATS as readonly string[]).includes(p));
  if (parts.length === 0 || bad !== undefined || new Set(parts).size !== parts.length) {
    throw new UsageError(
      `--formats: expected a comma-separated list of ${FIGURE_FORMATS.join(", ")}, got "${text}"`,
    );
  }
  return parts as FigureFormat[];
}

/** Runs the command with parsed flags; returns the files written. */
export async function runFigures(
  flags: { results: string; data: string; out: string; formats: string },
): Promise<string[]> {
  const formats = parseFormats(flags.formats);
  try {
    await Deno.stat(flags.results);
  } catch {
    throw new UsageError(`--results: folder ${flags.results} does not exist`);
  }
  const set = await collectFigures({
    results: flags.results,
    data: flags.data,
    beforeGenerate: () => selectBackend(),
  });
  for (const s of set.skipped) console.log(`skipped ${s.name}: ${s.reason}`);
  let written: string[];
  try {
    written = await exportFigures(
      set.figures.map((f) => ({ name: f.name, figure: f.figure })),
      flags.out,
      formats,
    );
  } catch (e) {
    if (e instanceof ChromiumMissingError) throw new UsageError(e.message);
    throw e;
  }
  for (const f of set.figures) console.log(`${f.name}: from ${f.source}`);
  for (const p of written) console.log(`wrote ${p}`);
  console.log(
    `figures: ${set.figures.length} rendered (${
      formats.join(", ")
    }), ${set.skipped.length} skipped`,
  );
  return written;
}

if (import.meta.main) {
  await runCommand(FIGURES_COMMAND, async (flags) => void (await runFigures(flags)));
}
