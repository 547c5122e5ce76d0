// The sampler choice of image generation and "eval" sweep cells on the shipped teacher
// (data/teacher): DPM-Solver++(2M) cells give a finite cFID with NFE = K, and with only its
// first-order step (1 step: the first step is always first order) DPM-Solver++ lands exactly
// where DDIM lands, since (sigma_s / sigma_t) z - alpha_s expm1(-h) x0 = alpha_s x0 + sigma_s eps.
import { assert, assertEquals, assertLess, assertRejects } from "@std/assert";
import { selectBackend } from "../lib/tfjs/backend.ts";
import { loadLayersModelFiles } from "../lib/train/checkpoint.ts";
import "../lib/models/unet.ts";
import { readRunConfig, teacherSchedule } from "../lib/train/run_config.ts";
import { generateImages } from "../lib/eval/generate.ts";
import { runCellConfig } from "../lib/sweep/kinds.ts";
import { parseCellConfig } from "../lib/config/sweep.ts";
import { CELL_DEFAULTS } from "../lib/sweep/spec.ts";

await selectBackend();
const tcfg = await readRunConfig("data/teacher/config.json");
if (tcfg.kind !== "teacher") throw new Error("data/teacher is not a teacher run");
const schedule = teacherSchedule(tcfg);
const teacher = await loadLayersModelFiles("data/teacher/model");
const base = {
  schedule,
  parameterization: tcfg.parameterization ?? "x0",
  n: 4,
  imageShape: [28, 28, 1] as [number, number, number],
  seed: 7,
};

Deno.test("DPM-Solver++ at 1 step (its first-order step) equals DDIM at 1 step", async () => {
  for (const path of ["stride", "logsnr"] as const) {
    const d = await generateImages(teacher, { ...base, steps: 1, path, sampler: "ddim" });
    const p = await generateImages(teacher, { ...base, steps: 1, path, sampler: "dpm-solver++" });
    assertEquals(p.nfe, 1);
    let maxDiff = 0;
    for (let i = 0; i < d.images.data.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(d.images.data[i] - p.images.data[i]));
    }
    // float32 tensors (DDIM) vs float64 host arithmetic (DPM-Solver++) on images in [-1, 1].
    assertLess(maxDiff, 1e-4, `${path}: max |DDIM - DPM-Solver++| = ${maxDiff}`);
    assert(d.images.data.some((v) => v !== 0), "the samples are not all zero");
  }
});

Deno.test("DPM-Solver++ at 4 logSNR steps differs from DDIM on the same path (second order)", async () => {
  const o = { ...base, steps: 4, path: "logsnr" as const };
  const d = await generateImages(teacher, { ...o, sampler: "ddim" });
  const p = await generateImages(teacher, { ...o, sampler: "dpm-solver++" });
  assertEquals(p.nfe, 4);
  const diff = d.images.data.reduce((a, v, i) => Math.max(a, Math.abs(v - p.images.data[i])), 0);
  assert(diff > 1e-3, `second-order steps change the sample (max diff ${diff})`);
});

Deno.test("a strided path needs K | T; the logSNR path does not", async () => {
  await assertRejects(
    () => generateImages(teacher, { ...base, steps: 3, sampler: "dpm-solver++" }),
    RangeError,
    "steps must be a positive divisor",
  );
  const g = await generateImages(teacher, { ...base, n: 1, steps: 3, path: "logsnr" });
  assertEquals(g.nfe, 3);
});

Deno.test("a dpm-solver++ eval cell at 2 logSNR steps: finite cFID, NFE 2", async () => {
  const config = parseCellConfig(
    {
      ...CELL_DEFAULTS.eval,
      sampler: "dpm-solver++",
      path: "logsnr",
      steps: 2,
      evalSamples: 32,
    },
    "test",
  );
  const dir = await Deno.makeTempDir({ prefix: "eval_cell_" });
  const m = await runCellConfig(config, 0, dir);
  assert(Number.isFinite(m.cfid) && m.cfid > 0, `cfid ${m.cfid}`);
  assertEquals(m.nfe, 2);
  assertEquals(m["nfe@2"], 2);
  assert(m.msPerImage > 0, `msPerImage ${m.msPerImage}`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("an eval cell with an unknown sampler or path is an error naming the field", () => {
  for (const [field, value] of [["sampler", "euler"], ["path", "karras"]]) {
    let message = "";
    try {
      parseCellConfig({ ...CELL_DEFAULTS.eval, [field]: value }, "spec.json");
    } catch (e) {
      message = (e as Error).message;
    }
    assert(message.includes(field), `error names ${field}: ${message}`);
  }
});
