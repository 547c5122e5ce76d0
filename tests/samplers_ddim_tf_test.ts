import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "@std/assert";
import { type Batch, randn } from "../lib/core/batch.ts";
import { Rng } from "../lib/core/rng.ts";
import { cosineSchedule } from "../lib/diffusion/schedule.ts";
import type { Parameterization } from "../lib/diffusion/denoiser.ts";
import { ddim, referenceDdim, referenceDdimPath } from "../lib/samplers/ddim.ts";
import { ddimTensor } from "../lib/samplers/ddim_tf.ts";
import { tfDenoiser } from "../lib/models/tf_denoiser.ts";
import { generateImages } from "../lib/eval/generate.ts";
import { loadLayersModelFiles } from "../lib/train/checkpoint.ts";
import { enableFastCpu } from "../lib/tfjs/fast_cpu.ts";
import "../lib/models/unet.ts"; // registers the UNet layers for loading

await tf.setBackend("cpu");
enableFastCpu();

const teacher = await loadLayersModelFiles("data/teacher/model");
const schedule = cosineSchedule(128);
const zT = randn([3, 32, 32, 1], new Rng(5));

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assertEquals(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

async function onTensors(
  path: number[],
  p: Parameterization,
  clipX0: boolean,
  clipOutput: boolean,
) {
  const z = tf.tensor4d(Float32Array.from(zT.data), [3, 32, 32, 1]);
  const before = tf.memory().numTensors;
  const x = ddimTensor(teacher, schedule, z, { parameterization: p, path, clipX0, clipOutput });
  assertEquals(tf.memory().numTensors, before + 1); // only the sample is left
  const out = await x.data();
  tf.dispose([z, x]);
  return out;
}

Deno.test("ddimTensor equals the float64 DDIM on the shipped teacher to float32 tolerance", async () => {
  for (const [p, clipX0, clipOutput] of [["x0", true, true], ["eps", false, false]] as const) {
    const path = referenceDdimPath(schedule, 128, 16); // 8 steps
    const den = tfDenoiser(teacher, { parameterization: p });
    const ref: Batch = await ddim(den, schedule, zT, { path, clipX0, clipOutput });
    const got = await onTensors(path, p, clipX0, clipOutput);
    const d = maxDiff(got, ref.data);
    const scale = maxDiff(ref.data, new Float64Array(ref.data.length));
    assert(d <= 1e-4 * Math.max(1, scale), `${p}: max |tensor - float64| = ${d} (scale ${scale})`);
  }
});

Deno.test("generateImages (tensor path) equals referenceDdim on the same starting noise", async () => {
  const g = await generateImages(teacher, {
    schedule,
    parameterization: "x0",
    steps: 4,
    n: 3,
    imageShape: [32, 32, 1],
    seed: 5,
    batchSize: 2,
  });
  assertEquals(g.nfe, 4);
  const ref = await referenceDdim(
    tfDenoiser(teacher, { parameterization: "x0" }),
    schedule,
    zT,
    128,
    32,
  );
  assert(maxDiff(g.images.data, ref.data) <= 1e-4);
});

Deno.test("ddimTensor checks the path and the shape of zT", () => {
  const z = tf.zeros([1, 32, 32, 1]) as tf.Tensor4D;
  assertThrows(
    () => ddimTensor(teacher, schedule, z, { parameterization: "x0", path: [200, 0] }),
    RangeError,
  );
  assertThrows(
    () =>
      ddimTensor(teacher, schedule, tf.zeros([32, 32, 1]) as unknown as tf.Tensor4D, {
        parameterization: "x0",
        path: [128, 0],
      }),
    RangeError,
    "zT",
  );
  z.dispose();
});
