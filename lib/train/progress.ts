/**
 * Progress reporting for long runs: step, smoothed loss, steps/s, images/s and ETA, shown
 * the way each place expects it ({@link progressMode}):
 *
 * - in a terminal (stderr is a TTY): ONE live bar line (cli-progress), redrawn in place;
 * - in the Deno Jupyter kernel: ONE output of the cell, updated in place (a display with a
 *   display id, then `update_display_data`), at most every `intervalSec` seconds;
 * - in logs and CI (not a TTY) or with a custom `print`: one line at most every `intervalSec`
 *   seconds, so logs are not flooded.
 *
 * `RDD_PROGRESS=lines|tty|notebook` forces a mode.
 * @module
 */
// @ts-types="@types/cli-progress"
import cliProgress from "cli-progress";
import { jupyterApi } from "../notebook/show.ts";

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

/** Where progress goes: throttled lines, a live terminal bar, or one notebook output. */
export type ProgressMode = "lines" | "tty" | "notebook";

const MODES: readonly ProgressMode[] = ["lines", "tty", "notebook"];

/**
 * The mode for this process: `RDD_PROGRESS` if set; else "notebook" in `deno jupyter`;
 * "lines" when the caller prints lines itself (`customPrint`) or stderr is not a terminal;
 * else "tty".
 */
export function progressMode(customPrint = false): ProgressMode {
  const granted =
    Deno.permissions.querySync({ name: "env", variable: "RDD_PROGRESS" }).state === "granted";
  const env = granted ? Deno.env.get("RDD_PROGRESS")?.trim() : undefined;
  if (env) {
    if (!MODES.includes(env as ProgressMode)) {
      throw new RangeError(
        `RDD_PROGRESS must be lines, tty or notebook, got ${JSON.stringify(env)}`,
      );
    }
    return env as ProgressMode;
  }
  if (jupyterApi()) return "notebook";
  return customPrint || !Deno.stderr.isTerminal() ? "lines" : "tty";
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

let displayCount = 0;

/**
 * Progress reporter of one run. The loss shown is an exponential moving average (factor
 * `smoothing`) of the per-step losses; speed counts only steps made by this process.
 */
export class ProgressReporter {
  /** Prefix of the line, e.g. "teacher". */
  readonly label: string;
  /** The step count the run ends at (for the ETA). */
  readonly totalSteps: number;
  /** Shortest time between two printed lines or notebook updates, in seconds. */
  readonly intervalSec: number;
  /** EMA factor of the shown loss. */
  readonly smoothing: number;
  /** Where the progress goes. */
  readonly mode: ProgressMode;
  #print: (line: string) => void;
  #start = performance.now();
  #firstStep: number | null = null;
  #last = -Infinity;
  #smooth: number | null = null;
  #lastStep = 0;
  #images = 0;
  #bar: cliProgress.SingleBar | null = null;
  #displayId: string | null = null;

  /**
   * A reporter for a run that ends at `totalSteps`.
   * @param label prefix of each line, e.g. "teacher".
   * @param totalSteps the step count the run ends at (for the ETA).
   * @param options intervalSec (default 10 s for lines, 1 s in a notebook), smoothing (default
   *   0.9), print (a line sink; implies "lines" mode), mode (default {@link progressMode}).
   */
  constructor(
    label: string,
    totalSteps: number,
    options: {
      intervalSec?: number;
      smoothing?: number;
      print?: (line: string) => void;
      mode?: ProgressMode;
    } = {},
  ) {
    this.label = label;
    this.totalSteps = totalSteps;
    this.mode = options.mode ?? progressMode(options.print !== undefined);
    this.intervalSec = options.intervalSec ?? (this.mode === "notebook" ? 1 : 10);
    this.smoothing = options.smoothing ?? 0.9;
    this.#print = options.print ?? ((l) => console.log(l));
  }

  /**
   * Records a step and shows it: a terminal bar is redrawn (throttled by cli-progress), a
   * line or notebook update is made when `intervalSec` has passed, and always at the last
   * step (which also ends a terminal bar). Await it: notebook updates are messages to the
   * kernel.
   */
  async update(u: ProgressUpdate): Promise<void> {
    // Speed counts from construction (just before the first step) and from the step the
    // run started at, so a resumed run reports its own speed.
    if (this.#firstStep === null) this.#firstStep = u.step - 1;
    this.#smooth = this.#smooth === null
      ? u.loss
      : this.smoothing * this.#smooth + (1 - this.smoothing) * u.loss;
    this.#lastStep = u.step;
    this.#images += u.batchSize ?? 0;
    const last = u.step >= this.totalSteps;
    if (this.mode === "tty") return this.#updateBar(u.extra, last);
    const now = performance.now();
    if (!(now - this.#last >= this.intervalSec * 1000 || last)) return;
    this.#last = now;
    if (this.mode === "notebook") await this.#updateNotebook(u.extra);
    else this.#print(this.line(u.extra));
  }

  /** The current progress line (without printing it). */
  line(extra: Record<string, number> = {}): string {
    return [`${this.label} step ${this.#lastStep}/${this.totalSteps}`, ...this.#stats(extra)]
      .join(" | ");
  }

  /** Loss, speed, extras, elapsed time and ETA, as display parts. */
  #stats(extra: Record<string, number>): string[] {
    const elapsed = (performance.now() - this.#start) / 1000;
    const done = this.#lastStep - (this.#firstStep ?? 0);
    const rate = done / Math.max(elapsed, 1e-9);
    const eta = (this.totalSteps - this.#lastStep) / rate;
    const parts = [`loss ${this.#smooth?.toPrecision(4) ?? "?"}`, `${rate.toFixed(2)} steps/s`];
    if (this.#images > 0) {
      parts.push(`${(this.#images / Math.max(elapsed, 1e-9)).toFixed(1)} img/s`);
    }
    for (const [k, v] of Object.entries(extra)) parts.push(`${k} ${v.toPrecision(4)}`);
    parts.push(`elapsed ${formatDuration(elapsed)}`, `ETA ${formatDuration(eta)}`);
    return parts;
  }

  #updateBar(extra: Record<string, number> = {}, last: boolean): void {
    const stats = this.#stats(extra).join(" | ");
    if (this.#bar === null) {
      this.#bar = new cliProgress.SingleBar({
        format: `${this.label} [{bar}] {value}/{total} | {stats}`,
        barsize: 24,
        fps: 5,
        linewrap: false,
      }, cliProgress.Presets.shades_classic);
      this.#bar.start(this.totalSteps, this.#lastStep, { stats });
    } else {
      this.#bar.update(this.#lastStep, { stats });
    }
    if (last) {
      this.#bar.stop();
      this.#bar = null;
    }
  }

  async #updateNotebook(extra: Record<string, number> = {}): Promise<void> {
    const jupyter = jupyterApi();
    if (!jupyter) {
      this.#print(this.line(extra));
      return;
    }
    const line = this.line(extra);
    const html = `<div style="font-family: monospace"><progress value="${this.#lastStep}" ` +
      `max="${this.totalSteps}" style="width: 16em; vertical-align: middle"></progress> ` +
      `${line.replaceAll("&", "&amp;").replaceAll("<", "&lt;")}</div>`;
    const first = this.#displayId === null;
    this.#displayId ??= `rdd-progress-${Date.now()}-${++displayCount}`;
    await jupyter.broadcast(first ? "display_data" : "update_display_data", {
      data: { "text/plain": line, "text/html": html },
      metadata: {},
      transient: { display_id: this.#displayId },
    });
  }
}
