import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "@std/assert";
import { type DataSource, Trainer } from "../lib/train/trainer.ts";
import { teacherObjective } from "../lib/train/objectives.ts";
import { createUNet, type UNetConfig } from "../lib/models/unet.ts";
import { cosineSchedule } from "../lib/diffusion/schedule.ts";
import { Rng } from "../lib/core/rng.ts";
import { enableFastCpu } from "../lib/tfjs/fast_cpu.ts";

await tf.setBackend("cpu");
enableFastCpu();

const CFG: UNetConfig = {
  imageSize: 8,
  inChannels: 1,
  ch: 8,
  chMult: [1, 2],
  numResBlocks: 1,
  attnResolutions: [],
  dropout: 0.1,
  minGroupChannels: 2,
};

/** Seeded image batches [4, 8, 8, 1]; the state is the position in the stream. */
class Images implements DataSource<tf.Tensor4D> {
  #pos = 0;
  next(): tf.Tensor4D {
    const r = new Rng(`img-${this.#pos++}`);
    return tf.tensor4d(Float32Array.from(r.normals(4 * 64), (v) => Math.tanh(v)), [4, 8, 8, 1]);
  }
  getState(): unknown {
    return { pos: this.#pos };
  }
  setState(s: unknown): void {
    this.#pos = (s as { pos: number }).pos;
  }
}

function trainer(model: tf.LayersModel, runDir?: string): Trainer<tf.Tensor4D> {
  return new Trainer({
    models: { model },
    optimizer: { kind: "adam", lr: 1e-3, totalSteps: 8 },
    seed: 11,
    data: new Images(),
    runDir,
    config: { test: "dropout-resume" },
    progressIntervalSec: 1e9,
    print: () => {},
    loss: teacherObjective({ model, schedule: cosineSchedule(16) }),
  });
}

Deno.test("trainer: with UNet dropout 0.1, kill-and-resume gives the uninterrupted losses", async () => {
  const init = createUNet(CFG).getWeights();
  const fresh = (cfg: UNetConfig) => {
    const m = createUNet(cfg);
    m.setWeights(init);
    return m;
  };
  const full = trainer(fresh(CFG));
  await full.run(8);
  // Dropout is active: the same start without dropout gives other losses.
  const noDrop = trainer(fresh({ ...CFG, dropout: 0 }));
  await noDrop.run(8);
  assert(noDrop.losses.some((l, i) => l !== full.losses[i]));

  const dir = await Deno.makeTempDir();
  const first = trainer(fresh(CFG), dir);
  await first.run(4);
  first.dispose();
  const second = trainer(createUNet(CFG), dir); // another process: all state from disk
  assertEquals(await second.resume(), 4);
  await second.run(8);
  assertEquals([...first.losses, ...second.losses], full.losses);
  [full, noDrop, second].forEach((t) => t.dispose());
  await Deno.remove(dir, { recursive: true });
});
