// The "train" cell kind: a teacher or classifier training run as a sweep cell (run config
// inline or from a file, overrides into it), validated before anything runs, trained,
// scored (classifier: test accuracy; teacher: cFID), and not retrained by a rerun.
import { assert, assertEquals } from "@std/assert";
import { ConfigError } from "../lib/config/errors.ts";
import { expandSweep, readSweepSpec } from "../lib/sweep/spec.ts";
import { runSweep } from "../lib/sweep/sweep.ts";
import type { CellResult } from "../lib/sweep/cell.ts";

const tmp = await Deno.makeTempDir({ prefix: "sweep_train_" });
const quiet = { onProgress: () => {} };

async function results(dir: string): Promise<CellResult[]> {
  const lines = (await Deno.readTextFile(`${dir}/results.jsonl`)).trim().split("\n");
  return lines.map((l) => JSON.parse(l) as CellResult).sort((a, b) => a.seed - b.seed);
}

Deno.test("train cells: the shipped spec expands from the config file, grid over run.model.width", async () => {
  const file = JSON.parse(await Deno.readTextFile("configs/mnist_classifier.json"));
  const s = await readSweepSpec("sweeps/classifier_width.json");
  assertEquals(s.variants.map((v) => v.name), [8, 16, 32].map((w) => `run.model.width=${w}`));
  assertEquals(s.cells.length, 9);
  for (const c of s.cells) {
    if (c.config.kind !== "train") throw new Error("classifier_width cells are train cells");
    assertEquals(c.config.run.kind, "classifier");
    assertEquals(c.config.run.steps, file.steps);
    assertEquals("seed" in c.config.run, false);
    assertEquals(c.config.run.model, { ...file.model, width: c.overrides["run.model.width"] });
  }
  const fast = await readSweepSpec("sweeps/classifier_width.json", { fast: true });
  assertEquals(fast.cells.length, 3);
  assertEquals(
    fast.cells.every((c) => c.config.kind === "train" && c.config.run.steps === 5),
    true,
  );
});

Deno.test("train cells: bad run fields are errors naming the path, before anything runs", async () => {
  const run = JSON.parse(await Deno.readTextFile("configs/mnist_classifier.json"));
  const spec = (base: Record<string, unknown>, overrides: Record<string, unknown> = {}) => ({
    name: "t",
    base: { kind: "train", ...base },
    variants: [{ name: "a", overrides }],
    seeds: [0],
    metrics: ["accuracy"],
  });
  const cases: [unknown, RegExp][] = [
    [spec({ run }), /run\.seed: not allowed/],
    [
      spec({ run: "configs/mnist_classifier.json" }, { "run.model.widht": 8 }),
      /run: model\.widht: unknown field/,
    ],
    [spec({ run: "configs/mnist_classifier.json" }, { "run.steps": 0 }), /run: steps: Too small/],
    [spec({ run: "configs/no_such.json" }), /configs\/no_such\.json: cannot read config/],
    [spec({ run: "configs/mnist_classifier.json", evalSteps: [] }), /evalSteps/],
  ];
  for (const [value, message] of cases) {
    const e = await expandSweep(value).catch((e: Error) => e);
    assert(e instanceof ConfigError && message.test(e.message), String(e));
  }
});

Deno.test("train cells: classifier and teacher cells train, score, and a rerun retrains nothing", async () => {
  const { seed: _, $schema: _s, ...teacherRun } = JSON.parse(
    await Deno.readTextFile("configs/mnist_teacher.json"),
  );
  const spec = {
    name: "train_cells",
    base: { kind: "train", run: "configs/mnist_classifier.json" },
    variants: [
      {
        name: "classifier w4",
        overrides: { "run.model.width": 4, "run.steps": 4, "run.batchSize": 8 },
      },
      {
        name: "teacher",
        overrides: {
          run: { ...teacherRun, steps: 2, batchSize: 4, checkpointEvery: 1, evalEvery: 0 },
          evalSteps: [2],
          evalSamples: 16,
        },
      },
    ],
    seeds: [0, 1],
    metrics: ["accuracy", "cfid", "finalLoss"],
  };
  const out = `${tmp}/sweep`;
  const first = await runSweep(spec, { out, parallel: 1, ...quiet });
  assertEquals(first.failed, []);
  const rs = await results(out);
  assertEquals(rs.length, 4);
  for (const r of rs) {
    assert(Number.isFinite(r.metrics.finalLoss), JSON.stringify(r));
    if (r.variant === "teacher") assert(r.metrics["cfid@2"] > 0, JSON.stringify(r));
    else assert(r.metrics.accuracy >= 0 && r.metrics.accuracy <= 1, JSON.stringify(r));
  }
  const classifier = rs.filter((r) => r.variant !== "teacher");
  assert(classifier[0].metrics.finalLoss !== classifier[1].metrics.finalLoss, "seeds differ");
  const before = await Deno.stat(`${out}/cells/${rs[0].id}/result.json`);
  const second = await runSweep(spec, { out, parallel: 1, ...quiet });
  assertEquals(second.failed, []);
  assertEquals((await results(out)).map((r) => r.metrics), rs.map((r) => r.metrics));
  assertEquals((await Deno.stat(`${out}/cells/${rs[0].id}/result.json`)).mtime, before.mtime);
});
