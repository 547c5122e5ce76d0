/**
 * `deno task distill -- --teacher runs/<teacher run> --classifier runs/<classifier run>
 *  --method pd|rcfd|rdd --from-steps N --to-steps K [--final-rounds R] [--steps-per-round S]
 *  [--batch B] [--lr X] [--seed S] [--run runs/NAME] [--resume | --force] [--eval-samples n]
 *  [--config configs/distill_mnist.json] [--backend auto|webgpu|cpu|wasm]` (the `--` is
 * optional; `--help` lists the flags and defaults, {@link DISTILL_COMMAND}).
 *
 * Progressive distillation of a teacher run (`deno task train`) from N to K sampling steps:
 * earlier rounds use plain PD, the last R rounds use `--method`. Writes a run directory:
 * config.json (the resolved settings), round_N_to_M/ per round (metrics.jsonl, checkpoints/,
 * model/ = the student, round.json, eval.json), samples/ (PNG grids of each student and of
 * the teacher's DDIM at the same step counts), and results.json with the evaluation table
 * (cFID of each student and of the teacher's strided DDIM at each step count; same n and
 * seed everywhere), which is also printed. Rerunning with `--resume` skips finished rounds
 * and continues an unfinished one from its latest checkpoint.
 *
 * Precedence: command-line flags > `--config` file > built-in defaults. The teacher run gives
 * the schedule (one table, cosine with maxIndex T), the parameterisation and the data split.
 * Everything (flags, the config file against `configs/schema/distill.schema.json`, the teacher
 * and classifier runs, the step counts against the teacher's schedule) is checked before any
 * work or any file is written; a bad input is one line on stderr naming it (exit code 2).
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { type BackendPreference, describeBackend, selectBackend } from "../tfjs/backend.ts";
import { type CommandSpec, parseFlags, printCheck, runCommand, UsageError } from "./args.ts";
import { BACKEND_FLAG } from "./backend_flag.ts";
import {
  ConfigError,
  type DistillRunConfig,
  parseDistillConfig,
  parseDistillConfigFile,
  readJsonFile,
} from "../config/mod.ts";
import {
  loadRunData,
  readRunConfig,
  type TeacherRunConfig,
  teacherSchedule,
} from "../train/run_config.ts";
import { loadLayersModelFiles, writeFileAtomic } from "../train/checkpoint.ts";
import "../models/unet.ts";
import { openRunDir } from "../train/run_dir.ts";
import {
  checkChain,
  DISTILL_OPTIMIZER,
  progressiveDistill,
  referenceRoundSteps,
  type RoundInfo,
  teacherStride,
} from "../distill/rounds.ts";
import { evaluateStudent, type EvaluationRow, referenceStats } from "../eval/cfid.ts";
import type { GaussianStats } from "../eval/frechet.ts";
import { generateImages } from "../eval/generate.ts";
import { imageGrid, writePng } from "../data/png.ts";
import type { DiscreteSchedule } from "../diffusion/schedule.ts";
import type { Parameterization } from "../diffusion/denoiser.ts";

/** Built-in defaults (small-scale MNIST settings; the reference's lr is 5e-5). */
export const DISTILL_DEFAULTS: DistillRunConfig = {
  kind: "distill",
  method: "rdd",
  toSteps: 1,
  finalRounds: 1,
  stepsPerRound: 1000,
  doubleShortRounds: true,
  batchSize: 32,
  optimizer: { ...DISTILL_OPTIMIZER, lr: 1e-4 },
  rdd: {},
  seed: 0,
  evalSamples: 1000,
  evalSeed: 12345,
  evalMaxSteps: 8,
  checkpointEvery: 250,
  logEvery: 25,
};

/** Parsed command line of `deno task distill`. */
export interface DistillArgs {
  /** Teacher run directory (config.json + model/). */
  teacher: string;
  /** Classifier run directory (model/); needed for rcfd/rdd and for cFID. */
  classifier?: string;
  /** Output run directory. */
  run: string;
  /** Continue an existing run directory. */
  resume: boolean;
  /** Start over in an existing run directory. */
  force: boolean;
  /** Only validate (`--check`). */
  check: boolean;
  /** Backend preference. */
  backend?: BackendPreference;
  /** The resolved settings. */
  config: DistillRunConfig;
}

/** The flags of `deno task distill` (defaults: {@link DISTILL_DEFAULTS} and the config file). */
export const DISTILL_COMMAND = {
  usage: "deno task distill -- --teacher DIR [--classifier DIR] [--method pd|rcfd|rdd] " +
    "[--from-steps N] [--to-steps K] [flags]",
  summary: "Progressive distillation of a teacher run from N to K sampling steps; the last " +
    "--final-rounds rounds use --method, the others PD. Flags override the --config file, " +
    "which overrides the built-in defaults.",
  flags: {
    teacher: {
      type: "string",
      required: true,
      placeholder: "DIR",
      description: "teacher run directory (config.json + model/), e.g. from deno task train",
    },
    classifier: {
      type: "string",
      placeholder: "DIR",
      description: "classifier run directory (model/); needed for rcfd/rdd and for cFID",
    },
    method: {
      type: "string",
      choices: ["pd", "rcfd", "rdd"],
      description: `objective of the last rounds (default ${DISTILL_DEFAULTS.method})`,
    },
    "from-steps": { type: "int", min: 2, description: "steps of the starting teacher (default T)" },
    "to-steps": {
      type: "int",
      min: 1,
      description: `steps of the final student (default ${DISTILL_DEFAULTS.toSteps})`,
    },
    "final-rounds": {
      type: "int",
      min: 0,
      description:
        `rounds, from the end, that use --method (default ${DISTILL_DEFAULTS.finalRounds})`,
    },
    "steps-per-round": {
      type: "int",
      min: 1,
      description: `optimiser steps per round (default ${DISTILL_DEFAULTS.stepsPerRound}; ` +
        "doubled for 2- and 1-step students)",
    },
    batch: {
      type: "int",
      min: 1,
      description: `batch size (default ${DISTILL_DEFAULTS.batchSize})`,
    },
    lr: {
      type: "number",
      above: 0,
      description: `learning rate (default ${DISTILL_DEFAULTS.optimizer.lr})`,
    },
    seed: {
      type: "int",
      min: 0,
      description: `seed of the chain (default ${DISTILL_DEFAULTS.seed})`,
    },
    run: {
      type: "string",
      placeholder: "DIR",
      description: "run directory (default runs/distill_<method>_<from>_to_<to>)",
    },
    resume: {
      type: "boolean",
      description: "continue the run in --run (finished rounds are kept)",
    },
    force: { type: "boolean", description: "start over in an existing run directory" },
    "eval-samples": {
      type: "int",
      min: 0,
      description: `cFID samples per row, 0 or >= 2 (default ${DISTILL_DEFAULTS.evalSamples})`,
    },
    config: {
      type: "string",
      placeholder: "FILE",
      description: "distill config (JSON; schema configs/schema/distill.schema.json)",
    },
    backend: BACKEND_FLAG,
    check: {
      type: "boolean",
      description: "only validate the flags, the config and the input runs, print them, and exit",
    },
  },
} as const satisfies CommandSpec;

/**
 * Parses the command line (see the module doc) and merges flags over the `--config` file
 * over {@link DISTILL_DEFAULTS}; validates the result. Throws a `UsageError` naming a bad flag
 * or a `ConfigError` naming the file and field.
 */
export async function parseDistillArgs(args: readonly string[]): Promise<DistillArgs> {
  const v = parseFlags(DISTILL_COMMAND, args);
  if (v.resume && v.force) throw new UsageError("--resume and --force exclude each other");
  const file = v.config ? parseDistillConfigFile(await readJsonFile(v.config), v.config) : {};
  const flags: Partial<DistillRunConfig> = {
    method: v.method,
    fromSteps: v["from-steps"],
    toSteps: v["to-steps"],
    finalRounds: v["final-rounds"],
    stepsPerRound: v["steps-per-round"],
    batchSize: v.batch,
    seed: v.seed,
    evalSamples: v["eval-samples"],
  };
  const given = Object.fromEntries(Object.entries(flags).filter(([, x]) => x !== undefined));
  const c = parseDistillConfig(
    {
      ...DISTILL_DEFAULTS,
      ...file,
      ...given,
      optimizer: {
        ...DISTILL_DEFAULTS.optimizer,
        ...file.optimizer,
        ...(v.lr !== undefined && { lr: v.lr }),
      },
      rdd: { ...file.rdd },
    },
    v.config ? `the flags over ${v.config}` : "the flags",
  );
  if (c.method !== "pd" && c.finalRounds > 0 && !v.classifier) {
    throw new UsageError(`--classifier is required for --method ${c.method}`);
  }
  const name = v.run ?? `runs/distill_${c.method}_${c.fromSteps ?? "T"}_to_${c.toSteps}`;
  return {
    teacher: v.teacher,
    classifier: v.classifier,
    run: name,
    resume: v.resume,
    force: v.force,
    check: v.check,
    backend: v.backend,
    config: c,
  };
}

async function requireModelDir(flag: string, dir: string): Promise<void> {
  const found = await Deno.stat(`${dir}/model/model.json`).then(() => true, () => false);
  if (!found) throw new UsageError(`--${flag} ${dir}: no model/model.json (a finished run?)`);
}

/**
 * Checks a distillation before any work: the teacher run (a teacher config, a model), the
 * classifier run (a model), and the step counts against the teacher's schedule. Returns the
 * teacher's config and the settings with `fromSteps` resolved (default: the teacher's T).
 * Throws a `UsageError` or `ConfigError` naming the flag or file.
 */
export async function checkDistillInputs(
  a: DistillArgs,
): Promise<{ teacher: TeacherRunConfig; config: DistillRunConfig }> {
  const tcfg = await readRunConfig(`${a.teacher}/config.json`);
  if (tcfg.kind !== "teacher") {
    throw new ConfigError(`--teacher ${a.teacher}: a ${tcfg.kind} run, not a teacher run`);
  }
  await requireModelDir("teacher", a.teacher);
  if (a.classifier) await requireModelDir("classifier", a.classifier);
  const c: DistillRunConfig = { ...a.config, fromSteps: a.config.fromSteps ?? tcfg.schedule.T };
  try {
    teacherStride(teacherSchedule(tcfg), c.fromSteps!);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new UsageError(
      `--from-steps: expected an even number of steps dividing the teacher's T = ` +
        `${tcfg.schedule.T}, got ${c.fromSteps}`,
    );
  }
  const ratio = c.fromSteps! / c.toSteps;
  const rounds = Math.round(Math.log2(ratio));
  if (!(c.toSteps < c.fromSteps!) || 2 ** rounds !== ratio) {
    throw new UsageError(
      `--to-steps: expected ${c.fromSteps} / 2^k (k >= 1), got ${c.toSteps}`,
    );
  }
  if (c.finalRounds > rounds) {
    throw new UsageError(
      `--final-rounds: expected at most ${rounds} (rounds), got ${c.finalRounds}`,
    );
  }
  return { teacher: tcfg, config: c };
}

/** One printed/saved row of the evaluation table. */
export interface ResultRow extends EvaluationRow {
  /** "teacher DDIM" or "student <method> N->M". */
  model: string;
}

/** What results.json holds. */
export interface DistillResults {
  config: DistillRunConfig;
  teacher: string;
  classifier: string | null;
  backend: string;
  rounds: { teacherSteps: number; studentSteps: number; method: string; dir: string }[];
  table: ResultRow[];
}

/** Formats the evaluation table as aligned text. */
export function formatTable(rows: ResultRow[]): string {
  const head = ["model", "steps", "NFE", "cFID", "n", "ms/img"];
  const body = rows.map((r) => [
    r.model,
    String(r.steps),
    String(r.nfe),
    r.cfid.toFixed(3),
    String(r.n),
    r.msPerImage.toFixed(1),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  return [head, ...body].map((r) => r.map((x, i) => x.padEnd(w[i])).join("  ")).join("\n");
}

interface EvalContext {
  schedule: DiscreteSchedule;
  parameterization: Parameterization;
  classifier: tf.LayersModel | null;
  ref: GaussianStats | null;
  config: DistillRunConfig;
  runDir: string;
}

/** A 64-image sample grid of `model` at `steps` (fixed seed) into samples/`name`.png. */
async function sampleGrid(ctx: EvalContext, model: tf.LayersModel, steps: number, name: string) {
  const shape = model.inputs[0].shape.slice(1) as [number, number, number];
  const g = await generateImages(model, {
    schedule: ctx.schedule,
    parameterization: ctx.parameterization,
    steps,
    n: 64,
    imageShape: shape,
    seed: "samples",
  });
  await writePng(`${ctx.runDir}/samples/${name}.png`, imageGrid(g.images, { cols: 8 }));
}

async function evaluate(
  ctx: EvalContext,
  model: tf.LayersModel,
  steps: number,
  label: string,
): Promise<ResultRow | null> {
  if (!ctx.classifier || !ctx.ref || steps > ctx.config.evalMaxSteps) return null;
  const row = await evaluateStudent({
    model,
    steps,
    schedule: ctx.schedule,
    parameterization: ctx.parameterization,
    n: ctx.config.evalSamples,
    seed: ctx.config.evalSeed,
    classifier: ctx.classifier,
    refStats: ctx.ref,
  });
  console.log(`${label} at ${steps} steps: cFID ${row.cfid.toFixed(3)} (n=${row.n})`);
  return { model: label, ...row };
}

/** Runs a distillation as parsed by {@link parseDistillArgs}; returns what results.json holds. */
export async function runDistill(a: DistillArgs): Promise<DistillResults> {
  const { teacher: tcfg, config: c } = await checkDistillInputs(a);
  const saved = {
    ...c,
    teacherRun: a.teacher,
    classifierRun: a.classifier ?? null,
  };
  // Everything that can fail on bad input is checked before the run directory is touched.
  const schedule = teacherSchedule(tcfg);
  const parameterization = tcfg.parameterization ?? "x0";
  checkChain(schedule, c.fromSteps!, c.toSteps, c.finalRounds);
  const { train, test } = await loadRunData(tcfg);
  const teacher = await loadLayersModelFiles(`${a.teacher}/model`);
  const classifier = a.classifier ? await loadLayersModelFiles(`${a.classifier}/model`) : null;
  const opened = await openRunDir(a.run, saved, { resume: a.resume, force: a.force });
  for (const ch of opened.changes) {
    console.log(
      `resume changes ${ch.field}: ${JSON.stringify(ch.old)} -> ${JSON.stringify(ch.new)}`,
    );
  }
  await Deno.mkdir(`${a.run}/samples`, { recursive: true });
  const ref = classifier && c.evalSamples > 0
    ? await referenceStats(classifier, test, `${a.run}/cfid_reference.json`)
    : null;
  const ctx: EvalContext = {
    schedule,
    parameterization,
    classifier,
    ref,
    config: c,
    runDir: a.run,
  };
  const table: ResultRow[] = [];
  const rounds = await progressiveDistill({
    teacher,
    schedule,
    parameterization,
    fromSteps: c.fromSteps!,
    toSteps: c.toSteps,
    finalMethod: c.method,
    finalRounds: c.finalRounds,
    rdd: c.rdd,
    classifier: classifier ?? undefined,
    images: train,
    batchSize: c.batchSize,
    steps: c.doubleShortRounds ? referenceRoundSteps(c.stepsPerRound) : c.stepsPerRound,
    optimizer: c.optimizer,
    seed: c.seed,
    runDir: a.run,
    checkpointEvery: c.checkpointEvery,
    logEvery: c.logEvery,
    onRound: async (r: RoundInfo) => {
      const label = `student ${r.method} ${r.teacherSteps}->${r.studentSteps}`;
      await sampleGrid(
        ctx,
        r.student,
        r.studentSteps,
        `round_${r.teacherSteps}_to_${r.studentSteps}`,
      );
      const row = await evaluate(ctx, r.student, r.studentSteps, label);
      if (row) table.push(row);
    },
  });
  for (const r of c.evalTeacher === false ? [] : rounds) {
    await sampleGrid(ctx, teacher, r.studentSteps, `teacher_ddim_${r.studentSteps}`);
    const row = await evaluate(ctx, teacher, r.studentSteps, "teacher DDIM");
    if (row) table.push(row);
  }
  table.sort((x, y) => x.steps - y.steps || x.model.localeCompare(y.model));
  const results: DistillResults = {
    config: c,
    teacher: a.teacher,
    classifier: a.classifier ?? null,
    backend: describeBackend(),
    rounds: rounds.map(({ teacherSteps, studentSteps, method, dir }) => ({
      teacherSteps,
      studentSteps,
      method,
      dir,
    })),
    table,
  };
  await writeFileAtomic(`${a.run}/results.json`, JSON.stringify(results, null, 2));
  if (table.length > 0) console.log(formatTable(table));
  rounds[rounds.length - 1].student.dispose();
  teacher.dispose();
  classifier?.dispose();
  return results;
}

if (import.meta.main) {
  await runCommand(DISTILL_COMMAND, async () => {
    const args = await parseDistillArgs(Deno.args);
    if (args.check) {
      const { config } = await checkDistillInputs(args);
      return printCheck({ ...args, config });
    }
    await selectBackend({ prefer: args.backend, log: true });
    await runDistill(args);
    console.log(`run directory: ${args.run}`);
  });
}
