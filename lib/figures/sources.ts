/**
 * Finding the inputs of the figures on disk: loss curves of distillation rounds and teacher
 * trainings (`metrics.jsonl` files, or a shipped `loss_curves.json`), and shipped sample sheets
 * (`samples/METHOD_Kstep.png`).
 * @module
 */
import { z } from "zod";
import { parseWith, readJsonFile } from "../config/parse.ts";
import type { LossRun } from "./loss_curves.ts";
import type { SamplePanel } from "./samples.ts";
import { pathExists, writeFileAtomic } from "../train/checkpoint.ts";

const ROUND_SCHEMA = z.looseObject({
  kind: z.literal("distill-round"),
  method: z.string(),
  teacherSteps: z.number(),
  studentSteps: z.number(),
  seed: z.union([z.number(), z.string()]),
});
const RUN_CONFIG_SCHEMA = z.looseObject({
  kind: z.string(),
  seed: z.union([z.number(), z.string()]),
});

/**
 * The logged `{step, loss}` pairs of a `metrics.jsonl` (lines without a numeric loss are
 * skipped). Errors name the file and line.
 */
export async function readLossLog(path: string): Promise<{ steps: number[]; loss: number[] }> {
  const steps: number[] = [];
  const loss: number[] = [];
  (await Deno.readTextFile(path)).split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let o: { step?: unknown; loss?: unknown };
    try {
      o = JSON.parse(line);
    } catch {
      throw new SyntaxError(`${path}:${i + 1}: invalid JSON line`);
    }
    if (typeof o.step === "number" && typeof o.loss === "number") {
      steps.push(o.step);
      loss.push(o.loss);
    }
  });
  return { steps, loss };
}

/**
 * The loss curve of one run directory, or null when it is neither a distillation round
 * (`round.json` + `metrics.jsonl`, labelled "METHOD T -> S") nor a teacher run (`config.json`
 * of kind teacher: `metrics.jsonl` labelled "teacher", `stage1_metrics.jsonl` with
 * `stage1_config.json` labelled "teacher stage 1").
 */
export async function lossRunsOfDir(dir: string): Promise<LossRun[]> {
  const runs: LossRun[] = [];
  if (await pathExists(`${dir}/round.json`) && await pathExists(`${dir}/metrics.jsonl`)) {
    const r = parseWith(ROUND_SCHEMA, await readJsonFile(`${dir}/round.json`), `${dir}/round.json`);
    const round = `${r.method.toUpperCase()} ${r.teacherSteps} -> ${r.studentSteps}`;
    runs.push({ round, seed: r.seed, ...(await readLossLog(`${dir}/metrics.jsonl`)) });
  }
  for (
    const [cfg, log, label] of [
      ["config.json", "metrics.jsonl", "teacher"],
      ["stage1_config.json", "stage1_metrics.jsonl", "teacher stage 1"],
    ]
  ) {
    if (!(await pathExists(`${dir}/${cfg}`)) || !(await pathExists(`${dir}/${log}`))) continue;
    const c = parseWith(RUN_CONFIG_SCHEMA, await readJsonFile(`${dir}/${cfg}`), `${dir}/${cfg}`);
    if (c.kind === "teacher") {
      runs.push({ round: label, seed: c.seed, ...(await readLossLog(`${dir}/${log}`)) });
    }
  }
  return runs;
}

/**
 * Every loss curve under `roots` (each searched recursively, symlinks not followed), in
 * sorted path order. Missing roots are skipped.
 */
export async function findLossRuns(roots: readonly string[]): Promise<LossRun[]> {
  const runs: LossRun[] = [];
  const walk = async (dir: string): Promise<void> => {
    runs.push(...(await lossRunsOfDir(dir)));
    const subdirs: string[] = [];
    for await (const e of Deno.readDir(dir)) if (e.isDirectory) subdirs.push(e.name);
    for (const s of subdirs.sort()) await walk(`${dir}/${s}`);
  };
  for (const root of roots) if (await pathExists(root)) await walk(root);
  return runs;
}

/**
 * Sample sheets shipped as `DIR/METHOD_Kstep.png` (underscores in METHOD become spaces), or
 * an empty list when `dir` does not exist.
 */
export async function samplePanelsFromDir(dir: string): Promise<SamplePanel[]> {
  if (!(await pathExists(dir))) return [];
  const panels: SamplePanel[] = [];
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile) names.push(e.name);
  for (const name of names.sort()) {
    const m = /^(.+)_(\d+)step\.png$/.exec(name);
    if (!m) continue;
    panels.push({
      method: m[1].replace(/_/g, " "),
      steps: Number(m[2]),
      png: await Deno.readFile(`${dir}/${name}`),
    });
  }
  return panels;
}

const LOSS_CURVES_SCHEMA = z.object({
  runs: z.array(z.object({
    round: z.string(),
    seed: z.union([z.number(), z.string()]),
    steps: z.array(z.number()),
    loss: z.array(z.number()),
  })),
});

/**
 * The loss curves of a `loss_curves.json` (`{runs: LossRun[]}`, as
 * {@link writeLossCurves} writes it); a malformed file is a ConfigError naming it.
 */
export async function readLossCurves(path: string): Promise<LossRun[]> {
  return parseWith(LOSS_CURVES_SCHEMA, await readJsonFile(path), path).runs;
}

/** Writes `runs` as a `loss_curves.json` that {@link readLossCurves} reads back. */
export async function writeLossCurves(path: string, runs: readonly LossRun[]): Promise<void> {
  await writeFileAtomic(path, JSON.stringify({ runs }) + "\n");
}
