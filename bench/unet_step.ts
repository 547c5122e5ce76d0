/**
 * One training step / forward pass of the diffusion UNet, shared by the benchmark scripts:
 * x0-prediction MSE on random data, the toolkit's Adam (lib/train/optim.ts, the optimiser every
 * training run uses). Images NHWC [B, S, S, C] float32.
 */
import * as tf from "@tensorflow/tfjs";
import { createUNet, type UNetConfig } from "../lib/models/unet.ts";
import { AdamOptimizer } from "../lib/train/optim.ts";

/** A UNet with its optimiser and fixed random inputs for one batch size. */
export interface UNetBench {
  readonly model: tf.LayersModel;
  /** One training step (forward, MSE loss, backward, Adam update); resolves to the loss. */
  step(): Promise<number>;
  /**
   * One forward pass (inference mode) of the batch; resolves to the first output value (read
   * asynchronously, which the webgpu backend needs).
   */
  forward(): Promise<number>;
  dispose(): void;
}

/** Builds the bench for `cfg` at `batch` images (seeded with `seed`). */
export function unetBench(cfg: UNetConfig, batch: number, seed = 0): UNetBench {
  if (!Number.isInteger(batch) || batch < 1) {
    throw new RangeError(`batch: expected an integer >= 1, got ${batch}`);
  }
  const model = createUNet(cfg);
  const s = cfg.imageSize;
  const x = tf.randomNormal([batch, s, s, cfg.inChannels], 0, 1, "float32", seed);
  const target = tf.randomNormal(
    [batch, s, s, cfg.outChannels ?? cfg.inChannels],
    0,
    1,
    "float32",
    seed + 1,
  );
  const t = tf.randomUniform([batch], 0, 1000, "int32", seed + 2).toFloat();
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const opt = new AdamOptimizer(vars, { kind: "adam", lr: 2e-4, totalSteps: 1_000_000 });
  return {
    model,
    async step() {
      const { value, grads } = tf.variableGrads(
        () =>
          tf.losses.meanSquaredError(
            target,
            model.apply([x, t], { training: true }) as tf.Tensor,
          ) as tf.Scalar,
        vars,
      );
      opt.apply(vars.map((w) => grads[w.name]));
      tf.dispose(Object.values(grads));
      const v = (await value.data())[0];
      value.dispose();
      return v;
    },
    async forward() {
      const y = model.apply([x, t]) as tf.Tensor;
      const v = (await y.data())[0];
      y.dispose();
      return v;
    },
    dispose() {
      tf.dispose([x, target, t]);
      model.dispose();
      opt.dispose();
    },
  };
}
