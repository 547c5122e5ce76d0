/**
 * Deterministic DDIM (eta = 0) for tfjs networks with the tensors kept on the backend: each
 * step is one `tf.tidy` holding the network's forward pass and a few elementwise ops, with no
 * read-back until the caller reads the sample (on WebGPU the whole chain stays on the GPU).
 * The same update as {@link ddim} with eta = 0 in float32 instead of float64:
 *   (x0, eps) from the prediction at t (x0 clipped to [-1, 1] and eps re-derived if `clipX0`),
 *   z_s = sqrt(abar_s) x0 + sqrt(1 - abar_s) eps.
 * Analytic denoisers and the float64 reference use `ddim` / `referenceDdim` (ddim.ts).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Parameterization } from "../diffusion/denoiser.ts";
import { toX0AndEpsTensors } from "../diffusion/param_tf.ts";
import { alphaBarAt, type DiscreteSchedule } from "../diffusion/schedule.ts";
import { checkPath } from "../diffusion/timesteps.ts";

/** Options of {@link ddimTensor}. */
export interface DdimTensorOptions {
  /** What the network predicts. */
  readonly parameterization: Parameterization;
  /** Strictly descending schedule indices (the network sees them directly), see common.ts. */
  readonly path: readonly number[];
  /** Clip x0 to [-1, 1] at each step and re-derive eps from it. Default false. */
  readonly clipX0?: boolean;
  /** Clip the final sample to [-1, 1]. Default false. */
  readonly clipOutput?: boolean;
}

/**
 * Runs DDIM (eta = 0) with `model` (inputs `[x [B,H,W,C], t [B]]`, output `[B,H,W,C]`,
 * dropout off) from `zT` `[B, H, W, C]` along `options.path`. Returns a new float32 tensor
 * of zT's shape (the caller disposes it; `zT` is left as is). One network call per step.
 */
export function ddimTensor(
  model: tf.LayersModel,
  schedule: DiscreteSchedule,
  zT: tf.Tensor4D,
  options: DdimTensorOptions,
): tf.Tensor4D {
  const { path, parameterization: p, clipX0 = false, clipOutput = false } = options;
  checkPath(path, schedule.maxIndex);
  if (zT.rank !== 4) throw new RangeError(`zT must be [B, H, W, C], got [${zT.shape}]`);
  const b = zT.shape[0];
  let z: tf.Tensor4D = zT;
  for (let i = 0; i + 1 < path.length; i++) {
    const t = path[i], s = path[i + 1];
    const abT = new Array(b).fill(alphaBarAt(schedule, t));
    const abS = alphaBarAt(schedule, s);
    const next = tf.tidy(() => {
      const pred = model.apply([z, tf.fill([b], t, "float32")], { training: false }) as tf.Tensor;
      if (pred.shape.join() !== zT.shape.join()) {
        throw new RangeError(
          `model output must have the shape of z [${zT.shape}], got [${pred.shape}]`,
        );
      }
      let { x0, eps } = toX0AndEpsTensors(z, pred, p, abT);
      if (clipX0) {
        x0 = tf.clipByValue(x0, -1, 1);
        eps = toX0AndEpsTensors(z, x0, "x0", abT).eps;
      }
      const zs = tf.add(tf.mul(x0, Math.sqrt(abS)), tf.mul(eps, Math.sqrt(1 - abS)));
      return (clipOutput && i + 2 === path.length ? tf.clipByValue(zs, -1, 1) : zs) as tf.Tensor4D;
    });
    if (z !== zT) z.dispose();
    z = next;
  }
  return z;
}
