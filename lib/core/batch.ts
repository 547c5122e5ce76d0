/**
 * `Batch`: the float64 n-d array that diffusion math outside the networks runs on.
 * A contiguous, row-major `npm:ndarray` view over a Float64Array, shape `[B, ...dims]`
 * (images: `[B, H, W, C]`, vectors: `[B, D]`).
 * @module
 */
// @ts-types="@types/ndarray"
import ndarray from "ndarray";
import { checkInt, checkPositiveInt, checkSameShape } from "./checks.ts";
import type { Rng } from "./rng.ts";

/** A contiguous float64 n-d array, shape `[B, ...dims]`. */
export type Batch = ndarray.NdArray<Float64Array>;

/** Checks a shape list (rank >= 1, sizes >= 1) and returns its element count. */
function sizeOf(shape: readonly number[]): number {
  checkInt("shape.length", shape.length, 1);
  shape.forEach((d, i) => checkPositiveInt(`shape[${i}]`, d));
  return shape.reduce((a, b) => a * b, 1);
}

/** Wraps `data` (length = product of `shape`) as a Batch without copying. */
export function batch(data: Float64Array, shape: readonly number[]): Batch {
  const size = sizeOf(shape);
  if (data.length !== size) {
    throw new RangeError(
      `data has length ${data.length} but shape [${shape}] needs ${size} elements`,
    );
  }
  return ndarray(data, [...shape]);
}

/** A Batch of zeros with the given shape. */
export function zeros(shape: readonly number[]): Batch {
  return ndarray(new Float64Array(sizeOf(shape)), [...shape]);
}

/** A Batch of standard normal samples drawn from `rng`. */
export function randn(shape: readonly number[], rng: Rng): Batch {
  const out = zeros(shape);
  rng.normals(out.data.length, out.data);
  return out;
}

/**
 * Per-sample linear combination `out[b] = ca[b] * a[b] + cb[b] * b[b]`, where `ca`, `cb`
 * are scalars or per-sample coefficient arrays of length B. Shapes of `a` and `b` match.
 */
export function axpby(
  ca: number | ArrayLike<number>,
  a: Batch,
  cb: number | ArrayLike<number>,
  b: Batch,
): Batch {
  checkSameShape("a", a, "b", b);
  const B = a.shape[0];
  const per = a.data.length / B;
  const out = zeros(a.shape);
  for (let i = 0; i < B; i++) {
    const x = typeof ca === "number" ? ca : ca[i];
    const y = typeof cb === "number" ? cb : cb[i];
    const o = i * per;
    for (let j = 0; j < per; j++) out.data[o + j] = x * a.data[o + j] + y * b.data[o + j];
  }
  return out;
}

/** Elementwise clip of a Batch into [lo, hi] (returns a new Batch). */
export function clip(a: Batch, lo: number, hi: number): Batch {
  const out = zeros(a.shape);
  for (let i = 0; i < a.data.length; i++) out.data[i] = Math.min(hi, Math.max(lo, a.data[i]));
  return out;
}
