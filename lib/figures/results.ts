/**
 * The results files the figures read, validated with zod: a sweep's `summary.json` (mean and
 * 95% CI per variant and metric, paired differences to the baseline) and the demo's results
 * table (`docs/results/demo_*.json`, one seed). Both become {@link QualityPoint}s: one method
 * at one NFE with its cFID and ms/image.
 * @module
 */
import { z } from "zod";
import { parseWith, readJsonFile } from "../config/parse.ts";

/** A paired difference of a variant to the baseline over the seeds both have. */
export interface PairedDiff {
  /** The baseline variant. */
  baseline: string;
  /** Number of pairs. */
  n: number;
  /** Mean of variant minus baseline. */
  mean: number;
  /** Lower end of its 95% CI. */
  ciLow: number;
  /** Upper end of its 95% CI. */
  ciHigh: number;
  /** Two-sided p-value of a zero mean difference. */
  p: number;
}

/** One row of {@link SweepSummary}: a variant's metric over its seeds. */
export interface SummaryRow {
  /** Variant name. */
  variant: string;
  /** Metric name ("cfid", "nfe", "msPerImage", "finalLoss", "cfid@K", ...). */
  metric: string;
  /** Seeds with a value. */
  n: number;
  /** Seeds without a value (failed or unfinished). */
  missing: number;
  /** Mean over seeds. */
  mean: number;
  /** Standard deviation over seeds. */
  sd: number;
  /** Lower end of the 95% CI of the mean. */
  ciLow: number;
  /** Upper end of the 95% CI of the mean. */
  ciHigh: number;
  /** Paired difference to the baseline; null for the baseline itself or without one. */
  diff: PairedDiff | null;
}

/** A sweep's `summary.json`: per variant and metric, mean, sd and 95% CI over seeds. */
export interface SweepSummary {
  /** Sweep name. */
  sweep: string;
  /** Baseline variant of the paired differences, or null. */
  baseline: string | null;
  /** Metric names summarised. */
  metrics: string[];
  /** Variants in spec order, with their config overrides. */
  variants: { name: string; overrides: Record<string, unknown> }[];
  /** One row per variant and metric. */
  rows: SummaryRow[];
}

/** The demo's results file (`deno task demo` writes `results.json`): one seed. */
export interface DemoResults {
  /** One row per model and step count. */
  table: {
    model: string;
    steps: number;
    nfe: number;
    cfid: number;
    n: number;
    msPerImage: number;
  }[];
}

const finite = z.number();
const summarySchema = z.object({
  sweep: z.string(),
  baseline: z.string().nullable(),
  metrics: z.array(z.string()),
  variants: z.array(z.object({ name: z.string(), overrides: z.record(z.string(), z.unknown()) })),
  rows: z.array(z.object({
    variant: z.string(),
    metric: z.string(),
    n: finite,
    missing: finite,
    mean: finite,
    sd: finite,
    ciLow: finite,
    ciHigh: finite,
    diff: z.object({
      baseline: z.string(),
      n: finite,
      mean: finite,
      ciLow: finite,
      ciHigh: finite,
      p: finite,
    }).nullable(),
  })),
});
const demoSchema = z.object({
  table: z.array(z.object({
    model: z.string(),
    steps: finite,
    nfe: finite,
    cfid: finite,
    n: finite,
    msPerImage: finite,
  })),
});

/** Reads and validates a sweep's `summary.json`; a bad file is a ConfigError naming it. */
export async function readSweepSummary(path: string): Promise<SweepSummary> {
  return parseWith(summarySchema, await readJsonFile(path), path);
}

/** Reads and validates a demo results file; a bad file is a ConfigError naming it. */
export async function readDemoResults(path: string): Promise<DemoResults> {
  return parseWith(demoSchema, await readJsonFile(path), path);
}

/** A value with an optional 95% confidence interval (absent for a single seed). */
export interface Estimate {
  /** Mean over seeds (or the one value). */
  mean: number;
  /** Lower end of the 95% CI. */
  ciLow?: number;
  /** Upper end of the 95% CI. */
  ciHigh?: number;
}

/** One method sampled with one number of network evaluations. */
export interface QualityPoint {
  /** Method label (legend entry), e.g. "teacher DDIM", "PD", "RDD". */
  method: string;
  /** Network evaluations per image. */
  nfe: number;
  /** Classifier FID (lower is better). */
  cfid: Estimate;
  /** Measured wall-clock milliseconds per image, when known. */
  msPerImage?: Estimate;
}

const estimate = (r: SummaryRow): Estimate => ({ mean: r.mean, ciLow: r.ciLow, ciHigh: r.ciHigh });

/**
 * The method label of a variant: its `method` override, else its `sampler` override, else the
 * variant's name.
 */
export function methodOf(variant: { name: string; overrides: Record<string, unknown> }): string {
  const o = variant.overrides;
  return String(o.method ?? o.sampler ?? variant.name);
}

/**
 * Quality points of a reproduction summary. A variant with `cfid@K` metrics (a distillation
 * chain) gives one point per K (NFE from `nfe@K`, else K; ms from `msPerImage@K`); any other
 * variant with `cfid` and `nfe` gives one point.
 */
export function qualityPointsFromSummary(s: SweepSummary): QualityPoint[] {
  const points: QualityPoint[] = [];
  for (const v of s.variants) {
    const rows = new Map(s.rows.filter((r) => r.variant === v.name).map((r) => [r.metric, r]));
    const ks = [...rows.keys()].map((m) => /^cfid@(\d+)$/.exec(m)?.[1]).filter((k) => k);
    const suffixes = ks.length > 0 ? ks.map((k) => `@${k}`) : rows.has("cfid") ? [""] : [];
    for (const sfx of suffixes) {
      const nfe = rows.get(`nfe${sfx}`)?.mean ?? (sfx ? Number(sfx.slice(1)) : undefined);
      if (nfe === undefined) continue;
      const ms = rows.get(`msPerImage${sfx}`);
      points.push({
        method: methodOf(v),
        nfe,
        cfid: estimate(rows.get(`cfid${sfx}`)!),
        ...(ms ? { msPerImage: estimate(ms) } : {}),
      });
    }
  }
  return points;
}

/**
 * Quality points of the demo's table (one seed, no CI). The method is the model label's first
 * word ("PD student (shipped)" and "PD 2->1 (this run)" are both "PD"), except the teacher's
 * "teacher DDIM".
 */
export function qualityPointsFromDemo(d: DemoResults): QualityPoint[] {
  return d.table.map((r) => ({
    method: r.model.startsWith("teacher") ? r.model : r.model.split(" ")[0],
    nfe: r.nfe,
    cfid: { mean: r.cfid },
    msPerImage: { mean: r.msPerImage },
  }));
}
