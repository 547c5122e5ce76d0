// The reproduction summary: the merge of a teacher sweep's and a chains sweep's summaries on a
// fixture with hand-checkable numbers (rows renamed to method + name@K, the chains' paired
// differences kept, the figures' reader accepts the file), its results table, and
// `deno task reproduce --fast` end to end with the figure inputs it exports (slow: minutes on
// a loaded 2-core machine).
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import {
  formatReproduction,
  mergeReproduction,
  reproductionRows,
  type SpeedupMeasurement,
} from "../lib/sweep/reproduction.ts";
import type { SummaryRow } from "../lib/sweep/stats.ts";
import type { SweepSummary } from "../lib/sweep/sweep.ts";
import { qualityPointsFromSummary, readSweepSummary } from "../lib/figures/results.ts";
import { readLossCurves, samplePanelsFromDir } from "../lib/figures/sources.ts";
import { collectFigures } from "../lib/figures/catalog.ts";
import { exportChainFigureInputs } from "../lib/figures/chain_exports.ts";

/** A summary row; `n = 1` rows have NaN spread statistics, as the sweep writes them. */
function row(
  variant: string,
  metric: string,
  mean: number,
  n = 1,
  ci: [number, number] = [NaN, NaN],
  diff: SummaryRow["diff"] = null,
): SummaryRow {
  return { variant, metric, n, missing: 0, mean, sd: NaN, ciLow: ci[0], ciHigh: ci[1], diff };
}

const teacher: SweepSummary = {
  sweep: "reproduction_teacher",
  baseline: null,
  metrics: ["cfid", "nfe", "msPerImage"],
  variants: [
    { name: "DDIM 1", overrides: { sampler: "ddim", path: "stride", steps: 1 } },
    { name: "DDIM 2", overrides: { sampler: "ddim", path: "stride", steps: 2 } },
    { name: "DPM-Solver++ 2", overrides: { sampler: "dpm-solver++", path: "logsnr", steps: 2 } },
    { name: "DPM stride 2", overrides: { sampler: "dpm-solver++", path: "stride", steps: 2 } },
  ],
  rows: ([["DDIM 1", 200, 1, 4], ["DDIM 2", 20, 2, 8], ["DPM-Solver++ 2", 30, 2, 9], [
    "DPM stride 2",
    21,
    2,
    9,
  ]] as const).flatMap(([v, cfid, nfe, ms]) => [
    row(v, "cfid", cfid),
    row(v, "nfe", nfe),
    row(v, "msPerImage", ms),
  ]),
};

const rddDiff = { baseline: "PD", n: 3, mean: -0.5, ciLow: -1, ciHigh: 0, p: 0.04 };
const chains: SweepSummary = {
  sweep: "reproduction_chains",
  baseline: "PD",
  metrics: ["cfid@1", "nfe@1", "msPerImage@1"],
  variants: [{ name: "PD", overrides: { method: "pd" } }, {
    name: "RDD",
    overrides: { method: "rdd" },
  }],
  rows: [
    row("PD", "cfid@1", 6, 3, [5, 7]),
    row("PD", "nfe@1", 1, 3, [1, 1]),
    row("PD", "msPerImage@1", 2, 3, [1.5, 2.5]),
    row("RDD", "cfid@1", 5.5, 3, [4.5, 6.5], rddDiff),
    row("RDD", "nfe@1", 1, 3, [1, 1], { ...rddDiff, mean: 0, ciLow: 0, ciHigh: 0, p: 1 }),
    row("RDD", "msPerImage@1", 2, 3, [1.5, 2.5]),
  ],
};

const speedup: SpeedupMeasurement = {
  teacherSteps: 128,
  studentSteps: 1,
  batch: 64,
  repeats: 3,
  teacherMsPerImage: 256,
  studentMsPerImage: 2,
  speedup: 128,
  nfeRatio: 128,
  student: "chains/cells/x/run/round_2_to_1/model",
  backend: "tfjs backend cpu",
};

const merged = mergeReproduction(teacher, chains, {
  sources: { teacher: "t", chains: "c" },
  speedup,
});

Deno.test("merge: one variant per method, teacher rows renamed to name@K, chain rows kept", () => {
  assertEquals(merged.variants.map((v) => v.name), [
    "DDIM",
    "DPM-Solver++",
    "DPM-Solver++ (stride)",
    "PD",
    "RDD",
  ]);
  assert(merged.variants.every((v) => Object.keys(v.overrides).length === 0));
  assertEquals(merged.baseline, "PD");
  const get = (v: string, m: string) => merged.rows.find((r) => r.variant === v && r.metric === m);
  assertEquals(get("DDIM", "cfid@2")?.mean, 20);
  assertEquals(get("DDIM", "msPerImage@1")?.mean, 4);
  assertEquals(get("DPM-Solver++", "cfid@2")?.mean, 30);
  assertEquals(get("DPM-Solver++ (stride)", "cfid@2")?.mean, 21);
  assertEquals(get("DDIM", "cfid@2")?.diff, null);
  assertEquals(get("RDD", "cfid@1")?.diff, rddDiff);
  assertEquals(merged.rows.length, teacher.rows.length + chains.rows.length);
  assertEquals(merged.speedup?.speedup, 128);
});

Deno.test("merge: the table rows, K descending per method", () => {
  assertEquals(
    reproductionRows(merged).map((r) => `${r.method}@${r.steps}:${r.cfid.mean}:${r.nfe}`),
    [
      "DDIM@2:20:2",
      "DDIM@1:200:1",
      "DPM-Solver++@2:30:2",
      "DPM-Solver++ (stride)@2:21:2",
      "PD@1:6:1",
      "RDD@1:5.5:1",
    ],
  );
});

Deno.test("merge: the printed table shows CIs, paired diffs, p and the speed-up", () => {
  const text = formatReproduction(merged);
  const lines = text.split("\n");
  assertMatch(lines[0], /^method\s+steps\s+NFE\s+cFID \[95% CI\]\s+seeds\s+diff to PD/);
  const rdd = lines.find((l) => l.startsWith("RDD"))!;
  assertMatch(rdd, /^RDD\s+1\s+1\s+5\.500 \[4\.500, 6\.500\]\s+3\s+-0\.500 \[-1\.000, 0\.000\]/);
  assertMatch(rdd, /0\.040\s+2\.00$/);
  assertMatch(lines.find((l) => l.startsWith("DDIM  "))!, /^DDIM\s+2\s+2\s+20\.000\s+1\s+8\.00$/);
  assertStringIncludes(text, "128.0x (256.00 vs 2.00 ms/image; NFE ratio 128)");
});

Deno.test("merge: the figures read the written summary (cFID vs NFE points per method)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "repro_summary_" });
  await Deno.writeTextFile(`${dir}/summary.json`, JSON.stringify(merged));
  const points = qualityPointsFromSummary(await readSweepSummary(`${dir}/summary.json`));
  const p = (m: string, nfe: number) => points.find((x) => x.method === m && x.nfe === nfe);
  assertEquals(p("DDIM", 1)?.cfid, { mean: 200 });
  assertEquals(p("RDD", 1)?.cfid, { mean: 5.5, ciLow: 4.5, ciHigh: 6.5 });
  assertEquals(p("PD", 1)?.msPerImage, { mean: 2, ciLow: 1.5, ciHigh: 2.5 });
  assertEquals(points.length, 6);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("merge: a teacher variant without sampler and steps overrides is an error", () => {
  const bad = { ...teacher, variants: [{ name: "x", overrides: { steps: 2 } }] };
  let message = "";
  try {
    mergeReproduction(bad, chains, { sources: { teacher: "t", chains: "c" }, speedup: null });
  } catch (e) {
    message = (e as Error).message;
  }
  assertStringIncludes(message, 'teacher sweep variant "x" must override sampler');
});

Deno.test({
  name: "deno task reproduce --fast runs end to end into a temp dir and prints the table",
  ignore: Deno.env.get("RDD_SLOW") !== "1",
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "reproduce_fast_" });
    const out = `${tmp}/reproduction`;
    const r = await new Deno.Command("deno", {
      args: ["task", "reproduce", "--fast", "--out", out],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(r.stdout);
    assertEquals(r.code, 0, new TextDecoder().decode(r.stderr).slice(-2000));
    const methods = ["DDIM", "DPM-Solver++", "DPM-Solver++ (stride)", "PD", "RCFD", "RDD"];
    for (const method of methods) {
      const escaped = method.replace(/[+()]/g, (c) => `\\${c}`);
      assertMatch(stdout, new RegExp(`^${escaped}\\s+\\d+\\s+\\d+\\s+\\d+\\.\\d{3}`, "m"));
    }
    assertMatch(stdout, /^DDIM\s+128\s+128\s/m);
    assertMatch(stdout, /^RDD\s+1\s+1\s+\d+\.\d{3}\s+1\s+-?\d+\.\d{3}/m);
    assertMatch(
      stdout,
      /speed-up of the 1-step student over 128-step teacher DDIM .*NFE ratio 128/,
    );
    const s = await readSweepSummary(`${out}/summary.json`);
    assertEquals(s.variants.map((v) => v.name), methods);
    const json = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
    assert(json.speedup.speedup > 1 && json.speedup.nfeRatio === 128, JSON.stringify(json.speedup));

    // The figure inputs of the chains: 3 methods x 3 rounds of losses, 4 rows x 3 step counts
    // of sample sheets, drawn by the figures from these files.
    const curves = await readLossCurves(`${out}/loss_curves.json`);
    assertEquals(curves.length, 9);
    for (const m of ["PD", "RCFD", "RDD"]) {
      for (const round of ["8 -> 4", "4 -> 2", "2 -> 1"]) {
        assert(curves.some((c) => c.round === `${m} ${round}` && c.steps.length > 0), m + round);
      }
    }
    const sheets = (await samplePanelsFromDir(`${out}/samples`)).map((p) =>
      `${p.method}@${p.steps}`
    );
    assertEquals(
      sheets.sort(),
      ["PD", "RCFD", "RDD", "teacher DDIM"].flatMap((m) => [1, 2, 4].map((k) => `${m}@${k}`)),
    );
    const set = await collectFigures({ results: tmp, data: `${tmp}/no-data` });
    const fig = (n: string) => set.figures.find((f) => f.name === n)!;
    assertEquals(fig("samples").figure.data.length, 12);
    assertEquals(fig("loss_curves").source, `${out}/loss_curves.json`);
    assert(fig("loss_curves").figure.data.some((t) => t.name === "RDD 2 -> 1 (1 seed)"));

    // A clone holding only the cell files exports nothing, keeping the files above.
    const before = await Deno.readTextFile(`${out}/loss_curves.json`);
    const cell = (await Array.fromAsync(Deno.readDir(`${out}/chains/cells`)))[0].name;
    await Deno.remove(`${out}/chains/cells/${cell}/run`, { recursive: true });
    const e = await exportChainFigureInputs(`${out}/chains`, out, "data/teacher");
    assertEquals([e.lossCurves, e.samples], [null, []]);
    assertStringIncludes(e.notes[0], "1 finished cell(s) without its run directory");
    assertEquals(await Deno.readTextFile(`${out}/loss_curves.json`), before);
    await Deno.remove(tmp, { recursive: true });
  },
});

Deno.test("deno task reproduce --summary runs no cell: unfinished rows are reported missing", async () => {
  const out = await Deno.makeTempDir({ prefix: "reproduce_summary_" });
  const r = await new Deno.Command("deno", {
    args: ["task", "reproduce", "--summary", "--fast", "--out", out],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(r.stdout);
  assertEquals(r.code, 0, new TextDecoder().decode(r.stderr).slice(-2000));
  assertMatch(stdout, /^DDIM\s+128\s+-\s+-\s+0 \(1 missing\)/m);
  assertMatch(stdout, /^RDD\s+1\s+-\s+-\s+0 \(1 missing\)/m);
  assertMatch(stdout, /speed-up: not measured/);
  const json = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
  assertEquals(json.speedup, null);
  for (const name of ["teacher", "chains"]) {
    const cells = await Array.fromAsync(Deno.readDir(`${out}/${name}/cells`));
    assert(cells.length > 0);
    for (const c of cells) {
      const files = (await Array.fromAsync(Deno.readDir(`${out}/${name}/cells/${c.name}`)))
        .map((e) => e.name);
      assertEquals(files, ["cell.json"], `${name}/${c.name} ran`);
    }
  }
  await Deno.remove(out, { recursive: true });
});
