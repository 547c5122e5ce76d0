/**
 * The path of a CIFAR-10 user, end to end on a small CIFAR-10-format directory this test
 * writes: the shipped CIFAR-10 configs (with tiny model and step overrides) train a teacher
 * and a classifier, one RDD distillation round runs, and the students are evaluated (cFID).
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { ConfigError } from "../lib/config/errors.ts";
import { parseRunConfig } from "../lib/config/run.ts";
import { CIFAR10_RECORD_BYTES } from "../lib/data/cifar10.ts";
import { Rng } from "../lib/core/rng.ts";
import { loadRunData, readRunConfig, type RunConfig } from "../lib/train/run_config.ts";
import { trainFromConfig } from "../lib/cli/train.ts";
import { parseDistillArgs, runDistill } from "../lib/cli/distill.ts";
import { enableFastCpu } from "../lib/tfjs/fast_cpu.ts";

await tf.setBackend("cpu");
enableFastCpu();

/** `n` CIFAR-10 records: label i % 10, then R, G, B planes of a label-dependent pattern. */
function records(n: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  const out = new Uint8Array(n * CIFAR10_RECORD_BYTES);
  for (let i = 0; i < n; i++) {
    const at = i * CIFAR10_RECORD_BYTES, label = i % 10;
    out[at] = label;
    for (let p = 0; p < 3 * 1024; p++) {
      const c = Math.floor(p / 1024), x = p % 32;
      out[at + 1 + p] = (label * 25 + c * 60 + x * 4 + rng.int(0, 20)) % 256;
    }
  }
  return out;
}

Deno.test("CIFAR-10 pipeline: teacher, classifier, one RDD round and cFID from the shipped configs", async () => {
  const root = await Deno.makeTempDir();
  const data = `${root}/cifar-10-batches-bin`;
  await Deno.mkdir(data);
  await Deno.writeFile(`${data}/data_batch_1.bin`, records(40, 1));
  await Deno.writeFile(`${data}/data_batch_2.bin`, records(24, 2));
  await Deno.writeFile(`${data}/test_batch.bin`, records(32, 3));

  const teacherCfg = await readRunConfig("configs/cifar10_teacher.json");
  const classifierCfg = await readRunConfig("configs/cifar10_classifier.json");
  assert(teacherCfg.kind === "teacher" && classifierCfg.kind === "classifier");
  const dataCfg = { ...teacherCfg.data, path: data } as RunConfig["data"];
  const { train, test } = await loadRunData({ ...teacherCfg, data: dataCfg });
  assertEquals([train.images.shape, test.images.shape], [[64, 32, 32, 3], [32, 32, 32, 3]]);

  const small = { batchSize: 8, steps: 3, checkpointEvery: 0, logEvery: 1, evalEvery: 0 };
  const teacher = await trainFromConfig({
    ...teacherCfg,
    ...small,
    data: dataCfg,
    schedule: { name: "cosine", T: 8 },
    emaDecay: 0.9,
    modelOverrides: { ch: 8, chMult: [1, 2], numResBlocks: 1, minGroupChannels: 2 },
  }, { runDir: `${root}/teacher` });
  const classifier = await trainFromConfig({
    ...classifierCfg,
    ...small,
    data: dataCfg,
    model: { ...classifierCfg.model, width: 8, blocksPerStage: 1 },
  }, { runDir: `${root}/classifier` });

  const args = await parseDistillArgs([
    "--teacher",
    teacher,
    "--classifier",
    classifier,
    "--method",
    "rdd",
    "--to-steps",
    "4",
    "--steps-per-round",
    "2",
    "--batch",
    "8",
    "--eval-samples",
    "16",
    "--run",
    `${root}/distill`,
  ]);
  const res = await runDistill({
    ...args,
    config: { ...args.config, rdd: { queueSize: 256, contrastSize: 64 } },
  });
  assertEquals(res.rounds.map((r) => [r.teacherSteps, r.studentSteps, r.method]), [[8, 4, "rdd"]]);
  const rows = res.table.filter((r) => r.steps === 4);
  assert(rows.length >= 1, JSON.stringify(res.table));
  for (const r of res.table) {
    assert(Number.isFinite(r.cfid) && r.cfid >= 0, `cFID of ${r.model}: ${r.cfid}`);
    assertEquals(r.n, 16);
  }
  await Deno.stat(`${res.rounds[0].dir}/model/model.json`);

  // A directory without CIFAR-10 files is named in the error.
  await assertRejects(
    () => loadRunData({ ...teacherCfg, data: { name: "cifar10", path: root } }),
    RangeError,
    `data.path ${root}`,
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("run config: a cifar10 data block needs its path; the shipped configs parse", async () => {
  const c = await readRunConfig("configs/cifar10_teacher.json");
  assertEquals(c.data, {
    name: "cifar10",
    path: "data/cifar-10-batches-bin",
    flip: "random-horizontal",
  });
  assertThrows(
    () => parseRunConfig({ ...c, data: { name: "cifar10" } }, "t.json"),
    ConfigError,
    "t.json: data.path",
  );
});
