import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { batch } from "../lib/core/batch.ts";
import { ChannelBias } from "../lib/models/layers.ts";
import { tfDenoiser } from "../lib/models/tf_denoiser.ts";

await tf.setBackend("cpu");
await tf.ready();

type Sym = tf.SymbolicTensor;

/** Broadcasts a `[B]` input to a per-channel value `[B, C]` times `scale`. */
function perChannel(v: Sym, c: number, scale: number, name: string): Sym {
  const col = tf.layers.reshape({ targetShape: [1], name: `${name}_col` }).apply(v) as Sym;
  return tf.layers.dense({
    units: c,
    useBias: false,
    kernelInitializer: tf.initializers.constant({ value: scale }),
    name,
  }).apply(col) as Sym;
}

/** out = x + t (+ 100 * label): a network whose output reveals the index it was queried at. */
function probeModel(c: number, conditional: boolean): tf.LayersModel {
  const x = tf.input({ shape: [2, 3, c] });
  const t = tf.input({ shape: [] });
  let bias = perChannel(t, c, 1, "t_bias");
  const inputs = [x, t];
  if (conditional) {
    const label = tf.input({ shape: [] });
    inputs.push(label);
    bias = tf.layers.add().apply([bias, perChannel(label, c, 100, "label_bias")]) as Sym;
  }
  const out = new ChannelBias({}).apply([x, bias]) as Sym;
  return tf.model({ inputs, outputs: out });
}

function ramp(n: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => 0.25 * i - 1);
}

Deno.test("tfDenoiser queries the network at t * timeScale and returns float64", async () => {
  const model = probeModel(2, false);
  const z = batch(ramp(24), [2, 2, 3, 2]);
  const before = tf.memory().numTensors;
  const d = tfDenoiser(model, { parameterization: "eps", timeScale: 4 });
  assertEquals(d.parameterization, "eps");
  const out = await d.predict(z, 7);
  assertEquals(tf.memory().numTensors, before, "no leaked tensors");
  assertEquals(out.shape, [2, 2, 3, 2]);
  assert(out.data instanceof Float64Array);
  for (let i = 0; i < 24; i++) assertAlmostEquals(out.data[i], z.data[i] + 28, 1e-5, `out[${i}]`);
  const plain = await tfDenoiser(model, { parameterization: "x0" }).predict(z, 7);
  assertAlmostEquals(plain.data[0], z.data[0] + 7, 1e-5);
  model.dispose();
});

Deno.test("tfDenoiser passes one label or per-sample labels", async () => {
  const model = probeModel(1, true);
  const z = batch(new Float64Array(12), [2, 2, 3, 1]);
  const shared = await tfDenoiser(model, { parameterization: "x0", label: 3 }).predict(z, 2);
  assertEquals(shared.data[0], 302);
  assertEquals(shared.data[11], 302);
  const each = await tfDenoiser(model, { parameterization: "x0", label: [1, 5] }).predict(z, 2);
  assertEquals(each.data[0], 102);
  assertEquals(each.data[11], 502);
  await assertRejects(
    async () => await tfDenoiser(model, { parameterization: "x0", label: [1, 2, 3] }).predict(z, 2),
    RangeError,
    "label",
  );
  model.dispose();
});

Deno.test("tfDenoiser rejects bad options and inputs", async () => {
  const model = probeModel(1, false);
  assertThrows(() => tfDenoiser(model, { parameterization: "x0", timeScale: 0 }), RangeError);
  assertThrows(() => tfDenoiser(model, { parameterization: "z" as "x0" }), RangeError);
  const d = tfDenoiser(model, { parameterization: "x0" });
  await assertRejects(
    async () => await d.predict(batch(new Float64Array(6), [1, 6]), 1),
    RangeError,
    "[B, H, W, C]",
  );
  await assertRejects(
    async () => await d.predict(batch(new Float64Array(6), [1, 2, 3, 1]), 1.5),
    RangeError,
    "t",
  );
  model.dispose();
});
