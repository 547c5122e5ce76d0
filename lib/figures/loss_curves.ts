/**
 * Training-loss curves per distillation round with a band over seeds: the mean over seeds as a
 * line, the min..max range over seeds as a shaded band, at the steps every seed logged.
 * @module
 */
import type { Figure } from "../notebook/show.ts";
import { PALETTE } from "../notebook/figures.ts";
import { baseLayout, figureAxis, type FigureSize } from "./style.ts";

/** One run's logged loss curve. */
export interface LossRun {
  /** The round (curve group), e.g. "PD 4 -> 2". */
  round: string;
  /** The run's seed (curves of one round differ by seed). */
  seed: string | number;
  /** Logged optimiser steps, increasing. */
  steps: readonly number[];
  /** Loss at each logged step. */
  loss: readonly number[];
}

/** Mean, min and max over runs at the steps all runs share, for one round. */
export interface LossBand {
  /** Shared logged steps, increasing. */
  steps: number[];
  /** Mean over runs at each step. */
  mean: number[];
  /** Minimum over runs. */
  low: number[];
  /** Maximum over runs. */
  high: number[];
  /** Number of runs (seeds). */
  runs: number;
}

/**
 * The {@link LossBand} of runs of one round at the steps they all logged.
 * @param runs >= 1 runs (their `round` is not checked).
 */
export function lossBand(runs: readonly LossRun[]): LossBand {
  if (runs.length === 0) throw new RangeError("runs must hold at least one LossRun");
  const maps = runs.map((r, i) => {
    if (r.steps.length !== r.loss.length) {
      throw new RangeError(`runs[${i}].loss must have the length of runs[${i}].steps`);
    }
    return new Map(r.steps.map((s, k) => [s, r.loss[k]]));
  });
  const steps = [...maps[0].keys()].filter((s) => maps.every((m) => m.has(s))).sort((a, b) =>
    a - b
  );
  const at = (s: number) => maps.map((m) => m.get(s)!);
  return {
    steps,
    mean: steps.map((s) => at(s).reduce((a, b) => a + b, 0) / maps.length),
    low: steps.map((s) => Math.min(...at(s))),
    high: steps.map((s) => Math.max(...at(s))),
    runs: runs.length,
  };
}

/**
 * Loss vs step (log y) with one line and one band per round.
 * @param runs the runs (>= 1), grouped by `round` in order of appearance.
 * @param size figure size; default 720 x 460.
 */
export function lossCurvesFigure(
  runs: readonly LossRun[],
  size: FigureSize = { width: 720, height: 460 },
): Figure {
  const rounds = new Map<string, LossRun[]>();
  for (const r of runs) rounds.set(r.round, [...(rounds.get(r.round) ?? []), r]);
  if (rounds.size === 0) throw new RangeError("runs must hold at least one LossRun");
  const data = [...rounds].flatMap(([round, rs], i) => {
    const b = lossBand(rs);
    const color = PALETTE[i % PALETTE.length];
    return [
      {
        type: "scatter",
        mode: "lines",
        name: `${round} band`,
        x: [...b.steps, ...[...b.steps].reverse()],
        y: [...b.high, ...[...b.low].reverse()],
        fill: "toself",
        fillcolor: color,
        opacity: 0.2,
        line: { width: 0, color },
        showlegend: false,
        hoverinfo: "skip",
      },
      {
        type: "scatter",
        mode: "lines",
        name: `${round} (${b.runs} seed${b.runs === 1 ? "" : "s"})`,
        x: b.steps,
        y: b.mean,
        line: { color, width: 2 },
      },
    ];
  });
  return {
    data,
    layout: {
      ...baseLayout("Training loss per round (line: mean, band: min-max over seeds)", size),
      xaxis: figureAxis("optimiser step"),
      yaxis: figureAxis("loss", true),
    },
  };
}
