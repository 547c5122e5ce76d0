/**
 * Strided iteration over row-major n-d arrays with broadcast / reduced axes, the shared core
 * of the fast elementwise, reduction and slice kernels.
 */

/**
 * Merges adjacent axes whose `kinds` are equal (each axis has one kind per operand, e.g.
 * "broadcast" vs "full") and drops axes of size 1. Returns the merged sizes and, per merged
 * axis, the kind tuple as a string key. `kinds[i]` describes axis i of `shape`.
 */
export function mergeAxes(shape: readonly number[], kinds: readonly string[]): {
  sizes: number[];
  kinds: string[];
} {
  const sizes: number[] = [], out: string[] = [];
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    if (out.length > 0 && out[out.length - 1] === kinds[i]) sizes[sizes.length - 1] *= shape[i];
    else {
      sizes.push(shape[i]);
      out.push(kinds[i]);
    }
  }
  return { sizes, kinds: out };
}

/**
 * Row-major element strides of an operand over `sizes`, with stride 0 on axes where
 * `present[i]` is false (broadcast or reduced away).
 */
export function maskedStrides(sizes: readonly number[], present: readonly boolean[]): number[] {
  const strides = new Array<number>(sizes.length);
  let s = 1;
  for (let i = sizes.length - 1; i >= 0; i--) {
    strides[i] = present[i] ? s : 0;
    if (present[i]) s *= sizes[i];
  }
  return strides;
}

/**
 * Visits every row of an iteration space `sizes` (all axes but the last, row-major order):
 * `visit(offsets)` receives, for each operand k, the element offset of the row start
 * computed from `strides[k]` (one stride per axis). `offsets` is reused between calls.
 */
export function forEachRow(
  sizes: readonly number[],
  strides: readonly (readonly number[])[],
  visit: (offsets: Float64Array) => void,
): void {
  const outer = sizes.length - 1;
  const ops = strides.length;
  const offsets = new Float64Array(ops);
  if (outer <= 0) {
    visit(offsets);
    return;
  }
  const idx = new Int32Array(outer);
  for (;;) {
    visit(offsets);
    let d = outer - 1;
    for (; d >= 0; d--) {
      idx[d]++;
      for (let k = 0; k < ops; k++) offsets[k] += strides[k][d];
      if (idx[d] < sizes[d]) break;
      for (let k = 0; k < ops; k++) offsets[k] -= strides[k][d] * sizes[d];
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

/**
 * dst[d .. d + n) = src[s .. s + n): an element loop for short runs (measured 2-3x faster than a
 * `subarray` + `set` per run of 16 floats), `set` for longer ones.
 */
export function copyRun(
  dst: Float32Array,
  d: number,
  src: Float32Array,
  s: number,
  n: number,
): void {
  if (n <= 32) {
    for (let j = 0; j < n; j++) dst[d + j] = src[s + j];
  } else {
    dst.set(src.subarray(s, s + n), d);
  }
}
