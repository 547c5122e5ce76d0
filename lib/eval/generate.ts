/**
 * Image generation from a tfjs diffusion network with the reference's strided DDIM: a
 * K-step sample of a model on a schedule table with maxIndex = T visits
 * [T, T - T/K, ..., T/K, 0] (table indices, which the network sees directly) and ends with
 * the reference's final clip, on the backend's tensors ({@link ddimTensor}: per step only the
 * forward pass and a few elementwise ops). Also counts network evaluations (NFE) and
 * wall-clock time.
 *
 * `sampler: "dpm-solver++"` samples with DPM-Solver++(2M) ({@link dpmSolverPp2m}) instead,
 * through the float64 {@link tfDenoiser} adapter (each step reads the network's output back
 * to the host, which the tensor-native DDIM does not; its ms/image includes that).
 * `path: "logsnr"` walks {@link logSnrTimesteps} (K steps uniform in logSNR, landing on
 * index 0) instead of the strided path.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { batch, randn } from "../core/batch.ts";
import { checkPositiveInt } from "../core/checks.ts";
import { Rng } from "../core/rng.ts";
import type { Parameterization } from "../diffusion/denoiser.ts";
import type { DiscreteSchedule } from "../diffusion/schedule.ts";
import { logSnrTimesteps } from "../diffusion/timesteps.ts";
import { referenceDdimPath } from "../samplers/ddim.ts";
import { ddimTensor } from "../samplers/ddim_tf.ts";
import { dpmSolverPp2m } from "../samplers/dpm_solver.ts";
import { tfDenoiser } from "../models/tf_denoiser.ts";
import { type ImageArray, imageArray } from "../data/images.ts";

/** Samplers of {@link generateImages}: deterministic DDIM, or DPM-Solver++(2M). */
export type SamplerName = "ddim" | "dpm-solver++";

/** Timestep paths of {@link generateImages}: strided (T / K apart) or uniform in logSNR. */
export type PathName = "stride" | "logsnr";

/** Options of {@link generateImages}. */
export interface GenerateOptions {
  /** The table the model was trained on; the model sees its indices 0..maxIndex. */
  schedule: DiscreteSchedule;
  /** What the network predicts. */
  parameterization: Parameterization;
  /** Sampling steps K (= NFE); must divide schedule.maxIndex on the strided path. */
  steps: number;
  /** Sampler. Default "ddim". */
  sampler?: SamplerName;
  /** Timestep path. Default "stride" (the reference's strided path). */
  path?: PathName;
  /** Number of images. */
  n: number;
  /** Image shape [H, W, C]. */
  imageShape: [number, number, number];
  /** Seed of the starting noise (the same seed gives the same z_T for every model). */
  seed: number | string;
  /** Clip x0 predictions to [-1, 1] at each step (the reference's `clip`). Default true. */
  clipX0?: boolean;
  /** Images per network call. Default 64. */
  batchSize?: number;
}

/** Generated images `[n, H, W, C]` (float32 in [-1, 1]) with their cost. */
export interface Generated {
  /** The images, `[n, H, W, C]`. */
  images: ImageArray;
  /** Network evaluations per image. */
  nfe: number;
  /** Wall-clock milliseconds per image (sampling only). */
  msPerImage: number;
}

/** The K-step path of {@link GenerateOptions.path} on `schedule` (table indices). */
function samplingPath(schedule: DiscreteSchedule, steps: number, path: PathName): number[] {
  const T = schedule.maxIndex;
  if (path === "logsnr") return logSnrTimesteps(schedule, steps);
  if (path !== "stride") throw new RangeError(`path must be "stride" or "logsnr", got ${path}`);
  if (!Number.isInteger(steps) || steps < 1 || T % steps !== 0) {
    throw new RangeError(
      `steps must be a positive divisor of schedule.maxIndex=${T}, got ${steps}`,
    );
  }
  return referenceDdimPath(schedule, T, T / steps);
}

/** Samples `n` images from `model` with K steps of the chosen sampler (see the module doc). */
export async function generateImages(
  model: tf.LayersModel,
  o: GenerateOptions,
): Promise<Generated> {
  const sampler = o.sampler ?? "ddim";
  if (sampler !== "ddim" && sampler !== "dpm-solver++") {
    throw new RangeError(`sampler must be "ddim" or "dpm-solver++", got ${sampler}`);
  }
  checkPositiveInt("n", o.n);
  const [h, w, c] = o.imageShape;
  const per = h * w * c;
  const options = {
    parameterization: o.parameterization,
    path: samplingPath(o.schedule, o.steps, o.path ?? "stride"),
    clipX0: o.clipX0 ?? true,
    clipOutput: true,
  };
  const denoiser = tfDenoiser(model, { parameterization: o.parameterization });
  const zAll = randn([o.n, h, w, c], new Rng(o.seed));
  const out = new Float32Array(o.n * per);
  const bs = o.batchSize ?? 64;
  const t0 = performance.now();
  for (let i = 0; i < o.n; i += bs) {
    const b = Math.min(bs, o.n - i);
    const zSlice = zAll.data.subarray(i * per, (i + b) * per);
    if (sampler === "dpm-solver++") {
      const zT = batch(Float64Array.from(zSlice), [b, h, w, c]);
      out.set((await dpmSolverPp2m(denoiser, o.schedule, zT, options)).data, i * per);
      continue;
    }
    const z = tf.tensor4d(Float32Array.from(zSlice), [b, h, w, c]);
    const x = ddimTensor(model, o.schedule, z, options);
    out.set(await x.data(), i * per);
    tf.dispose([z, x]);
  }
  const ms = performance.now() - t0;
  return { images: imageArray(out, [o.n, h, w, c]), nfe: o.steps, msPerImage: ms / o.n };
}
