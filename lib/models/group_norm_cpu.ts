/**
 * GroupNorm (+ optional SiLU) as a few passes over typed arrays, for the tfjs CPU backend.
 * Composed of tfjs ops, a GroupNorm-SiLU costs ~15 elementwise kernels forward and ~30
 * backward, each a full pass over the activation. Here the statistics are per-channel sums
 * (float64), the normalisation is one multiply-add per element with per-channel coefficients,
 * and SiLU and its derivative run as oneDNN's vectorised primitives when the fast CPU path has
 * them (JS loops otherwise: `Math.exp` costs ~12 ns per element). Same math as the composed
 * version (biased variance), wired into autodiff with `tf.customGrad`, so it is a drop-in
 * replacement on the CPU backend. Other backends keep the composed ops (see `GroupNorm.call`).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { fastCpuDnnl } from "../tfjs/fast_cpu.ts";

/** Activation sizes of one call: batch, pixels per image, channels, groups. */
interface Dims {
  b: number;
  hw: number;
  c: number;
  groups: number;
}

/**
 * Per-(sample, channel) sums Σ_p a·w and Σ_p a·a (or Σ_p a when `w` is omitted: Σ a, Σ a·x)
 * over the pixels of sample `i`: `s1[k]`, `s2[k]` for k < c (overwritten).
 */
function channelSums(
  a: Float32Array,
  w: Float32Array | undefined,
  i: number,
  d: Dims,
  s1: Float64Array,
  s2: Float64Array,
): void {
  s1.fill(0);
  s2.fill(0);
  const { hw, c } = d;
  const base = i * hw * c;
  for (let p = 0; p < hw; p++) {
    const o = base + p * c;
    for (let k = 0; k < c; k++) {
      const v = a[o + k];
      s1[k] += v;
      s2[k] += v * (w ? w[o + k] : v);
    }
  }
}

/** Mean and reciprocal std per group of sample `i` from its per-channel sums. */
function groupMoments(
  sum: Float64Array,
  sq: Float64Array,
  d: Dims,
  eps: number,
  mean: Float64Array,
  rstd: Float64Array,
): void {
  const cg = d.c / d.groups, n = d.hw * cg;
  for (let j = 0; j < d.groups; j++) {
    let s = 0, q = 0;
    for (let k = j * cg; k < (j + 1) * cg; k++) {
      s += sum[k];
      q += sq[k];
    }
    const m = s / n;
    mean[j] = m;
    rstd[j] = 1 / Math.sqrt(Math.max(0, q / n - m * m) + eps);
  }
}

/** out[i, p, k] = x[i, p, k] * a[k] + b[k] over the pixels of sample `i` (float32 out). */
function channelAffine(
  x: Float32Array,
  i: number,
  d: Dims,
  a: Float64Array,
  b: Float64Array,
  out: Float32Array,
): void {
  const { hw, c } = d;
  const end = (i + 1) * hw * c;
  for (let o = i * hw * c; o < end; o += c) {
    for (let k = 0; k < c; k++) out[o + k] = x[o + k] * a[k] + b[k];
  }
}

/** Per-sample statistics and the affine map u = x·scale + shift of GroupNorm. */
interface Normaliser {
  /** Per group of the current sample. */
  mean: Float64Array;
  rstd: Float64Array;
  /** Per channel of the current sample. */
  scale: Float64Array;
  shift: Float64Array;
}

function normaliser(d: Dims): Normaliser {
  return {
    mean: new Float64Array(d.groups),
    rstd: new Float64Array(d.groups),
    scale: new Float64Array(d.c),
    shift: new Float64Array(d.c),
  };
}

/** Fills `nz` for sample `i`: u = gamma (x - mean) rstd + beta = x·scale + shift. */
function normalise(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  i: number,
  d: Dims,
  eps: number,
  nz: Normaliser,
  sums: [Float64Array, Float64Array],
): void {
  channelSums(x, undefined, i, d, sums[0], sums[1]);
  groupMoments(sums[0], sums[1], d, eps, nz.mean, nz.rstd);
  const cg = d.c / d.groups;
  for (let k = 0; k < d.c; k++) {
    const j = (k / cg) | 0;
    nz.scale[k] = gamma[k] * nz.rstd[j];
    nz.shift[k] = beta[k] - nz.mean[j] * nz.scale[k];
  }
}

/** u -> u·sigmoid(u) in place. */
function siluInPlace(u: Float32Array): void {
  const dnnl = fastCpuDnnl();
  if (dnnl) return dnnl.eltwise("silu", u, u);
  for (let i = 0; i < u.length; i++) u[i] = u[i] / (1 + Math.exp(-u[i]));
}

/** dy · d(silu)/du at u (new array). */
function siluBackward(u: Float32Array, dy: Float32Array): Float32Array {
  const du = new Float32Array(u.length);
  const dnnl = fastCpuDnnl();
  if (dnnl) {
    dnnl.eltwiseBackward("silu", u, dy, du);
    return du;
  }
  for (let i = 0; i < u.length; i++) {
    const sg = 1 / (1 + Math.exp(-u[i]));
    du[i] = dy[i] * sg * (1 + u[i] * (1 - sg));
  }
  return du;
}

/** The pre-activation u [B, H, W, C] of GroupNorm (affine included). */
function groupNormValues(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  d: Dims,
  eps: number,
): Float32Array {
  const u = new Float32Array(x.length);
  const nz = normaliser(d);
  const sums: [Float64Array, Float64Array] = [new Float64Array(d.c), new Float64Array(d.c)];
  for (let i = 0; i < d.b; i++) {
    normalise(x, gamma, beta, i, d, eps, nz, sums);
    channelAffine(x, i, d, nz.scale, nz.shift, u);
  }
  return u;
}

/**
 * Gradients of GroupNorm(+SiLU) at x for upstream `dy`: [dx, dgamma, dbeta]. With per-channel
 * sums cd = Σ du and cx = Σ du·x over a sample's pixels, dbeta += cd,
 * dgamma += rstd (cx - mean cd), and dx = du·A + x·B + C per channel.
 */
function groupNormGrads(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  dy: Float32Array,
  d: Dims,
  eps: number,
  silu: boolean,
): [Float32Array, Float32Array, Float32Array] {
  const { c, groups } = d;
  const cg = c / groups, n = d.hw * cg;
  const nz = normaliser(d);
  const sums: [Float64Array, Float64Array] = [new Float64Array(c), new Float64Array(c)];
  const du = silu ? siluBackward(groupNormValues(x, gamma, beta, d, eps), dy) : dy;
  const dx = new Float32Array(x.length);
  const dgamma = new Float64Array(c), dbeta = new Float64Array(c);
  const s1 = new Float64Array(groups), s2 = new Float64Array(groups);
  const a = new Float64Array(c), bcoef = new Float64Array(c), cst = new Float64Array(c);
  for (let i = 0; i < d.b; i++) {
    normalise(x, gamma, beta, i, d, eps, nz, sums);
    channelSums(du, x, i, d, sums[0], sums[1]);
    s1.fill(0);
    s2.fill(0);
    for (let k = 0; k < c; k++) {
      const j = (k / cg) | 0;
      const cd = sums[0][k], cx = sums[1][k];
      const dg = nz.rstd[j] * (cx - nz.mean[j] * cd);
      dbeta[k] += cd;
      dgamma[k] += dg;
      s1[j] += gamma[k] * cd;
      s2[j] += gamma[k] * dg;
    }
    for (let k = 0; k < c; k++) {
      const j = (k / cg) | 0;
      const r = nz.rstd[j], q = r * r * s2[j] / n;
      a[k] = gamma[k] * r;
      bcoef[k] = -q;
      cst[k] = -r * s1[j] / n + nz.mean[j] * q;
    }
    const end = (i + 1) * d.hw * c;
    for (let o = i * d.hw * c; o < end; o += c) {
      for (let k = 0; k < c; k++) dx[o + k] = du[o + k] * a[k] + x[o + k] * bcoef[k] + cst[k];
    }
  }
  return [dx, Float32Array.from(dgamma), Float32Array.from(dbeta)];
}

/**
 * `y = act(gamma * (x - mean_g) * rstd_g + beta)` over x `[B, H, W, C]` (NHWC), G groups of
 * C/G contiguous channels, act = SiLU or identity; differentiable in x, gamma and beta.
 */
export function groupNormCpu(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  groups: number,
  epsilon: number,
  silu: boolean,
): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const d: Dims = { b, hw: h * w, c, groups };
  const op = tf.customGrad((xt, gt, bt, save) => {
    const values = (t: unknown) => (t as tf.Tensor).dataSync() as Float32Array;
    const y = groupNormValues(values(xt), values(gt), values(bt), d, epsilon);
    if (silu) siluInPlace(y);
    (save as tf.GradSaveFunc)([xt as tf.Tensor, gt as tf.Tensor, bt as tf.Tensor]);
    return {
      value: tf.tensor4d(y, [b, h, w, c]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [dx, dgamma, dbeta] = groupNormGrads(
          values(saved[0]),
          values(saved[1]),
          values(saved[2]),
          values(dy),
          d,
          epsilon,
          silu,
        );
        return [tf.tensor4d(dx, [b, h, w, c]), tf.tensor1d(dgamma), tf.tensor1d(dbeta)];
      },
    };
  });
  return op(x, gamma, beta) as tf.Tensor4D;
}
