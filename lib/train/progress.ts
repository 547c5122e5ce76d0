/**
 * Progress reporting for long runs: one line with step, smoothed loss, steps/s, images/s
 * and ETA, printed at most every `intervalSec` seconds (so terminals and notebook cells
 * are not flooded). In the Deno Jupyter kernel the same lines appear in the cell output.
 * @module
 */

/** One progress update. */
export interface ProgressUpdate {
  /** Steps completed so far in this run (including those before a resume). */
  step: number;
  /** Loss of the latest step. */
  loss: number;
  /** Samples in the latest step's batch (for images/s). */
  batchSize?: number;
  /** Extra numbers to show (e.g. lr, accuracy). */
  extra?: Record<string, number>;
}

/** Formats seconds as `1h02m`, `3m05s` or `12s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s >= 3600) {
    return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
  }
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/**
 * Throttled progress printer. The loss shown is an exponential moving average (factor
 * `smoothing`) of the per-step losses; speed counts only steps made by this process.
 */
export class ProgressReporter {
  readonly label: string;
  readonly totalSteps: number;
  readonly intervalSec: number;
  readonly smoothing: number;
  #print: (line: string) => void;
  #start = performance.now();
  #firstStep: number | null = null;
  #last = -Infinity;
  #smooth: number | null = null;
  #lastStep = 0;
  #images = 0;

  /**
   * @param label prefix of each line, e.g. "teacher".
   * @param totalSteps the step count the run ends at (for the ETA).
   * @param options intervalSec (default 10 s), smoothing (default 0.9), print (default console.log).
   */
  constructor(
    label: string,
    totalSteps: number,
    options: { intervalSec?: number; smoothing?: number; print?: (line: string) => void } = {},
  ) {
    this.label = label;
    this.totalSteps = totalSteps;
    this.intervalSec = options.intervalSec ?? 10;
    this.smoothing = options.smoothing ?? 0.9;
    this.#print = options.print ?? ((l) => console.log(l));
  }

  /** Records a step; prints a line when the interval has passed or at the last step. */
  update(u: ProgressUpdate): void {
    // Speed counts from construction (just before the first step) and from the step the
    // run started at, so a resumed run reports its own speed.
    if (this.#firstStep === null) this.#firstStep = u.step - 1;
    this.#smooth = this.#smooth === null
      ? u.loss
      : this.smoothing * this.#smooth + (1 - this.smoothing) * u.loss;
    this.#lastStep = u.step;
    this.#images += u.batchSize ?? 0;
    const now = performance.now();
    if (now - this.#last >= this.intervalSec * 1000 || u.step >= this.totalSteps) {
      this.#last = now;
      this.#print(this.line(u.extra));
    }
  }

  /** The current progress line (without printing it). */
  line(extra: Record<string, number> = {}): string {
    const elapsed = (performance.now() - this.#start) / 1000;
    const done = this.#lastStep - (this.#firstStep ?? 0);
    const rate = done / Math.max(elapsed, 1e-9);
    const eta = (this.totalSteps - this.#lastStep) / rate;
    const parts = [
      `${this.label} step ${this.#lastStep}/${this.totalSteps}`,
      `loss ${this.#smooth?.toPrecision(4) ?? "?"}`,
      `${rate.toFixed(2)} steps/s`,
    ];
    if (this.#images > 0) {
      parts.push(`${(this.#images / Math.max(elapsed, 1e-9)).toFixed(1)} img/s`);
    }
    for (const [k, v] of Object.entries(extra)) parts.push(`${k} ${v.toPrecision(4)}`);
    parts.push(`elapsed ${formatDuration(elapsed)}`, `ETA ${formatDuration(eta)}`);
    return parts.join(" | ");
  }
}
