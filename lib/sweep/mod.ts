/**
 * The public sweep API (re-exported by the package's mod.ts): run a sweep from a notebook
 * ({@link runSweep}), read one back ({@link loadSweep}), its statistics
 * ({@link summarizeSweep}), the spec schema and expansion, and the figure builder.
 * @module
 */
export {
  defaultSweepDir,
  formatSummary,
  type LoadedSweep,
  loadSweep,
  prepareSweep,
  runSweep,
  type RunSweepOptions,
  type RunSweepResult,
  summarizeSweep,
  summaryCsv,
  type SweepSummary,
  writeSweepOutputs,
} from "./sweep.ts";
export {
  type Cell,
  CELL_DEFAULTS,
  cellId,
  type ExpandedSweep,
  type ExpandOptions,
  expandSweep,
  readSweepSpec,
  type Variant,
} from "./spec.ts";
export {
  type MetricRecord,
  type PairedDiff,
  pairedDiff,
  type SampleStats,
  sampleStats,
  summarizeRecords,
  type SummaryRow,
} from "./stats.ts";
export {
  type CellError,
  type CellResult,
  type CellState,
  cellState,
  readCellResult,
  runCell,
} from "./cell.ts";
export type { CellMetrics } from "./kinds.ts";
export { blasThreads, defaultParallel, progressLine, type SweepProgress } from "./local.ts";
export { type SlurmJob, slurmScript } from "./slurm.ts";
export { defaultProgress, progressTable } from "./progress.ts";
export { sweepAxisFigure } from "./figure.ts";
export {
  formatReproduction,
  mergeReproduction,
  type ReproductionRow,
  reproductionRows,
  type ReproductionSummary,
  SAMPLER_LABELS,
  type SpeedupMeasurement,
} from "./reproduction.ts";
export type {
  CellConfig,
  CellOptimizer,
  DistillCellConfig,
  DistillRoundCellConfig,
  EvalCellConfig,
  SlurmSettings,
  SweepSpec,
  TrainCellConfig,
} from "../config/sweep.ts";
