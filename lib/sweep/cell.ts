/**
 * The files of a sweep cell and the one cell command every executor runs.
 *
 * Layout of a sweep directory: `sweep.json` (the spec and the cell list), and per cell
 * `cells/<id>/` with `cell.json` (variant, overrides, seed, resolved config), `run/` (the
 * ordinary run directory: metrics.jsonl, checkpoints), `log.txt` (the worker's output),
 * `result.json` (written atomically when the cell finishes) or `error.json` (the error of
 * the last failed attempt; removed when a retry succeeds).
 * @module
 */
import { describeBackend } from "../tfjs/backend.ts";
import { writeFileAtomic } from "../train/checkpoint.ts";
import type { Cell } from "./spec.ts";
import { type CellMetrics, runCellConfig } from "./kinds.ts";

/** One finished cell: a line of results.jsonl. */
export interface CellResult {
  /** The cell id. */
  id: string;
  /** Variant name. */
  variant: string;
  /** The variant's dotted-path overrides. */
  overrides: Record<string, unknown>;
  /** The cell's seed. */
  seed: number;
  /** Metric name -> value. */
  metrics: CellMetrics;
  /** Wall-clock seconds of the attempt that finished the cell. */
  wallSeconds: number;
  /** The tfjs backend, as {@link describeBackend} says. */
  backend: string;
  /** ISO time the cell finished. */
  finishedAt: string;
}

/** The recorded error of a failed cell attempt. */
export interface CellError {
  /** The cell id. */
  id: string;
  /** The error message. */
  error: string;
  /** Its stack trace, when there is one. */
  stack: string | null;
  /** ISO time of the failure. */
  failedAt: string;
}

/** State of a cell on disk: done (result.json), failed (error.json), else pending. */
export type CellState = "done" | "failed" | "pending";

/** Directory of cell `id` in the sweep directory `dir`. */
export function cellDir(dir: string, id: string): string {
  return `${dir}/cells/${id}`;
}

async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** The result of cell `id`, or null when it has not finished. */
export async function readCellResult(dir: string, id: string): Promise<CellResult | null> {
  return await readJson<CellResult>(`${cellDir(dir, id)}/result.json`);
}

/** The recorded error of cell `id`, or null. */
export async function readCellError(dir: string, id: string): Promise<CellError | null> {
  return await readJson<CellError>(`${cellDir(dir, id)}/error.json`);
}

/** The state of cell `id` from its files. */
export async function cellState(dir: string, id: string): Promise<CellState> {
  if (await readCellResult(dir, id)) return "done";
  return (await readCellError(dir, id)) ? "failed" : "pending";
}

/** Writes `cells/<id>/cell.json` for every cell that has none (existing cells are kept). */
export async function writeCellFiles(dir: string, cells: readonly Cell[]): Promise<void> {
  for (const c of cells) {
    const path = `${cellDir(dir, c.id)}/cell.json`;
    if (await readJson(path)) continue;
    await Deno.mkdir(cellDir(dir, c.id), { recursive: true });
    await writeFileAtomic(path, JSON.stringify(c, null, 2));
  }
}

/**
 * Runs cell `id` of the sweep directory `dir` in this process (the cell command): trains
 * (resuming from `run/`'s checkpoints) and evaluates it, then writes result.json
 * atomically, or error.json on failure (and rethrows). A finished cell is not rerun.
 */
export async function runCell(dir: string, id: string): Promise<CellResult> {
  const done = await readCellResult(dir, id);
  if (done) return done;
  const cell = await readJson<Cell>(`${cellDir(dir, id)}/cell.json`);
  if (!cell) throw new RangeError(`--cell: ${dir} has no cell ${id}`);
  const t0 = performance.now();
  try {
    const metrics = await runCellConfig(cell.config, cell.seed, `${cellDir(dir, id)}/run`);
    const result: CellResult = {
      id,
      variant: cell.variant,
      overrides: cell.overrides,
      seed: cell.seed,
      metrics,
      wallSeconds: (performance.now() - t0) / 1000,
      backend: describeBackend(),
      finishedAt: new Date().toISOString(),
    };
    await writeFileAtomic(`${cellDir(dir, id)}/result.json`, JSON.stringify(result, null, 2));
    await Deno.remove(`${cellDir(dir, id)}/error.json`).catch(() => {});
    return result;
  } catch (e) {
    const err: CellError = {
      id,
      error: e instanceof Error ? e.message : String(e),
      stack: e instanceof Error ? e.stack ?? null : null,
      failedAt: new Date().toISOString(),
    };
    await writeFileAtomic(`${cellDir(dir, id)}/error.json`, JSON.stringify(err, null, 2));
    throw e;
  }
}
