import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  type ClassifierFeatures,
  createRddQueue,
  RDD_DEFAULTS,
  rddLoss,
  rddPreset,
} from "../lib/distill/rdd_objective.ts";
import { isp2pLoss } from "../lib/distill/isp2p.ts";
import { rcfdLoss } from "../lib/distill/rcfd.ts";
import { rkdAngleLoss, rkdDistanceLoss } from "../lib/distill/rkd.ts";
import { MemoryQueue, mp2pKd } from "../lib/distill/mp2p.ts";
import { pdLoss } from "../lib/distill/pd_target.ts";
import { randn, useCpu } from "./distill_helpers.ts";

await useCpu();

/** Features the way the classifier gives them: relu'd map and its spatial mean. */
function feats(seed: number): ClassifierFeatures {
  const featureMap = tf.relu(randn([3, 2, 2, 4], seed)) as tf.Tensor4D;
  return { featureMap, pooled: tf.mean(featureMap, [1, 2]) as tf.Tensor2D };
}
const value = (x: tf.Tensor | undefined) => x!.dataSync()[0];

Deno.test("rddPreset: the reference weights and temperatures", () => {
  const rdd = rddPreset("rdd");
  assertEquals(rdd, RDD_DEFAULTS);
  assertEquals(
    [rdd.rcfdWeight, rdd.rcfdTau, rdd.isp2pWeight, rdd.isp2pTau, rdd.mp2pWeight, rdd.mp2pTau],
    [1, 0.9, 1, 1, 0.1, 0.1],
  );
  assertEquals([rdd.mp2pKdTau, rdd.queueSize, rdd.contrastSize, rdd.enqueuePerStep], [
    1,
    20000,
    4096,
    128,
  ]);
  assertEquals([rdd.embeddingLayout, rdd.pdMseWeight, rdd.rkdDistanceWeight, rdd.rkdAngleWeight], [
    "per-pixel",
    0,
    0,
    0,
  ]);
  assertEquals([rdd.logits, rdd.gt, rdd.mp2pHeadMode], [false, false, "train"]);
  const pd = rddPreset("pd");
  assertEquals([pd.pdMseWeight, pd.rcfdWeight, pd.isp2pWeight, pd.mp2pWeight], [1, 0, 0, 0]);
  const rcfd = rddPreset("rcfd", { rcfdTau: 0.5 });
  assertEquals(
    [rcfd.rcfdWeight, rcfd.rcfdTau, rcfd.isp2pWeight, rcfd.mp2pWeight, rcfd.pdMseWeight],
    [
      1,
      0.5,
      0,
      0,
      0,
    ],
  );
  assertThrows(() => rddPreset("dmd" as never), RangeError, "name");
});

Deno.test("rddLoss: total = sum of weight * term, each term as the standalone loss", () => {
  const s = feats(1), t = feats(2);
  const config = rddPreset("rdd", {
    queueSize: 40,
    enqueuePerStep: 6,
    contrastSize: 8,
    isp2pTau: 0.5,
    mp2pKdTau: 2,
    rkdDistanceWeight: 0.3,
    rkdAngleWeight: 0.2,
  });
  const q = createRddQueue(config, 4, 3),
    twin = new MemoryQueue(4, { size: 40, enqueuePerStep: 6, seed: 3 });
  const r = rddLoss(s, t, q, null, config);
  assertEquals(r.embeddingLayout, "per-pixel");
  assertEquals(Object.keys(r.terms).sort(), ["isp2p", "mp2p", "rcfd", "rkdAngle", "rkdDistance"]);
  assertAlmostEquals(value(r.terms.rcfd), value(rcfdLoss(s.pooled, t.pooled, { tau: 0.9 })), 1e-6);
  assertAlmostEquals(
    value(r.terms.isp2p),
    value(isp2pLoss(s.featureMap, t.featureMap, { tau: 0.5 })),
    1e-6,
  );
  assertAlmostEquals(value(r.terms.rkdDistance), value(rkdDistanceLoss(s.pooled, t.pooled)), 1e-6);
  assertAlmostEquals(value(r.terms.rkdAngle), value(rkdAngleLoss(s.pooled, t.pooled)), 1e-6);
  // M_P2P against a twin queue given the same update by hand
  twin.enqueueFromMap(
    tf.div(t.featureMap, tf.norm(t.featureMap, 2, -1, true).maximum(1e-12)) as tf.Tensor4D,
  );
  const mp2p = value(
    mp2pKd(s.featureMap, t.featureMap, twin.contrastRows(8), { tau: 0.1, kdTau: 2 }),
  );
  assertAlmostEquals(value(r.terms.mp2p), mp2p, 1e-5);
  const expected = value(r.terms.rcfd) + value(r.terms.isp2p) + 0.1 * mp2p +
    0.3 * value(r.terms.rkdDistance) + 0.2 * value(r.terms.rkdAngle);
  assertAlmostEquals(value(r.total), expected, 1e-5);
  assertEquals(q.updates, 1);
  [q, twin].forEach((x) => x.dispose());
});

Deno.test("rddLoss: 'pd' preset is the pixel loss alone; 'rcfd' needs no queue", () => {
  const sx = randn([2, 2, 2, 1], 4) as tf.Tensor4D, tx = randn([2, 2, 2, 1], 5) as tf.Tensor4D;
  const se = randn([2, 2, 2, 1], 6) as tf.Tensor4D, te = randn([2, 2, 2, 1], 7) as tf.Tensor4D;
  const pixel = { studentX0: sx, studentEps: se, xTarget: tx, epsTarget: te };
  const r = rddLoss(null, null, null, null, rddPreset("pd"), pixel);
  assertEquals(Object.keys(r.terms), ["pixel"]);
  assertEquals(r.embeddingLayout, null);
  assertAlmostEquals(value(r.total), value(pdLoss(sx, se, tx, te, "both")), 1e-6);
  const s = feats(8), t = feats(9);
  const rc = rddLoss(s, t, null, null, rddPreset("rcfd"));
  assertAlmostEquals(value(rc.total), value(rcfdLoss(s.pooled, t.pooled)), 1e-6);
});

Deno.test("rddLoss logits: the PD pixel loss added to the feature terms (hand values)", () => {
  // B = 2 samples of 2 pixels: pd "both" = mean(max(0.5, 0), max(0, 4.5)) = 2.5.
  const sx = tf.tensor4d([1, 0, 0, 0], [2, 1, 2, 1]), tx = tf.zeros([2, 1, 2, 1]) as tf.Tensor4D;
  const se = tf.tensor4d([0, 0, 3, 0], [2, 1, 2, 1]), te = tf.zeros([2, 1, 2, 1]) as tf.Tensor4D;
  const pixel = { studentX0: sx, studentEps: se, xTarget: tx, epsTarget: te };
  const s = feats(20), t = feats(21);
  const rcfd = value(rcfdLoss(s.pooled, t.pooled));
  const r = rddLoss(s, t, null, null, rddPreset("rcfd", { logits: true }), pixel);
  assertEquals(Object.keys(r.terms).sort(), ["pixel", "rcfd"]);
  assertAlmostEquals(value(r.terms.pixel), 2.5, 1e-6);
  assertAlmostEquals(value(r.total), rcfd + 2.5, 1e-5);
  // logits on top of pdMseWeight 2: weight 3 on the one pixel term.
  const r3 = rddLoss(s, t, null, null, rddPreset("rcfd", { logits: true, pdMseWeight: 2 }), pixel);
  assertAlmostEquals(value(r3.total), rcfd + 3 * 2.5, 1e-5);
  assertThrows(
    () => rddLoss(s, t, null, null, rddPreset("rcfd", { logits: true })),
    TypeError,
    "pixel is required when config.pdMseWeight > 0 or config.logits",
  );
});

Deno.test("rddLoss gt: max(mse(teacher x0, x0), mse(student eps, noise)) per sample", () => {
  // sample 0: mse_x = (1 + 0) / 2 = 0.5, mse_eps = (1 + 1) / 2 = 1 -> 1
  // sample 1: mse_x = (4 + 4) / 2 = 4,   mse_eps = (1 + 1) / 2 = 1 -> 4;  gt = 2.5
  const zeros = () => tf.zeros([2, 1, 2, 1]) as tf.Tensor4D;
  const data = {
    x0: zeros(),
    noise: zeros(),
    teacherX0: tf.tensor4d([1, 0, 2, 2], [2, 1, 2, 1]),
  };
  const se = tf.tensor4d([1, 1, 1, -1], [2, 1, 2, 1]);
  const pixel = { studentX0: zeros(), studentEps: se, xTarget: zeros(), epsTarget: zeros(), data };
  const config = rddPreset("pd", { pdMseWeight: 0, gt: true });
  const r = rddLoss(null, null, null, null, config, pixel);
  assertEquals(Object.keys(r.terms), ["gt"]);
  assertAlmostEquals(value(r.total), 2.5, 1e-6);
  // Gradient in the student's eps: 0.5 * (eps - noise) where the eps side is the max
  // (sample 0), zero where the student-independent x side is (sample 1).
  const g = tf.grad((e) =>
    rddLoss(null, null, null, null, config, { ...pixel, studentEps: e as tf.Tensor4D }).total
  )(se);
  assertEquals(Array.from(g.dataSync(), (v) => v + 0), [0.5, 0.5, 0, 0]); // + 0: -0 -> 0
  assertThrows(
    () => rddLoss(null, null, null, null, config, { ...pixel, data: undefined }),
    TypeError,
    "pixel.data is required when config.gt",
  );
});

Deno.test("rddLoss: zero when student and teacher features are equal (tau = 1 everywhere)", () => {
  const t = feats(10);
  const config = rddPreset("rdd", {
    rcfdTau: 1,
    queueSize: 30,
    enqueuePerStep: 4,
    contrastSize: 8,
    rkdDistanceWeight: 1,
    rkdAngleWeight: 1,
  });
  const q = createRddQueue(config, 4);
  const r = rddLoss(t, t, q, null, config);
  assertAlmostEquals(value(r.total), 0, 1e-5);
  q.dispose();
});

Deno.test("rddLoss: gradients reach both student features; layout reported", () => {
  const s = feats(11), t = feats(12);
  const config = rddPreset("rdd", {
    queueSize: 30,
    enqueuePerStep: 4,
    contrastSize: 8,
    embeddingLayout: "reference-reshape",
  });
  const q = createRddQueue(config, 4, 1);
  let layout: string | null = null;
  const g = tf.grads((map: tf.Tensor, pooled: tf.Tensor) => {
    const r = rddLoss(
      { featureMap: map as tf.Tensor4D, pooled: pooled as tf.Tensor2D },
      t,
      q,
      null,
      config,
    );
    layout = r.embeddingLayout;
    return r.total;
  })([s.featureMap, s.pooled]);
  assertEquals(layout, "reference-reshape");
  for (const x of g) {
    const n = tf.tidy(() => tf.norm(x).dataSync()[0]);
    assert(Number.isFinite(n) && n > 0, `gradient norm ${n}`);
  }
  q.dispose();
});

Deno.test("rddLoss: missing inputs and bad config throw naming the parameter", () => {
  const s = feats(13);
  assertThrows(() => rddLoss(s, s, null, null, RDD_DEFAULTS), TypeError, "queue");
  const small = new MemoryQueue(4, { size: 30, seed: 1 });
  assertThrows(() => rddLoss(s, s, small, null, RDD_DEFAULTS), RangeError, "config.queueSize");
  small.dispose();
  assertThrows(() => rddLoss(null, s, null, null, rddPreset("rcfd")), TypeError, "studentFeats");
  assertThrows(() => rddLoss(null, null, null, null, rddPreset("pd")), TypeError, "pixel");
  assertThrows(
    () => rddLoss(s, s, null, null, rddPreset("rcfd", { rcfdWeight: 0 })),
    RangeError,
    "at least one term",
  );
  assertThrows(
    () => rddLoss(s, s, null, null, rddPreset("rcfd", { rcfdTau: -1 })),
    RangeError,
    "rcfdTau",
  );
});
