/**
 * Gaussian data x0 ~ N(mu, Sigma) in D dimensions and its exact denoiser E[x0 | z_t] under
 * the forward process z_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, eps ~ N(0, I).
 *
 * With a = sqrt(abar_t), s^2 = 1 - abar_t, z_t ~ N(a mu, C_t), C_t = a^2 Sigma + s^2 I, and
 * E[x0 | z_t] = mu + a Sigma C_t^{-1} (z_t - a mu). C_t is factorised once per time index
 * (Cholesky of `ml-matrix`); the per-sample triangular solves are plain loops over Float64Array.
 * @module
 */
import { CholeskyDecomposition, Matrix } from "ml-matrix";
import { type Batch, zeros } from "../core/batch.ts";
import { checkPositiveInt, checkShape } from "../core/checks.ts";
import type { Rng } from "../core/rng.ts";
import type { Denoiser } from "../diffusion/denoiser.ts";
import { alphaBarAt, type DiscreteSchedule } from "../diffusion/schedule.ts";

/** A validated Gaussian in D dimensions. Arrays are row-major and must not be mutated. */
export interface Gaussian {
  /** Dimension D. */
  readonly dim: number;
  /** Mean mu, length D. */
  readonly mean: Float64Array;
  /** Covariance Sigma, D*D row-major, symmetric positive definite. */
  readonly cov: Float64Array;
  /** Lower Cholesky factor L of Sigma (Sigma = L L^T), D*D row-major. */
  readonly cholCov: Float64Array;
}

/** Lower Cholesky factor of a symmetric positive-definite D*D row-major matrix, or null. */
function choleskyLower(m: Float64Array, dim: number): Float64Array | null {
  const rows = Array.from(
    { length: dim },
    (_, i) => Array.from(m.subarray(i * dim, i * dim + dim)),
  );
  const chol = new CholeskyDecomposition(new Matrix(rows));
  if (!chol.isPositiveDefinite()) return null;
  return Float64Array.from(chol.lowerTriangularMatrix.to1DArray());
}

function isNested(cov: ArrayLike<number> | ArrayLike<ArrayLike<number>>): boolean {
  return cov.length > 0 && typeof cov[0] !== "number";
}

/**
 * Builds a validated Gaussian N(mean, cov).
 * @param mean mu, length D >= 1, finite.
 * @param cov either D variances (a diagonal Sigma) or a D x D symmetric positive-definite matrix
 *   (array of D rows of length D).
 */
export function gaussian(
  mean: ArrayLike<number>,
  cov: ArrayLike<number> | ArrayLike<ArrayLike<number>>,
): Gaussian {
  const dim = mean.length;
  if (dim < 1 || !Array.from(mean).every(Number.isFinite)) {
    throw new RangeError(`mean must be a non-empty list of finite numbers, got [${mean}]`);
  }
  const full = new Float64Array(dim * dim);
  if (isNested(cov)) {
    const rows = cov as ArrayLike<ArrayLike<number>>;
    if (rows.length !== dim || Array.from(rows).some((r) => r.length !== dim)) {
      throw new RangeError(`cov must be a ${dim} x ${dim} matrix to match mean`);
    }
    for (let i = 0; i < dim; i++) for (let j = 0; j < dim; j++) full[i * dim + j] = rows[i][j];
  } else {
    const diag = cov as ArrayLike<number>;
    if (diag.length !== dim) {
      throw new RangeError(
        `cov as variances must have length ${dim} to match mean, got ${diag.length}`,
      );
    }
    for (let i = 0; i < dim; i++) full[i * dim + i] = diag[i];
  }
  for (let i = 0; i < dim; i++) {
    for (let j = 0; j < dim; j++) {
      const a = full[i * dim + j], b = full[j * dim + i];
      if (!Number.isFinite(a) || Math.abs(a - b) > 1e-12 * (1 + Math.abs(a))) {
        throw new RangeError(
          `cov must be finite and symmetric; entry (${i}, ${j}) = ${a}, (${j}, ${i}) = ${b}`,
        );
      }
    }
  }
  const cholCov = choleskyLower(full, dim);
  if (cholCov === null) throw new RangeError("cov must be positive definite");
  return { dim, mean: Float64Array.from(mean), cov: full, cholCov };
}

/**
 * One Gaussian seen through the forward process at a fixed abar: z ~ N(a mu, C), C = a^2 Sigma +
 * (1 - abar) I. Built by {@link noisyGaussian}, used by {@link posteriorMeanInto}.
 */
export interface NoisyGaussian {
  /** The data Gaussian. */
  readonly data: Gaussian;
  /** a = sqrt(abar). */
  readonly a: number;
  /** Lower Cholesky factor of C, D*D row-major. */
  readonly cholC: Float64Array;
  /** log det C. */
  readonly logDetC: number;
}

/**
 * Factorises the noisy marginal of `g` at noise level `abar` in [0, 1].
 * @throws RangeError if abar is outside [0, 1].
 */
export function noisyGaussian(g: Gaussian, abar: number): NoisyGaussian {
  if (!(abar >= 0 && abar <= 1)) throw new RangeError(`abar must lie in [0, 1], got ${abar}`);
  const d = g.dim;
  const c = new Float64Array(d * d);
  for (let i = 0; i < d * d; i++) c[i] = abar * g.cov[i];
  for (let i = 0; i < d; i++) c[i * d + i] += 1 - abar;
  const cholC = choleskyLower(c, d);
  if (cholC === null) {
    throw new RangeError(`noisy covariance at abar = ${abar} is not positive definite`);
  }
  let logDetC = 0;
  for (let i = 0; i < d; i++) logDetC += 2 * Math.log(cholC[i * d + i]);
  return { data: g, a: Math.sqrt(abar), cholC, logDetC };
}

/**
 * Exact posterior mean for one sample: writes mu + a Sigma C^{-1} (z - a mu) into
 * `out[outOff .. outOff + D)`, reading z from `z[zOff .. zOff + D)`.
 * @param work scratch of length >= 2 D.
 * @returns the Mahalanobis term (z - a mu)^T C^{-1} (z - a mu) (for mixture responsibilities).
 */
export function posteriorMeanInto(
  ng: NoisyGaussian,
  z: Float64Array,
  zOff: number,
  out: Float64Array,
  outOff: number,
  work: Float64Array,
): number {
  const { dim: d, mean, cov } = ng.data;
  const L = ng.cholC;
  // Forward solve L u = r with r = z - a mu (u kept in work[0..d)).
  let quad = 0;
  for (let i = 0; i < d; i++) {
    let v = z[zOff + i] - ng.a * mean[i];
    for (let k = 0; k < i; k++) v -= L[i * d + k] * work[k];
    work[i] = v / L[i * d + i];
    quad += work[i] * work[i];
  }
  // Back solve L^T y = u (y kept in work[d..2d)).
  for (let i = d - 1; i >= 0; i--) {
    let v = work[i];
    for (let k = i + 1; k < d; k++) v -= L[k * d + i] * work[d + k];
    work[d + i] = v / L[i * d + i];
  }
  for (let i = 0; i < d; i++) {
    let v = 0;
    for (let k = 0; k < d; k++) v += cov[i * d + k] * work[d + k];
    out[outOff + i] = mean[i] + ng.a * v;
  }
  return quad;
}

/**
 * Caches per-time-index values for a denoiser: `build(abar_t)` runs once per integer index t.
 * @throws RangeError (from `alphaBarAt`) for a t that is not an integer in -1..maxIndex.
 */
export function perTimeCache<T>(
  schedule: DiscreteSchedule,
  build: (abar: number) => T,
): (t: number) => T {
  const cache = new Map<number, T>();
  return (t) => {
    let v = cache.get(t);
    if (v === undefined) {
      v = build(alphaBarAt(schedule, t));
      cache.set(t, v);
    }
    return v;
  };
}

/**
 * The exact denoiser for Gaussian data: predicts E[x0 | z_t] (parameterization "x0").
 * @param g the data distribution.
 * @param schedule maps the integer index t (-1..maxIndex, -1 = clean) to abar_t.
 * @returns a Denoiser on Batch [B, D].
 */
export function gaussianDenoiser(g: Gaussian, schedule: DiscreteSchedule): Denoiser {
  const at = perTimeCache(schedule, (abar) => noisyGaussian(g, abar));
  const work = new Float64Array(2 * g.dim);
  return {
    parameterization: "x0",
    predict(z: Batch, t: number): Batch {
      checkShape("z", z, ["B", g.dim]);
      const ng = at(t);
      const out = zeros(z.shape);
      for (let b = 0; b < z.shape[0]; b++) {
        posteriorMeanInto(ng, z.data, b * g.dim, out.data, b * g.dim, work);
      }
      return out;
    },
  };
}

/**
 * Writes one draw of N(mu, Sigma) into `out[off .. off + D)` using D standard normals from `rng`.
 * @param work scratch of length >= D.
 */
export function sampleGaussianInto(
  g: Gaussian,
  rng: Rng,
  out: Float64Array,
  off: number,
  work: Float64Array,
): void {
  const d = g.dim;
  rng.normals(d, work);
  for (let i = 0; i < d; i++) {
    let v = g.mean[i];
    for (let k = 0; k <= i; k++) v += g.cholCov[i * d + k] * work[k];
    out[off + i] = v;
  }
}

/** `n` independent draws of N(mu, Sigma) as a Batch [n, D]. */
export function sampleGaussian(g: Gaussian, n: number, rng: Rng): Batch {
  checkPositiveInt("n", n);
  const out = zeros([n, g.dim]);
  const work = new Float64Array(g.dim);
  for (let b = 0; b < n; b++) sampleGaussianInto(g, rng, out.data, b * g.dim, work);
  return out;
}
