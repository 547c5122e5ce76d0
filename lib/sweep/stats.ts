/**
 * Statistics of a sweep: per variant and metric the sample mean, standard deviation (n - 1)
 * and 95% Student-t interval over seeds, and against a baseline variant the PAIRED
 * difference by seed (variant minus baseline at the same seed) with its 95% t-interval and
 * two-sided p-value (paired t-test). Quantiles and the CDF of the t distribution come from
 * `@stdlib/stats-base-dists-t-*`. Statistics that need n >= 2 are NaN below that (null in
 * JSON); missing cells are counted, never averaged over.
 * @module
 */
import tQuantile from "@stdlib/stats-base-dists-t-quantile";
import tCdf from "@stdlib/stats-base-dists-t-cdf";

/** Mean, sd and 95% t-interval of a sample. */
export interface SampleStats {
  /** Sample size. */
  n: number;
  /** Sample mean. */
  mean: number;
  /** Standard deviation with n - 1 in the denominator; NaN when n < 2. */
  sd: number;
  /** Lower end of the 95% t-interval of the mean; NaN when n < 2. */
  ciLow: number;
  /** Upper end of the 95% t-interval of the mean; NaN when n < 2. */
  ciHigh: number;
}

/** The paired difference (variant - baseline, by seed) to the baseline. */
export interface PairedDiff extends Omit<SampleStats, "sd"> {
  /** The baseline variant. */
  baseline: string;
  /** Two-sided p-value of the paired t-test (H0: mean difference 0); NaN when n < 2. */
  p: number;
}

/** One row of summary.json / summary.csv: a variant x metric. */
export interface SummaryRow extends SampleStats {
  /** Variant name. */
  variant: string;
  /** Metric name. */
  metric: string;
  /** Seeds of the spec without a finished value (failed or not run). */
  missing: number;
  /** Paired difference to the baseline; null for the baseline itself or without one. */
  diff: PairedDiff | null;
}

/** Sample statistics of `xs` with a `level` (default 0.95) two-sided t-interval. */
export function sampleStats(xs: readonly number[], level = 0.95): SampleStats {
  const n = xs.length;
  const mean = n > 0 ? xs.reduce((a, b) => a + b, 0) / n : NaN;
  if (n < 2) return { n, mean, sd: NaN, ciLow: NaN, ciHigh: NaN };
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
  const half = tQuantile(0.5 + level / 2, n - 1) * sd / Math.sqrt(n);
  return { n, mean, sd, ciLow: mean - half, ciHigh: mean + half };
}

/**
 * The paired t statistics of `a[i] - b[i]`: mean difference, its t-interval and the
 * two-sided p-value. With zero spread the p-value is 1 for a zero mean difference, else 0.
 */
export function pairedDiff(
  a: readonly number[],
  b: readonly number[],
  baseline: string,
  level = 0.95,
): PairedDiff {
  if (a.length !== b.length) {
    throw new RangeError(`a and b must have the same length, got ${a.length} and ${b.length}`);
  }
  const s = sampleStats(a.map((x, i) => x - b[i]), level);
  let p = NaN;
  if (s.n >= 2) {
    const se = s.sd / Math.sqrt(s.n);
    p = se > 0 ? 2 * tCdf(-Math.abs(s.mean / se), s.n - 1) : s.mean === 0 ? 1 : 0;
  }
  return { baseline, n: s.n, mean: s.mean, ciLow: s.ciLow, ciHigh: s.ciHigh, p };
}

/** A finished value of one cell: variant, seed and metrics. */
export interface MetricRecord {
  /** Variant name. */
  variant: string;
  /** Seed. */
  seed: number;
  /** Metric name -> value. */
  metrics: Record<string, number>;
}

/**
 * One {@link SummaryRow} per variant x metric (variants and metrics in the given order).
 * `seeds` are the seeds every variant should have; a seed without a value for a metric is
 * counted in `missing`. The paired difference uses the seeds both the variant and the
 * baseline have.
 */
export function summarizeRecords(
  records: readonly MetricRecord[],
  variants: readonly string[],
  metrics: readonly string[],
  seeds: readonly number[],
  baseline: string | null,
): SummaryRow[] {
  const value = (variant: string, metric: string) => {
    const bySeed = new Map<number, number>();
    for (const r of records) {
      const x = r.metrics[metric];
      if (r.variant === variant && typeof x === "number" && seeds.includes(r.seed)) {
        bySeed.set(r.seed, x);
      }
    }
    return bySeed;
  };
  const rows: SummaryRow[] = [];
  for (const variant of variants) {
    for (const metric of metrics) {
      const mine = value(variant, metric);
      const stats = sampleStats([...mine.values()]);
      let diff: PairedDiff | null = null;
      if (baseline !== null && baseline !== variant) {
        const base = value(baseline, metric);
        const common = seeds.filter((s) => mine.has(s) && base.has(s));
        diff = pairedDiff(
          common.map((s) => mine.get(s)!),
          common.map((s) => base.get(s)!),
          baseline,
        );
      }
      rows.push({ variant, metric, ...stats, missing: seeds.length - mine.size, diff });
    }
  }
  return rows;
}
