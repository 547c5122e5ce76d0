/**
 * Shared start of the bench workers that time the shipped models: the tfjs cpu backend with the
 * fast kernels (or an error saying why they are unavailable), the shipped MNIST teacher
 * (data/teacher: its run config and EMA model) and the repository root for other shipped files.
 */
import * as tf from "@tensorflow/tfjs";
import { enableFastCpu } from "../lib/tfjs/fast_cpu.ts";
import "../lib/models/unet.ts";
import { loadLayersModelFiles } from "../lib/train/checkpoint.ts";
import { readRunConfig, type TeacherRunConfig } from "../lib/train/run_config.ts";

/** The shipped teacher on the fast cpu backend. */
export interface ShippedTeacher {
  /** Repository root (ends with "/"). */
  root: string;
  /** data/teacher/config.json. */
  config: TeacherRunConfig;
  /** data/teacher/model. */
  teacher: tf.LayersModel;
}

/** Selects the fast cpu backend and loads the shipped teacher. */
export async function shippedTeacherOnFastCpu(): Promise<ShippedTeacher> {
  await tf.setBackend("cpu");
  const status = enableFastCpu();
  if (!status.enabled) throw new Error(`fast cpu unavailable: ${status.reason}`);
  const root = new URL("..", import.meta.url).pathname;
  const config = await readRunConfig(`${root}data/teacher/config.json`);
  if (config.kind !== "teacher") throw new Error("data/teacher/config.json is not a teacher run");
  return { root, config, teacher: await loadLayersModelFiles(`${root}data/teacher/model`) };
}
