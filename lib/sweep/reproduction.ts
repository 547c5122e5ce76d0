/**
 * The reproduction summary (`docs/results/reproduction/summary.json`): the rows of the teacher
 * sweep (one variant per sampler and step count, metrics `cfid` / `nfe` / `msPerImage`) and of
 * the chains sweep (one variant per method, metrics `cfid@K` / `nfe@K` / `msPerImage@K`, paired
 * differences to PD by seed) merged into one {@link SweepSummary}: one variant per method
 * ("DDIM" = strided, "DPM-Solver++" = logSNR path, "DPM-Solver++ (stride)", "PD", "RCFD",
 * "RDD"; no overrides, so the figures label each by its name) with `name@K` metrics, plus the measured speed-up of a 1-step student. Also the
 * results table printed by `deno task reproduce`.
 * @module
 */
import type { Variant } from "./spec.ts";
import type { SummaryRow } from "./stats.ts";
import type { SweepSummary } from "./sweep.ts";

/** Method label of each sampler of the teacher sweep. */
export const SAMPLER_LABELS: Readonly<Record<string, string>> = {
  ddim: "DDIM",
  "dpm-solver++": "DPM-Solver++",
};

/** The path each sampler's label stands for; rows on another path add it, e.g. "DDIM (logsnr)". */
const LABEL_PATHS: Readonly<Record<string, string>> = { ddim: "stride", "dpm-solver++": "logsnr" };

/** Measured wall-clock speed-up of a 1-step student over the teacher's many-step DDIM. */
export interface SpeedupMeasurement {
  /** Teacher sampling steps (= NFE), e.g. 128. */
  teacherSteps: number;
  /** Student sampling steps (= NFE), 1. */
  studentSteps: number;
  /** Images per timed call (one batch, the same noise for both). */
  batch: number;
  /** Timed calls of each model; the medians are reported. */
  repeats: number;
  /** Median ms/image of the teacher. */
  teacherMsPerImage: number;
  /** Median ms/image of the student. */
  studentMsPerImage: number;
  /** teacherMsPerImage / studentMsPerImage. */
  speedup: number;
  /** teacherSteps / studentSteps. */
  nfeRatio: number;
  /** Model directory of the student that was timed. */
  student: string;
  /** The tfjs backend both ran on (one process). */
  backend: string;
}

/** What the reproduction's summary.json holds: a sweep summary plus where it came from. */
export interface ReproductionSummary extends SweepSummary {
  /** The sweep directories the rows were merged from. */
  sources: { teacher: string; chains: string };
  /** The measured speed-up, or null when no 1-step student was finished. */
  speedup: SpeedupMeasurement | null;
}

/** A teacher-sweep variant's method label and step count (from its overrides). */
function teacherVariant(v: Variant): { label: string; steps: number } {
  const sampler = String(v.overrides.sampler);
  const path = String(v.overrides.path ?? "stride");
  const name = SAMPLER_LABELS[sampler];
  const label = path === LABEL_PATHS[sampler] ? name : `${name} (${path})`;
  const steps = v.overrides.steps;
  if (name === undefined || typeof steps !== "number") {
    throw new RangeError(
      `teacher sweep variant "${v.name}" must override sampler (${
        Object.keys(SAMPLER_LABELS).join(", ")
      }) and steps, got ${JSON.stringify(v.overrides)}`,
    );
  }
  return { label, steps };
}

/**
 * Merges the teacher sweep's summary (variant per sampler x K; its `cfid`, `nfe`,
 * `msPerImage` rows become `name@K` rows of the sampler's method) and the chains sweep's
 * summary (rows kept as they are, with their paired differences to its baseline).
 */
export function mergeReproduction(
  teacher: SweepSummary,
  chains: SweepSummary,
  extra: Pick<ReproductionSummary, "sources" | "speedup">,
): ReproductionSummary {
  const rows: SummaryRow[] = [];
  const labels: string[] = [];
  for (const v of teacher.variants) {
    const { label, steps } = teacherVariant(v);
    if (!labels.includes(label)) labels.push(label);
    for (const r of teacher.rows.filter((r) => r.variant === v.name)) {
      if (!/^(cfid|nfe|msPerImage)$/.test(r.metric)) continue;
      rows.push({ ...r, variant: label, metric: `${r.metric}@${steps}`, diff: null });
    }
  }
  const clash = chains.variants.find((v) => labels.includes(v.name));
  if (clash) throw new RangeError(`variant "${clash.name}" is in both sweeps`);
  rows.push(...chains.rows);
  const metrics = [...new Set(rows.map((r) => r.metric))];
  return {
    sweep: "reproduction",
    baseline: chains.baseline,
    metrics,
    variants: [...labels, ...chains.variants.map((v) => v.name)].map((name) => ({
      name,
      overrides: {},
    })),
    rows,
    ...extra,
  };
}

/** One line of the reproduction table: a method at K steps. */
export interface ReproductionRow {
  /** Method label. */
  method: string;
  /** Sampling steps K. */
  steps: number;
  /** The `cfid@K` row. */
  cfid: SummaryRow;
  /** Mean NFE (NaN when not collected). */
  nfe: number;
  /** Mean ms/image (NaN when not collected). */
  msPerImage: number;
}

/** The table's lines: every variant's `cfid@K` rows, in variant order, K descending. */
export function reproductionRows(s: SweepSummary): ReproductionRow[] {
  const out: ReproductionRow[] = [];
  for (const v of s.variants) {
    const mine = s.rows.filter((r) => r.variant === v.name);
    const mean = (metric: string) => mine.find((r) => r.metric === metric)?.mean ?? NaN;
    const ks = mine.flatMap((r) => {
      const k = /^cfid@(\d+)$/.exec(r.metric)?.[1];
      return k ? [Number(k)] : [];
    }).sort((a, b) => b - a);
    for (const k of ks) {
      out.push({
        method: v.name,
        steps: k,
        cfid: mine.find((r) => r.metric === `cfid@${k}`)!,
        nfe: mean(`nfe@${k}`),
        msPerImage: mean(`msPerImage@${k}`),
      });
    }
  }
  return out;
}

const num = (x: number, digits = 3) => Number.isFinite(x) ? x.toFixed(digits) : "-";
const ci = (lo: number, hi: number) =>
  Number.isFinite(lo) && Number.isFinite(hi) ? ` [${num(lo)}, ${num(hi)}]` : "";

/**
 * The results table as aligned text: method, steps, NFE, cFID mean [95% CI], n seeds, paired
 * difference to the baseline [95% CI], p, ms/image; then the speed-up line when measured.
 */
export function formatReproduction(s: ReproductionSummary): string {
  const head = ["method", "steps", "NFE", "cFID [95% CI]", "seeds", "diff to PD [95% CI]", "p"]
    .concat("ms/image");
  if (s.baseline) head[5] = `diff to ${s.baseline} [95% CI]`;
  const body = reproductionRows(s).map((r) => {
    const d = r.cfid.diff;
    return [
      r.method,
      String(r.steps),
      num(r.nfe, 0),
      num(r.cfid.mean) + ci(r.cfid.ciLow, r.cfid.ciHigh),
      r.cfid.missing > 0 ? `${r.cfid.n} (${r.cfid.missing} missing)` : String(r.cfid.n),
      d ? num(d.mean) + ci(d.ciLow, d.ciHigh) : "",
      d ? num(d.p) : "",
      num(r.msPerImage, 2),
    ];
  });
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const table = [head, ...body].map((r) => r.map((x, i) => x.padEnd(w[i])).join("  ").trimEnd())
    .join("\n");
  const sp = s.speedup;
  const line = sp
    ? `speed-up of the ${sp.studentSteps}-step student over ${sp.teacherSteps}-step teacher DDIM ` +
      `(one process, batch ${sp.batch}, median of ${sp.repeats}): ${num(sp.speedup, 1)}x ` +
      `(${num(sp.teacherMsPerImage, 2)} vs ${num(sp.studentMsPerImage, 2)} ms/image; ` +
      `NFE ratio ${sp.nfeRatio}) on ${sp.backend}`
    : "speed-up: not measured (no finished 1-step PD student)";
  return `${table}\n\n${line}`;
}
