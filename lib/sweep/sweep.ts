/**
 * Sweeps from a notebook or the command: {@link runSweep} (expand the spec, run the cells
 * with the local or Slurm executor, write the outputs), {@link loadSweep} (read a sweep
 * directory) and {@link summarizeSweep} (the statistics table), and the output files:
 * `results.jsonl` (one line per finished cell), `summary.json` and `summary.csv` (one row
 * per variant x metric, see {@link SweepSummary}).
 * @module
 */
import type { SlurmSettings, SweepSpec } from "../config/sweep.ts";
import { ConfigError } from "../config/errors.ts";
import { writeFileAtomic } from "../train/checkpoint.ts";
import { type Cell, expandSweep, type Variant } from "./spec.ts";
import {
  type CellError,
  type CellResult,
  readCellError,
  readCellResult,
  writeCellFiles,
} from "./cell.ts";
import { runLocal, type SweepProgress } from "./local.ts";
import { defaultProgress } from "./progress.ts";
import { type SlurmJob, submitSlurm, unfinishedCells, waitForSlurm } from "./slurm.ts";
import { summarizeRecords, type SummaryRow } from "./stats.ts";

/** What summary.json holds. */
export interface SweepSummary {
  /** Spec name. */
  sweep: string;
  /** Baseline variant of the paired differences, or null. */
  baseline: string | null;
  /** Metrics of the spec. */
  metrics: string[];
  /** Variants with their overrides. */
  variants: Variant[];
  /** One row per variant x metric. */
  rows: SummaryRow[];
}

/** A sweep directory as read by {@link loadSweep}. */
export interface LoadedSweep {
  /** The sweep directory. */
  dir: string;
  /** The spec of the last run. */
  spec: SweepSpec;
  /** Its variants. */
  variants: Variant[];
  /** Its cells. */
  cells: Cell[];
  /** Finished cells, in cell order. */
  results: CellResult[];
  /** Recorded errors of cells that have not finished. */
  errors: CellError[];
}

/** Options of {@link runSweep}. */
export interface RunSweepOptions {
  /** Sweep directory; default `runs/sweeps/<spec name>`. */
  out?: string;
  /** "local" (default) or "slurm". */
  executor?: "local" | "slurm";
  /** Local: worker processes. Slurm: the array's maximum parallel tasks. */
  parallel?: number;
  /** Apply the spec's `fast` profile. */
  fast?: boolean;
  /** Slurm settings over the spec's `slurm`. */
  slurm?: SlurmSettings;
  /** Slurm: wait for the array to finish (default true from notebooks). */
  wait?: boolean;
  /** Called on every cell start/end (local); default: a live table in notebooks, else a line. */
  onProgress?: (p: SweepProgress) => void;
  /** Spec source named in errors (the file). */
  source?: string;
}

/** Result of {@link runSweep}. */
export interface RunSweepResult {
  /** The sweep directory. */
  dir: string;
  /** The summary (also written); null when a Slurm array was submitted without waiting. */
  summary: SweepSummary | null;
  /** Ids that failed in this run (local). */
  failed: string[];
  /** The submitted job (slurm). */
  job: SlurmJob | null;
}

/** The default sweep directory of a spec. */
export function defaultSweepDir(spec: { name: string }): string {
  return `runs/sweeps/${spec.name}`;
}

/**
 * Validates and expands `spec`, writes `sweep.json` and the cell files into the sweep
 * directory (a directory of another sweep is an error), and returns the expansion.
 */
export async function prepareSweep(
  spec: unknown,
  o: Pick<RunSweepOptions, "out" | "fast" | "source"> = {},
): Promise<{ dir: string; spec: SweepSpec; variants: Variant[]; cells: Cell[] }> {
  const x = await expandSweep(spec, { fast: o.fast, source: o.source });
  const dir = o.out ?? defaultSweepDir(x.spec);
  try {
    const old = JSON.parse(await Deno.readTextFile(`${dir}/sweep.json`));
    if (old.spec?.name !== x.spec.name) {
      throw new ConfigError(
        `--out: ${dir} holds the sweep "${old.spec?.name}", not "${x.spec.name}"; choose another --out`,
      );
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await Deno.mkdir(`${dir}/cells`, { recursive: true });
  await writeCellFiles(dir, x.cells);
  await writeFileAtomic(
    `${dir}/sweep.json`,
    JSON.stringify(
      { spec: x.spec, fast: o.fast ?? false, variants: x.variants, cells: x.cells },
      null,
      2,
    ),
  );
  return { dir, ...x };
}

/** Reads a sweep directory: its spec and cells (sweep.json) and every cell's result or error. */
export async function loadSweep(dir: string): Promise<LoadedSweep> {
  let saved: { spec: SweepSpec; variants: Variant[]; cells: Cell[] };
  try {
    saved = JSON.parse(await Deno.readTextFile(`${dir}/sweep.json`));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ConfigError(`--out: ${dir} is not a sweep directory (no sweep.json)`);
    }
    throw e;
  }
  const results: CellResult[] = [];
  const errors: CellError[] = [];
  for (const c of saved.cells) {
    const r = await readCellResult(dir, c.id);
    if (r) results.push(r);
    else {
      const e = await readCellError(dir, c.id);
      if (e) errors.push(e);
    }
  }
  return { dir, spec: saved.spec, variants: saved.variants, cells: saved.cells, results, errors };
}

/** The statistics of a loaded sweep (see {@link summarizeRecords}). */
export function summarizeSweep(s: LoadedSweep): SweepSummary {
  const seeds = [...new Set(s.cells.map((c) => c.seed))];
  const baseline = s.spec.baseline ?? null;
  return {
    sweep: s.spec.name,
    baseline,
    metrics: [...s.spec.metrics],
    variants: s.variants,
    rows: summarizeRecords(
      s.results,
      s.variants.map((v) => v.name),
      s.spec.metrics,
      seeds,
      baseline,
    ),
  };
}

const fmt = (x: number) => Number.isFinite(x) ? x.toPrecision(4) : "-";

/** The summary as an aligned text table (mean [95% CI], n, missing, paired diff, p). */
export function formatSummary(s: SweepSummary): string {
  const head = ["variant", "metric", "n", "missing", "mean", "95% CI", "diff vs baseline", "p"];
  const body = s.rows.map((r) => [
    r.variant,
    r.metric,
    String(r.n),
    String(r.missing),
    fmt(r.mean),
    `[${fmt(r.ciLow)}, ${fmt(r.ciHigh)}]`,
    r.diff ? `${fmt(r.diff.mean)} [${fmt(r.diff.ciLow)}, ${fmt(r.diff.ciHigh)}]` : "",
    r.diff ? fmt(r.diff.p) : "",
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  return [head, ...body].map((r) => r.map((x, i) => x.padEnd(w[i])).join("  ").trimEnd())
    .join("\n");
}

/** The summary as CSV (one row per variant x metric; empty fields for NaN / no baseline). */
export function summaryCsv(s: SweepSummary): string {
  const num = (x: number | undefined) => x === undefined || !Number.isFinite(x) ? "" : String(x);
  const q = (t: string) => /[",\n]/.test(t) ? `"${t.replaceAll('"', '""')}"` : t;
  const head =
    "variant,metric,n,missing,mean,sd,ciLow,ciHigh,diffMean,diffCiLow,diffCiHigh,diffN,p";
  const lines = s.rows.map((r) =>
    [
      q(r.variant),
      q(r.metric),
      r.n,
      r.missing,
      num(r.mean),
      num(r.sd),
      num(r.ciLow),
      num(r.ciHigh),
      num(r.diff?.mean),
      num(r.diff?.ciLow),
      num(r.diff?.ciHigh),
      num(r.diff?.n),
      num(r.diff?.p),
    ].join(",")
  );
  return [head, ...lines].join("\n") + "\n";
}

/** Writes results.jsonl, summary.json and summary.csv of a loaded sweep; returns the summary. */
export async function writeSweepOutputs(s: LoadedSweep): Promise<SweepSummary> {
  const summary = summarizeSweep(s);
  await writeFileAtomic(
    `${s.dir}/results.jsonl`,
    s.results.map((r) => JSON.stringify(r)).join("\n") + (s.results.length ? "\n" : ""),
  );
  await writeFileAtomic(`${s.dir}/summary.json`, JSON.stringify(summary, null, 2));
  await writeFileAtomic(`${s.dir}/summary.csv`, summaryCsv(summary));
  return summary;
}

/**
 * Runs a sweep: validates `spec` (nothing runs on an error), runs its unfinished cells
 * (finished ones are reused, failed ones retried) and writes the outputs.
 */
export async function runSweep(spec: unknown, o: RunSweepOptions = {}): Promise<RunSweepResult> {
  const p = await prepareSweep(spec, o);
  const ids = p.cells.map((c) => c.id);
  let failed: string[] = [];
  let job: SlurmJob | null = null;
  if ((o.executor ?? "local") === "local") {
    failed = await runLocal(p.dir, ids, {
      parallel: o.parallel,
      onProgress: o.onProgress ?? defaultProgress(p.spec.name, p.cells),
    });
  } else {
    const todo = await unfinishedCells(p.dir, ids);
    if (todo.length > 0) {
      const settings = {
        ...p.spec.slurm,
        ...o.slurm,
        parallel: o.parallel ?? o.slurm?.parallel ?? p.spec.slurm?.parallel,
      };
      job = await submitSlurm(await Deno.realPath(p.dir), p.spec.name, todo, settings);
      console.log(`sweep ${p.spec.name}: submitted job array ${job.jobId} (${todo.length} cells)`);
      if (!(o.wait ?? true)) return { dir: p.dir, summary: null, failed, job };
      await waitForSlurm(job.jobId);
    }
    failed = await unfinishedCells(p.dir, ids);
  }
  const summary = await writeSweepOutputs(await loadSweep(p.dir));
  return { dir: p.dir, summary, failed, job };
}
