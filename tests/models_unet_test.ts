import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertEquals,
  assertGreater,
  assertGreaterOrEqual,
  assertLess,
  assertNotEquals,
  assertThrows,
} from "@std/assert";
import {
  createUNet,
  UNET_PRESETS,
  type UNetConfig,
  unetFlops,
  unetParamCount,
  unetPlan,
} from "../lib/models/unet.ts";

await tf.setBackend("cpu");
await tf.ready();

/** Small config that still has every block kind: 2 levels, attention at 4x4, classes. */
const SMALL: UNetConfig = {
  imageSize: 8,
  inChannels: 2,
  ch: 8,
  chMult: [1, 2],
  numResBlocks: 1,
  attnResolutions: [4],
  dropout: 0,
  numClasses: 3,
  minGroupChannels: 2,
};

function run(model: tf.LayersModel, inputs: tf.Tensor[], training = false): tf.Tensor {
  return model.apply(inputs, { training }) as tf.Tensor;
}

Deno.test("tiny preset has the pytorch-ddpm parameter count, derived layer by layer", () => {
  // conv k x k (cin -> cout) with bias; GroupNorm(c) has 2c; dense a -> b has a*b + b.
  const conv = (k: number, cin: number, cout: number) => k * k * cin * cout + cout;
  const gn = (c: number) => 2 * c;
  const tdim = 128;
  const res = (cin: number, cout: number) =>
    gn(cin) + conv(3, cin, cout) + conv(1, tdim, cout) + gn(cout) + conv(3, cout, cout) +
    (cin === cout ? 0 : conv(1, cin, cout));
  const attn = (c: number) => gn(c) + 4 * conv(1, c, c);
  const expected = conv(1, 32, 128) + conv(1, 128, 128) + // time MLP
    conv(3, 3, 32) + // head
    res(32, 32) + conv(3, 32, 32) + // level 0 (32x32) + downsample
    res(32, 64) + attn(64) + conv(3, 64, 64) + // level 1 (16x16, attention) + downsample
    res(64, 64) + // level 2 (8x8)
    res(64, 64) + attn(64) + res(64, 64) + // middle
    res(128, 64) + res(128, 64) + conv(3, 64, 64) + // up level 2 + upsample
    res(128, 64) + attn(64) + res(96, 64) + attn(64) + conv(3, 64, 64) + // up level 1
    res(96, 32) + res(64, 32) + // up level 0
    gn(32) + conv(3, 32, 3); // tail
  assertEquals(expected, 1_113_955);
  assertEquals(unetParamCount(UNET_PRESETS.tiny), expected);
  const model = createUNet(UNET_PRESETS.tiny);
  assertEquals(model.countParams(), expected);
  const y = tf.tidy(() => run(model, [tf.randomNormal([1, 32, 32, 3]), tf.tensor1d([17])]));
  assertEquals(y.shape, [1, 32, 32, 3]);
  assert(y.dataSync().every(Number.isFinite));
  y.dispose();
  model.dispose();
});

Deno.test("mnist preset: output shape, parameter count and FLOPs", () => {
  const cfg = UNET_PRESETS.mnist;
  const model = createUNet(cfg);
  assertEquals(model.countParams(), unetParamCount(cfg));
  assertEquals(model.countParams(), 280_177);
  assertEquals(unetFlops(cfg), 125_632_512);
  const y = tf.tidy(() => run(model, [tf.randomNormal([2, 32, 32, 1]), tf.tensor1d([0, 1000])]));
  assertEquals(y.shape, [2, 32, 32, 1]);
  y.dispose();
  model.dispose();
});

Deno.test("unetFlops matches a hand count on a one-level network", () => {
  const cfg: UNetConfig = {
    imageSize: 4,
    inChannels: 1,
    ch: 2,
    chMult: [1],
    numResBlocks: 1,
    attnResolutions: [],
    dropout: 0,
  };
  const conv = (k: number, cin: number, cout: number) => 2 * k * k * cin * cout * 16;
  const res = (cin: number, cout: number) =>
    conv(3, cin, cout) + conv(3, cout, cout) + (cin === cout ? 0 : conv(1, cin, cout));
  const attn = conv(1, 2, 8) + 2 * 2 * 16 * 16 * 2; // q,k,v,proj + two 16x16x2 matMuls
  const expected = conv(3, 1, 2) + res(2, 2) + res(2, 2) + attn + res(2, 2) +
    2 * res(4, 2) + conv(3, 2, 1);
  assertEquals(unetFlops(cfg), expected);
  assertEquals(unetPlan(cfg).map((b) => b.kind).join(","), "head,res,res,res,res,res,tail");
});

Deno.test("class-conditional UNet: shape, and the label changes the output", () => {
  const model = createUNet(SMALL);
  assertEquals(model.inputs.length, 3);
  const [y0, y1] = tf.tidy(() => {
    const x = tf.randomNormal([2, 8, 8, 2], 0, 1, "float32", 1);
    const t = tf.tensor1d([3, 9]);
    return [run(model, [x, t, tf.tensor1d([0, 1])]), run(model, [x, t, tf.tensor1d([2, 1])])];
  });
  assertEquals(y0.shape, [2, 8, 8, 2]);
  const a = y0.dataSync(), b = y1.dataSync();
  assertNotEquals(Array.from(a.slice(0, 128)), Array.from(b.slice(0, 128)), "sample 0 label");
  assertEquals(Array.from(a.slice(128)), Array.from(b.slice(128)), "sample 1 unchanged");
  tf.dispose([y0, y1]);
  model.dispose();
});

Deno.test("t reaches the output only where GroupNorm groups have >= 2 channels", () => {
  const outputs = (minGroupChannels: number) => {
    const model = createUNet({ ...SMALL, numClasses: undefined, minGroupChannels });
    // Give the residual branches (initialised at gain 1e-5) an O(1) output conv.
    for (const layer of model.layers.filter((l) => l.name.endsWith("_conv2"))) {
      const [kernel, bias] = layer.getWeights(); // the live variables, not copies
      const fresh = tf.randomNormal(kernel.shape, 0, 0.2, "float32", 9);
      layer.setWeights([fresh, bias]);
      fresh.dispose();
    }
    const [a, b] = tf.tidy(() => {
      const x = tf.randomNormal([1, 8, 8, 2], 0, 1, "float32", 8);
      return [run(model, [x, tf.tensor1d([1])]), run(model, [x, tf.tensor1d([900])])];
    });
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
    const scale = tf.tidy(() => tf.max(tf.abs(a)).dataSync()[0]);
    tf.dispose([a, b]);
    model.dispose();
    return diff / scale;
  };
  // One channel per group: the per-channel time bias is removed by the next GroupNorm, so
  // only float rounding separates t = 1 from t = 900 (relative difference ~1e-7).
  assertLess(outputs(1), 1e-4);
  assertGreater(outputs(2), 1e-2);
});

Deno.test("dropout is active only with training: true", () => {
  const model = createUNet({ ...SMALL, dropout: 0.5, numClasses: undefined });
  const [a, b, c] = tf.tidy(() => {
    const x = tf.randomNormal([1, 8, 8, 2], 0, 1, "float32", 2);
    const t = tf.tensor1d([4]);
    return [run(model, [x, t]), run(model, [x, t]), run(model, [x, t], true)];
  });
  assertEquals(Array.from(a.dataSync()), Array.from(b.dataSync()));
  assertNotEquals(Array.from(a.dataSync()), Array.from(c.dataSync()));
  tf.dispose([a, b, c]);
  model.dispose();
});

Deno.test("every trainable variable receives a non-zero gradient", () => {
  const model = createUNet(SMALL);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { grads } = tf.variableGrads(() =>
    tf.tidy(() => {
      const x = tf.randomNormal([2, 8, 8, 2], 0, 1, "float32", 3);
      const y = run(model, [x, tf.tensor1d([5, 700]), tf.tensor1d([0, 2])], true);
      return tf.losses.meanSquaredError(tf.randomNormal([2, 8, 8, 2], 0, 1, "float32", 4), y);
    }) as tf.Scalar, vars);
  const names = vars.map((v) => v.name);
  assertEquals(Object.keys(grads).sort(), [...names].sort());
  for (const name of names) {
    const g = grads[name];
    assert(g.dataSync().every(Number.isFinite), `${name}: finite`);
    assertGreater(tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]), 0, `${name}: non-zero`);
  }
  tf.dispose(grads);
  model.dispose();
});

Deno.test("a tiny UNet overfits one fixed batch (loss falls >= 10x)", () => {
  // Kept tiny (10.7k parameters, batch 2, 8x8): conv gradients are slow on the stock CPU
  // backend. It usually needs about 50 Adam steps.
  const model = createUNet({
    imageSize: 8,
    inChannels: 1,
    ch: 4,
    chMult: [1, 2],
    numResBlocks: 1,
    attnResolutions: [],
    dropout: 0,
    minGroupChannels: 2,
  });
  const x = tf.randomNormal([2, 8, 8, 1], 0, 1, "float32", 5);
  const target = tf.randomUniform([2, 8, 8, 1], -1, 1, "float32", 6);
  const t = tf.tensor1d([1, 10]);
  const opt = tf.train.adam(1e-2);
  const loss = () => tf.losses.meanSquaredError(target, run(model, [x, t], true)) as tf.Scalar;
  const first = tf.tidy(() => loss().dataSync()[0]);
  let last = first;
  for (let step = 0; step < 150 && last > first / 10; step++) {
    const l = opt.minimize(loss, true)!;
    last = l.dataSync()[0];
    l.dispose();
  }
  assertGreaterOrEqual(first / last, 10, `loss ${first} -> ${last}`);
  tf.dispose([x, target, t]);
  opt.dispose();
  model.dispose();
});

Deno.test("save -> tf.loadLayersModel gives bit-identical outputs", async () => {
  const model = createUNet({ ...SMALL, dropout: 0.1 });
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler((a) => {
    artifacts = a;
    return Promise.resolve({
      modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" },
    });
  }));
  assert(artifacts, "artifacts saved");
  const json = JSON.stringify(artifacts.modelTopology);
  for (
    const cls of [
      "RddGroupNorm",
      "RddSinusoidalEmbedding",
      "RddChannelBias",
      "RddSpatialSelfAttention",
    ]
  ) {
    assert(json.includes(cls), `topology mentions ${cls}`);
  }
  const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  assertEquals(loaded.countParams(), model.countParams());
  const [a, b] = tf.tidy(() => {
    const inputs = [
      tf.randomNormal([2, 8, 8, 2], 0, 1, "float32", 7),
      tf.tensor1d([2, 31]),
      tf.tensor1d([1, 0]),
    ];
    return [run(model, inputs), run(loaded, inputs)];
  });
  assertEquals(Array.from(b.dataSync()), Array.from(a.dataSync()));
  tf.dispose([a, b]);
  model.dispose();
  loaded.dispose();
});

Deno.test("bad configs throw RangeError naming the parameter", () => {
  assertThrows(
    () => unetPlan({ ...SMALL, imageSize: 6, chMult: [1, 2, 2] }),
    RangeError,
    "imageSize",
  );
  assertThrows(() => unetPlan({ ...SMALL, ch: 7 }), RangeError, "ch must be even");
  assertThrows(() => unetPlan({ ...SMALL, chMult: [] }), RangeError, "chMult");
  assertThrows(() => unetPlan({ ...SMALL, dropout: 1 }), RangeError, "dropout");
  assertThrows(() => unetPlan({ ...SMALL, numClasses: 0 }), RangeError, "numClasses");
  assertThrows(
    () => unetPlan({ ...SMALL, parameterization: "score" as "x0" }),
    RangeError,
    "parameterization",
  );
});
