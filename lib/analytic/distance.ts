/**
 * Distances between sample sets and moment helpers, for judging samplers against known data.
 *
 * The distance is the sliced Wasserstein-2 distance
 *   SW2(X, Y) = sqrt( mean_p W2^2(<X, theta_p>, <Y, theta_p>) ),
 * averaged over P fixed random unit directions theta_p (drawn from a seeded Rng, so the same
 * seed gives the same directions), where W2 between the two 1-D projected empirical
 * distributions is computed exactly from their sorted values (quantile coupling; the sets may
 * have different sizes). Units: those of the data.
 * @module
 */
import type { Batch } from "../core/batch.ts";
import { checkPositiveInt } from "../core/checks.ts";
import { Rng } from "../core/rng.ts";

function rowsOf(x: Batch, name: string): { n: number; d: number } {
  const n = x.shape[0];
  if (x.shape.length < 2 || n < 1) {
    throw new RangeError(`${name} must be a Batch [N, ...dims], got [${x.shape}]`);
  }
  return { n, d: x.data.length / n };
}

/** Column means of `x` [N, ...dims] flattened to D values: a Float64Array of length D. */
export function sampleMean(x: Batch): Float64Array {
  const { n, d } = rowsOf(x, "x");
  const mean = new Float64Array(d);
  for (let b = 0; b < n; b++) for (let i = 0; i < d; i++) mean[i] += x.data[b * d + i];
  return mean.map((v) => v / n);
}

/**
 * Unbiased sample covariance (divides by N - 1) of `x` [N, ...dims] flattened to D values:
 * a D*D row-major Float64Array. Needs N >= 2.
 */
export function sampleCovariance(x: Batch): Float64Array {
  const { n, d } = rowsOf(x, "x");
  if (n < 2) throw new RangeError(`x needs at least 2 samples for a covariance, got ${n}`);
  const mean = sampleMean(x);
  const cov = new Float64Array(d * d);
  const r = new Float64Array(d);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < d; i++) r[i] = x.data[b * d + i] - mean[i];
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) cov[i * d + j] += r[i] * r[j];
  }
  return cov.map((v) => v / (n - 1));
}

/**
 * Exact squared W2 distance between two 1-D empirical distributions (uniform weights) given
 * by their values sorted ascending.
 */
export function wasserstein2Sorted1d(a: Float64Array, b: Float64Array): number {
  const n = a.length, m = b.length;
  if (n < 1 || m < 1) throw new RangeError(`a and b must be non-empty, got lengths ${n}, ${m}`);
  // Quantile levels are integers in units of 1 / (n m): a's i-th value covers up to (i+1) m,
  // b's j-th up to (j+1) n.
  let i = 0, j = 0, level = 0, acc = 0;
  while (i < n && j < m) {
    const next = Math.min((i + 1) * m, (j + 1) * n);
    const diff = a[i] - b[j];
    acc += (next - level) * diff * diff;
    level = next;
    if ((i + 1) * m === next) i++;
    if ((j + 1) * n === next) j++;
  }
  return acc / (n * m);
}

/** Options of {@link slicedWasserstein2}. */
export interface SlicedOptions {
  /** Number of random directions P (default 128). */
  projections?: number;
  /** Seed of the directions (default 0). */
  seed?: number | string;
}

/**
 * Sliced Wasserstein-2 distance between sample sets `x` [N, ...dims] and `y` [M, ...dims]
 * (same flattened dimension D; N and M may differ). See the module doc for the definition.
 */
export function slicedWasserstein2(
  x: Batch,
  y: Batch,
  { projections = 128, seed = 0 }: SlicedOptions = {},
): number {
  const { n, d } = rowsOf(x, "x");
  const { n: m, d: dy } = rowsOf(y, "y");
  if (d !== dy) throw new RangeError(`y must have ${d} values per sample like x, got ${dy}`);
  checkPositiveInt("projections", projections);
  const rng = new Rng(seed);
  const theta = new Float64Array(d);
  const px = new Float64Array(n), py = new Float64Array(m);
  const project = (src: Float64Array, out: Float64Array) => {
    for (let b = 0; b < out.length; b++) {
      let v = 0;
      for (let i = 0; i < d; i++) v += src[b * d + i] * theta[i];
      out[b] = v;
    }
    out.sort();
  };
  let total = 0;
  for (let p = 0; p < projections; p++) {
    let norm = 0;
    do {
      rng.normals(d, theta);
      norm = Math.hypot(...theta);
    } while (norm === 0);
    for (let i = 0; i < d; i++) theta[i] /= norm;
    project(x.data, px);
    project(y.data, py);
    total += wasserstein2Sorted1d(px, py);
  }
  return Math.sqrt(total / projections);
}

/** One row of {@link distanceByStepCount}. */
export interface StepDistance {
  /** Number of sampler steps (network evaluations). */
  readonly steps: number;
  /** Sliced W2 distance of the samples to the reference set. */
  readonly distance: number;
}

/**
 * For each step count, runs `sample(zT, steps)` from the SAME starting noise `zT` and measures
 * the sliced W2 distance of its output to `reference` samples of the data (e.g. step counts
 * [1, 2, 4, 8, 16, 64]). Runs sequentially, in the given order.
 */
export async function distanceByStepCount(
  stepCounts: readonly number[],
  zT: Batch,
  sample: (zT: Batch, steps: number) => Batch | Promise<Batch>,
  reference: Batch,
  options: SlicedOptions = {},
): Promise<StepDistance[]> {
  stepCounts.forEach((k, i) => checkPositiveInt(`stepCounts[${i}]`, k));
  const rows: StepDistance[] = [];
  for (const steps of stepCounts) {
    const out = await sample(zT, steps);
    rows.push({ steps, distance: slicedWasserstein2(out, reference, options) });
  }
  return rows;
}
