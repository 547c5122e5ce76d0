/**
 * GroupNorm (+ optional SiLU) as ONE forward and ONE backward loop over typed arrays, for
 * the tfjs CPU backend. Composed of tfjs ops, a GroupNorm-SiLU costs ~15 elementwise kernels
 * forward and ~30 backward, each a full pass over the activation; these loops do two passes
 * each way. Same math as the composed version (biased variance, float64 accumulators), wired
 * into autodiff with `tf.customGrad`, so it is a drop-in replacement on the CPU backend.
 * Other backends keep the composed ops (see `GroupNorm.call`).
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Per-(sample, group) mean and reciprocal std, `[B * G]` each. */
interface GroupStats {
  mean: Float64Array;
  rstd: Float64Array;
}

function groupStats(
  x: Float32Array,
  b: number,
  hw: number,
  c: number,
  g: number,
  eps: number,
): GroupStats {
  const cg = c / g;
  const mean = new Float64Array(b * g), rstd = new Float64Array(b * g);
  const sum = new Float64Array(g), sq = new Float64Array(g);
  const n = hw * cg;
  for (let i = 0; i < b; i++) {
    sum.fill(0);
    sq.fill(0);
    const base = i * hw * c;
    for (let p = 0; p < hw; p++) {
      const o = base + p * c;
      for (let k = 0; k < c; k++) {
        const v = x[o + k];
        const gi = (k / cg) | 0;
        sum[gi] += v;
        sq[gi] += v * v;
      }
    }
    for (let j = 0; j < g; j++) {
      const m = sum[j] / n;
      mean[i * g + j] = m;
      rstd[i * g + j] = 1 / Math.sqrt(Math.max(0, sq[j] / n - m * m) + eps);
    }
  }
  return { mean, rstd };
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
  const hw = h * w, cg = c / groups;
  const op = tf.customGrad((xt, gt, bt, save) => {
    const xv = (xt as tf.Tensor).dataSync() as Float32Array;
    const gv = (gt as tf.Tensor).dataSync() as Float32Array;
    const bv = (bt as tf.Tensor).dataSync() as Float32Array;
    const st = groupStats(xv, b, hw, c, groups, epsilon);
    const y = new Float32Array(xv.length);
    for (let i = 0; i < b; i++) {
      for (let p = 0; p < hw; p++) {
        const o = (i * hw + p) * c;
        for (let k = 0; k < c; k++) {
          const s = i * groups + ((k / cg) | 0);
          const u = gv[k] * (xv[o + k] - st.mean[s]) * st.rstd[s] + bv[k];
          y[o + k] = silu ? u / (1 + Math.exp(-u)) : u;
        }
      }
    }
    (save as tf.GradSaveFunc)([xt as tf.Tensor, gt as tf.Tensor, bt as tf.Tensor]);
    return {
      value: tf.tensor4d(y, [b, h, w, c]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const dyv = dy.dataSync() as Float32Array;
        const xs = saved[0].dataSync() as Float32Array;
        const gs = saved[1].dataSync() as Float32Array;
        const bs = saved[2].dataSync() as Float32Array;
        const { mean, rstd } = groupStats(xs, b, hw, c, groups, epsilon);
        const dx = new Float32Array(xs.length);
        const dgamma = new Float64Array(c), dbeta = new Float64Array(c);
        // dxhat = du * gamma, kept in dx until the second pass.
        const s1 = new Float64Array(groups), s2 = new Float64Array(groups);
        const n = hw * cg;
        for (let i = 0; i < b; i++) {
          s1.fill(0);
          s2.fill(0);
          for (let p = 0; p < hw; p++) {
            const o = (i * hw + p) * c;
            for (let k = 0; k < c; k++) {
              const gi = (k / cg) | 0, s = i * groups + gi;
              const xhat = (xs[o + k] - mean[s]) * rstd[s];
              let du = dyv[o + k];
              if (silu) {
                const u = gs[k] * xhat + bs[k];
                const sg = 1 / (1 + Math.exp(-u));
                du *= sg * (1 + u * (1 - sg));
              }
              dgamma[k] += du * xhat;
              dbeta[k] += du;
              const dxh = du * gs[k];
              dx[o + k] = dxh;
              s1[gi] += dxh;
              s2[gi] += dxh * xhat;
            }
          }
          for (let p = 0; p < hw; p++) {
            const o = (i * hw + p) * c;
            for (let k = 0; k < c; k++) {
              const gi = (k / cg) | 0, s = i * groups + gi;
              const xhat = (xs[o + k] - mean[s]) * rstd[s];
              dx[o + k] = rstd[s] * (dx[o + k] - s1[gi] / n - xhat * s2[gi] / n);
            }
          }
        }
        return [
          tf.tensor4d(dx, [b, h, w, c]),
          tf.tensor1d(Float32Array.from(dgamma)),
          tf.tensor1d(Float32Array.from(dbeta)),
        ];
      },
    };
  });
  return op(x, gamma, beta) as tf.Tensor4D;
}
