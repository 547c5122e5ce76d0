/**
 * The parameterisation conversions of `param.ts` on tfjs tensors, for training graphs
 * (gradients flow through them). The same coefficient functions of alpha-bar are used, so
 * the float64 and the tensor paths cannot drift apart. Per-sample alpha-bar values are
 * given as numbers (`[B]`), read from the schedule table on the host.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Parameterization } from "./denoiser.ts";
import {
  type CoefPair,
  epsFromVCoef,
  epsFromX0Coef,
  qSampleCoef,
  x0FromEpsCoef,
  x0FromVCoef,
} from "./param.ts";

/**
 * `out[b] = c1(abar[b]) * first[b] + c2(abar[b]) * second[b]` for tensors `[B, ...]` of one
 * shape, with `[c1, c2] = coef(abar[b])`.
 */
export function combineTensors(
  coef: (abar: number) => CoefPair,
  alphaBar: ArrayLike<number>,
  first: tf.Tensor,
  second: tf.Tensor,
): tf.Tensor {
  const B = first.shape[0];
  if (alphaBar.length !== B) {
    throw new RangeError(`alphaBar must have length B=${B}, got ${alphaBar.length}`);
  }
  if (first.shape.join() !== second.shape.join()) {
    throw new RangeError(`tensor shapes differ: [${first.shape}] vs [${second.shape}]`);
  }
  const c1 = new Float32Array(B), c2 = new Float32Array(B);
  for (let i = 0; i < B; i++) [c1[i], c2[i]] = coef(alphaBar[i]);
  const shape = [B, ...Array(first.rank - 1).fill(1)];
  return tf.tidy(() =>
    tf.add(tf.mul(first, tf.tensor(c1, shape)), tf.mul(second, tf.tensor(c2, shape)))
  );
}

/** z_t = sqrt(abar) x0 + sqrt(1-abar) eps on tensors `[B, H, W, C]`. */
export function qSampleTensor(
  alphaBar: ArrayLike<number>,
  x0: tf.Tensor,
  eps: tf.Tensor,
): tf.Tensor {
  return combineTensors(qSampleCoef, alphaBar, x0, eps);
}

/**
 * A network output in `parameterization` turned into (x0, eps) tensors, `[B, H, W, C]`.
 * For "x0" the returned x0 is `pred` itself. Needs 0 < abar < 1 where a division occurs.
 */
export function toX0AndEpsTensors(
  z: tf.Tensor,
  pred: tf.Tensor,
  parameterization: Parameterization,
  alphaBar: ArrayLike<number>,
): { x0: tf.Tensor; eps: tf.Tensor } {
  switch (parameterization) {
    case "x0":
      return { x0: pred, eps: combineTensors(epsFromX0Coef, alphaBar, z, pred) };
    case "eps":
      return { x0: combineTensors(x0FromEpsCoef, alphaBar, z, pred), eps: pred };
    case "v":
      return {
        x0: combineTensors(x0FromVCoef, alphaBar, z, pred),
        eps: combineTensors(epsFromVCoef, alphaBar, z, pred),
      };
    default:
      throw new RangeError(
        `parameterization must be "x0", "eps" or "v", got ${JSON.stringify(parameterization)}`,
      );
  }
}
