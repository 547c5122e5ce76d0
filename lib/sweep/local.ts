/**
 * The `local` executor: a pool of worker processes on this machine, each running the cell
 * command (`lib/cli/sweep.ts --cell <id> --out <dir>`) for one cell at a time, with
 * `RDD_BLAS_THREADS=1` (see {@link blasThreads}), so that workers x threads <= cores. Workers exit when the sweep
 * process dies (they watch their parent), so a killed sweep leaves no stray trainers; the
 * next run resumes their cells from checkpoints.
 * @module
 */
import { fileURLToPath } from "node:url";
import { cellDir, cellState } from "./cell.ts";

/** Deno permissions of the cell command (the same as `deno task sweep`). */
export const CELL_PERMISSIONS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
  "--allow-sys",
  "--allow-run",
];

/** The command line (argv) of the cell command for cell `id` of sweep directory `dir`. */
export function cellCommand(dir: string, id: string): string[] {
  const cli = fileURLToPath(new URL("../cli/sweep.ts", import.meta.url));
  return [Deno.execPath(), "run", ...CELL_PERMISSIONS, cli, "--cell", id, "--out", dir];
}

/** Counts of a running sweep, given to progress callbacks. */
export interface SweepProgress {
  /** Cells of the sweep. */
  total: number;
  /** Finished cells (including those finished by earlier runs). */
  done: number;
  /** Cells being run now. */
  running: number;
  /** Cells whose last attempt failed. */
  failed: number;
  /** Estimated seconds left (null until a cell of this run has finished). */
  etaSeconds: number | null;
  /** State of every cell, by id. */
  states: Record<string, "done" | "failed" | "pending" | "running">;
}

/** Options of {@link runLocal}. */
export interface LocalOptions {
  /** Worker processes (default: max(1, floor(cores / 2)), at most the number of cells). */
  parallel?: number;
  /** Called whenever a cell starts or ends. */
  onProgress?: (p: SweepProgress) => void;
}

/** The default worker count: one per core (each worker runs one BLAS thread). */
export function defaultParallel(): number {
  return Math.max(1, navigator.hardwareConcurrency);
}

/**
 * BLAS threads per worker: 1, whatever the worker count, so workers x threads <= cores
 * whenever `parallel` <= cores. Measured on the 2-core machine: a second oneDNN/OpenMP thread
 * gains -4% to +10% on an idle machine, but a PD step ran 15x slower with 2 threads while
 * other processes shared the cores (the OpenMP threads wait on each other at every
 * primitive), so a sweep scales by workers, not by threads.
 */
export function blasThreads(_parallel: number): number {
  return 1;
}

/** One line: `12/35 done, 2 running, 1 failed, ETA 14m 05s`. */
export function progressLine(p: SweepProgress): string {
  const eta = p.etaSeconds === null
    ? "ETA -"
    : `ETA ${Math.floor(p.etaSeconds / 60)}m ${
      String(Math.round(p.etaSeconds % 60)).padStart(2, "0")
    }s`;
  return `${p.done}/${p.total} done, ${p.running} running, ${p.failed} failed, ${eta}`;
}

async function runWorker(dir: string, id: string, threads: number): Promise<boolean> {
  const [cmd, ...args] = cellCommand(dir, id);
  const open = () => Deno.open(`${cellDir(dir, id)}/log.txt`, { create: true, append: true });
  const [out, err] = [await open(), await open()];
  const child = new Deno.Command(cmd, {
    args: [...args, "--exit-with-parent", String(Deno.pid)],
    env: { RDD_BLAS_THREADS: String(threads), NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Each pipe closes its own handle of the log file when the worker's stream ends.
  const piped = Promise.all([child.stdout.pipeTo(out.writable), child.stderr.pipeTo(err.writable)]);
  const status = await child.status;
  await piped;
  return status.success;
}

/**
 * Runs every cell of `ids` that is not done yet with a pool of workers (failed cells are
 * retried). Resolves when all have ended; returns the ids that failed in this run.
 */
export async function runLocal(
  dir: string,
  ids: readonly string[],
  o: LocalOptions = {},
): Promise<string[]> {
  const states: SweepProgress["states"] = {};
  for (const id of ids) states[id] = await cellState(dir, id);
  const queue = ids.filter((id) => states[id] !== "done");
  const parallel = Math.max(1, Math.min(o.parallel ?? defaultParallel(), queue.length));
  const threads = blasThreads(parallel);
  const t0 = performance.now();
  let finishedHere = 0;
  const report = () => {
    const count = (s: string) => Object.values(states).filter((x) => x === s).length;
    const running = count("running");
    const left = ids.length - count("done") - count("failed");
    const per = finishedHere > 0 ? (performance.now() - t0) / 1000 / finishedHere : null;
    o.onProgress?.({
      total: ids.length,
      done: count("done"),
      running,
      failed: count("failed"),
      etaSeconds: per === null ? null : per * Math.max(0, left - running / 2),
      states: { ...states },
    });
  };
  const failed: string[] = [];
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      states[id] = "running";
      report();
      const ok = await runWorker(dir, id, threads) && (await cellState(dir, id)) === "done";
      states[id] = ok ? "done" : "failed";
      if (!ok) failed.push(id);
      finishedHere++;
      report();
    }
  };
  report();
  await Promise.all(Array.from({ length: parallel }, worker));
  return failed;
}
