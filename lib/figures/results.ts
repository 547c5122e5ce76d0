/**
 * The results files the figures read, validated with zod: a sweep's `summary.json` (mean and
 * 95% CI per variant and metric, paired differences to the baseline) and the demo's results
 * table (`docs/results/demo_*.json`, one seed). Both become {@link QualityPoint}s: one method
 * at one NFE with its cFID and ms/image.
 * @module
 */
import { z } from "zod";
import { parseWith, readJsonFile } from "../config/parse.ts";
import type { SweepSummary } from "../sweep/sweep.ts";

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
/** Statistics that need n >= 2 are NaN in memory and null in summary.json. */
const stat = z.number().nullable().transform((v) => v ?? NaN);
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
    mean: stat,
    sd: stat,
    ciLow: stat,
    ciHigh: stat,
    diff: z.object({
      baseline: z.string(),
      n: finite,
      mean: stat,
      ciLow: stat,
      ciHigh: stat,
      p: stat,
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

/**
 * Reads and validates a sweep's `summary.json` (the format `lib/sweep/sweep.ts` writes; null
 * statistics become NaN); a bad file is a ConfigError naming it.
 */
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

/** An {@link Estimate} of a summary row or paired difference; a NaN CI (n < 2) is left out. */
export function estimateOf(r: { mean: number; ciLow: number; ciHigh: number }): Estimate {
  return Number.isFinite(r.ciLow) && Number.isFinite(r.ciHigh)
    ? { mean: r.mean, ciLow: r.ciLow, ciHigh: r.ciHigh }
    : { mean: r.mean };
}

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
      if (nfe === undefined || !Number.isFinite(rows.get(`cfid${sfx}`)!.mean)) continue;
      const ms = rows.get(`msPerImage${sfx}`);
      points.push({
        method: methodOf(v),
        nfe,
        cfid: estimateOf(rows.get(`cfid${sfx}`)!),
        ...(ms ? { msPerImage: estimateOf(ms) } : {}),
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
