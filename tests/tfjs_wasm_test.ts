/**
 * The tfjs wasm backend under Deno: binaries load from node_modules, and the conv2d gradients
 * (our `Conv2DBackpropFilter`, the stock `Conv2DBackpropInput`) match the stock CPU backend.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertLessOrEqual, assertThrows } from "@std/assert";
import { Rng } from "../lib/core/rng.ts";
import { selectBackend } from "../lib/tfjs/backend.ts";
import { filterGradientPlan } from "../lib/tfjs/wasm_grads.ts";

type Shape4 = [number, number, number, number];

function convInfo(x: Shape4, f: Shape4, stride: number, pad: "same" | "valid", dilation = 1) {
  return tf.backend_util.computeConv2DInfo(x, f, stride, dilation, pad);
}

Deno.test("filterGradientPlan: padding and kept rows follow the forward geometry", () => {
  // H = 5, k = 3, stride 2, valid: out 2 reads rows 0..4, all of them.
  let p = filterGradientPlan(convInfo([1, 5, 5, 1], [3, 3, 1, 1], 2, "valid"));
  assertEquals([p.keepH, p.pad[1], p.dilations], [5, [0, 0], [2, 2]]);
  // H = 6, valid: out 2 reads rows 0..4, so row 5 is dropped.
  p = filterGradientPlan(convInfo([1, 6, 7, 1], [3, 3, 1, 1], 2, "valid"));
  assertEquals([p.keepH, p.pad[1], p.keepW, p.pad[2]], [5, [0, 0], 7, [0, 0]]);
  // H = 6, same, stride 2: out 3, total pad 1 (top 0, bottom 1); padded rows 0..6 are read.
  p = filterGradientPlan(convInfo([1, 6, 6, 1], [3, 3, 1, 1], 2, "same"));
  assertEquals([p.keepH, p.pad[1]], [6, [0, 1]]);
  // H = 5, same, stride 1, k = 3: pad 1 on each side.
  p = filterGradientPlan(convInfo([1, 5, 5, 1], [3, 3, 1, 1], 1, "same"));
  assertEquals([p.keepH, p.pad[1], p.dilations], [5, [1, 1], [1, 1]]);
  assertThrows(
    () => filterGradientPlan(convInfo([1, 9, 9, 1], [3, 3, 1, 1], 1, "valid", 2)),
    RangeError,
    "dilations",
  );
});

Deno.test("selectBackend loads the wasm binaries from node_modules and adds the filter gradient", async () => {
  const r = await selectBackend({ prefer: "wasm" });
  const w = r.wasm!;
  assertEquals([r.name, tf.getBackend()], ["wasm", "wasm"]);
  assert(w.binariesUrl.startsWith("file://") && w.binariesUrl.endsWith("/"), w.binariesUrl);
  const binary = w.simd ? "tfjs-backend-wasm-simd.wasm" : "tfjs-backend-wasm.wasm";
  assert(Deno.statSync(new URL(binary, w.binariesUrl)).size > 100_000, `${binary} is there`);
  assert(Number.isInteger(w.threads) && w.threads >= 1, `threads ${w.threads}`);
  assertEquals(w.addedKernels, ["Conv2DBackpropFilter"]);
  assertEquals((await selectBackend({ prefer: "wasm" })).wasm?.addedKernels, [], "idempotent");
  assertEquals(tf.getKernel("Conv2DBackpropFilter", "wasm")?.backendName, "wasm");
  await selectBackend({ prefer: "cpu", fastCpu: false });
});

interface ConvCase {
  x: Shape4;
  f: Shape4;
  stride: number;
  pad: "same" | "valid";
}

/** y = conv2d(x, f), dx and df of sum(y * dy) on the active backend. */
function convAndGrads(c: ConvCase, xv: Float32Array, fv: Float32Array, dyv: Float32Array) {
  return tf.tidy(() => {
    const x = tf.tensor4d(xv, c.x);
    const f = tf.tensor4d(fv, c.f);
    const y = tf.conv2d(x, f, c.stride, c.pad);
    const dy = tf.tensor(dyv.subarray(0, y.size), y.shape);
    const [dx, df] = tf.grads((a, b) =>
      tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), dy))
    )([x, f]);
    return [y, dx, df].map((t) => t.dataSync() as Float32Array);
  });
}

/** max |a - b| / max |b|. */
function relErr(a: Float32Array, b: Float32Array): number {
  assertEquals(a.length, b.length);
  let d = 0, s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return d / Math.max(s, 1e-30);
}

Deno.test("wasm conv2d gradients match the cpu backend on random shapes (stride 1/2, same/valid)", async () => {
  const rng = new Rng(2024);
  const normals = (n: number) => Float32Array.from(rng.normals(n));
  await selectBackend({ prefer: "wasm" });
  const wasm = tf.findBackend("wasm")!;
  const before = wasm.numDataIds();
  let checked = 0;
  for (const stride of [1, 2]) {
    for (const pad of ["same", "valid"] as const) {
      for (let rep = 0; rep < 4; rep++) {
        const kH = rng.int(1, 3), kW = rng.int(1, 3);
        const c: ConvCase = {
          x: [rng.int(1, 3), rng.int(kH, 9), rng.int(kW, 9), rng.int(1, 4)],
          f: [kH, kW, 0, rng.int(1, 4)],
          stride,
          pad,
        };
        c.f[2] = c.x[3];
        const xv = normals(c.x.reduce((a, b) => a * b));
        const fv = normals(c.f.reduce((a, b) => a * b));
        const dyv = normals(c.x[0] * c.x[1] * c.x[2] * c.f[3]);
        await selectBackend({ prefer: "cpu", fastCpu: false });
        const ref = convAndGrads(c, xv, fv, dyv);
        await selectBackend({ prefer: "wasm" });
        const got = convAndGrads(c, xv, fv, dyv);
        ["y", "dx", "dfilter"].forEach((what, i) => {
          assertLessOrEqual(relErr(got[i], ref[i]), 1e-4, `${what} of ${JSON.stringify(c)}`);
        });
        checked++;
      }
    }
  }
  assertEquals(checked, 16);
  assertEquals(wasm.numDataIds(), before, "no wasm buffers leak from the gradient kernels");
  await selectBackend({ prefer: "cpu", fastCpu: false });
});
