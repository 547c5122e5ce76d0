/**
 * Adapter from a tfjs network to the {@link Denoiser} contract: float64 `Batch` in, float64
 * `Batch` out, the network queried at the integer index `t * timeScale`.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Batch, batch } from "../core/batch.ts";
import type { Denoiser, Parameterization } from "../diffusion/denoiser.ts";

/** Options of {@link tfDenoiser}. */
export interface TfDenoiserOptions {
  /** What the network predicts. */
  parameterization: Parameterization;
  /**
   * The network sees the index `t * timeScale` on its own schedule table (reference
   * semantics: a student with T/2 steps uses timeScale 2). Positive integer, default 1.
   */
  timeScale?: number;
  /**
   * Class label(s) for a class-conditional network (third input): one label for the whole
   * batch, or one per sample (length B).
   */
  label?: number | ArrayLike<number>;
}

/**
 * Wraps `model` (inputs `[x [B,H,W,C] float32, t [B] float32 (, label [B])]`, output
 * `[B,H,W,C]`) as a {@link Denoiser}. `predict(z, t)` converts `z` (`[B, H, W, C]` float64)
 * to float32, runs the network with dropout off at index `t * timeScale`, and returns the
 * output as a float64 Batch of the same shape; every tensor it makes is disposed.
 */
export function tfDenoiser(model: tf.LayersModel, opts: TfDenoiserOptions): Denoiser {
  const timeScale = opts.timeScale ?? 1;
  if (!Number.isInteger(timeScale) || timeScale < 1) {
    throw new RangeError(`timeScale must be a positive integer, got ${timeScale}`);
  }
  const p = opts.parameterization;
  if (p !== "x0" && p !== "eps" && p !== "v") {
    throw new RangeError(`parameterization must be "x0", "eps" or "v", got ${p}`);
  }
  const labelsFor = (b: number): Float32Array | undefined => {
    const l = opts.label;
    if (l === undefined) return undefined;
    if (typeof l === "number") return new Float32Array(b).fill(l);
    if (l.length !== b) throw new RangeError(`label must have length B = ${b}, got ${l.length}`);
    return Float32Array.from(l);
  };
  return {
    parameterization: p,
    async predict(z: Batch, t: number): Promise<Batch> {
      if (z.shape.length !== 4) {
        throw new RangeError(`z must be [B, H, W, C], got [${z.shape}]`);
      }
      if (!Number.isInteger(t) || t < 0) {
        throw new RangeError(`t must be a non-negative integer index, got ${t}`);
      }
      const [b, h, w, c] = z.shape;
      const labels = labelsFor(b);
      const out = tf.tidy(() => {
        const inputs = [
          tf.tensor4d(Float32Array.from(z.data), [b, h, w, c]),
          tf.fill([b], t * timeScale, "float32"),
        ];
        if (labels) inputs.push(tf.tensor1d(labels));
        return model.apply(inputs, { training: false }) as tf.Tensor;
      });
      try {
        if (out.shape.length !== 4 || out.shape.some((d, i) => d !== z.shape[i])) {
          throw new RangeError(
            `model output must have the shape of z [${z.shape}], got [${out.shape}]`,
          );
        }
        return batch(Float64Array.from(await out.data()), z.shape);
      } finally {
        out.dispose();
      }
    },
  };
}
