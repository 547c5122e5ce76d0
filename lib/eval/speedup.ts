/**
 * Wall-clock speed-up of a few-step student over its many-step teacher, measured in ONE
 * process on the current tfjs backend: both sample the same batch of starting noise with
 * {@link generateImages} (strided DDIM, one network call per step), each first warmed up with
 * one 1-step call, then timed `repeats` times alternately; the medians of ms/image are
 * compared. Not a test: the numbers depend on the machine and its load.
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { checkPositiveInt } from "../core/checks.ts";
import type { Parameterization } from "../diffusion/denoiser.ts";
import type { DiscreteSchedule } from "../diffusion/schedule.ts";
import { generateImages } from "./generate.ts";

/** Options of {@link measureSpeedup}. */
export interface SpeedupOptions {
  /** The table both models are sampled on (the teacher's). */
  schedule: DiscreteSchedule;
  /** What both networks predict. */
  parameterization: Parameterization;
  /** Teacher steps (e.g. 128 = every index of a T = 128 table). */
  teacherSteps: number;
  /** Student steps (e.g. 1). */
  studentSteps: number;
  /** Images per timed call (one batch). */
  batch: number;
  /** Timed calls per model (the median is reported). */
  repeats: number;
  /** Seed of the starting noise. */
  seed: number | string;
}

/** Medians of ms/image and their ratio (see the module doc). */
export interface SpeedupResult {
  /** Median ms/image of the teacher. */
  teacherMsPerImage: number;
  /** Median ms/image of the student. */
  studentMsPerImage: number;
  /** teacherMsPerImage / studentMsPerImage. */
  speedup: number;
  /** teacherSteps / studentSteps (the NFE ratio). */
  nfeRatio: number;
}

/** Median of a non-empty list. */
function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError("median of an empty list");
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Times `teacher` at `teacherSteps` against `student` at `studentSteps` (module doc). */
export async function measureSpeedup(
  teacher: tf.LayersModel,
  student: tf.LayersModel,
  o: SpeedupOptions,
): Promise<SpeedupResult> {
  checkPositiveInt("batch", o.batch);
  checkPositiveInt("repeats", o.repeats);
  const [h, w, c] = teacher.inputs[0].shape.slice(1) as [number, number, number];
  const base = {
    schedule: o.schedule,
    parameterization: o.parameterization,
    n: o.batch,
    batchSize: o.batch,
    imageShape: [h, w, c] as [number, number, number],
    seed: o.seed,
  };
  const time = async (model: tf.LayersModel, steps: number) =>
    (await generateImages(model, { ...base, steps })).msPerImage;
  await time(teacher, 1);
  await time(student, 1);
  const t: number[] = [], s: number[] = [];
  for (let i = 0; i < o.repeats; i++) {
    t.push(await time(teacher, o.teacherSteps));
    s.push(await time(student, o.studentSteps));
  }
  const teacherMsPerImage = median(t), studentMsPerImage = median(s);
  return {
    teacherMsPerImage,
    studentMsPerImage,
    speedup: teacherMsPerImage / studentMsPerImage,
    nfeRatio: o.teacherSteps / o.studentSteps,
  };
}
