/**
 * GroupNorm (+ optional SiLU) as a few passes over typed arrays, for the tfjs CPU backend.
 * Composed of tfjs ops, a GroupNorm-SiLU costs ~15 elementwise kernels forward and ~30
 * backward, each a full pass over the activation. With the fast CPU path's native kernels
 * (lib/tfjs/native.ts) it is two passes each way, a thread per sample. Otherwise the
 * statistics are per-channel sums
 * (batched oneDNN ones-vector matmuls per chunk of samples on the fast CPU path, a float64
 * loop otherwise), and the normalisation is x·scale + shift with per-(sample, channel)
 * coefficients, fused with the SiLU into one vectorised oneDNN pass when the fast CPU path has
 * oneDNN (the SiLU derivative and the input gradient likewise; JS loops otherwise: `Math.exp`
 * costs ~12 ns per element). Same math as the
 * composed version (biased variance), wired into autodiff with `tf.customGrad`, so it is a
 * drop-in replacement on the CPU backend. Other backends keep the composed ops (see
 * `GroupNorm.call`).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { fastCpuDnnl, fastCpuNative } from "../tfjs/fast_cpu.ts";
import type { GroupNormDims, NativeKernels } from "../tfjs/native.ts";
import { Scratch } from "../tfjs/kernels/cpu_access.ts";
import { ones } from "../tfjs/kernels/elementwise.ts";
import { opOutput, opValues } from "../tfjs/op_arrays.ts";

/**
 * Per-channel sums over the pixels p of each of the n samples of a chunk, `(a, w, n, s1, s2)`:
 * s1[i c + k] = Σ_p a, s2[i c + k] = Σ_p a·w (w = a when omitted), for i < n, k < c
 * (overwritten).
 */
type ChannelSums = (
  a: Float32Array,
  w: Float32Array | undefined,
  n: number,
  s1: Float64Array,
  s2: Float64Array,
) => void;

/** Buffers of the oneDNN sums: the row sums and the elementwise products. */
const sumsScratch = { row: new Scratch(), prod: new Scratch() };

/**
 * The {@link ChannelSums} of one call's dims. With oneDNN, s1 = 1ᵀA as one batched matmul
 * over the [hw, c] samples of a chunk (one execution for all n samples, which two threads
 * split, where one GEMM per sample did not scale), and s2 = 1ᵀ(A∘W) likewise after one
 * product pass. This beat taking s2 from the diagonal of the batched Gram AᵀW (C
 * multiply-adds per element) at every C measured: GroupNorm-SiLU forward + backward at
 * [32, 32, 32, 16] 5.9-6.1 -> 5.8 ms, [32, 8, 8, 64] 2.0-2.1 -> 1.7 ms, [4, 32, 32, 128]
 * 7.2-7.7 -> 5.4-5.5 ms on one thread (AVX-512 Xeon, 2026-12-03); C = 256 had taken the JS
 * loop: [4, 16, 16, 256] 3.5 -> 2.5-2.6 ms. Else a float64 JS loop.
 */
function channelSums(d: GroupNormDims): ChannelSums {
  const { hw, c } = d;
  const dnnl = fastCpuDnnl();
  if (dnnl) {
    const rowSums = (a: Float32Array, n: number, dst: Float64Array) => {
      const row = sumsScratch.row.get(n * c), dims = { batch: n, m: 1, n: c, k: hw };
      dnnl.matmul(ones(n * hw).subarray(0, n * hw), a, row, dims, false, false);
      for (let j = 0; j < n * c; j++) dst[j] = row[j];
    };
    return (a, w, n, s1, s2) => {
      rowSums(a, n, s1);
      const prod = sumsScratch.prod.get(a.length);
      dnnl.binary("mul", a, w ?? a, [a.length], prod, [a.length]);
      rowSums(prod, n, s2);
    };
  }
  return (a, w, n, s1, s2) => {
    s1.fill(0, 0, n * c);
    s2.fill(0, 0, n * c);
    for (let i = 0; i < n; i++) {
      for (let p = 0; p < hw; p++) {
        const o = (i * hw + p) * c;
        for (let k = 0; k < c; k++) {
          const v = a[o + k];
          s1[i * c + k] += v;
          s2[i * c + k] += v * (w ? w[o + k] : v);
        }
      }
    }
  };
}

/** Mean and reciprocal std per group of sample `i` from its per-channel sums. */
function groupMoments(
  sum: Float64Array,
  sq: Float64Array,
  d: GroupNormDims,
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

/** GroupNorm's statistics and its affine map u = x·scale + shift, for every sample. */
interface Normaliser {
  /** Per (sample, group), [B * G]. */
  mean: Float64Array;
  rstd: Float64Array;
  /** Per (sample, channel), [B * C]: gamma·rstd and beta - mean·gamma·rstd. */
  scale: Float32Array;
  shift: Float32Array;
}

/**
 * Floats per array of one chunk of samples: GroupNorm's passes run chunk by chunk so that the
 * later passes over a chunk (apply after the sums; sums, SiLU derivative and the combination
 * in the backward) find it in the L2 cache (~256 KB per array) instead of re-reading the
 * whole activation, and the intermediate arrays are chunk-sized and reused (mnist training
 * step, A/B per round: -1% to +6% on a 2-core AVX-512 Xeon whose 480 MB L3 holds whole
 * activations anyway, 2026-12-03).
 */
const CHUNK_FLOATS = 1 << 16;

/** The sample ranges [i0, i1) of `d`'s chunks (at least one sample each). */
function chunksOf(d: GroupNormDims): [number, number][] {
  const per = Math.max(1, Math.floor(CHUNK_FLOATS / (d.hw * d.c)));
  const out: [number, number][] = [];
  for (let i0 = 0; i0 < d.b; i0 += per) out.push([i0, Math.min(d.b, i0 + per)]);
  return out;
}

/** Samples [i0, i1) of `a` ([B, ...] with `per` values per sample) as a view. */
function samples<T extends Float32Array | Float64Array>(a: T, per: number, i0: number, i1: number) {
  return a.subarray(i0 * per, i1 * per) as T;
}

/**
 * Fills `nz` for samples [i0, i1) of x from their per-channel sums (`sumsOf` reads the
 * chunk view `xc`, whose sample 0 is sample i0, into `sums`, [(i1 - i0) * C] each).
 */
function fillNormaliser(
  nz: Normaliser,
  xc: Float32Array,
  i0: number,
  i1: number,
  gamma: Float32Array,
  beta: Float32Array,
  d: GroupNormDims,
  eps: number,
  sumsOf: ChannelSums,
  sums: [Float64Array, Float64Array],
): void {
  const { c, groups } = d;
  const cg = c / groups;
  sumsOf(xc, undefined, i1 - i0, sums[0], sums[1]);
  for (let i = i0; i < i1; i++) {
    const mean = nz.mean.subarray(i * groups, (i + 1) * groups);
    const rstd = nz.rstd.subarray(i * groups, (i + 1) * groups);
    const at = (i - i0) * c;
    groupMoments(sums[0].subarray(at, at + c), sums[1].subarray(at, at + c), d, eps, mean, rstd);
    for (let k = 0; k < c; k++) {
      const j = (k / cg) | 0;
      const a = gamma[k] * rstd[j];
      nz.scale[i * c + k] = a;
      nz.shift[i * c + k] = beta[k] - mean[j] * a;
    }
  }
}

/**
 * act(x·scale + shift) over `n` samples [n, H, W, C] into `out` (act = SiLU or identity),
 * with scale, shift [n * C]: one fused oneDNN pass when the fast CPU path has oneDNN, JS
 * loops otherwise.
 */
function applyNormaliser(
  x: Float32Array,
  scale: Float32Array,
  shift: Float32Array,
  d: GroupNormDims,
  silu: boolean,
  out: Float32Array,
): void {
  const { hw, c } = d, n = x.length / (hw * c);
  const dnnl = fastCpuDnnl();
  if (dnnl) {
    dnnl.scaleShift(x, scale, shift, out, [n, hw, c], silu);
    return;
  }
  for (let i = 0; i < n; i++) {
    const end = (i + 1) * hw * c;
    for (let o = i * hw * c; o < end; o += c) {
      for (let k = 0; k < c; k++) {
        const u = x[o + k] * scale[i * c + k] + shift[i * c + k];
        out[o + k] = silu ? u / (1 + Math.exp(-u)) : u;
      }
    }
  }
}

/** GroupNorm(+SiLU) forward: y [B, H, W, C] and the normaliser the backward reuses. */
function groupNormForward(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  d: GroupNormDims,
  eps: number,
  silu: boolean,
): { y: Float32Array; nz: Normaliser } {
  const { b, hw, c, groups } = d;
  const nz: Normaliser = {
    mean: new Float64Array(b * groups),
    rstd: new Float64Array(b * groups),
    scale: new Float32Array(b * c),
    shift: new Float32Array(b * c),
  };
  const y = opOutput(x.length);
  const chunks = chunksOf(d), most = chunks[0][1] * c;
  const sums: [Float64Array, Float64Array] = [new Float64Array(most), new Float64Array(most)];
  const sumsOf = channelSums(d);
  for (const [i0, i1] of chunks) {
    const xc = samples(x, hw * c, i0, i1);
    fillNormaliser(nz, xc, i0, i1, gamma, beta, d, eps, sumsOf, sums);
    const scale = samples(nz.scale, c, i0, i1), shift = samples(nz.shift, c, i0, i1);
    applyNormaliser(xc, scale, shift, d, silu, samples(y, hw * c, i0, i1));
  }
  return { y, nz };
}

/** du = dy · d(silu)/du at u, elementwise into `du`. */
function siluBackward(u: Float32Array, dy: Float32Array, du: Float32Array): void {
  const dnnl = fastCpuDnnl();
  if (dnnl) {
    dnnl.eltwiseBackward("silu", u, dy, du);
    return;
  }
  for (let i = 0; i < u.length; i++) {
    const sg = 1 / (1 + Math.exp(-u[i]));
    du[i] = dy[i] * sg * (1 + u[i] * (1 - sg));
  }
}

/** dx's per-(sample, channel) coefficients, each [n * C]: dx = du·a + x·b + c. */
interface GradCoefficients {
  a: Float32Array;
  b: Float32Array;
  c: Float32Array;
}

/**
 * dx = du·a + x·b + c per (sample, channel) over `n` samples [n, H, W, C] into `dx`: two
 * fused oneDNN passes on the fast CPU path (t = x·b, then du·a + c + t), else a JS loop.
 */
function combineGradient(
  du: Float32Array,
  x: Float32Array,
  k: GradCoefficients,
  d: GroupNormDims,
  dx: Float32Array,
): void {
  const { hw, c } = d, n = x.length / (hw * c);
  const dnnl = fastCpuDnnl();
  if (dnnl) {
    const xb = scratch.xb.get(x.length);
    dnnl.scaleShift(x, k.b, scratch.zeros.get(k.b.length).fill(0), xb, [n, hw, c], false);
    dnnl.scaleShift(du, k.a, k.c, dx, [n, hw, c], false, xb);
    return;
  }
  for (let i = 0; i < n; i++) {
    const end = (i + 1) * hw * c;
    for (let o = i * hw * c; o < end; o += c) {
      for (let j = 0; j < c; j++) {
        const q = i * c + j;
        dx[o + j] = du[o + j] * k.a[q] + x[o + j] * k.b[q] + k.c[q];
      }
    }
  }
}

/**
 * Chunk-sized buffers reused across calls: the backward's u and du, {@link combineGradient}'s
 * intermediate x·b and its zero shift.
 */
const scratch = { u: new Scratch(), du: new Scratch(), xb: new Scratch(), zeros: new Scratch() };

/**
 * Gradients of GroupNorm(+SiLU) at x for upstream `dy`, given the forward's normaliser `nz`:
 * [dx, dgamma, dbeta]. With per-channel sums cd = Σ du and cx = Σ du·x over a sample's pixels,
 * dbeta += cd, dgamma += rstd (cx - mean cd), and dx = du·A + x·B + C per channel. Chunk by
 * chunk of samples: u, du, the sums and dx of a chunk before the next.
 */
function groupNormGrads(
  x: Float32Array,
  gamma: Float32Array,
  nz: Normaliser,
  dy: Float32Array,
  d: GroupNormDims,
  silu: boolean,
): [Float32Array, Float32Array, Float32Array] {
  const { hw, c, groups } = d;
  const cg = c / groups, n = hw * cg, per = hw * c;
  const dx = opOutput(x.length);
  const dgamma = new Float64Array(c), dbeta = new Float64Array(c);
  const chunks = chunksOf(d);
  const cdAll = new Float64Array(chunks[0][1] * c), cxAll = new Float64Array(chunks[0][1] * c);
  const s1 = new Float64Array(groups), s2 = new Float64Array(groups);
  const sumsOf = channelSums(d);
  const k: GradCoefficients = {
    a: new Float32Array(d.b * c),
    b: new Float32Array(d.b * c),
    c: new Float32Array(d.b * c),
  };
  for (const [i0, i1] of chunks) {
    const xc = samples(x, per, i0, i1), dyc = samples(dy, per, i0, i1);
    let du = dyc;
    if (silu) {
      const u = scratch.u.get(xc.length);
      du = scratch.du.get(xc.length);
      applyNormaliser(xc, samples(nz.scale, c, i0, i1), samples(nz.shift, c, i0, i1), d, false, u);
      siluBackward(u, dyc, du);
    }
    sumsOf(du, xc, i1 - i0, cdAll, cxAll);
    for (let i = i0; i < i1; i++) {
      const mean = nz.mean.subarray(i * groups, (i + 1) * groups);
      const rstd = nz.rstd.subarray(i * groups, (i + 1) * groups);
      const at = (i - i0) * c;
      const cd = cdAll.subarray(at, at + c), cx = cxAll.subarray(at, at + c);
      s1.fill(0);
      s2.fill(0);
      for (let ch = 0; ch < c; ch++) {
        const j = (ch / cg) | 0;
        const dg = rstd[j] * (cx[ch] - mean[j] * cd[ch]);
        dbeta[ch] += cd[ch];
        dgamma[ch] += dg;
        s1[j] += gamma[ch] * cd[ch];
        s2[j] += gamma[ch] * dg;
      }
      for (let ch = 0; ch < c; ch++) {
        const j = (ch / cg) | 0;
        const r = rstd[j], q = r * r * s2[j] / n;
        k.a[i * c + ch] = gamma[ch] * r;
        k.b[i * c + ch] = -q;
        k.c[i * c + ch] = -r * s1[j] / n + mean[j] * q;
      }
    }
    const kc: GradCoefficients = {
      a: samples(k.a, c, i0, i1),
      b: samples(k.b, c, i0, i1),
      c: samples(k.c, c, i0, i1),
    };
    combineGradient(du, xc, kc, d, samples(dx, per, i0, i1));
  }
  return [dx, Float32Array.from(dgamma), Float32Array.from(dbeta)];
}

/** Gradients [dx, dgamma, dbeta] at the forward's x, gamma, beta for upstream dy. */
type GroupNormGrads = (
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  dy: Float32Array,
) => [Float32Array, Float32Array, Float32Array];

/** One forward pass: y and the backward that reuses its statistics. */
type GroupNormPass = (
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  d: GroupNormDims,
  eps: number,
  silu: boolean,
) => { y: Float32Array; grads: GroupNormGrads };

/** The pass on the native kernels: statistics per (sample, group) as float32. */
function nativePass(native: NativeKernels): GroupNormPass {
  return (x, gamma, beta, d, eps, silu) => {
    const stats = {
      mean: new Float32Array(d.b * d.groups),
      rstd: new Float32Array(d.b * d.groups),
    };
    const y = opOutput(x.length);
    native.groupNormForward(x, gamma, beta, d, eps, silu, { y, ...stats });
    return {
      y,
      grads: (xs, g, b, dy) => {
        const out = {
          dx: opOutput(xs.length),
          dgamma: new Float32Array(d.c),
          dbeta: new Float32Array(d.c),
        };
        native.groupNormBackward(xs, g, b, stats, dy, d, silu, out);
        return [out.dx, out.dgamma, out.dbeta];
      },
    };
  };
}

/** The pass on typed-array loops and oneDNN primitives. */
const typedArrayPass: GroupNormPass = (x, gamma, beta, d, eps, silu) => {
  const { y, nz } = groupNormForward(x, gamma, beta, d, eps, silu);
  return { y, grads: (xs, g, _b, dy) => groupNormGrads(xs, g, nz, dy, d, silu) };
};

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
  const d: GroupNormDims = { b, hw: h * w, c, groups };
  const native = fastCpuNative();
  const pass = native ? nativePass(native) : typedArrayPass;
  const op = tf.customGrad((xt, gt, bt, save) => {
    const values = (t: unknown) => opValues(t as tf.Tensor);
    // The statistics are per (sample, group): kept in the closure for the backward.
    const { y, grads } = pass(values(xt), values(gt), values(bt), d, epsilon, silu);
    (save as tf.GradSaveFunc)([xt, gt, bt] as tf.Tensor[]);
    return {
      value: tf.tensor4d(y, [b, h, w, c]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [dx, dgamma, dbeta] = grads(
          ...saved.map(values) as [
            Float32Array,
            Float32Array,
            Float32Array,
          ],
          values(dy),
        );
        return [tf.tensor4d(dx, [b, h, w, c]), tf.tensor1d(dgamma), tf.tensor1d(dbeta)];
      },
    };
  });
  return op(x, gamma, beta) as tf.Tensor4D;
}
