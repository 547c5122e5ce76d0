/**
 * Image generation from a tfjs diffusion network with the reference's strided DDIM: a
 * K-step sample of a model on a schedule table with maxIndex = T visits
 * [T, T - T/K, ..., T/K, 0] (table indices, which the network sees directly) and ends with
 * the reference's final clip, on the backend's tensors ({@link ddimTensor}: per step only the
 * forward pass and a few elementwise ops). Also counts network evaluations (NFE) and
 * wall-clock time.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { randn } from "../core/batch.ts";
import { checkPositiveInt } from "../core/checks.ts";
import { Rng } from "../core/rng.ts";
import type { Parameterization } from "../diffusion/denoiser.ts";
import type { DiscreteSchedule } from "../diffusion/schedule.ts";
import { referenceDdimPath } from "../samplers/ddim.ts";
import { ddimTensor } from "../samplers/ddim_tf.ts";
import { type ImageArray, imageArray } from "../data/images.ts";

/** Options of {@link generateImages}. */
export interface GenerateOptions {
  /** The table the model was trained on; the model sees its indices 0..maxIndex. */
  schedule: DiscreteSchedule;
  /** What the network predicts. */
  parameterization: Parameterization;
  /** Sampling steps K (= NFE); must divide schedule.maxIndex. */
  steps: number;
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

/** Samples `n` images from `model` with K-step strided DDIM (see the module doc). */
export async function generateImages(
  model: tf.LayersModel,
  o: GenerateOptions,
): Promise<Generated> {
  const T = o.schedule.maxIndex;
  if (!Number.isInteger(o.steps) || o.steps < 1 || T % o.steps !== 0) {
    throw new RangeError(
      `steps must be a positive divisor of schedule.maxIndex=${T}, got ${o.steps}`,
    );
  }
  checkPositiveInt("n", o.n);
  const [h, w, c] = o.imageShape;
  const per = h * w * c;
  const ddimOptions = {
    parameterization: o.parameterization,
    path: referenceDdimPath(o.schedule, T, T / o.steps),
    clipX0: o.clipX0 ?? true,
    clipOutput: true,
  };
  const zAll = randn([o.n, h, w, c], new Rng(o.seed));
  const out = new Float32Array(o.n * per);
  const bs = o.batchSize ?? 64;
  const t0 = performance.now();
  for (let i = 0; i < o.n; i += bs) {
    const b = Math.min(bs, o.n - i);
    const zData = Float32Array.from(zAll.data.subarray(i * per, (i + b) * per));
    const z = tf.tensor4d(zData, [b, h, w, c]);
    const x = ddimTensor(model, o.schedule, z, ddimOptions);
    out.set(await x.data(), i * per);
    tf.dispose([z, x]);
  }
  const ms = performance.now() - t0;
  return { images: imageArray(out, [o.n, h, w, c]), nfe: o.steps, msPerImage: ms / o.n };
}
