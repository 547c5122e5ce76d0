import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertLess } from "@std/assert";
import { Rng } from "../lib/core/rng.ts";
import {
  disableFastCpu,
  enableFastCpu,
  FAST_CPU_KERNELS,
  fastCpuFallbacks,
} from "../lib/tfjs/fast_cpu.ts";
import { col2imAdd, type ConvGeometry, im2col } from "../lib/tfjs/kernels/im2col.ts";
import { planMatMul, prefillRows } from "../lib/tfjs/kernels/matmul.ts";
import { loadBlas } from "../lib/tfjs/kernels/blas.ts";
import { Scratch } from "../lib/tfjs/kernels/cpu_access.ts";
import {
  conv2dBackpropFilter,
  conv2dBackpropInput,
  conv2dForward,
  convGeometry,
} from "../lib/tfjs/kernels/conv.ts";

await tf.setBackend("cpu");
await tf.ready();

function randn(rng: Rng, shape: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from(rng.normals(n)), shape);
}

/** max |a - b| / (max |b| + 1e-6): relative error in the scale of the reference. */
function relErr(a: tf.Tensor, b: tf.Tensor): number {
  assertEquals(a.shape, b.shape);
  const av = a.dataSync(), bv = b.dataSync();
  let num = 0, den = 0;
  for (let i = 0; i < av.length; i++) {
    num = Math.max(num, Math.abs(av[i] - bv[i]));
    den = Math.max(den, Math.abs(bv[i]));
  }
  return num / (den + 1e-6);
}

function totalFallbacks(): number {
  return Object.values(fastCpuFallbacks()).reduce((a, b) => a + b, 0);
}

/** Stock-kernel fallbacks during the fast half of the last {@link stockAndFast}. */
let lastFallbacks = 0;

/** Runs `f` with the stock kernels and with the fast ones; returns [stock, fast] outputs. */
function stockAndFast(f: () => tf.Tensor[]): [tf.Tensor[], tf.Tensor[]] {
  disableFastCpu();
  const stock = f();
  const status = enableFastCpu();
  assert(status.enabled, `fast cpu not enabled: ${status.reason}`);
  const before = totalFallbacks();
  const fast = f();
  disableFastCpu();
  lastFallbacks = totalFallbacks() - before;
  return [stock, fast];
}

function assertClose(
  stock: tf.Tensor[],
  fast: tf.Tensor[],
  what: string,
  expectFallback = false,
): void {
  assertEquals(lastFallbacks > 0, expectFallback, `${what}: ${lastFallbacks} stock fallbacks`);
  assertEquals(stock.length, fast.length);
  for (let i = 0; i < stock.length; i++) {
    const e = relErr(fast[i], stock[i]);
    assertLess(e, 1e-4, `${what} output ${i}: relative error ${e}`);
  }
  tf.dispose([...stock, ...fast]);
}

interface ConvCase {
  b: number;
  h: number;
  w: number;
  cin: number;
  cout: number;
  k: number;
  s: 1 | 2;
  pad: "same" | "valid" | number | [
    [number, number],
    [number, number],
    [number, number],
    [number, number],
  ];
}

const CONV_CASES: ConvCase[] = [
  { b: 1, h: 7, w: 9, cin: 3, cout: 5, k: 3, s: 1, pad: "same" },
  { b: 3, h: 8, w: 8, cin: 6, cout: 7, k: 3, s: 2, pad: "same" },
  { b: 2, h: 9, w: 7, cin: 5, cout: 3, k: 3, s: 1, pad: "valid" },
  { b: 4, h: 9, w: 10, cin: 7, cout: 6, k: 3, s: 2, pad: "valid" },
  { b: 2, h: 6, w: 6, cin: 5, cout: 9, k: 1, s: 1, pad: "same" },
  { b: 2, h: 7, w: 6, cin: 3, cout: 4, k: 2, s: 2, pad: 1 },
  { b: 5, h: 5, w: 5, cin: 4, cout: 2, k: 5, s: 1, pad: "same" },
  { b: 2, h: 6, w: 5, cin: 3, cout: 4, k: 3, s: 1, pad: [[0, 0], [2, 1], [0, 1], [0, 0]] },
  { b: 2, h: 7, w: 7, cin: 5, cout: 3, k: 3, s: 2, pad: [[0, 0], [1, 0], [0, 2], [0, 0]] },
  { b: 32, h: 8, w: 8, cin: 5, cout: 6, k: 3, s: 1, pad: "same" },
  { b: 32, h: 9, w: 9, cin: 3, cout: 7, k: 3, s: 2, pad: "valid" },
  // channel counts oneDNN has direct kernels for, and the UNet's last convolution (one output
  // channel), which the fast path runs as GEMMs
  { b: 2, h: 8, w: 8, cin: 16, cout: 16, k: 3, s: 1, pad: "same" },
  { b: 2, h: 8, w: 8, cin: 16, cout: 1, k: 3, s: 1, pad: "same" },
];

Deno.test("fast cpu: enable registers all kernels and disable restores the stock ones", () => {
  const before = FAST_CPU_KERNELS.map((n) => tf.getKernel(n, "cpu")!.kernelFunc);
  const status = enableFastCpu();
  assert(status.enabled, status.reason);
  assertEquals([...status.registered], [...FAST_CPU_KERNELS]);
  assertEquals(enableFastCpu(), status, "second enable must be a no-op");
  // glibc's mallopt accepted both settings (this is a glibc Linux machine)
  assertEquals(status.mallocTuned, Deno.build.os === "linux");
  FAST_CPU_KERNELS.forEach((n, i) => assert(tf.getKernel(n, "cpu")!.kernelFunc !== before[i], n));
  disableFastCpu();
  FAST_CPU_KERNELS.forEach((n, i) => assert(tf.getKernel(n, "cpu")!.kernelFunc === before[i], n));
});

Deno.test("fast cpu: missing library keeps the stock kernels and names the reason", () => {
  const before = tf.getKernel("Conv2D", "cpu")!.kernelFunc;
  const status = enableFastCpu({ libraryPaths: ["/nonexistent/libopenblas.so"] });
  assertEquals(status.enabled, false);
  assert(status.reason!.includes("/nonexistent/libopenblas.so"), status.reason);
  assert(tf.getKernel("Conv2D", "cpu")!.kernelFunc === before);
});

Deno.test("fast cpu: conv2d, its input and filter gradients match the stock kernels", () => {
  const rng = new Rng(1);
  for (const c of CONV_CASES) {
    const x = randn(rng, [c.b, c.h, c.w, c.cin]);
    const f = randn(rng, [c.k, c.k, c.cin, c.cout]);
    const y = tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.s, c.pad);
    const dy = randn(rng, y.shape);
    const [stock, fast] = stockAndFast(() => [
      tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.s, c.pad),
      tf.conv2dTranspose(
        dy as tf.Tensor4D,
        f as tf.Tensor4D,
        x.shape as [number, number, number, number],
        c.s,
        c.pad,
      ),
      tf.grad((w: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.s, c.pad), dy))
      )(f),
    ]);
    assertClose(stock, fast, JSON.stringify(c));
    tf.dispose([x, f, y, dy]);
  }
});

Deno.test("fast cpu: fused conv2d with bias and activations matches the stock kernel", () => {
  const rng = new Rng(2);
  const acts = ["linear", "relu", "relu6", "elu", "leakyrelu", "sigmoid", "prelu"] as const;
  for (
    const [activation, cin, cout] of [
      ...acts.map((a) => [a, 3, 5] as const),
      ["relu", 16, 16] as const,
    ]
  ) {
    const x = randn(rng, [2, 6, 5, cin]) as tf.Tensor4D;
    const f = randn(rng, [3, 3, cin, cout]) as tf.Tensor4D;
    const bias = randn(rng, [cout]);
    const alpha = activation === "prelu" ? randn(rng, [cout]) : undefined;
    const [stock, fast] = stockAndFast(() => [
      tf.fused.conv2d({
        x,
        filter: f,
        strides: 2,
        pad: "same",
        bias,
        activation,
        preluActivationWeights: alpha,
        leakyreluAlpha: 0.3,
      }),
    ]);
    assertClose(stock, fast, `${activation} ${cin} -> ${cout}`, activation === "prelu");
    tf.dispose([x, f, bias, ...(alpha ? [alpha] : [])]);
  }
});

Deno.test("fast cpu: batched and fused matmul match the stock kernels", () => {
  const rng = new Rng(3);
  const cases: [number[], number[], boolean, boolean][] = [
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false],
    [[5, 7], [3, 7], false, true],
    [[4, 7, 5], [4, 3, 7], true, true],
    // equal batches: one oneDNN matmul (every transpose, a rank-4 batch)
    [[3, 5, 7], [3, 7, 6], false, false],
    [[3, 7, 5], [3, 7, 6], true, false],
    [[3, 5, 7], [3, 6, 7], false, true],
    [[2, 3, 5, 7], [2, 3, 7, 6], false, false],
    [[8, 64, 16], [8, 64, 16], false, true],
    // a tall product large enough for the bias to be a real epilogue
    [[300, 24], [24, 19], false, false],
    [[4, 5, 7], [7, 6], false, false],
    [[2, 3, 5, 7], [1, 7, 6], false, false],
    [[1, 7, 5], [3, 7, 6], true, false],
  ];
  for (const [as, bs, ta, tb] of cases) {
    const a = randn(rng, as), b = randn(rng, bs);
    const n = tb ? bs[bs.length - 2] : bs[bs.length - 1];
    const bias = randn(rng, [n]);
    const [stock, fast] = stockAndFast(() => [
      tf.matMul(a, b, ta, tb),
      tf.fused.matMul({ a, b, transposeA: ta, transposeB: tb, bias, activation: "relu" }),
    ]);
    assertClose(stock, fast, `${as} x ${bs} ${ta} ${tb}`);
    tf.dispose([a, b, bias]);
  }
});

Deno.test("prefillRows: every row is the bias (or the scalar), for any row count", () => {
  for (const rows of [0, 1, 2, 5, 8, 13]) {
    const out = new Float32Array(rows * 3).fill(NaN);
    prefillRows(out, new Float32Array([1, 2, 3]), 3);
    assertEquals(Array.from(out), Array.from({ length: rows * 3 }, (_, i) => (i % 3) + 1));
  }
  const s = new Float32Array(5).fill(NaN);
  prefillRows(s, new Float32Array([7]), 5);
  assertEquals(Array.from(s), [7, 7, 7, 7, 7]);
});

Deno.test("fast cpu: gradients of a small conv net (tf.grads) match the stock path", () => {
  const rng = new Rng(4);
  const x = randn(rng, [3, 8, 8, 3]) as tf.Tensor4D;
  const w1 = randn(rng, [3, 3, 3, 6]), w2 = randn(rng, [3, 3, 6, 5]);
  const w3 = randn(rng, [5 * 4 * 4, 2]), b1 = randn(rng, [6]);
  const loss = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => {
    const h1 = tf.fused.conv2d({
      x,
      filter: a as tf.Tensor4D,
      strides: 1,
      pad: "same",
      bias: d,
      activation: "linear",
    });
    const h2 = tf.conv2d(tf.sigmoid(h1), b as tf.Tensor4D, 2, "same");
    const z = tf.matMul(tf.reshape(tf.tanh(h2), [3, 80]), c);
    return tf.mean(tf.square(z));
  };
  const [stock, fast] = stockAndFast(() => tf.grads(loss)([w1, w2, w3, b1]));
  assertClose(stock, fast, "grads");
  tf.dispose([x, w1, w2, w3, b1]);
});

Deno.test("im2col / col2imAdd are adjoint: <im2col(x), c> = <x, col2im(c)>", () => {
  const g: ConvGeometry = {
    batch: 2,
    inH: 5,
    inW: 6,
    inC: 3,
    outH: 3,
    outW: 3,
    outC: 1,
    kH: 3,
    kW: 3,
    strideH: 2,
    strideW: 2,
    padTop: 1,
    padLeft: 1,
  };
  const rng = new Rng(5);
  const x = Float32Array.from(rng.normals(2 * 5 * 6 * 3));
  const c = Float32Array.from(rng.normals(2 * 3 * 3 * 27));
  const cols = new Float32Array(c.length);
  im2col(x, g, 0, 2, cols);
  const dx = new Float32Array(x.length);
  col2imAdd(c, g, 0, 2, dx);
  let lhs = 0, rhs = 0;
  for (let i = 0; i < c.length; i++) lhs += cols[i] * c[i];
  for (let i = 0; i < x.length; i++) rhs += x[i] * dx[i];
  assertLess(Math.abs(lhs - rhs), 1e-3 * (1 + Math.abs(lhs)));
  // Top-left output, top-left tap sits in the padding: zero.
  assertEquals(cols[0], 0);
  // Top-left output, centre tap (ky = kx = 1) reads x[0, 0, 0, :].
  assertEquals(Array.from(cols.subarray(4 * 3, 4 * 3 + 3)), Array.from(x.subarray(0, 3)));
});

Deno.test("planMatMul rejects mismatched inner dimensions and leaves odd broadcasts to tfjs", () => {
  let threw = false;
  try {
    planMatMul([2, 3], [4, 5], false, false);
  } catch (e) {
    threw = e instanceof RangeError && e.message.includes("inner dimension");
  }
  assert(threw, "expected a RangeError naming the inner dimension");
  assertEquals(planMatMul([2, 3, 4], [3, 4, 5], false, false), undefined);
  assertEquals(planMatMul([2, 3, 4], [4, 5], false, false)!.outShape, [2, 3, 5]);
});

Deno.test("fast cpu: 500 training steps of a small conv net keep tf.memory().numTensors flat", () => {
  const status = enableFastCpu();
  assert(status.enabled, status.reason);
  try {
    const rng = new Rng(6);
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 6, kernelSize: 3, padding: "same" }),
        tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, activation: "relu" }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 4 }),
      ],
    });
    const opt = tf.train.adam(1e-3);
    const x = randn(rng, [4, 8, 8, 3]), y = randn(rng, [4, 4]);
    const step = () =>
      tf.dispose(
        opt.minimize(() => tf.losses.meanSquaredError(y, model.apply(x) as tf.Tensor), true)!,
      );
    for (let i = 0; i < 5; i++) step();
    const base = tf.memory().numTensors;
    const first = tf.tidy(() =>
      tf.losses.meanSquaredError(y, model.apply(x) as tf.Tensor).dataSync()[0]
    );
    for (let i = 0; i < 500; i++) step();
    assertEquals(tf.memory().numTensors, base);
    const last = tf.tidy(() =>
      tf.losses.meanSquaredError(y, model.apply(x) as tf.Tensor).dataSync()[0]
    );
    assertLess(last, first, "training must reduce the loss");
    tf.dispose([x, y]);
    model.dispose();
    opt.dispose();
  } finally {
    disableFastCpu();
  }
});

Deno.test("conv kernels give the same result when split into one-image chunks", () => {
  const blas = loadBlas();
  const scratch: [Scratch, Scratch] = [new Scratch(), new Scratch()];
  const rng = new Rng(7);
  for (const attrs of [{ strides: 1, pad: "same" }, { strides: 2, pad: "valid" }] as const) {
    const g = convGeometry([3, 7, 6, 4], [3, 3, 4, 5], attrs)!;
    const x = Float32Array.from(rng.normals(3 * 7 * 6 * 4));
    const w = Float32Array.from(rng.normals(3 * 3 * 4 * 5));
    const dy = Float32Array.from(rng.normals(3 * g.outH * g.outW * 5));
    const pairs: [Float32Array, Float32Array][] = [
      [conv2dForward(blas, scratch, x, w, g), conv2dForward(blas, scratch, x, w, g, 1)],
      [
        conv2dBackpropInput(blas, scratch, dy, w, g),
        conv2dBackpropInput(blas, scratch, dy, w, g, 1),
      ],
      [
        conv2dBackpropFilter(blas, scratch, x, dy, g),
        conv2dBackpropFilter(blas, scratch, x, dy, g, 1),
      ],
    ];
    for (const [whole, chunked] of pairs) {
      assertEquals(whole.length, chunked.length);
      whole.forEach((v, i) => assertLess(Math.abs(v - chunked[i]), 1e-4 * (1 + Math.abs(v))));
    }
  }
  blas.close();
});

Deno.test({
  name:
    "fast cpu: without --allow-ffi enableFastCpu reports why; auto selection falls back to wasm",
  ignore: Deno.permissions.querySync({ name: "run" }).state !== "granted",
  async fn() {
    const root = new URL("../", import.meta.url);
    const script = await Deno.makeTempFile({ suffix: ".ts" });
    await Deno.writeTextFile(
      script,
      `import { enableFastCpu } from "${new URL("lib/tfjs/fast_cpu.ts", root).href}";\n` +
        `import { selectBackend } from "${new URL("lib/tfjs/backend.ts", root).href}";\n` +
        `console.log(JSON.stringify(enableFastCpu()));\n` +
        `const r = await selectBackend({ prefer: "auto" });\n` +
        `console.log(JSON.stringify({ name: r.name, reason: r.reason }));\n`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-env",
        "--allow-sys",
        "--config",
        new URL("deno.json", root).pathname,
        script,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    await Deno.remove(script);
    const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
    const status = JSON.parse(lines[lines.length - 2]);
    assertEquals(status.enabled, false);
    assertEquals(status.registered, []);
    assert(/ffi|permission|capable/i.test(status.reason), status.reason);
    const chosen = JSON.parse(lines[lines.length - 1]);
    assertEquals(chosen.name, "wasm");
    assert(chosen.reason.startsWith("auto: fast CPU kernels unavailable"), chosen.reason);
  },
});
