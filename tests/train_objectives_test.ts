import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertThrows } from "@std/assert";
import { classifierObjective, teacherObjective } from "../lib/train/objectives.ts";
import { cosineSchedule } from "../lib/diffusion/schedule.ts";
import { Rng } from "../lib/core/rng.ts";

await tf.setBackend("cpu");

/** pred = c * z (a 1x1 conv with constant kernel c, no bias); the t input is unused. */
function scaleModel(c: number): tf.LayersModel {
  const x = tf.input({ shape: [2, 2, 1] });
  const t = tf.input({ shape: [] });
  const y = tf.layers.conv2d({
    filters: 1,
    kernelSize: 1,
    useBias: false,
    kernelInitializer: tf.initializers.constant({ value: c }),
  }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: [x, t], outputs: y });
}

Deno.test("teacherObjective: x-MSE equals the hand computation from the same RNG stream", () => {
  const schedule = cosineSchedule(16);
  const c = 0.7;
  const x0 = tf.tensor4d([0.1, -0.5, 0.9, 0.3, -1, 1, 0.2, -0.2], [2, 2, 2, 1]);
  const f = teacherObjective({ model: scaleModel(c), schedule, lossKind: "x" });
  const { loss } = f({ batch: x0, step: 0, rng: new Rng(11) });
  // Same draws as the objective: two t's, then 8 normals.
  const r = new Rng(11);
  const t = [r.int(0, 16), r.int(0, 16)];
  const eps = r.normals(8);
  const xs = x0.dataSync();
  let want = 0;
  for (let i = 0; i < 8; i++) {
    const ab = schedule.alphasBar[t[Math.floor(i / 4)]];
    const z = Math.sqrt(ab) * xs[i] + Math.sqrt(1 - ab) * eps[i];
    want += (c * z - xs[i]) ** 2 / 8;
  }
  assertAlmostEquals(loss.dataSync()[0], want, 1e-5);
  assertThrows(
    () => teacherObjective({ model: scaleModel(1), schedule, maxT: 17 }),
    RangeError,
    "maxT",
  );
});

Deno.test("classifierObjective: cross-entropy and accuracy of fixed logits", () => {
  const x = tf.input({ shape: [2] });
  const logits = tf.layers.dense({ units: 2, useBias: false, kernelInitializer: "identity" })
    .apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: x, outputs: logits });
  const f = classifierObjective(model, 2);
  const batch = {
    x: tf.tensor2d([[2, 0], [0, 1]]) as unknown as tf.Tensor4D,
    y: tf.tensor1d([0, 0], "int32"),
  };
  const { loss, metrics } = f({ batch, step: 0, rng: new Rng(1) });
  const ce = (a: number, b: number) => -a + Math.log(Math.exp(a) + Math.exp(b));
  assertAlmostEquals(loss.dataSync()[0], (ce(2, 0) + ce(0, 1)) / 2, 1e-6);
  assertAlmostEquals(metrics!.accuracy.dataSync()[0], 0.5, 1e-7);
});
