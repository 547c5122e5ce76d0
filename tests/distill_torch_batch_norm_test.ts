import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { TorchBatchNorm } from "../lib/distill/torch_batch_norm.ts";
import { createProjectionHead, MemoryQueue, mp2pKd, mp2pLoss } from "../lib/distill/mp2p.ts";
import { loadLayersModelFiles, saveLayersModelFiles } from "../lib/train/checkpoint.ts";
import { randn, useCpu } from "./distill_helpers.ts";

await useCpu();

/** A model holding one TorchBatchNorm over [B, 1, 2, 2] maps. */
function bnModel(): { model: tf.Sequential; bn: TorchBatchNorm } {
  const bn = new TorchBatchNorm();
  const model = tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: [1, 2, 2] }), bn] });
  return { model, bn };
}

/** [running_mean, running_var, num_batches_tracked] of the layer. */
function stats(bn: TorchBatchNorm): number[][] {
  return bn.getWeights().slice(2).map((w) => Array.from(w.dataSync()));
}

function assertClose(got: number[], want: number[], tol = 1e-6): void {
  assertEquals(got.length, want.length);
  got.forEach((g, i) => assertAlmostEquals(g, want[i], tol));
}

// Step 1, B = 2, H = 1, W = 2, n = 4 values per channel:
//   channel 0: 1, 2, 3, 6 -> mean 3, biased var 3.5, unbiased var 14/3
//   channel 1: 0, 0, 0, 4 -> mean 1, biased var 3,   unbiased var 4
// Step 2:
//   channel 0: 2, 2, 2, 2  -> mean 2, var 0
//   channel 1: -1, 1, -1, 1 -> mean 0, biased var 1, unbiased var 4/3
const X1 = [1, 0, 2, 0, 3, 0, 6, 4];
const X2 = [2, -1, 2, 1, 2, -1, 2, 1];

Deno.test("TorchBatchNorm: running mean/var after one and two steps (PyTorch, m = 0.1)", () => {
  const { model, bn } = bnModel();
  assertEquals(stats(bn), [[0, 0], [1, 1], [0]]);
  const x1 = tf.tensor4d(X1, [2, 1, 2, 2]), x2 = tf.tensor4d(X2, [2, 1, 2, 2]);
  const y1 = model.apply(x1, { training: true }) as tf.Tensor;
  // running = 0.9 running + 0.1 batch, with the UNBIASED variance.
  const [m1, v1] = [[0.1 * 3, 0.1 * 1], [0.9 + 0.1 * 14 / 3, 0.9 + 0.1 * 4]];
  let [mean, variance, count] = stats(bn);
  assertClose(mean, m1);
  assertClose(variance, v1); // 1.366667, 1.3 (tfjs' biased update would give 1.25, 1.2)
  assertEquals(count, [1]);
  // The output itself uses the biased batch variance, as PyTorch does.
  assertAlmostEquals(y1.dataSync()[0], (1 - 3) / Math.sqrt(3.5 + 1e-5), 1e-5);
  assertAlmostEquals(y1.dataSync()[7], (4 - 1) / Math.sqrt(3 + 1e-5), 1e-5);
  const y2 = model.apply(x2, { training: true }) as tf.Tensor;
  [mean, variance, count] = stats(bn);
  assertClose(mean, [0.9 * m1[0] + 0.1 * 2, 0.9 * m1[1] + 0]); // 0.47, 0.09
  assertClose(variance, [0.9 * v1[0] + 0, 0.9 * v1[1] + 0.1 * 4 / 3]); // 1.23, 1.303333
  assertEquals(count, [2]);
  // Inference mode: running statistics, nothing updated.
  const y3 = model.apply(x1, { training: false }) as tf.Tensor;
  assertAlmostEquals(y3.dataSync()[0], (1 - 0.47) / Math.sqrt(1.23 + 1e-5), 1e-5);
  assertEquals(stats(bn)[2], [2]);
  assertClose(stats(bn)[1], variance);
  tf.dispose([x1, x2, y1, y2, y3]);
  model.dispose();
});

Deno.test("TorchBatchNorm: statistics and num_batches_tracked survive a checkpoint", async () => {
  const { model, bn } = bnModel();
  const x = tf.tensor4d(X1, [2, 1, 2, 2]);
  tf.dispose([model.apply(x, { training: true }) as tf.Tensor, x]);
  const dir = await Deno.makeTempDir();
  try {
    await saveLayersModelFiles(model, dir, "head");
    const loaded = await loadLayersModelFiles(dir, "head");
    const lbn = loaded.layers[loaded.layers.length - 1];
    assertEquals(lbn instanceof TorchBatchNorm, true);
    const got = lbn.getWeights().slice(2).map((w) => Array.from(w.dataSync()));
    const want = stats(bn);
    assertClose(got[0], want[0]);
    assertClose(got[1], want[1]);
    assertEquals(got[2], [1]);
    assertEquals(lbn.getWeights()[4].dtype, "int32");
    loaded.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
    model.dispose();
  }
});

Deno.test("TorchBatchNorm: one value per channel in training mode is rejected", () => {
  const bn = new TorchBatchNorm();
  const model = tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: [1, 1, 2] }), bn] });
  assertThrows(
    () => model.apply(tf.zeros([1, 1, 1, 2]), { training: true }),
    RangeError,
    "more than 1 value per channel",
  );
  assertThrows(() => new TorchBatchNorm({ momentum: 2 }), RangeError, "momentum must be in [0, 1]");
  model.dispose();
});

Deno.test("mp2pLoss headMode: inference uses the head's running statistics, updates nothing", () => {
  const head = createProjectionHead(3, { outChannels: 4, seed: 2 });
  const bn = head.layers[1] as TorchBatchNorm;
  const s = randn([2, 2, 2, 3], 50) as tf.Tensor4D, t = randn([2, 2, 2, 4], 51) as tf.Tensor4D;
  const q = new MemoryQueue(4, { size: 30, enqueuePerStep: 4, seed: 5 });
  const q2 = new MemoryQueue(4, { size: 30, enqueuePerStep: 4, seed: 5 });
  const r = mp2pLoss(s, t, q, head, { contrastSize: 8, headMode: "inference" });
  assertEquals(stats(bn), [[0, 0, 0, 0], [1, 1, 1, 1], [0]]);
  // Same value as mp2pKd on the head's inference output and the same post-enqueue contrast.
  const want = tf.tidy(() => {
    const tn = tf.div(t, tf.norm(t, "euclidean", -1, true)) as tf.Tensor4D;
    q2.enqueueFromMap(tn);
    const hs = head.apply(s, { training: false }) as tf.Tensor4D;
    return mp2pKd(hs, tn, q2.contrastRows(8)).dataSync()[0];
  });
  assertAlmostEquals(r.loss.dataSync()[0], want, 1e-5);
  mp2pLoss(s, t, q, head, { contrastSize: 8 }).loss.dispose();
  assertEquals(stats(bn)[2], [1]); // the default "train" mode updates the statistics
  assertThrows(
    () => mp2pLoss(s, t, q, head, { headMode: "eval" as "train" }),
    RangeError,
    'options.headMode must be "train" or "inference", got "eval"',
  );
  tf.dispose([s, t, r.loss]);
  q.dispose();
  q2.dispose();
  head.dispose();
});
