import { assert, assertEquals, assertLess, assertThrows } from "@std/assert";
import { Rng } from "../lib/core/rng.ts";
import { type Dnnl, dnnlSupports, openDnnl, widening } from "../lib/tfjs/kernels/dnnl.ts";
import { loadBlas } from "../lib/tfjs/kernels/blas.ts";
import { jsBoxCopy } from "../lib/tfjs/kernels/slice.ts";
import { Scratch } from "../lib/tfjs/kernels/cpu_access.ts";
import {
  conv2dBackpropFilter,
  conv2dBackpropInput,
  conv2dForward,
} from "../lib/tfjs/kernels/conv.ts";
import type { ConvGeometry } from "../lib/tfjs/kernels/im2col.ts";

const LIB = "/usr/lib/x86_64-linux-gnu/libdnnl.so.2";
const hasDnnl = (() => {
  try {
    return Deno.statSync(LIB).isFile;
  } catch {
    return false;
  }
})();

function randn(rng: Rng, n: number): Float32Array {
  return Float32Array.from(rng.normals(n));
}

function maxRel(a: Float32Array, b: Float32Array): number {
  assertEquals(a.length, b.length);
  let num = 0, den = 1e-6;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

function withDnnl(fn: (d: Dnnl) => void): () => void {
  return () => {
    const d = openDnnl(LIB);
    try {
      fn(d);
    } finally {
      d.close();
    }
  };
}

const geo = (
  batch: number,
  inH: number,
  inC: number,
  outC: number,
  k: number,
  stride: number,
  padTop: number,
  outH: number,
): ConvGeometry => ({
  batch,
  inH,
  inW: inH,
  inC,
  outH,
  outW: outH,
  outC,
  kH: k,
  kW: k,
  strideH: stride,
  strideW: stride,
  padTop,
  padLeft: padTop,
});

Deno.test({
  name: "oneDNN convolutions equal the GEMM formulation; JIT kernels, not reference ones",
  ignore: !hasDnnl,
  fn: withDnnl((d) => {
    const blas = loadBlas();
    const scratch: [Scratch, Scratch] = [new Scratch(), new Scratch()];
    const rng = new Rng(3);
    // same 3x3, stride-2 same (tfjs pads 0 on top), valid 3x3 with odd sizes, 1x1
    for (
      const g of [
        geo(3, 8, 5, 7, 3, 1, 1, 8),
        geo(2, 8, 6, 4, 3, 2, 0, 4),
        geo(1, 7, 3, 5, 3, 1, 0, 5),
        geo(2, 6, 9, 3, 1, 1, 0, 6),
      ]
    ) {
      assert(dnnlSupports(g), JSON.stringify(g));
      const x = randn(rng, g.batch * g.inH * g.inW * g.inC);
      const w = randn(rng, g.kH * g.kW * g.inC * g.outC);
      const dy = randn(rng, g.batch * g.outH * g.outW * g.outC);
      const bias = randn(rng, g.outC);
      const y = new Float32Array(dy.length), dx = new Float32Array(x.length);
      const dw = new Float32Array(w.length);
      d.forward(x, w, bias, y, g);
      const ref = conv2dForward(blas, scratch, x, w, g);
      for (let i = 0; i < ref.length; i++) ref[i] += bias[i % g.outC];
      assertLess(maxRel(y, ref), 1e-5, `forward ${JSON.stringify(g)}`);
      d.backwardData(dy, w, dx, g);
      assertLess(maxRel(dx, conv2dBackpropInput(blas, scratch, dy, w, g)), 1e-5, "backward data");
      d.backwardWeights(x, dy, dw, g);
      assertLess(maxRel(dw, conv2dBackpropFilter(blas, scratch, x, dy, g)), 1e-5, "weights");
    }
    for (const [key, impl] of Object.entries(d.implementations())) {
      assert(!impl.startsWith("ref"), `${key} runs oneDNN's reference kernel ${impl}`);
    }
    blas.close();
  }),
});

Deno.test({
  name: "oneDNN convImplementation names the kernel each pass runs; 16 channels get direct ones",
  ignore: !hasDnnl,
  fn: withDnnl((d) => {
    const square = geo(2, 8, 16, 16, 3, 1, 1, 8), last = geo(2, 8, 16, 1, 3, 1, 1, 8);
    for (const g of [square, last]) {
      for (const pass of ["fwd", "bwd_data", "bwd_weights"] as const) {
        const impl = d.convImplementation(pass, g, false);
        const key = `${pass}:${Object.values(g).join(",")}:0`;
        assertEquals(d.implementations()[key], impl, key);
      }
    }
    for (const pass of ["fwd", "bwd_data", "bwd_weights"] as const) {
      const impl = d.convImplementation(pass, square, false);
      assert(!/^ref|(^|:)gemm:/.test(impl), `${pass} of 16 -> 16 channels runs ${impl}`);
    }
  }),
});

Deno.test({
  name: "oneDNN copy equals the JS box copy on strided boxes and refuses boxes past an array",
  ignore: !hasDnnl,
  fn: withDnnl((d) => {
    const rng = new Rng(6);
    // a concat part into its channel slot, a pad's interior, a slice out of a larger tensor
    const cases: [number[], number[], number[], number, number][] = [
      [[40, 5], [5, 1], [12, 1], 200, 480],
      [[2, 6, 7, 3], [126, 21, 3, 1], [243, 27, 3, 1], 252, 486],
      [[3, 4, 5], [120, 12, 1], [20, 5, 1], 360, 60],
    ];
    for (const [dims, srcStrides, dstStrides, srcLen, dstLen] of cases) {
      const src = randn(rng, srcLen);
      const want = randn(rng, dstLen), got = want.slice();
      jsBoxCopy(src, srcStrides, want, dstStrides, dims);
      d.copy(src, srcStrides, got, dstStrides, dims);
      assertEquals(Array.from(got), Array.from(want), JSON.stringify(dims));
    }
    assertThrows(
      () => d.copy(new Float32Array(10), [5, 1], new Float32Array(9), [5, 1], [2, 5]),
      RangeError,
      "copy: a [2,5] box exceeds",
    );
    assertThrows(
      () => d.copy(new Float32Array(10), [-5, 1], new Float32Array(10), [5, 1], [2, 5]),
      RangeError,
      "strides: expected 2 non-negative",
    );
  }),
});

Deno.test({
  name: "oneDNN scaleShift (+addend, +SiLU), eltwise, softmax, binary and sum: analytic values",
  ignore: !hasDnnl,
  fn: withDnnl((d) => {
    const rng = new Rng(4);
    // Rows of <= 4096 floats: two whole-tensor executions. Longer rows, one execution each: as
    // given (c >= 256), widened by a divisor of hw (64 x 80 -> 16 x 320, 300 x 16 -> 15 x 320),
    // and widened to one row when no divisor suffices (hw = 4099, prime).
    const shapes = [[3, 5, 4], [2, 64, 16], [2, 36, 48], [2, 17, 260], [2, 64, 80], [2, 300, 16], [
      2,
      4099,
      2,
    ]];
    for (const [n, hw, c] of shapes) {
      const x = randn(rng, n * hw * c), scale = randn(rng, n * c), shift = randn(rng, n * c);
      const addend = randn(rng, x.length);
      for (const [silu, add] of [[false, false], [true, false], [false, true], [true, true]]) {
        const out = new Float32Array(x.length);
        d.scaleShift(x, scale, shift, out, [n, hw, c], silu, add ? addend : undefined);
        out.forEach((v, i) => {
          const row = Math.floor(i / (hw * c)), k = i % c;
          const u = x[i] * scale[row * c + k] + shift[row * c + k] + (add ? addend[i] : 0);
          const want = silu ? u / (1 + Math.exp(-u)) : u;
          const at = `[${n}, ${hw}, ${c}] silu=${silu} add=${add} ${i}`;
          assertLess(Math.abs(v - want), 1e-5 * (1 + Math.abs(want)), at);
        });
      }
    }
    const [n, hw, c] = [3, 5, 4];
    const x = randn(rng, n * hw * c), scale = randn(rng, n * c), shift = randn(rng, n * c);
    const y = new Float32Array(x.length), dx = new Float32Array(x.length);
    d.eltwise("sigmoid", x, y);
    y.forEach((v, i) => assertLess(Math.abs(v - 1 / (1 + Math.exp(-x[i]))), 1e-6));
    const dy = randn(rng, x.length);
    d.eltwiseBackward("silu", x, dy, dx);
    dx.forEach((v, i) => {
      const s = 1 / (1 + Math.exp(-x[i]));
      assertLess(Math.abs(v - dy[i] * s * (1 + x[i] * (1 - s))), 1e-5 * (1 + Math.abs(v)));
    });
    const sm = new Float32Array(4);
    d.softmax(new Float32Array([0, Math.log(3), 1000, 1000]), sm, 2);
    [0.25, 0.75, 0.5, 0.5].forEach((p, i) => assertLess(Math.abs(sm[i] - p), 1e-6));
    const sub = new Float32Array(6);
    d.binary("sub", new Float32Array([1, 2, 3, 4, 5, 6]), new Float32Array([1, 2]), [2, 1], sub, [
      2,
      3,
    ]);
    assertEquals(Array.from(sub), [0, 1, 2, 2, 3, 4]);
    // post-ops in order, with a one-value (runtime scalar) and a full operand:
    // (sqrt(a · 2) + 1) · c for a = [2, 8, 18, 0.5], c = [1, -1, 0.5, 4]
    const chain = new Float32Array(4), c4 = Float32Array.of(1, -1, 0.5, 4);
    const two = Float32Array.of(2), one = Float32Array.of(1);
    d.binary("mul", Float32Array.of(2, 8, 18, 0.5), two, [1], chain, [4], [
      "sqrt",
      { op: "add", operand: one },
      { op: "mul", operand: c4 },
    ]);
    assertEquals(Array.from(chain), [3, -5, 3.5, 8]);
    // the same primitive with other scalar values: the scalars are runtime data
    d.binary("mul", Float32Array.of(2, 8, 18, 0.5), Float32Array.of(8), [1], chain, [4], [
      "sqrt",
      { op: "add", operand: Float32Array.of(-1) },
      { op: "mul", operand: c4 },
    ]);
    assertEquals(Array.from(chain), [3, -7, 5.5, 4]);
    assertThrows(
      () =>
        d.binary("add", chain, chain, [4], chain, [4], [{
          op: "add",
          operand: two.subarray(0, 0),
        }]),
      RangeError,
      "post-op operand",
    );
    const sums = new Float32Array(2);
    d.reduce("sum", new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3], sums, [2, 1]);
    assertEquals(Array.from(sums), [6, 15]);
    assertThrows(() => d.eltwise("silu", x, new Float32Array(3)), RangeError, "y");
    assertThrows(() => d.softmax(x, y, 7), RangeError, "n");
    assertThrows(
      () => d.scaleShift(x, scale, shift, y, [n, hw, c + 1], true),
      RangeError,
      "x: expected",
    );
  }),
});

Deno.test({
  name: "oneDNN matmul: batched products with either operand transposed equal the loop",
  ignore: !hasDnnl,
  fn: withDnnl((d) => {
    const rng = new Rng(9);
    const [batch, m, n, k] = [3, 4, 5, 6];
    const a = randn(rng, batch * m * k), b = randn(rng, batch * k * n);
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
      const out = new Float32Array(batch * m * n);
      d.matmul(a, b, out, { batch, m, n, k }, ta, tb);
      out.forEach((v, idx) => {
        const i = Math.floor(idx / (m * n)), r = Math.floor(idx / n) % m, c = idx % n;
        let want = 0;
        for (let j = 0; j < k; j++) {
          const av = a[i * m * k + (ta ? j * m + r : r * k + j)];
          const bv = b[i * k * n + (tb ? c * k + j : j * n + c)];
          want += av * bv;
        }
        assertLess(Math.abs(v - want), 1e-5 * (1 + Math.abs(want)), `ta=${ta} tb=${tb} ${idx}`);
      });
    }
    assertThrows(
      () => d.matmul(a, b, new Float32Array(7), { batch, m, n, k }, false, false),
      RangeError,
      "matmul: expected",
    );
  }),
});

Deno.test("widening: the smallest divisor of hw giving rows of >= 256 floats, else hw", () => {
  assertEquals(widening(1024, 16), 16);
  assertEquals(widening(36, 48), 6);
  assertEquals(widening(64, 300), 1);
  assertEquals(widening(5, 4), 5);
  assertEquals(widening(1, 8), 1);
});

Deno.test("dnnlSupports: tfjs output sizes oneDNN cannot express are refused", () => {
  assert(dnnlSupports(geo(1, 8, 1, 1, 3, 2, 0, 4)));
  // valid, stride 2, even input: tfjs' output (3) needs a negative right pad, expressed as 0.
  assert(dnnlSupports(geo(1, 8, 1, 1, 3, 2, 0, 3)));
  // An output smaller than any non-negative right padding gives.
  assert(!dnnlSupports(geo(1, 8, 1, 1, 3, 1, 0, 5)));
});

Deno.test({
  name: "oneDNN convolutions at small channel counts (1-8) equal the GEMM formulation",
  ignore: !hasDnnl,
  fn: withDnnl((d) => {
    // Channel counts below oneDNN's block of 8 made it choose padded weight layouts that
    // corrupted the heap in backward-weights (a width-4 classifier aborted); dnnl.ts now keeps
    // the plain layout there. Every pair of {1, 2, 3, 4, 5, 7, 8} in and out, 3x3 and 1x1.
    const blas = loadBlas();
    const scratch: [Scratch, Scratch] = [new Scratch(), new Scratch()];
    const rng = new Rng(5);
    for (const inC of [1, 2, 3, 4, 5, 7, 8]) {
      for (const outC of [1, 2, 4, 7, 8]) {
        for (const g of [geo(8, 8, inC, outC, 3, 1, 1, 8), geo(8, 8, inC, outC, 1, 2, 0, 4)]) {
          const x = randn(rng, g.batch * g.inH * g.inW * g.inC);
          const w = randn(rng, g.kH * g.kW * g.inC * g.outC);
          const dy = randn(rng, g.batch * g.outH * g.outW * g.outC);
          const y = new Float32Array(dy.length), dx = new Float32Array(x.length);
          const dw = new Float32Array(w.length);
          const what = JSON.stringify(g);
          d.forward(x, w, new Float32Array(g.outC), y, g);
          assertLess(maxRel(y, conv2dForward(blas, scratch, x, w, g)), 1e-5, `forward ${what}`);
          d.backwardData(dy, w, dx, g);
          assertLess(
            maxRel(dx, conv2dBackpropInput(blas, scratch, dy, w, g)),
            1e-5,
            `data ${what}`,
          );
          d.backwardWeights(x, dy, dw, g);
          assertLess(maxRel(dw, conv2dBackpropFilter(blas, scratch, x, dy, g)), 1e-5, `dw ${what}`);
        }
      }
    }
    blas.close();
  }),
});

Deno.test({
  name: "a width-4 classifier trains on the fast CPU path without corrupting the heap",
  ignore: !hasDnnl,
  fn: async () => {
    // The original crash ("corrupted size vs. prev_size"), in a subprocess so an abort fails
    // this test instead of killing the runner.
    const root = new URL("..", import.meta.url).pathname;
    const script = `
      import * as tf from "@tensorflow/tfjs";
      import { selectBackend } from "${root}lib/tfjs/backend.ts";
      import { createClassifier } from "${root}lib/models/classifier.ts";
      await selectBackend({ prefer: "cpu" });
      const model = createClassifier({ imageSize: 16, inChannels: 1, numClasses: 10, width: 4 });
      const opt = tf.train.adam(1e-3);
      const x = tf.randomNormal([8, 16, 16, 1], 0, 1, "float32", 1);
      const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], "int32"), 10);
      for (let i = 0; i < 10; i++) {
        const l = opt.minimize(() => {
          const out = model.apply(x, { training: true });
          const logits = (Array.isArray(out) ? out[out.length - 1] : out) as tf.Tensor2D;
          return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
        }, true)!;
        if (!Number.isFinite(l.dataSync()[0])) throw new Error("non-finite loss");
        l.dispose();
      }
      console.log("trained");
    `;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--config", `${root}deno.json`, script],
      env: { RDD_FAST_CPU: "1", RDD_BLAS_THREADS: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, text.slice(-600));
    assert(text.includes("trained"), text.slice(-600));
  },
});
