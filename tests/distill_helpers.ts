/**
 * Shared helpers of the `tests/distill_*` tests: plain-JS reference math (written from the
 * definitions, independent of lib/distill) and a float32 central-difference gradient check.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Rng } from "../lib/core/rng.ts";
import { assert } from "@std/assert";

/** Selects the tfjs CPU backend once. */
export async function useCpu(): Promise<void> {
  await tf.setBackend("cpu");
  await tf.ready();
}

/** Seeded standard normals as a float32 tensor of `shape`. */
export function randn(shape: number[], seed: number, scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const rng = new Rng(seed);
  return tf.tensor(Float32Array.from({ length: n }, () => scale * rng.normal()), shape);
}

/** Softmax of a JS vector (float64). */
export function softmaxJs(v: number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

/** KL(softmax(p) || softmax(q)) for JS logit vectors (float64). */
export function klLogitsJs(p: number[], q: number[]): number {
  const P = softmaxJs(p), Q = softmaxJs(q);
  return P.reduce((acc, pi, i) => acc + (pi > 0 ? pi * Math.log(pi / Q[i]) : 0), 0);
}

/** L2-normalised copy of a JS vector (zero stays zero). */
export function unitJs(v: number[]): number[] {
  const n = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
  return n > 0 ? v.map((x) => x / n) : v.map(() => 0);
}

/** Dot product of JS vectors. */
export function dotJs(a: number[], b: number[]): number {
  return a.reduce((acc, x, i) => acc + x * b[i], 0);
}

/**
 * Checks the gradient of scalar `f` at `x` (from tf.grad) against float32 central
 * differences at `coords` random coordinates: |g - fd| <= rtol * max(|fd|, 0.1 * max|g|).
 */
export function checkGradFd(
  f: (x: tf.Tensor) => tf.Scalar,
  x: tf.Tensor,
  options: { h?: number; rtol?: number; coords?: number; seed?: number } = {},
): void {
  const h = options.h ?? 1e-2, rtol = options.rtol ?? 1e-2;
  const g = tf.tidy(() => tf.grad(f)(x)).dataSync() as Float32Array;
  const gMax = g.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  assert(gMax > 0, "gradient is identically zero");
  const base = x.dataSync() as Float32Array;
  const rng = new Rng(options.seed ?? 7);
  for (let c = 0; c < (options.coords ?? 8); c++) {
    const i = rng.int(0, base.length - 1);
    const at = (d: number) => {
      const v = Float32Array.from(base);
      v[i] += d;
      return tf.tidy(() => f(tf.tensor(v, x.shape)).dataSync()[0]);
    };
    const fd = (at(h) - at(-h)) / (2 * h);
    const tol = rtol * Math.max(Math.abs(fd), 0.1 * gMax);
    assert(Math.abs(g[i] - fd) <= tol, `coordinate ${i}: grad ${g[i]} vs central difference ${fd}`);
  }
}

/** Max absolute difference of two tensors' values. */
export function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync(), y = b.dataSync();
  assert(x.length === y.length, `sizes differ: ${x.length} vs ${y.length}`);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}
