import * as tf from "@tensorflow/tfjs";
import { shippedTeacherOnFastCpu } from "./shipped.ts";
import { distillRound } from "../lib/distill/rounds.ts";
import type { RddPresetName } from "../lib/distill/rdd_objective.ts";
import { loadLayersModelFiles } from "../lib/train/checkpoint.ts";
import { imageDataSource, loadRunData, teacherSchedule } from "../lib/train/run_config.ts";
const method = Deno.args[0];
const { root, config, teacher } = await shippedTeacherOnFastCpu();
const classifier = await loadLayersModelFiles(`${root}data/classifier/model`);
const { train } = await loadRunData(config);
const runDir = await Deno.makeTempDir({ prefix: "bench_distill_" });
const t0 = performance.now();
const info = await tf.profile(async () => { await distillRound({
    teacher, classifier, schedule: teacherSchedule(config), parameterization: config.parameterization ?? "x0",
    teacherSteps: 8, method: method as RddPresetName, rdd: { queueSize: 20000, contrastSize: 4096 },
    data: imageDataSource(train, { batchSize: 32, seed: 1 }).images, steps: 3, seed: 0, batchSize: 32, runDir, logEvery: 1, print: () => {} }); });
console.log("wall", (performance.now() - t0).toFixed(0));
const byName = new Map<string, { ms: number; calls: number }>();
for (const k of info.kernels) { const key = Deno.args.includes("--shapes") ? `${k.name} ${JSON.stringify(k.inputShapes)}` : k.name; const e = byName.get(key) ?? { ms: 0, calls: 0 }; e.ms += k.kernelTimeMs as number; e.calls++; byName.set(key, e); }
for (const [n, e] of [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, Number(Deno.env.get("TOP") ?? 25))) console.log(n.slice(0, 90).padEnd(90), e.ms.toFixed(0).padStart(6), String(e.calls).padStart(5));
await Deno.remove(runDir, { recursive: true });
