import { assert, assertEquals, assertRejects } from "@std/assert";
import {
  findLossRuns,
  readLossCurves,
  readLossLog,
  samplePanelsFromDir,
  writeLossCurves,
} from "../lib/figures/sources.ts";
import { readSweepSummary } from "../lib/figures/results.ts";
import { ConfigError } from "../lib/config/errors.ts";

Deno.test("findLossRuns labels the shipped runs: the PD round and both teacher stages", async () => {
  const runs = await findLossRuns(["data", "no-such-dir"]);
  assertEquals(runs.map((r) => [r.round, r.seed]), [
    ["PD 4 -> 2", 1],
    ["teacher", 0],
    ["teacher stage 1", 0],
  ]);
  assertEquals(runs[0].steps.length, 16);
  assertEquals(runs[0].steps[15], 400);
  assert(runs.every((r) => r.loss.every((l) => l > 0)));
});

Deno.test("readLossLog skips lines without loss and names a bad line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/m.jsonl`, '{"step":1,"loss":2}\n{"step":2,"eval":1}\n\n');
    assertEquals(await readLossLog(`${dir}/m.jsonl`), { steps: [1], loss: [2] });
    await Deno.writeTextFile(`${dir}/bad.jsonl`, '{"step":1,"loss":2}\n{"step":\n');
    await assertRejects(() => readLossLog(`${dir}/bad.jsonl`), SyntaxError, "bad.jsonl:2");
    assertEquals(await samplePanelsFromDir(`${dir}/none`), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readSweepSummary: a malformed summary is a ConfigError naming file and field", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/summary.json`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({ sweep: "s", baseline: null, metrics: [], variants: [], rows: [{}] }),
    );
    const e = await assertRejects(() => readSweepSummary(path), ConfigError);
    assert(e.message.startsWith(`${path}: rows[0].variant: expected string`), e.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loss_curves.json: written runs read back equal; a malformed file names file and field", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const runs = [
      { round: "PD 8 -> 4", seed: 1, steps: [10, 20], loss: [0.5, 0.25] },
      { round: "RDD 2 -> 1", seed: "s", steps: [], loss: [] },
    ];
    await writeLossCurves(`${dir}/loss_curves.json`, runs);
    assertEquals(await readLossCurves(`${dir}/loss_curves.json`), runs);
    await Deno.writeTextFile(`${dir}/bad.json`, JSON.stringify({ runs: [{ round: 1 }] }));
    const e = await assertRejects(() => readLossCurves(`${dir}/bad.json`), ConfigError);
    assert(e.message.startsWith(`${dir}/bad.json: runs[0].round: expected string`), e.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
