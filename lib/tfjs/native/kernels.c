/*
 * Native kernels of the fast CPU path that oneDNN 2.6 has no primitive for: GroupNorm(+SiLU)
 * forward and backward over NHWC activations, the seeded dropout mask of
 * lib/models/dropout.ts, and the row-wise KL divergence of softmaxes (value and gradient) of
 * the relational losses (lib/distill/kl_cpu.ts). Built on the user's machine by
 * lib/tfjs/native.ts (cc -O3 -fopenmp -fno-trapping-math) and called through Deno FFI; OpenMP
 * threads are oneDNN's (one libgomp), so omp_set_num_threads covers both.
 *
 * The loops are compiled three times on x86-64 (AVX-512, AVX2 + FMA, baseline SSE2) and the
 * dynamic loader picks the version the CPU runs (GCC's target_clones), so one build serves
 * every x86-64 machine; the baseline version is ~6x slower than the AVX2 one here. Defining
 * RDD_SINGLE_TARGET builds only the version of the compiler's -march (tests check each).
 *
 * Every sample (KL: every row) is handled by one thread in a fixed order, so results do not
 * depend on the thread count.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__x86_64__) && !defined(RDD_SINGLE_TARGET)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

/* e^x for |x| <= 88 (clamped outside; NaN passes through): 2^n * p(r), x = n ln2 + r, with a
 * degree-6 Taylor polynomial on |r| <= ln2/2 (relative error < 2e-7). Branch-free so that the
 * loops calling it vectorise (GCC if-converts the clamps only with -fno-trapping-math). */
static inline float exp_approx(float x) {
  x = x > 88.0f ? 88.0f : x;
  x = x < -88.0f ? -88.0f : x;
  /* round to nearest: adding 1.5 * 2^23 leaves the integer in the low mantissa bits */
  const float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
  const float r = x - n * 0.693145752f - n * 1.42860677e-6f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  union { float f; int32_t i; } s = { .i = ((int32_t)n + 127) << 23 };
  return p * s.f;
}

static inline float sigmoid(float u) { return 1.0f / (1.0f + exp_approx(-u)); }

/* Per-channel scale and shift of sample `i` from its per-group mean and reciprocal std. */
static void coefficients(const float *gamma, const float *beta, const float *mean,
                         const float *rstd, int64_t c, int64_t cg, float *scale,
                         float *shift) {
  for (int64_t k = 0; k < c; k++) {
    const float a = gamma[k] * rstd[k / cg];
    scale[k] = a;
    shift[k] = beta[k] - mean[k / cg] * a;
  }
}

/* Sample i of rdd_group_norm_forward. */
CLONES static void forward_sample(const float *x, const float *gamma, const float *beta,
                                  int64_t i, int64_t hw, int64_t c, int64_t groups, float eps,
                                  int32_t silu, float *y, float *mean, float *rstd) {
  const int64_t cg = c / groups;
  const double count = (double)(hw * cg);
  const float *xs = x + i * hw * c;
  float *ys = y + i * hw * c;
  double s1[c], s2[c];
  float scale[c], shift[c];
  for (int64_t k = 0; k < c; k++) s1[k] = s2[k] = 0;
  for (int64_t p = 0; p < hw; p++) {
    for (int64_t k = 0; k < c; k++) {
      const double v = xs[p * c + k];
      s1[k] += v;
      s2[k] += v * v;
    }
  }
  for (int64_t g = 0; g < groups; g++) {
    double s = 0, q = 0;
    for (int64_t k = g * cg; k < (g + 1) * cg; k++) {
      s += s1[k];
      q += s2[k];
    }
    const double m = s / count, var = q / count - m * m;
    mean[i * groups + g] = (float)m;
    rstd[i * groups + g] = (float)(1.0 / sqrt((var > 0 ? var : 0) + eps));
  }
  coefficients(gamma, beta, mean + i * groups, rstd + i * groups, c, cg, scale, shift);
  for (int64_t p = 0; p < hw; p++) {
    const float *xp = xs + p * c;
    float *yp = ys + p * c;
    if (silu) {
      for (int64_t k = 0; k < c; k++) {
        const float u = xp[k] * scale[k] + shift[k];
        yp[k] = u * sigmoid(u);
      }
    } else {
      for (int64_t k = 0; k < c; k++) yp[k] = xp[k] * scale[k] + shift[k];
    }
  }
}

/*
 * y = act(gamma (x - mean_g) rstd_g + beta) for x, y [b, hw, c], G = `groups` groups of c / G
 * contiguous channels, act = SiLU when `silu`, else identity. mean, rstd [b, G] are written
 * (biased variance, as the composed tfjs ops).
 */
void rdd_group_norm_forward(const float *x, const float *gamma, const float *beta, int64_t b,
                            int64_t hw, int64_t c, int64_t groups, float eps, int32_t silu,
                            float *y, float *mean, float *rstd) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < b; i++) {
    forward_sample(x, gamma, beta, i, hw, c, groups, eps, silu, y, mean, rstd);
  }
}

/* Sample i of rdd_group_norm_backward; its dgamma and dbeta terms into dg, db [c]. */
CLONES static void backward_sample(const float *x, const float *gamma, const float *beta,
                                   const float *mean, const float *rstd, const float *dy,
                                   int64_t i, int64_t hw, int64_t c, int64_t groups,
                                   int32_t silu, float *dx, double *dg, double *db) {
  const int64_t cg = c / groups;
  const double count = (double)(hw * cg);
  const float *xs = x + i * hw * c, *dys = dy + i * hw * c;
  const float *mi = mean + i * groups, *ri = rstd + i * groups;
  float *dxs = dx + i * hw * c;
  double cd[c], cx[c], s1[groups], s2[groups];
  float scale[c], shift[c], ka[c], kb[c], kc[c];
  coefficients(gamma, beta, mi, ri, c, cg, scale, shift);
  for (int64_t k = 0; k < c; k++) cd[k] = cx[k] = 0;
  for (int64_t p = 0; p < hw; p++) {
    const float *xp = xs + p * c, *dyp = dys + p * c;
    float *dup = dxs + p * c;
    if (silu) {
      for (int64_t k = 0; k < c; k++) {
        const float u = xp[k] * scale[k] + shift[k], s = sigmoid(u);
        dup[k] = dyp[k] * s * (1.0f + u * (1.0f - s));
      }
    } else {
      for (int64_t k = 0; k < c; k++) dup[k] = dyp[k];
    }
    for (int64_t k = 0; k < c; k++) {
      cd[k] += dup[k];
      cx[k] += (double)dup[k] * xp[k];
    }
  }
  for (int64_t g = 0; g < groups; g++) s1[g] = s2[g] = 0;
  for (int64_t k = 0; k < c; k++) {
    const int64_t g = k / cg;
    dg[k] = ri[g] * (cx[k] - mi[g] * cd[k]);
    db[k] = cd[k];
    s1[g] += gamma[k] * cd[k];
    s2[g] += gamma[k] * dg[k];
  }
  for (int64_t k = 0; k < c; k++) {
    const int64_t g = k / cg;
    const double r = ri[g], q = r * r * s2[g] / count;
    ka[k] = (float)(gamma[k] * r);
    kb[k] = (float)(-q);
    kc[k] = (float)(-r * s1[g] / count + mi[g] * q);
  }
  for (int64_t p = 0; p < hw; p++) {
    const float *xp = xs + p * c;
    float *dxp = dxs + p * c;
    for (int64_t k = 0; k < c; k++) dxp[k] = dxp[k] * ka[k] + xp[k] * kb[k] + kc[k];
  }
}

/*
 * Gradients of rdd_group_norm_forward at x for upstream dy, given its mean and rstd: dx [b,
 * hw, c] and dgamma, dbeta [c] (all overwritten). With du = dy act'(u) and per-channel sums
 * cd = sum du, cx = sum du x over a sample's pixels: dbeta = sum_i cd, dgamma = sum_i rstd (cx
 * - mean cd), dx = du A + x B + C per channel. dx holds du between the two passes.
 */
void rdd_group_norm_backward(const float *x, const float *gamma, const float *beta,
                             const float *mean, const float *rstd, const float *dy, int64_t b,
                             int64_t hw, int64_t c, int64_t groups, int32_t silu, float *dx,
                             float *dgamma, float *dbeta) {
  double *parts = malloc(sizeof(double) * 2 * b * c);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < b; i++) {
    double *dg = parts + 2 * i * c;
    backward_sample(x, gamma, beta, mean, rstd, dy, i, hw, c, groups, silu, dx, dg, dg + c);
  }
  for (int64_t k = 0; k < c; k++) {
    double g = 0, s = 0;
    for (int64_t i = 0; i < b; i++) {
      g += parts[2 * i * c + k];
      s += parts[2 * i * c + c + k];
    }
    dgamma[k] = (float)g;
    dbeta[k] = (float)s;
  }
  free(parts);
}

/*
 * The dropout mask of lib/models/dropout.ts: mask[i] = `scale` if mix32(h + i GOLDEN) >=
 * `threshold` (as uint32; threshold = round(rate 2^32)), else 0, for i < n.
 */
/* Elements [i0, i1) of rdd_dropout_mask. */
CLONES static void mask_range(float *mask, int64_t i0, int64_t i1, uint32_t h, uint64_t threshold,
                              float scale) {
  for (int64_t i = i0; i < i1; i++) {
    uint32_t x = h + (uint32_t)i * 0x9e3779b9u;
    x = (x ^ (x >> 16)) * 0x7feb352du;
    x = (x ^ (x >> 15)) * 0x846ca68bu;
    x ^= x >> 16;
    mask[i] = x >= threshold ? scale : 0.0f;
  }
}

void rdd_dropout_mask(float *mask, int64_t n, uint32_t h, uint64_t threshold, float scale) {
  const int64_t block = 1 << 14;
#pragma omp parallel for schedule(static)
  for (int64_t i0 = 0; i0 < n; i0 += block) {
    mask_range(mask, i0, i0 + block < n ? i0 + block : n, h, threshold, scale);
  }
}

/* log Σ_i e^{x_i} over one row of k logits (max-shifted). NaN in, NaN out. */
static inline float row_lse(const float *x, int64_t k) {
  float m = -INFINITY, s = 0.0f;
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < k; i++) m = x[i] > m ? x[i] : m;
  if (isinf(m)) return m;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < k; i++) s += exp_approx(x[i] - m);
  return m + logf(s);
}

/* Rows [r0, r1) of rdd_kl_rows. */
CLONES static void kl_rows_range(const float *p, const float *q, int64_t r0, int64_t r1, int64_t k,
                                 double *kl) {
  for (int64_t r = r0; r < r1; r++) {
    const float *pr = p + r * k, *qr = q + r * k;
    const float lp = row_lse(pr, k), dl = row_lse(qr, k) - lp;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < k; i++) s += exp_approx(pr[i] - lp) * ((pr[i] - qr[i]) + dl);
    kl[r] = s;
  }
}

/*
 * kl[r] = KL(softmax(p_r) || softmax(q_r)) = Σ_i P_i ((p_i - lse p) - (q_i - lse q)) for each
 * of the `rows` rows of k logits of p and q [rows, k]. One row per thread at a time.
 */
void rdd_kl_rows(const float *p, const float *q, int64_t rows, int64_t k, double *kl) {
  const int64_t block = k >= 1024 ? 1 : 1024 / k;
#pragma omp parallel for schedule(static)
  for (int64_t r0 = 0; r0 < rows; r0 += block) {
    kl_rows_range(p, q, r0, r0 + block < rows ? r0 + block : rows, k, kl);
  }
}

/* Rows [r0, r1) of rdd_kl_rows_grad. */
CLONES static void kl_grad_range(const float *p, const float *q, int64_t r0, int64_t r1, int64_t k,
                                 float scale, float *dq) {
  for (int64_t r = r0; r < r1; r++) {
    const float *pr = p + r * k, *qr = q + r * k;
    const float lp = row_lse(pr, k), lq = row_lse(qr, k);
    float *dr = dq + r * k;
    for (int64_t i = 0; i < k; i++) {
      dr[i] = scale * (exp_approx(qr[i] - lq) - exp_approx(pr[i] - lp));
    }
  }
}

/*
 * dq = scale (softmax(q_r) - softmax(p_r)) row by row for p, q, dq [rows, k]: the gradient of
 * scale Σ_r KL(softmax(p_r) || softmax(q_r)) in q.
 */
void rdd_kl_rows_grad(const float *p, const float *q, int64_t rows, int64_t k, float scale,
                      float *dq) {
  const int64_t block = k >= 1024 ? 1 : 1024 / k;
#pragma omp parallel for schedule(static)
  for (int64_t r0 = 0; r0 < rows; r0 += block) {
    kl_grad_range(p, q, r0, r0 + block < rows ? r0 + block : rows, k, scale, dq);
  }
}
