/**
 * Sample sheets of the shipped models (`data/teacher` with strided DDIM, `data/student_2step`,
 * the 2-step PD student) at 1, 2 and 4 steps, all from the same starting noise (one seed).
 * Needs a tfjs backend selected by the caller; takes seconds on a CPU.
 * @module
 */
import { readRunConfig, teacherSchedule } from "../train/run_config.ts";
import { loadLayersModelFiles } from "../train/checkpoint.ts";
import "../models/unet.ts";
import { generateImages } from "../eval/generate.ts";
import { imageGrid } from "../data/png.ts";
import type { SamplePanel } from "./samples.ts";

/** Options of {@link shippedSamplePanels}. */
export interface ShippedSampleOptions {
  /** Folder holding `teacher/` and `student_2step/`; default "data". */
  dataDir?: string;
  /** Step counts; default [1, 2, 4]. */
  steps?: readonly number[];
  /** Images per sheet (a square number fills the sheet); default 16. */
  n?: number;
  /** Seed of the starting noise shared by every sheet; default "figures-samples". */
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
  const schedule = teacherSchedule(cfg);
  const n = o.n ?? 16;
  const panels: SamplePanel[] = [];
  for (
    const [method, sub] of [["teacher DDIM", "teacher"], ["PD student (2-step)", "student_2step"]]
  ) {
    const model = await loadLayersModelFiles(`${dir}/${sub}/model`);
    try {
      for (const steps of o.steps ?? [1, 2, 4]) {
        const g = await generateImages(model, {
          schedule,
          parameterization: cfg.parameterization ?? "x0",
          steps,
          n,
          imageShape: [32, 32, 1],
          seed: o.seed ?? "figures-samples",
        });
        panels.push({ method, steps, png: imageGrid(g.images, { cols: Math.ceil(Math.sqrt(n)) }) });
      }
    } finally {
      model.dispose();
    }
  }
  return panels;
}
