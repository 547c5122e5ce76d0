import * as tf from "@tensorflow/tfjs";
import { assert, assertLess } from "@std/assert";
import { groupNormCpu } from "../lib/models/group_norm_cpu.ts";
import { silu } from "../lib/models/layers.ts";
import { disableFastCpu, enableFastCpu, fastCpuDnnl, fastCpuNative } from "../lib/tfjs/fast_cpu.ts";

await tf.setBackend("cpu");

/** The composed-ops GroupNorm (the layer's non-CPU path), as the reference. */
function composed(x: tf.Tensor4D, g: tf.Tensor1D, b: tf.Tensor1D, groups: number, act: boolean) {
  const [n, h, w, c] = x.shape;
  const grouped = tf.reshape(x, [n, h * w, groups, c / groups]);
  const { mean, variance } = tf.moments(grouped, [1, 3], true);
  const normed = tf.mul(tf.sub(grouped, mean), tf.rsqrt(tf.add(variance, 1e-5)));
  const y = tf.add(tf.mul(tf.reshape(normed, [n, h, w, c]), g), b);
  return act ? silu(y) : y;
}

/**
 * Largest |a - b| / (0.01 + |b|). GroupNorm's outputs and gradients are O(1), where float32
 * rounds to ~1e-7 absolute whatever the value: the floor keeps outputs near 0 from turning
 * that into a large relative error (with a 1e-3 floor, [7, 16, 16, 64] G=16 gave 1.02e-4, on
 * the code before its chunked passes too).
 */
function maxRel(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync(), y = b.dataSync();
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    m = Math.max(m, Math.abs(x[i] - y[i]) / (1e-2 + Math.abs(y[i])));
  }
  return m;
}

/**
 * The three implementations: typed-array loops ("js", fast path off), the fast path's oneDNN
 * passes ("dnnl", native kernels off) and its native kernels ("native").
 */
type Path = "js" | "dnnl" | "native";

function usePath(path: Path): void {
  if (path === "js") return;
  const status = enableFastCpu({ native: path === "native" });
  if (status.dnnlPrimitives) assert(fastCpuDnnl() !== undefined);
  if (path === "native") assert(fastCpuNative(), `native kernels: ${status.nativeReason}`);
}

/** Shape, groups, SiLU, the std of gamma around 1 and the paths to check. */
const SHAPES = [
  [[2, 3, 4, 6], 3, true, 0.3, ["js", "dnnl", "native"]],
  [[3, 5, 2, 8], 2, false, 0.3, ["js", "native"]],
  [[1, 4, 4, 5], 1, true, 0.3, ["js", "native"]],
  [[2, 8, 8, 32], 32, true, 0.3, ["dnnl", "native"]],
  // Several chunks of samples (2^16 floats each): one sample per chunk, and 4 + 3 samples.
  [[5, 48, 48, 16], 4, true, 0.3, ["dnnl", "native"]],
  [[7, 16, 16, 64], 16, false, 0.3, ["dnnl", "native"]],
  [[7, 16, 16, 64], 8, true, 0.3, ["js", "native"]],
  // SiLU inputs out to |u| ~ 200, past the native exp's clamp at 88.
  [[3, 6, 6, 48], 12, true, 60, ["js", "native"]],
] as const;
const CASES = SHAPES.flatMap(([shape, groups, act, spread, paths]) =>
  paths.map((path) => [shape, groups, act, spread, path] as const)
);

for (const [shape, groups, act, spread, path] of CASES) {
  Deno.test(`groupNormCpu equals composed ops, value and gradients: [${shape}] G=${groups} silu=${act} gamma std ${spread} ${path}`, () => {
    usePath(path);
    const x = tf.randomNormal([...shape], 0.3, 1.5, "float32", 1) as tf.Tensor4D;
    const c = shape[3];
    const g = tf.randomNormal([c], 1, spread, "float32", 2) as tf.Tensor1D;
    const b = tf.randomNormal([c], 0, 0.3, "float32", 3) as tf.Tensor1D;
    const dy = tf.randomNormal([...shape], 0, 1, "float32", 4);
    const f1 = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) =>
      tf.sum(
        tf.mul(
          groupNormCpu(xx as tf.Tensor4D, gg as tf.Tensor1D, bb as tf.Tensor1D, groups, 1e-5, act),
          dy,
        ),
      );
    const f2 = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) =>
      tf.sum(
        tf.mul(composed(xx as tf.Tensor4D, gg as tf.Tensor1D, bb as tf.Tensor1D, groups, act), dy),
      );
    assertLess(
      maxRel(groupNormCpu(x, g, b, groups, 1e-5, act), composed(x, g, b, groups, act)),
      1e-4,
    );
    const g1 = tf.grads(f1)([x, g, b]), g2 = tf.grads(f2)([x, g, b]);
    for (let i = 0; i < 3; i++) assertLess(maxRel(g1[i], g2[i]), 2e-3, `gradient ${i}`);
    disableFastCpu();
  });
}
