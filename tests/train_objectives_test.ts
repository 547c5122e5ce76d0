import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { classifierObjective, teacherObjective } from "../lib/train/objectives.ts";
import { cosineSchedule } from "../lib/diffusion/schedule.ts";
import { Rng } from "../lib/core/rng.ts";
import { type TeacherRunConfig, teacherSchedule } from "../lib/train/run_config.ts";
import { parseRunConfig } from "../lib/config/mod.ts";

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

/** pred = c * z + k * t: the network's output reads the time index it is given. */
function timeModel(c: number, k: number): tf.LayersModel {
  const x = tf.input({ shape: [2, 2, 1] });
  const t = tf.input({ shape: [] });
  const zPart = tf.layers.conv2d({
    filters: 1,
    kernelSize: 1,
    useBias: false,
    kernelInitializer: tf.initializers.constant({ value: c }),
  }).apply(x) as tf.SymbolicTensor;
  const t1 = tf.layers.reshape({ targetShape: [1] }).apply(t) as tf.SymbolicTensor;
  const tPart = tf.layers.dense({
    units: 4,
    useBias: false,
    kernelInitializer: tf.initializers.constant({ value: k }),
  }).apply(t1) as tf.SymbolicTensor;
  const tMap = tf.layers.reshape({ targetShape: [2, 2, 1] }).apply(tPart) as tf.SymbolicTensor;
  return tf.model({
    inputs: [x, t],
    outputs: tf.layers.add().apply([zPart, tMap]) as tf.SymbolicTensor,
  });
}

Deno.test("teacherObjective with timeScale: t in 0..T, table and network read at t * s", () => {
  const s = 4;
  const schedule = cosineSchedule(8, { timeScale: s }); // indices 0..32
  const [c, k] = [0.6, 0.01];
  const x0 = tf.tensor4d([0.1, -0.5, 0.9, 0.3, -1, 1, 0.2, -0.2], [2, 2, 2, 1]);
  const f = teacherObjective({ model: timeModel(c, k), schedule, lossKind: "x", timeScale: s });
  const { loss } = f({ batch: x0, step: 0, rng: new Rng(5) });
  const r = new Rng(5);
  const j = [r.int(0, 8) * s, r.int(0, 8) * s];
  const eps = r.normals(8);
  const xs = x0.dataSync();
  let want = 0;
  for (let i = 0; i < 8; i++) {
    const idx = j[Math.floor(i / 4)];
    const ab = schedule.alphasBar[idx];
    const z = Math.sqrt(ab) * xs[i] + Math.sqrt(1 - ab) * eps[i];
    want += (c * z + k * idx - xs[i]) ** 2 / 8;
  }
  assertAlmostEquals(loss.dataSync()[0], want, 1e-5);
  // The unscaled objective on the same stream differs (it reads index t, not t * s).
  const plain = teacherObjective({ model: timeModel(c, k), schedule, lossKind: "x", maxT: 8 });
  const other = plain({ batch: x0, step: 0, rng: new Rng(5) }).loss.dataSync()[0];
  assert(Math.abs(other - want) > 1e-4, `${other} vs ${want}`);
  assertThrows(
    () => teacherObjective({ model: timeModel(c, k), schedule, timeScale: 3 }),
    RangeError,
    "timeScale must divide schedule.maxIndex 32, got 3",
  );
  assertThrows(
    () => teacherObjective({ model: timeModel(c, k), schedule, timeScale: s, maxT: 9 }),
    RangeError,
    "maxT must be an integer in 0..8, got 9",
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

Deno.test("run config schedule.timeScale: parsed, table of T * s + 1 entries", () => {
  const teacher = JSON.parse(Deno.readTextFileSync("configs/mnist_teacher.json"));
  const c = parseRunConfig(
    { ...teacher, schedule: { name: "cosine", T: 8, timeScale: 4 } },
    "t.json",
  ) as TeacherRunConfig;
  const table = teacherSchedule(c);
  assertEquals(table.maxIndex, 32);
  assertEquals(
    Array.from(table.alphasBar),
    Array.from(cosineSchedule(8, { timeScale: 4 }).alphasBar),
  );
  assertEquals(teacherSchedule({ ...c, schedule: { name: "cosine", T: 8 } }).maxIndex, 8);
  assertThrows(
    () => parseRunConfig({ ...teacher, schedule: { name: "cosine", T: 8, timeScale: 0 } }, "t"),
    Error,
    "schedule.timeScale",
  );
});
