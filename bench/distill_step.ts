/**
 * Worker of bench/run.ts: times the optimiser step of one distillation round (PD, RCFD or RDD)
 * in a fresh process on the fast CPU backend and prints one JSON line
 * `{method, batch, seconds: number[]}`.
 *
 * The step is the toolkit's own (`distillRound`: two teacher DDIM steps for the PD target, the
 * student's forward and backward, for RCFD/RDD the frozen classifier on both sides and the
 * relational terms with the reference's queue of 20000 and contrast set of 4096), on the
 * shipped MNIST teacher (data/teacher, 8 -> 4 steps) and classifier (data/classifier) with
 * MNIST batches. Per-step seconds come from the round's metrics.jsonl (logged every step); the
 * first {@link WARMUP} steps are untimed (the first steps run slower while the output pool and
 * the heap settle: 377, 290, 237 ms, then 219-245 ms for RDD at 2 threads on the 2-core Xeon
 * of bench/RESULTS.md, 2026-12-04), as in bench/torch_distill.py.
 *
 * Usage: deno run <perms> bench/distill_step.ts <pd|rcfd|rdd> <batch> <repeats>
 */
import { shippedTeacherOnFastCpu } from "./shipped.ts";
import { distillRound } from "../lib/distill/rounds.ts";
import type { RddPresetName } from "../lib/distill/rdd_objective.ts";
import { loadLayersModelFiles } from "../lib/train/checkpoint.ts";
import { imageDataSource, loadRunData, teacherSchedule } from "../lib/train/run_config.ts";

/** Untimed steps before the timed ones. */
const WARMUP = 3;

const [method, batchArg, repeatsArg] = Deno.args;
const batch = Number(batchArg), repeats = Number(repeatsArg);
if (!["pd", "rcfd", "rdd"].includes(method)) {
  throw new TypeError(`method: expected pd | rcfd | rdd, got ${method}`);
}
if (!Number.isInteger(batch) || batch < 1 || !Number.isInteger(repeats) || repeats < 1) {
  throw new RangeError(`batch, repeats: expected integers >= 1, got ${batchArg}, ${repeatsArg}`);
}
const { root, config, teacher } = await shippedTeacherOnFastCpu();
const classifier = await loadLayersModelFiles(`${root}data/classifier/model`);
const { train } = await loadRunData(config);
const runDir = await Deno.makeTempDir({ prefix: "bench_distill_" });
try {
  await distillRound({
    teacher,
    classifier,
    schedule: teacherSchedule(config),
    parameterization: config.parameterization ?? "x0",
    teacherSteps: 8,
    method: method as RddPresetName,
    rdd: { queueSize: 20000, contrastSize: 4096 },
    data: imageDataSource(train, { batchSize: batch, seed: 1 }).images,
    steps: repeats + WARMUP,
    seed: 0,
    batchSize: batch,
    runDir,
    logEvery: 1,
    print: () => {},
  });
  const lines = (await Deno.readTextFile(`${runDir}/metrics.jsonl`)).trim().split("\n");
  const at = lines.map((l) => JSON.parse(l).seconds as number);
  const seconds = at.slice(WARMUP).map((s, i) => s - at[WARMUP - 1 + i]);
  console.log(JSON.stringify({ method, batch, seconds }));
} finally {
  await Deno.remove(runDir, { recursive: true });
}
