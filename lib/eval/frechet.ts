/**
 * Fréchet distance between Gaussian fits of two feature sets — the formula of FID, applied
 * to any feature extractor (our "classifier FID", cFID, uses the toolkit's own classifier):
 *   d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}).
 * The trace of the matrix square root is computed stably for singular covariances: with
 * R = S1^{1/2} (symmetric eigendecomposition, negative round-off eigenvalues clamped to 0),
 * (S1 S2)^{1/2} is similar to (R S2 R)^{1/2}, a symmetric PSD matrix, so
 * Tr((S1 S2)^{1/2}) = sum_i sqrt(max(0, lambda_i(R S2 R))). Linear algebra: `ml-matrix`.
 * @module
 */
import { EigenvalueDecomposition, Matrix } from "ml-matrix";
import { checkPositiveInt } from "../core/checks.ts";

/** Mean `[D]` and covariance `[D, D]` (unbiased, divisor N-1) of a feature set. */
export interface GaussianStats {
  /** Number of samples the statistics came from. */
  n: number;
  /** Mean vector, length D. */
  mu: Float64Array;
  /** Covariance, row-major D x D. */
  sigma: Float64Array;
}

/**
 * Mean and unbiased covariance of `features`, a row-major `[N, D]` array (N >= 2).
 * @param features N*D values, sample-major. @param dim D.
 */
export function gaussianStats(features: ArrayLike<number>, dim: number): GaussianStats {
  checkPositiveInt("dim", dim);
  if (features.length % dim !== 0) {
    throw new RangeError(`features length ${features.length} is not a multiple of dim ${dim}`);
  }
  const n = features.length / dim;
  if (n < 2) throw new RangeError(`features need at least 2 samples [N, ${dim}], got N = ${n}`);
  const mu = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mu[j] += features[i * dim + j] / n;
  const sigma = new Float64Array(dim * dim);
  const c = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) c[j] = features[i * dim + j] - mu[j];
    for (let a = 0; a < dim; a++) {
      const ca = c[a];
      for (let b = a; b < dim; b++) sigma[a * dim + b] += ca * c[b];
    }
  }
  for (let a = 0; a < dim; a++) {
    for (let b = a; b < dim; b++) {
      const v = sigma[a * dim + b] / (n - 1);
      sigma[a * dim + b] = v;
      sigma[b * dim + a] = v;
    }
  }
  return { n, mu, sigma };
}

function toMatrix(a: Float64Array, d: number): Matrix {
  return Matrix.from1DArray(d, d, a);
}

/** Symmetric square root of a symmetric PSD matrix (eigenvalues clamped at 0). */
function sqrtPsd(m: Matrix): Matrix {
  const evd = new EigenvalueDecomposition(m, { assumeSymmetric: true });
  const v = evd.eigenvectorMatrix;
  const s = evd.realEigenvalues.map((x) => Math.sqrt(Math.max(0, x)));
  return v.mmul(Matrix.diag(s)).mmul(v.transpose());
}

/** Fréchet distance (squared, as FID reports it) between two Gaussian fits of dimension D. */
export function frechetDistance(a: GaussianStats, b: GaussianStats): number {
  const d = a.mu.length;
  if (b.mu.length !== d || a.sigma.length !== d * d || b.sigma.length !== d * d) {
    throw new RangeError(`stats must share dimension D = ${d}, got ${b.mu.length}`);
  }
  let meanTerm = 0;
  for (let i = 0; i < d; i++) meanTerm += (a.mu[i] - b.mu[i]) ** 2;
  const s1 = toMatrix(a.sigma, d), s2 = toMatrix(b.sigma, d);
  const r = sqrtPsd(s1);
  const m = r.mmul(s2).mmul(r);
  const sym = m.add(m.transpose()).div(2);
  const eig = new EigenvalueDecomposition(sym, { assumeSymmetric: true }).realEigenvalues;
  const trSqrt = eig.reduce((acc, x) => acc + Math.sqrt(Math.max(0, x)), 0);
  return Math.max(0, meanTerm + s1.trace() + s2.trace() - 2 * trSqrt);
}
