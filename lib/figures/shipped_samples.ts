/**
 * Sample sheets of saved models at given step counts, all from the same starting noise: the
 * generic {@link modelSamplePanels}, and {@link shippedSamplePanels} for the shipped models
 * (`data/teacher` with strided DDIM, `data/student_2step`, the 2-step PD student) at 1, 2 and
 * 4 steps. Needs a tfjs backend selected by the caller; takes seconds on a CPU.
 * @module
 */
import { readRunConfig, teacherSchedule } from "../train/run_config.ts";
import { loadLayersModelFiles } from "../train/checkpoint.ts";
import "../models/unet.ts";
import type { Parameterization } from "../diffusion/denoiser.ts";
import type { DiscreteSchedule } from "../diffusion/schedule.ts";
import { generateImages } from "../eval/generate.ts";
import { imageGrid } from "../data/png.ts";
import type { SamplePanel } from "./samples.ts";

/** One sheet to draw: a saved model (`model.json` folder) sampled at `steps`. */
export interface ModelSheet {
  /** Row label of the sheet, e.g. "PD". */
  method: string;
  /** Sampling steps (strided DDIM on the teacher's table). */
  steps: number;
  /** Folder of the saved tfjs model. */
  modelDir: string;
}

/** How {@link modelSamplePanels} samples. */
export interface SheetOptions {
  /** The teacher's table. */
  schedule: DiscreteSchedule;
  /** What the networks predict. */
  parameterization: Parameterization;
  /** Image shape `[H, W, C]`; default [32, 32, 1]. */
  imageShape?: [number, number, number];
  /** Images per sheet (a square number fills the sheet); default 16. */
  n?: number;
  /** Seed of the starting noise shared by every sheet; default "figures-samples". */
  seed?: string;
}

/**
 * One {@link SamplePanel} per sheet, in the order given; each model folder is loaded once
 * and disposed after its sheets.
 */
export async function modelSamplePanels(
  sheets: readonly ModelSheet[],
  o: SheetOptions,
): Promise<SamplePanel[]> {
  const n = o.n ?? 16;
  const panels = new Map<ModelSheet, SamplePanel>();
  for (const dir of new Set(sheets.map((s) => s.modelDir))) {
    const model = await loadLayersModelFiles(dir);
    try {
      for (const sheet of sheets.filter((s) => s.modelDir === dir)) {
        const g = await generateImages(model, {
          schedule: o.schedule,
          parameterization: o.parameterization,
          steps: sheet.steps,
          n,
          imageShape: o.imageShape ?? [32, 32, 1],
          seed: o.seed ?? "figures-samples",
        });
        const png = imageGrid(g.images, { cols: Math.ceil(Math.sqrt(n)) });
        panels.set(sheet, { method: sheet.method, steps: sheet.steps, png });
      }
    } finally {
      model.dispose();
    }
  }
  return sheets.map((s) => panels.get(s)!);
}

/** Options of {@link shippedSamplePanels}. */
export interface ShippedSampleOptions {
  /** Folder holding `teacher/` and `student_2step/`; default "data". */
  dataDir?: string;
  /** Step counts; default [1, 2, 4]. */
  steps?: readonly number[];
  /** Images per sheet; default 16. */
  n?: number;
  /** Seed of the starting noise; default "figures-samples". */
  seed?: string;
}

/**
 * One {@link SamplePanel} per shipped model and step count: rows "teacher DDIM" and
 * "PD student (2-step)".
 */
export async function shippedSamplePanels(o: ShippedSampleOptions = {}): Promise<SamplePanel[]> {
  const dir = o.dataDir ?? "data";
  const cfg = await readRunConfig(`${dir}/teacher/config.json`);
  if (cfg.kind !== "teacher") throw new RangeError(`${dir}/teacher is not a teacher run`);
  const rows = [["teacher DDIM", "teacher"], ["PD student (2-step)", "student_2step"]];
  const sheets = rows.flatMap(([method, sub]) =>
    (o.steps ?? [1, 2, 4]).map((steps) => ({ method, steps, modelDir: `${dir}/${sub}/model` }))
  );
  return await modelSamplePanels(sheets, {
    schedule: teacherSchedule(cfg),
    parameterization: cfg.parameterization ?? "x0",
    n: o.n,
    seed: o.seed,
  });
}
