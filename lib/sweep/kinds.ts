/**
 * What one sweep cell computes, per kind: the training and evaluation of a cell config in
 * its run directory, returning the metrics (`cfid`, `nfe`, `msPerImage`, `finalLoss`, and
 * `cfid@K` / `nfe@K` / `msPerImage@K` per evaluated step count K). Training checkpoints into
 * the run directory and resumes from it, so a killed cell continues where it stopped.
 * Needs a tfjs backend selected by the caller.
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type {
  CellConfig,
  DistillRoundCellConfig,
  EvalCellConfig,
  TrainCellConfig,
} from "../config/sweep.ts";
import {
  imageDataSource,
  loadRunData,
  readRunConfig,
  type RunConfig,
  type TeacherRunConfig,
  teacherSchedule,
} from "../train/run_config.ts";
import { loadLayersModelFiles } from "../train/checkpoint.ts";
import "../models/unet.ts";
import { cloneModel, distillRound, roundDirName } from "../distill/rounds.ts";
import { evaluateStudent, type EvaluationRow, referenceStats } from "../eval/cfid.ts";
import { DISTILL_DEFAULTS, runDistill } from "../cli/distill.ts";
import { testAccuracy, trainFromConfig } from "../cli/train.ts";

/** Metric name -> value of one finished cell. */
export type CellMetrics = Record<string, number>;

async function teacherRun(dir: string): Promise<TeacherRunConfig> {
  const c = await readRunConfig(`${dir}/config.json`);
  if (c.kind !== "teacher") throw new RangeError(`teacherRun: ${dir} is not a teacher run`);
  return c;
}

/** The metrics of evaluation rows: `name@K` for every row, unsuffixed for the first one. */
export function rowMetrics(rows: readonly EvaluationRow[]): CellMetrics {
  const m: CellMetrics = {};
  rows.forEach((r, i) => {
    for (const [name, value] of [["cfid", r.cfid], ["nfe", r.nfe], ["msPerImage", r.msPerImage]]) {
      m[`${name}@${r.steps}`] = value as number;
      if (i === 0) m[name as string] = value as number;
    }
  });
  return m;
}

/** The loss of the last line of a metrics.jsonl (the step the trainer finished with). */
export async function finalLoss(metricsFile: string): Promise<number> {
  const lines = (await Deno.readTextFile(metricsFile)).trim().split("\n");
  const withLoss = lines.map((l) => JSON.parse(l)).filter((l) => typeof l.loss === "number");
  if (withLoss.length === 0) throw new Error(`${metricsFile} holds no loss`);
  return withLoss[withLoss.length - 1].loss;
}

interface EvalSetup {
  schedule: ReturnType<typeof teacherSchedule>;
  parameterization: TeacherRunConfig["parameterization"] & string;
  classifier: tf.LayersModel;
  ref: Awaited<ReturnType<typeof referenceStats>>;
  train: Awaited<ReturnType<typeof loadRunData>>["train"];
}

async function evalSetup(
  tcfg: TeacherRunConfig,
  c: { classifier: string; referenceStats: string },
): Promise<EvalSetup> {
  const classifier = await loadLayersModelFiles(c.classifier);
  const { train, test } = await loadRunData(tcfg);
  return {
    schedule: teacherSchedule(tcfg),
    parameterization: tcfg.parameterization ?? "x0",
    classifier,
    ref: await referenceStats(classifier, test, c.referenceStats),
    train,
  };
}

async function evaluateAt(
  s: EvalSetup,
  model: tf.LayersModel,
  steps: readonly number[],
  n: number,
  seed: number,
  sampling: Pick<EvalCellConfig, "sampler" | "path"> = { sampler: "ddim" },
): Promise<EvaluationRow[]> {
  const rows: EvaluationRow[] = [];
  for (const k of steps) {
    rows.push(
      await evaluateStudent({
        model,
        steps: k,
        sampler: sampling.sampler,
        path: sampling.path,
        schedule: s.schedule,
        parameterization: s.parameterization,
        n,
        seed,
        classifier: s.classifier,
        refStats: s.ref,
      }),
    );
  }
  return rows;
}

/** A `"distill-round"` cell: the round (checkpointed in `runDir`), then its cFID rows. */
async function runDistillRoundCell(
  c: DistillRoundCellConfig,
  seed: number,
  runDir: string,
): Promise<CellMetrics> {
  const s = await evalSetup(await teacherRun(c.teacherRun), c);
  const teacher = await loadLayersModelFiles(c.student);
  const { student, head } = await distillRound({
    teacher,
    student: await cloneModel(teacher),
    schedule: s.schedule,
    parameterization: s.parameterization,
    teacherSteps: c.teacherSteps,
    method: c.method,
    rdd: c.rdd,
    classifier: s.classifier,
    data: imageDataSource(s.train, { batchSize: c.batchSize, seed }).images,
    optimizer: c.optimizer,
    steps: c.steps,
    seed,
    batchSize: c.batchSize,
    runDir,
    resume: true,
    checkpointEvery: c.checkpointEvery,
    logEvery: c.logEvery,
  });
  head?.dispose();
  teacher.dispose();
  const rows = await evaluateAt(
    s,
    student,
    c.evalSteps ?? [c.teacherSteps / 2],
    c.evalSamples,
    c.evalSeed ?? seed,
  );
  student.dispose();
  s.classifier.dispose();
  return { ...rowMetrics(rows), finalLoss: await finalLoss(`${runDir}/metrics.jsonl`) };
}

/** An `"eval"` cell: the model sampled with `sampler` at `steps` steps (no training). */
async function runEvalCell(c: EvalCellConfig, seed: number): Promise<CellMetrics> {
  const s = await evalSetup(await teacherRun(c.teacherRun), c);
  const model = await loadLayersModelFiles(c.model ?? `${c.teacherRun}/model`);
  const rows = await evaluateAt(s, model, [c.steps], c.evalSamples, c.evalSeed ?? seed, c);
  model.dispose();
  s.classifier.dispose();
  return rowMetrics(rows);
}

/**
 * A `"train"` cell: the run trained in `runDir` (resumed from its checkpoints), then a
 * classifier's test accuracy or a teacher's cFID at `evalSteps` DDIM steps.
 */
async function runTrainCell(
  c: TrainCellConfig,
  seed: number,
  runDir: string,
): Promise<CellMetrics> {
  const run = { ...c.run, seed } as RunConfig;
  await trainFromConfig(run, { runDir, resume: true });
  const loss = { finalLoss: await finalLoss(`${runDir}/metrics.jsonl`) };
  const model = await loadLayersModelFiles(`${runDir}/model`);
  try {
    if (run.kind === "classifier") {
      return { ...loss, accuracy: await testAccuracy(model, (await loadRunData(run)).test) };
    }
    const s = await evalSetup(run, c);
    const rows = await evaluateAt(s, model, c.evalSteps, c.evalSamples, c.evalSeed ?? seed);
    s.classifier.dispose();
    return { ...rowMetrics(rows), ...loss };
  } finally {
    model.dispose();
  }
}

/**
 * Runs the cell `config` at `seed` in `runDir` (created) and returns its metrics. Training
 * resumes from the latest checkpoint in `runDir`; a finished training is not repeated.
 */
export async function runCellConfig(
  config: CellConfig,
  seed: number,
  runDir: string,
): Promise<CellMetrics> {
  await Deno.mkdir(runDir, { recursive: true });
  if (config.kind === "distill-round") return await runDistillRoundCell(config, seed, runDir);
  if (config.kind === "eval") return await runEvalCell(config, seed);
  if (config.kind === "train") return await runTrainCell(config, seed, runDir);
  const { kind: _, teacherRun, classifierRun, evalSeed, ...rest } = config;
  const r = await runDistill({
    teacher: teacherRun,
    classifier: classifierRun ?? undefined,
    run: runDir,
    resume: true, // an empty (new) run directory starts fresh
    force: false,
    check: false,
    config: { ...DISTILL_DEFAULTS, ...rest, kind: "distill", seed, evalSeed: evalSeed ?? seed },
  });
  const students = r.table.filter((row) => row.model.startsWith("student"));
  const last = r.rounds[r.rounds.length - 1];
  const loss = await finalLoss(`${runDir}/${roundDirName(last.teacherSteps)}/metrics.jsonl`);
  return { ...rowMetrics(students), finalLoss: loss };
}
