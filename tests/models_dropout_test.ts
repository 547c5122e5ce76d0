import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertNotEquals,
  assertThrows,
} from "@std/assert";
import {
  dropoutMask,
  SeededDropout,
  seededDropout,
  stepDropoutSeed,
  withDropoutSeed,
} from "../lib/models/dropout.ts";
import { selectBackend } from "../lib/tfjs/backend.ts";
import { disableFastCpu, enableFastCpu, fastCpuNative } from "../lib/tfjs/fast_cpu.ts";

await tf.setBackend("cpu");

Deno.test("dropoutMask: keep rate, values and independence of neighbours", () => {
  for (const rate of [0.1, 0.5]) {
    const n = 1 << 20;
    const m = dropoutMask(n, rate, 12345, 0);
    let kept = 0, bothKept = 0;
    for (let i = 0; i < n; i++) {
      if (m[i] !== 0) {
        assertEquals(m[i], Math.fround(1 / (1 - rate)));
        kept++;
        if (i + 1 < n && m[i + 1] !== 0) bothKept++;
      }
    }
    const keep = 1 - rate;
    const sd = Math.sqrt(rate * keep / n);
    assert(Math.abs(kept / n - keep) < 5 * sd, `keep rate ${kept / n} vs ${keep}`);
    // Neighbouring elements are independent: P(both kept) = keep^2.
    assert(Math.abs(bothKept / (n - 1) - keep * keep) < 5 * Math.sqrt(keep * keep / n));
  }
});

/** Runs `check` with the JS loop, then with the fast CPU path's native kernel. */
function onBothPaths(check: (path: string) => void): void {
  check("js");
  const status = enableFastCpu();
  try {
    assert(fastCpuNative(), `native kernels: ${status.nativeReason}`);
    check("native");
  } finally {
    disableFastCpu();
  }
}

Deno.test("dropoutMask: element i is kept iff the uint32 hash of (seed, call, i) >= rate * 2^32 (JS and native)", () =>
  onBothPaths((path) => {
    // The documented stream, written plainly with uint32 values (the kernel works in int32), so
    // that an optimisation of the loop cannot change the masks of recorded runs.
    const mix = (x: number) => {
      x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
      x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
      return (x ^ (x >>> 16)) >>> 0;
    };
    const golden = 0x9e3779b9;
    for (
      const [rate, seed, call] of [[0.1, 7, 0], [0.5, 2 ** 32 - 1, 3], [0.9, 0, 11], [1e-9, 5, 1]]
    ) {
      const key = mix((seed >>> 0) ^ mix(Math.imul(call + 1, golden)));
      const scale = Math.fround(1 / (1 - rate));
      const m = dropoutMask(5000, rate, seed, call);
      m.forEach((v, i) => {
        const kept = mix(key + Math.imul(i, golden)) >= Math.round(rate * 2 ** 32);
        assertEquals(v, kept ? scale : 0, `${path}: rate ${rate} element ${i}`);
      });
    }
  }));

Deno.test("dropoutMask: the native kernel's masks equal the JS loop's over 2^20 elements", () => {
  const js = [0.1, 0.5].map((rate) => dropoutMask(1 << 20, rate, 99, 4));
  enableFastCpu();
  try {
    assert(fastCpuNative());
    [0.1, 0.5].forEach((rate, k) => assertEquals(dropoutMask(1 << 20, rate, 99, 4), js[k]));
  } finally {
    disableFastCpu();
  }
});

Deno.test("dropoutMask: same stream same mask; other seed, call or step another mask", () => {
  const a = dropoutMask(4096, 0.1, 7, 3);
  assertEquals(a, dropoutMask(4096, 0.1, 7, 3));
  const differs = (b: Float32Array) => b.some((v, i) => v !== a[i]);
  assert(differs(dropoutMask(4096, 0.1, 8, 3)));
  assert(differs(dropoutMask(4096, 0.1, 7, 4)));
  assertNotEquals(stepDropoutSeed(1, 0), stepDropoutSeed(1, 1));
  assertNotEquals(stepDropoutSeed(1, 0), stepDropoutSeed(2, 0));
  assertEquals(dropoutMask(10, 0, 1, 0), new Float32Array(10).fill(1));
  assertThrows(() => dropoutMask(10, 1, 1, 0), RangeError, "rate");
  assertThrows(() => stepDropoutSeed(1, -1), RangeError, "step");
});

Deno.test("seededDropout: calls in a scope take masks 0, 1, ... of its seed; scopes restore", () => {
  const x = tf.ones([2, 3, 4, 5]);
  const [y0, y1, again] = withDropoutSeed(99, () => {
    const y0 = seededDropout(x, 0.3);
    const inner = withDropoutSeed(5, () => seededDropout(x, 0.3));
    const y1 = seededDropout(x, 0.3);
    inner.dispose();
    return [y0, y1, withDropoutSeed(99, () => seededDropout(x, 0.3))];
  });
  assertEquals(y0.dataSync(), dropoutMask(120, 0.3, 99, 0));
  assertEquals(y1.dataSync(), dropoutMask(120, 0.3, 99, 1));
  assertEquals(again.dataSync(), y0.dataSync());
  tf.dispose([x, y0, y1, again]);
});

Deno.test("seededDropout: forward and gradient equal tfjs' dropout formula with the same mask", () => {
  const rate = 0.2;
  const x = tf.randomNormal([3, 8, 8, 6], 0, 1, "float32", 1);
  const w = tf.randomNormal([3, 8, 8, 6], 0, 1, "float32", 2);
  const keep01 = tf.tensor(dropoutMask(x.size, rate, 42, 0).map((v) => v > 0 ? 1 : 0), x.shape);
  // tfjs' own dropout: x * keep / (1 - rate), keep in {0, 1}.
  const ref = (v: tf.Tensor) => tf.div(tf.mul(v, keep01), 1 - rate);
  const ours = (v: tf.Tensor) => withDropoutSeed(42, () => seededDropout(v, rate));
  const close = (a: tf.Tensor, b: tf.Tensor) => {
    const d = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
    assert(d <= 1e-6, `max difference ${d}`);
  };
  close(ours(x), ref(x));
  const gOurs = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(ours(v), w)))(x);
  const gRef = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(ref(v), w)))(x);
  close(gOurs, gRef);
  // Finite differences of the same scalar along a random direction.
  const dir = tf.randomNormal(x.shape, 0, 1, "float32", 3);
  const f = (v: tf.Tensor) => tf.sum(tf.mul(ours(v), w)).dataSync()[0];
  const h = 1e-2;
  const numeric = (f(tf.add(x, tf.mul(dir, h))) - f(tf.sub(x, tf.mul(dir, h)))) / (2 * h);
  assertAlmostEquals(tf.sum(tf.mul(gOurs, dir)).dataSync()[0], numeric, 1e-2 * Math.abs(numeric));
});

Deno.test("SeededDropout layer: identity unless training; model.json round trip", async () => {
  const input = tf.input({ shape: [16] });
  const out = new SeededDropout({ rate: 0.5, name: "drop" }).apply(input) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  const x = tf.ones([4, 16]);
  assertEquals((model.apply(x, { training: false }) as tf.Tensor).dataSync(), x.dataSync());
  const y = withDropoutSeed(3, () => model.apply(x, { training: true }) as tf.Tensor);
  assertEquals(y.dataSync(), dropoutMask(64, 0.5, 3, 0));
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler((a) => {
    artifacts = a;
    return Promise.resolve({
      modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" },
    });
  }));
  const back = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
  const y2 = withDropoutSeed(3, () => back.apply(x, { training: true }) as tf.Tensor);
  assertEquals(y2.dataSync(), y.dataSync());
  assertThrows(() => new SeededDropout({ rate: -0.1 }), RangeError, "rate");
});

Deno.test("seededDropout on the wasm backend: the cpu masks, and dy * mask as the gradient", async () => {
  await selectBackend({ prefer: "wasm" });
  try {
    assertEquals(tf.getBackend(), "wasm");
    const x = tf.ones([2, 4, 4, 3]);
    const mask = dropoutMask(96, 0.25, 8, 0);
    assertEquals(withDropoutSeed(8, () => seededDropout(x, 0.25)).dataSync(), mask);
    const g = tf.grad((v: tf.Tensor) => tf.sum(withDropoutSeed(8, () => seededDropout(v, 0.25))))(
      x,
    );
    assertEquals(g.dataSync(), mask);
  } finally {
    await tf.setBackend("cpu");
  }
});

Deno.test("seededDropout: a gradient step leaves no tensors behind", () => {
  const x = tf.variable(tf.ones([4, 8]));
  const f = () => tf.sum(withDropoutSeed(1, () => seededDropout(x, 0.5))) as tf.Scalar;
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    const { value, grads } = tf.variableGrads(f);
    tf.dispose([value, ...Object.values(grads)]);
  }
  assertEquals(tf.memory().numTensors, before);
  x.dispose();
});
