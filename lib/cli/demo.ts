/**
 * `deno task demo [--steps S] [--batch B] [--eval-samples n] [--lr X] [--out DIR] [--fast]
 *  [--backend auto|webgpu|cpu|wasm]` (a `--` before the flags is optional; `--help` lists
 * them with their defaults, {@link DEMO_COMMAND}).
 *
 * The whole pipeline on shipped defaults, in minutes on 2 CPU cores: it loads the MNIST
 * teacher, the classifier and the 2-step PD student that the project trained itself
 * (`data/`, see `data/README.md` for the exact commands), runs the LAST distillation round
 * (2 -> 1 step) twice from the same start and seed — plain PD and RDD (RCFD + IS_P2P +
 * M_P2P, the reference's objective) — and prints one table: method, steps, cFID (classifier
 * FID against the held-out digits, same n and noise seed for every row), NFE and ms/image,
 * with the teacher's own DDIM at 1, 2 and 8 steps as baselines. Sample grids and
 * results.json go to `--out` (default runs/demo). `--fast` is the reduced form CI runs.
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { describeBackend, selectBackend } from "../tfjs/backend.ts";
import { type CommandSpec, printCheck, runCommand } from "./args.ts";
import { BACKEND_FLAG } from "./backend_flag.ts";
import { readJsonFile } from "../config/parse.ts";
import {
  imageDataSource,
  loadRunData,
  readRunConfig,
  teacherSchedule,
} from "../train/run_config.ts";
import { loadLayersModelFiles, writeFileAtomic } from "../train/checkpoint.ts";
import "../models/unet.ts";
import { cloneModel, distillRound } from "../distill/rounds.ts";
import type { RddPresetName } from "../distill/rdd_objective.ts";
import { evaluateStudent, referenceStats } from "../eval/cfid.ts";
import { generateImages } from "../eval/generate.ts";
import { imageGrid, writePng } from "../data/png.ts";
import { formatTable, type ResultRow } from "./distill.ts";

/** Where the shipped artifacts live (relative to the repository root). */
export const DEMO_DATA = {
  teacher: "data/teacher",
  classifier: "data/classifier",
  student: "data/student_2step",
  referenceStats: "data/mnist_cfid_reference.json",
};

/** Settings of one demo run. */
export interface DemoOptions {
  /** Optimiser steps of each last-round run (PD and RDD). */
  steps: number;
  /** Batch size of the last round. */
  batchSize: number;
  /** Generated images per cFID row. */
  evalSamples: number;
  /** Output directory. */
  out: string;
  /** Learning rate of the last round (Adam, cosine decay, clip 1). */
  lr: number;
  /** Teacher DDIM baselines (step counts). */
  teacherSteps: number[];
}

/** Default and `--fast` settings. */
export const DEMO_PROFILES: Record<"default" | "fast", DemoOptions> = {
  default: {
    steps: 150,
    batchSize: 32,
    evalSamples: 500,
    out: "runs/demo",
    lr: 1e-4,
    teacherSteps: [1, 2, 8],
  },
  fast: {
    steps: 6,
    batchSize: 8,
    evalSamples: 64,
    out: "runs/demo",
    lr: 1e-4,
    teacherSteps: [1, 2],
  },
};

/**
 * Checks that the shipped models of {@link DEMO_DATA} are there (a teacher run config and
 * model.json files); throws a `ConfigError` naming the missing file. Returns {@link DEMO_DATA}.
 */
export async function checkDemoData(root = "."): Promise<typeof DEMO_DATA> {
  await readRunConfig(`${root}/${DEMO_DATA.teacher}/config.json`);
  for (const dir of [DEMO_DATA.teacher, DEMO_DATA.classifier, DEMO_DATA.student]) {
    await readJsonFile(`${root}/${dir}/model/model.json`);
  }
  await readJsonFile(`${root}/${DEMO_DATA.referenceStats}`);
  return DEMO_DATA;
}

/** Runs the demo; returns the result rows (also printed and saved). */
export async function runDemo(o: DemoOptions, root = "."): Promise<ResultRow[]> {
  const t0 = performance.now();
  const p = (rel: string) => `${root}/${rel}`;
  const tcfg = await readRunConfig(p(`${DEMO_DATA.teacher}/config.json`));
  if (tcfg.kind !== "teacher") throw new RangeError(`${DEMO_DATA.teacher} is not a teacher run`);
  const schedule = teacherSchedule(tcfg);
  const parameterization = tcfg.parameterization ?? "x0";
  const teacher = await loadLayersModelFiles(p(`${DEMO_DATA.teacher}/model`));
  const classifier = await loadLayersModelFiles(p(`${DEMO_DATA.classifier}/model`));
  const student2 = await loadLayersModelFiles(p(`${DEMO_DATA.student}/model`));
  const { train, test } = await loadRunData(tcfg);
  const ref = await referenceStats(classifier, test, p(DEMO_DATA.referenceStats));
  await Deno.mkdir(`${o.out}/samples`, { recursive: true });
  const rows: ResultRow[] = [];
  const evaluate = async (model: tf.LayersModel, steps: number, label: string) => {
    const row = await evaluateStudent({
      model,
      steps,
      schedule,
      parameterization,
      n: o.evalSamples,
      seed: "demo-eval",
      classifier,
      refStats: ref,
    });
    const grid = await generateImages(model, {
      schedule,
      parameterization,
      steps,
      n: 64,
      imageShape: [32, 32, 1],
      seed: "demo-grid",
    });
    const file = `${o.out}/samples/${label.replace(/[^a-z0-9]+/gi, "_")}_${steps}step.png`;
    await writePng(file, imageGrid(grid.images, { cols: 8 }));
    console.log(`${label}, ${steps} step(s): cFID ${row.cfid.toFixed(3)} -> ${file}`);
    rows.push({ model: label, ...row });
  };
  for (const k of o.teacherSteps) await evaluate(teacher, k, "teacher DDIM");
  await evaluate(student2, 2, "PD student (shipped)");
  for (const method of ["pd", "rdd"] as RddPresetName[]) {
    const data = imageDataSource(train, { batchSize: o.batchSize, seed: 7 }).images;
    const { student, head } = await distillRound({
      teacher: student2,
      student: await cloneModel(student2),
      schedule,
      parameterization,
      teacherSteps: 2,
      method,
      classifier,
      data,
      optimizer: { lr: o.lr },
      steps: o.steps,
      seed: 7,
      batchSize: o.batchSize,
      logEvery: Math.max(1, Math.floor(o.steps / 10)),
    });
    await evaluate(student, 1, `${method.toUpperCase()} 2->1 (this run)`);
    student.dispose();
    head?.dispose();
  }
  const table = formatTable(rows);
  const minutes = (performance.now() - t0) / 60000;
  console.log(`\n${table}\n\n${describeBackend()} | ${minutes.toFixed(1)} min in all`);
  await writeFileAtomic(
    `${o.out}/results.json`,
    JSON.stringify({ options: o, backend: describeBackend(), minutes, table: rows }, null, 2),
  );
  return rows;
}

const { default: D, fast: F } = DEMO_PROFILES;

/** The flags of `deno task demo` (defaults: {@link DEMO_PROFILES}). */
export const DEMO_COMMAND = {
  usage: "deno task demo [--fast] [--steps S] [--batch B] [--eval-samples n] [--out DIR]",
  summary: "The last distillation round (2 -> 1 step) of the shipped models, PD vs RDD from the " +
    "same start and seed, with the teacher's DDIM as baselines: one cFID table, sample grids " +
    "and results.json in --out.",
  flags: {
    steps: {
      type: "int",
      min: 1,
      description: `optimiser steps of each run (default ${D.steps}, --fast ${F.steps})`,
    },
    batch: {
      type: "int",
      min: 1,
      description: `batch size (default ${D.batchSize}, --fast ${F.batchSize})`,
    },
    "eval-samples": {
      type: "int",
      min: 2,
      description: `images per cFID row (default ${D.evalSamples}, --fast ${F.evalSamples})`,
    },
    lr: { type: "number", above: 0, description: `learning rate (default ${D.lr})` },
    out: { type: "string", placeholder: "DIR", description: `output directory (default ${D.out})` },
    fast: { type: "boolean", description: "the reduced settings CI runs (minutes -> seconds)" },
    backend: BACKEND_FLAG,
    check: {
      type: "boolean",
      description: "only validate the flags and the shipped models, print them, and exit",
    },
  },
} as const satisfies CommandSpec;

if (import.meta.main) {
  await runCommand(DEMO_COMMAND, async (v) => {
    const o = { ...DEMO_PROFILES[v.fast ? "fast" : "default"] };
    o.steps = v.steps ?? o.steps;
    o.batchSize = v.batch ?? o.batchSize;
    o.evalSamples = v["eval-samples"] ?? o.evalSamples;
    o.lr = v.lr ?? o.lr;
    o.out = v.out ?? o.out;
    if (v.check) return printCheck({ ...o, data: await checkDemoData() });
    await selectBackend({ prefer: v.backend, log: true });
    await runDemo(o);
  });
}
