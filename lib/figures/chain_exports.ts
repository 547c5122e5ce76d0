/**
 * Figure inputs that only a chains sweep's run directories hold (they are git-ignored),
 * exported as small files that a clean clone can draw from: every round's loss log of every
 * finished chain cell (`loss_curves.json`, read by {@link readLossCurves}) and sample sheets of
 * each method's 4-, 2- and 1-step students next to the teacher's strided DDIM at the same step
 * counts, all from the same starting noise (`samples/METHOD_Kstep.png`, read by
 * {@link samplePanelsFromDir}). `deno task reproduce` writes both after its sweeps.
 * @module
 */
import { pathExists, writeFileAtomic } from "../train/checkpoint.ts";
import { roundDirName } from "../distill/rounds.ts";
import { cellDir } from "../sweep/cell.ts";
import { type LoadedSweep, loadSweep } from "../sweep/sweep.ts";
import { readRunConfig, teacherSchedule } from "../train/run_config.ts";
import type { LossRun } from "./loss_curves.ts";
import { lossRunsOfDir, writeLossCurves } from "./sources.ts";
import { modelSamplePanels, type ModelSheet } from "./shipped_samples.ts";

/** The student step counts of the sample sheets (each student at its own step count). */
const SHEET_STEPS = [1, 2, 4] as const;

/** A finished chain cell whose run directory is on this machine. */
interface ChainRun {
  variant: string;
  seed: number;
  runDir: string;
}

/** The finished cells of `s` in variant order, then seed, with whether their run is here. */
async function chainRuns(s: LoadedSweep): Promise<{ here: ChainRun[]; absent: number }> {
  const order = s.variants.map((v) => v.name);
  const done = [...s.results].sort((a, b) =>
    order.indexOf(a.variant) - order.indexOf(b.variant) || a.seed - b.seed
  );
  const here: ChainRun[] = [];
  for (const r of done) {
    const runDir = `${cellDir(s.dir, r.id)}/run`;
    if (await pathExists(runDir)) here.push({ variant: r.variant, seed: r.seed, runDir });
  }
  return { here, absent: done.length - here.length };
}

/** The rounds of a chain from `fromSteps` down to 1 step, by folder name. */
function roundDirs(fromSteps: number): string[] {
  const dirs: string[] = [];
  for (let t = fromSteps; t > 1; t /= 2) dirs.push(roundDirName(t));
  return dirs;
}

/** Every logged round of the runs (labelled "METHOD T -> S" by their round.json). */
async function lossRunsOf(runs: readonly ChainRun[], fromSteps: number): Promise<LossRun[]> {
  const out: LossRun[] = [];
  for (const r of runs) {
    for (const d of roundDirs(fromSteps)) out.push(...(await lossRunsOfDir(`${r.runDir}/${d}`)));
  }
  return out;
}

/**
 * The sheets of the lowest seed at which every variant finished: "teacher DDIM" at 1, 2, 4
 * steps, then each variant's K-step student at K = 1, 2, 4; null when no seed has them all.
 */
function sheetsOf(
  runs: readonly ChainRun[],
  variants: readonly string[],
  teacherRun: string,
): ModelSheet[] | null {
  const seeds = [...new Set(runs.map((r) => r.seed))].sort((a, b) => a - b);
  const seed = seeds.find((s) =>
    variants.every((v) => runs.some((r) => r.variant === v && r.seed === s))
  );
  if (seed === undefined) return null;
  const teacher = SHEET_STEPS.map((steps) => ({
    method: "teacher DDIM",
    steps,
    modelDir: `${teacherRun}/model`,
  }));
  return [
    ...teacher,
    ...variants.flatMap((v) => {
      const run = runs.find((r) => r.variant === v && r.seed === seed)!;
      return SHEET_STEPS.map((steps) => ({
        method: v,
        steps,
        modelDir: `${run.runDir}/${roundDirName(2 * steps)}/model`,
      }));
    }),
  ];
}

/** What {@link exportChainFigureInputs} wrote, or why it wrote nothing. */
export interface ChainExport {
  /** The loss-curve file written, or null. */
  lossCurves: string | null;
  /** The sample sheets written (paths). */
  samples: string[];
  /** Why something was not written (empty when everything was). */
  notes: string[];
}

/**
 * Writes `outDir/loss_curves.json` and `outDir/samples/METHOD_Kstep.png` from the chains
 * sweep in `chainsDir` (its spec's `fromSteps`, default 8; the sheets use the teacher at
 * `teacherRun` and 16 images from one starting noise). Writes nothing when a finished cell's
 * run directory is missing (a clone with only the committed cell files), so shipped files
 * are never replaced by partial ones. Needs a tfjs backend selected by the caller.
 */
export async function exportChainFigureInputs(
  chainsDir: string,
  outDir: string,
  teacherRun: string,
): Promise<ChainExport> {
  const s = await loadSweep(chainsDir);
  const { here, absent } = await chainRuns(s);
  if (here.length === 0 || absent > 0) {
    const why = here.length === 0 ? "no finished chain cell" : `${absent} finished cell(s)`;
    return {
      lossCurves: null,
      samples: [],
      notes: [`loss curves and sample sheets not exported: ${why} without its run directory`],
    };
  }
  const fromSteps = Number(s.spec.base.fromSteps ?? 8);
  const lossCurves = `${outDir}/loss_curves.json`;
  await writeLossCurves(lossCurves, await lossRunsOf(here, fromSteps));
  const sheets = sheetsOf(here, s.variants.map((v) => v.name), teacherRun);
  if (!sheets) {
    return {
      lossCurves,
      samples: [],
      notes: ["sample sheets not exported: no seed has every method"],
    };
  }
  const cfg = await readRunConfig(`${teacherRun}/config.json`);
  if (cfg.kind !== "teacher") throw new RangeError(`${teacherRun} is not a teacher run`);
  const panels = await modelSamplePanels(sheets, {
    schedule: teacherSchedule(cfg),
    parameterization: cfg.parameterization ?? "x0",
  });
  await Deno.mkdir(`${outDir}/samples`, { recursive: true });
  const samples: string[] = [];
  for (const p of panels) {
    const path = `${outDir}/samples/${p.method.replace(/ /g, "_")}_${p.steps}step.png`;
    await writeFileAtomic(path, p.png);
    samples.push(path);
  }
  return { lossCurves, samples, notes: [] };
}
