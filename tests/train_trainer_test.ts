import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertLess, assertRejects, assertThrows } from "@std/assert";
import {
  type DataSource,
  NonFiniteLossError,
  Trainer,
  type TrainerOptions,
} from "../lib/train/trainer.ts";
import { learningRateAt } from "../lib/train/optim.ts";
import { killedAt } from "./kill_helpers.ts";
import { RunDirError } from "../lib/train/run_dir.ts";
import {
  loadCheckpoint,
  loadLayersModelFiles,
  removeStaleTemporaries,
  saveLayersModelFiles,
  saveModelDirAtomic,
} from "../lib/train/checkpoint.ts";
import { Rng } from "../lib/core/rng.ts";

await tf.setBackend("cpu");

/** A small MLP with BatchNorm (non-trainable state) and a fixed initial seed. */
function makeModel(seed: number): tf.LayersModel {
  const init = (s: number) => tf.initializers.glorotUniform({ seed: seed + s });
  return tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [4], units: 8, kernelInitializer: init(1) }),
      tf.layers.batchNormalization(),
      tf.layers.activation({ activation: "relu" }),
      tf.layers.dense({ units: 1, kernelInitializer: init(2) }),
    ],
  });
}

type XY = { x: tf.Tensor2D; y: tf.Tensor2D };

/** Seeded regression batches; the state is the position in a seeded stream. */
class Stream implements DataSource<XY> {
  #pos = 0;
  next(): XY {
    const r = new Rng(`batch-${this.#pos++}`);
    const x = r.normals(16 * 4);
    const y = Array.from({ length: 16 }, (_, i) => x[4 * i] - 2 * x[4 * i + 1] + 0.5);
    return { x: tf.tensor2d(Float32Array.from(x), [16, 4]), y: tf.tensor2d(y, [16, 1]) };
  }
  getState(): unknown {
    return { pos: this.#pos };
  }
  setState(s: unknown): void {
    this.#pos = (s as { pos: number }).pos;
  }
}

function makeTrainer(
  model: tf.LayersModel,
  runDir?: string,
  nanAt = -1,
  extra: Partial<TrainerOptions<XY>> = {},
): Trainer<XY> {
  return new Trainer<XY>({
    models: { model },
    optimizer: {
      kind: "adamw",
      lr: 0.02,
      weightDecay: 0.01,
      warmupSteps: 3,
      totalSteps: 40,
      gradClipNorm: 1,
    },
    emaDecay: 0.9,
    seed: 7,
    data: new Stream(),
    runDir,
    config: { test: "resume" },
    progressIntervalSec: 1e9,
    print: () => {},
    loss: ({ batch, rng, step }) => {
      // Uses the run's RNG so that its checkpointed state matters for the losses.
      const noise = tf.scalar(rng.normal() * 1e-3);
      const pred = model.apply(batch.x, { training: true }) as tf.Tensor;
      const l = tf.add(tf.losses.meanSquaredError(batch.y, pred), noise) as tf.Scalar;
      return { loss: step === nanAt ? tf.mul(l, NaN) as tf.Scalar : l };
    },
    ...extra,
  });
}

Deno.test("trainer: loss falls on a small regression", async () => {
  const t = makeTrainer(makeModel(1));
  await t.run(40);
  assertLess(t.losses.slice(-5).reduce((a, b) => a + b) / 5, t.losses[0] / 5);
  t.dispose();
});

Deno.test("trainer: kill-and-resume equals the uninterrupted run (20 steps after resume)", async () => {
  const full = makeTrainer(makeModel(3));
  await full.run(30);
  const dir = await Deno.makeTempDir();
  const first = makeTrainer(makeModel(3), dir);
  await first.run(10);
  first.dispose();
  // A fresh process: new model with different init, everything restored from disk.
  const second = makeTrainer(makeModel(99), dir);
  assertEquals(await second.resume(), 10);
  await second.run(30);
  assertEquals(second.losses, full.losses.slice(10, 30));
  const lines = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n");
  assertEquals(lines.map((l) => JSON.parse(l).step), [10, 20, 30]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("checkpoint: model round trip is bit-exact and loads through tf.loadLayersModel", async () => {
  const dir = await Deno.makeTempDir();
  const m = makeModel(5);
  await saveLayersModelFiles(m, dir);
  const json = JSON.parse(await Deno.readTextFile(`${dir}/model.json`));
  assertEquals(json.weightsManifest[0].paths, ["model.weights.bin"]);
  const back = await loadLayersModelFiles(dir);
  const x = tf.randomNormal([3, 4], 0, 1, "float32", 1);
  assertEquals(
    Array.from((back.predict(x) as tf.Tensor).dataSync()),
    Array.from((m.predict(x) as tf.Tensor).dataSync()),
  );
  await Deno.truncate(`${dir}/model.weights.bin`, 20);
  const err = await assertRejects(() => loadLayersModelFiles(dir), Error, "model.weights.bin");
  assert(err.message.includes("truncated"));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("saveModelDirAtomic: replaces a model dir whole, leaves no temporaries; a failed save keeps the old one", async () => {
  const run = await Deno.makeTempDir();
  const predict = (m: tf.LayersModel) =>
    Array.from((m.predict(tf.ones([2, 4])) as tf.Tensor).dataSync());
  const [a, b] = [makeModel(1), makeModel(2)];
  await saveModelDirAtomic(a, `${run}/model`);
  await Deno.writeTextFile(`${run}/model/stale.txt`, "from an older save");
  await saveModelDirAtomic(b, `${run}/model`);
  assertEquals(predict(await loadLayersModelFiles(`${run}/model`)), predict(b));
  const names = async (d: string) => (await Array.fromAsync(Deno.readDir(d))).map((e) => e.name);
  assertEquals((await names(`${run}/model`)).sort(), ["model.json", "model.weights.bin"]);
  assertEquals(await names(run), ["model"]);
  // A save that fails part-way (the model cannot be serialised) leaves model/ as it was and
  // only a .tmp-* directory, which the run's temporaries cleanup removes.
  const broken = {
    save: () => Promise.reject(new Error("disk full")),
  } as unknown as tf.LayersModel;
  await assertRejects(() => saveModelDirAtomic(broken, `${run}/model`), Error, "disk full");
  assertEquals(predict(await loadLayersModelFiles(`${run}/model`)), predict(b));
  assertEquals((await removeStaleTemporaries(run)).length, 1);
  assertEquals(await names(run), ["model"]);
  await Deno.remove(run, { recursive: true });
});

Deno.test("checkpoint: a half-written temp dir is ignored; truncated arrays.bin is reported", async () => {
  const dir = await Deno.makeTempDir();
  const t = makeTrainer(makeModel(2), dir);
  await t.run(5);
  await Deno.mkdir(`${dir}/checkpoints/.tmp-step_00000009-dead`);
  await Deno.writeTextFile(`${dir}/checkpoints/.tmp-step_00000009-dead/state.json`, "{");
  const ck = await loadCheckpoint(dir);
  assertEquals(ck?.step, 5);
  await Deno.truncate(`${ck!.dir}/arrays.bin`, 8);
  await assertRejects(() => loadCheckpoint(dir), Error, "arrays.bin");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("trainer: NaN loss stops with the step named and keeps the last checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  const t = new Trainer<XY>({ ...makeTrainer(makeModel(4), dir, 7).options, checkpointEvery: 5 });
  const err = await assertRejects(() => t.run(20), NonFiniteLossError, "step 7");
  assertEquals((err as NonFiniteLossError).step, 7);
  assertEquals((await loadCheckpoint(dir))?.step, 5);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("trainer: resume refuses a checkpoint written with another config", async () => {
  const dir = await Deno.makeTempDir();
  await makeTrainer(makeModel(2), dir).run(2);
  const other = new Trainer<XY>({ ...makeTrainer(makeModel(2), dir).options, config: { x: 1 } });
  await assertRejects(() => other.resume(), Error, "different config");
  assertThrows(() => new Trainer<XY>({ ...other.options, models: {} }), RangeError, "models");
  await Deno.remove(dir, { recursive: true });
});

async function listDir(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

Deno.test("checkpoint: a kill before any write of a checkpoint resumes from a complete one, same losses", async () => {
  const full = makeTrainer(makeModel(3));
  await full.run(15);
  const opts = { checkpointEvery: 5 };
  // Phase under test: resume at 5, train to 10, write the checkpoint of step 10 (a new step);
  // then again at 10 (the same step re-saved, a finished run resumed).
  for (const phaseEnd of [10, 15]) {
    let writes = 0; // counted by the first pass (k = -1: not killed)
    for (let k = -1; k < writes; k++) {
      const dir = await Deno.makeTempDir();
      await makeTrainer(makeModel(3), dir, -1, opts).run(phaseEnd === 10 ? 5 : 15);
      const killed = makeTrainer(makeModel(50), dir, -1, opts);
      const resumedAt = await killed.resume();
      const n = await killedAt(k, () => killed.run(phaseEnd === 10 ? 10 : 15));
      if (k === -1) writes = n;
      const next = makeTrainer(makeModel(51), dir, -1, opts);
      const from = await next.resume();
      assert(from >= resumedAt, `kill at write ${k}: resumed at ${from} < ${resumedAt}`);
      await next.run(15);
      assertEquals(next.losses, full.losses.slice(from, 15), `kill at write ${k}`);
      const steps = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n")
        .map((l) => JSON.parse(l).step);
      assertEquals(steps, phaseEnd === 10 ? [5, 10, 15] : [10, 15], `metrics, kill at ${k}`);
      const names = await listDir(`${dir}/checkpoints`);
      assert(names.every((x) => /^(step_\d{8}(-r\d+)?|latest)$/.test(x)), `leftovers: ${names}`);
      assertEquals(names.length, 3, `two checkpoints + latest: ${names}`);
      [full, killed, next].forEach((t) => t !== full && t.dispose());
      await Deno.remove(dir, { recursive: true });
    }
    assert(writes >= 8, `a checkpoint write has several steps, saw ${writes}`);
  }
  full.dispose();
});

Deno.test("trainer: a kill before the first checkpoint leaves no duplicated metrics", async () => {
  const dir = await Deno.makeTempDir();
  const first = makeTrainer(makeModel(3), dir, -1, { logEvery: 1 });
  const data = first.options.data;
  let n = 0;
  first.options.data.next = () => {
    if (n++ === 7) throw new Error("simulated crash");
    return Stream.prototype.next.call(data);
  };
  await assertRejects(() => first.run(10), Error, "simulated crash");
  const again = makeTrainer(makeModel(3), dir, -1, { logEvery: 1 });
  assertEquals(await again.resume(), 0);
  await again.run(10);
  const steps = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n")
    .map((l) => JSON.parse(l).step);
  assertEquals(steps, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("trainer: after a NaN stop a resume with a lower lr continues on the new schedule", async () => {
  const dir = await Deno.makeTempDir();
  const opt = makeTrainer(makeModel(4)).options.optimizer;
  const lower = { ...opt, lr: opt.lr / 4, totalSteps: 30 };
  const withOpt = (o: typeof opt, test = "resume") => ({
    optimizer: o,
    config: { test, optimizer: o },
    checkpointEvery: 5,
    logEvery: 1,
  });
  const t = makeTrainer(makeModel(4), dir, 7, withOpt(opt));
  await assertRejects(() => t.run(20), NonFiniteLossError, "step 7");
  const other = makeTrainer(makeModel(4), dir, -1, withOpt(lower, "other"));
  await assertRejects(() => other.resume(), Error, "test (saved");
  const r = makeTrainer(makeModel(4), dir, -1, withOpt(lower));
  assertEquals(await r.resume(), 5);
  assertEquals(r.optimizers.model.currentLr, learningRateAt(lower, 5));
  await r.run(10);
  const lines = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n")
    .map((l) => JSON.parse(l));
  assertEquals(lines.map((l) => l.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  lines.forEach((l) => {
    assertEquals(l.lr, learningRateAt(l.step <= 5 ? opt : lower, l.step - 1));
    assert(Number.isFinite(l.loss));
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("trainer: run() refuses a run directory whose checkpoint is ahead (not resumed)", async () => {
  const dir = await Deno.makeTempDir();
  await makeTrainer(makeModel(2), dir).run(3);
  const before = await Deno.readTextFile(`${dir}/metrics.jsonl`);
  const fresh = makeTrainer(makeModel(2), dir);
  await assertRejects(() => fresh.run(5), RunDirError, "call resume()");
  assertEquals(await Deno.readTextFile(`${dir}/metrics.jsonl`), before);
  assertEquals((await loadCheckpoint(dir))?.step, 3);
  await Deno.remove(dir, { recursive: true });
});
