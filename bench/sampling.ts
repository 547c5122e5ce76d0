/**
 * Worker of bench/run.ts: sampling cost on the fast CPU backend in a fresh process. Times, for
 * `n` images in one batch: the shipped teacher's forward pass (data/teacher, inference mode),
 * its 128-step strided DDIM through `generateImages` (the tensor-native path), and a 1-step
 * student's DDIM (the shipped student of data/student_2step run at 1 step: the students have
 * the teacher's architecture, so a 1-step student costs one such forward pass). Prints one JSON
 * line `{n, forwardMs: number[], ddim128Ms: number[], ddim1Ms: number[]}` (ms per image, each
 * repeat after one warm-up call).
 *
 * Usage: deno run <perms> bench/sampling.ts <n> <repeats>
 */
import * as tf from "@tensorflow/tfjs";
import { shippedTeacherOnFastCpu } from "./shipped.ts";
import { generateImages } from "../lib/eval/generate.ts";
import { loadLayersModelFiles } from "../lib/train/checkpoint.ts";
import { teacherSchedule } from "../lib/train/run_config.ts";

const n = Number(Deno.args[0]), repeats = Number(Deno.args[1]);
if (!Number.isInteger(n) || n < 1 || !Number.isInteger(repeats) || repeats < 1) {
  throw new RangeError(`n, repeats: expected integers >= 1, got ${Deno.args[0]}, ${Deno.args[1]}`);
}
const { root, config, teacher } = await shippedTeacherOnFastCpu();
const student = await loadLayersModelFiles(`${root}data/student_2step/model`);
const schedule = teacherSchedule(config);
const shape = teacher.inputs[0].shape.slice(1) as [number, number, number];

/** ms per image of `run` (which handles all n images), after one warm-up call. */
async function perImage(run: () => Promise<void>): Promise<number[]> {
  await run();
  const ms: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await run();
    ms.push((performance.now() - t0) / n);
  }
  return ms;
}

const x = tf.randomNormal([n, ...shape], 0, 1, "float32", 0);
const t = tf.fill([n], 64, "float32");
const forwardMs = await perImage(async () => {
  const y = teacher.apply([x, t], { training: false }) as tf.Tensor;
  await y.data();
  y.dispose();
});
const ddim = (model: tf.LayersModel, steps: number) => async () => {
  await generateImages(model, {
    schedule,
    parameterization: config.parameterization ?? "x0",
    steps,
    n,
    imageShape: shape,
    seed: 0,
    batchSize: n,
  });
};
const ddim128Ms = await perImage(ddim(teacher, 128));
const ddim1Ms = await perImage(ddim(student, 1));
console.log(JSON.stringify({ n, forwardMs, ddim128Ms, ddim1Ms }));
