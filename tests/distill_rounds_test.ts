import * as tf from "@tensorflow/tfjs";
// @ts-types="@types/ndarray"
import ndarray from "ndarray";
import { assert, assertAlmostEquals, assertEquals, assertLess, assertRejects } from "@std/assert";
import { Rng } from "../lib/core/rng.ts";
import { batch } from "../lib/core/batch.ts";
import { makeSchedule } from "../lib/diffusion/schedule.ts";
import { createUNet } from "../lib/models/unet.ts";
import { createClassifier } from "../lib/models/classifier.ts";
import { tfDenoiser } from "../lib/models/tf_denoiser.ts";
import { createProjectionHead } from "../lib/distill/mp2p.ts";
import { rddPreset } from "../lib/distill/rdd_objective.ts";
import type { ImageSet } from "../lib/data/images.ts";
import type { DataSource } from "../lib/train/trainer.ts";
import {
  cloneModel,
  distillObjective,
  distillRound,
  pdBatchSource,
  progressiveDistill,
  teacherStride,
} from "../lib/distill/rounds.ts";
import { networkTeacher } from "../lib/distill/rounds.ts";
import { DISTILL_DEFAULTS, parseDistillArgs } from "../lib/cli/distill.ts";
import { UsageError } from "../lib/cli/args.ts";
import { useCpu } from "./distill_helpers.ts";
import { killedAt } from "./kill_helpers.ts";

await useCpu();

const S = 8, B = 4;
const schedule = makeSchedule("cosine", 8);

/** A tiny UNet whose weights are re-drawn at O(1) scale (the stock init predicts ~0). */
function tinyTeacher(seed: number): tf.LayersModel {
  const m = createUNet({
    imageSize: S,
    inChannels: 1,
    ch: 8,
    chMult: [1],
    numResBlocks: 1,
    attnResolutions: [],
    dropout: 0,
    minGroupChannels: 2,
  });
  const rng = new Rng(seed);
  m.setWeights(
    m.getWeights().map((w) => {
      if (w.rank < 2) return w.clone();
      const fanIn = w.shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const v = Float32Array.from({ length: w.size }, () => rng.normal() / Math.sqrt(fanIn));
      return tf.tensor(v, w.shape);
    }),
  );
  return m;
}

function tinyImages(n: number, seed: number): ImageSet {
  const rng = new Rng(seed);
  const data = Float32Array.from({ length: n * S * S }, (_, i) => {
    const [y, x] = [Math.floor(i / S) % S, i % S];
    return Math.tanh(Math.sin(x + y * 0.7 + Math.floor(i / (S * S))) + 0.3 * rng.normal());
  });
  return { images: ndarray(data, [n, S, S, 1]), labels: new Uint8Array(n) };
}

/** The same batch of `set`'s first B images every step (stateless). */
function fixedImages(set: ImageSet): DataSource<tf.Tensor4D> {
  const x = set.images.data.slice(0, B * S * S);
  return {
    next: () => tf.tensor4d(x, [B, S, S, 1]),
    getState: () => null,
    setState: () => {},
  };
}

function weightsOf(m: tf.LayersModel): Float32Array[] {
  return m.trainableWeights.map((w) => new Float32Array(w.read().dataSync()));
}

function maxDiff(a: Float32Array[], b: Float32Array[]): number {
  let d = 0;
  a.forEach((x, i) => x.forEach((v, j) => d = Math.max(d, Math.abs(v - b[i][j]))));
  return d;
}

Deno.test("teacherStride: u = T/N, rejects odd or non-dividing N", () => {
  assertEquals(teacherStride(schedule, 4), 2);
  assertEquals(teacherStride(schedule, 8), 1);
  for (const bad of [3, 6, 0, 16]) {
    let threw = false;
    try {
      teacherStride(schedule, bad);
    } catch (e) {
      threw = e instanceof RangeError && /teacherSteps/.test(e.message);
    }
    assert(threw, `teacherSteps ${bad} must throw a RangeError`);
  }
});

Deno.test("distillRound pd: first-step loss = the teacher's distillation gap by hand", async () => {
  const teacher = tinyTeacher(1);
  const set = tinyImages(B, 2);
  const N = 4, u = 2, seed = 11;
  const r = await distillRound({
    teacher,
    schedule,
    parameterization: "x0",
    teacherSteps: N,
    method: "pd",
    data: fixedImages(set),
    optimizer: { lr: 1e-3 },
    steps: 1,
    seed,
    print: () => {},
  });
  // By hand, float64: same draws as pdBatchSource (t first, then eps), per-sample DDIM.
  const rng = new Rng(seed);
  const t = Array.from({ length: B }, () => 2 * rng.int(1, N / 2));
  const eps = rng.normals(B * S * S);
  const den = tfDenoiser(teacher, { parameterization: "x0" });
  const ab = schedule.alphasBar;
  const P = S * S;
  let loss = 0;
  for (let b = 0; b < B; b++) {
    const [i0, i1, i2] = [t[b] * u, (t[b] - 1) * u, (t[b] - 2) * u];
    const x = Float64Array.from(set.images.data.subarray(b * P, (b + 1) * P));
    const z = x.map((v, k) => Math.sqrt(ab[i0]) * v + Math.sqrt(1 - ab[i0]) * eps[b * P + k]);
    const step = async (zz: Float64Array, from: number, to: number) => {
      const x0 = (await den.predict(batch(zz, [1, S, S, 1]), from)).data;
      return {
        x0,
        z: zz.map((v, k) => {
          const e = (v - Math.sqrt(ab[from]) * x0[k]) / Math.sqrt(1 - ab[from]);
          return Math.sqrt(ab[to]) * x0[k] + Math.sqrt(1 - ab[to]) * e;
        }),
      };
    };
    const s1 = await step(z, i0, i1);
    const s2 = await step(s1.z, i1, i2);
    const rr = Math.sqrt(1 - ab[i2]) / Math.sqrt(1 - ab[i0]);
    const xt = s2.z.map((v, k) => (v - rr * z[k]) / (Math.sqrt(ab[i2]) - rr * Math.sqrt(ab[i0])));
    let mx = 0, me = 0;
    for (let k = 0; k < P; k++) {
      // The student is the teacher's copy: its x0 at (z_t, i0) is the teacher's first x0.
      mx += (s1.x0[k] - xt[k]) ** 2 / P;
      const epsS = (z[k] - Math.sqrt(ab[i0]) * s1.x0[k]) / Math.sqrt(1 - ab[i0]);
      const epsT = (z[k] - Math.sqrt(ab[i0]) * xt[k]) / Math.sqrt(1 - ab[i0]);
      me += (epsS - epsT) ** 2 / P;
    }
    loss += Math.max(mx, me) / B;
  }
  assert(loss > 1e-3, `the scrambled teacher must have a real gap, got ${loss}`);
  assertAlmostEquals(r.losses[0], loss, 2e-3 * loss);
  // The student was a copy: the teacher's weights are untouched, the student's moved.
  assert(maxDiff(weightsOf(r.student), weightsOf(teacher)) > 0);
  [teacher, r.student].forEach((m) => m.dispose());
});

Deno.test("distillRound pd: the PD loss on a held-out draw decreases after a short round", async () => {
  const teacher = tinyTeacher(3);
  const images = fixedImages(tinyImages(B, 4));
  const r = await distillRound({
    teacher,
    schedule,
    parameterization: "x0",
    teacherSteps: 2,
    method: "pd",
    data: images,
    optimizer: { lr: 3e-3, cosineDecay: false },
    steps: 12,
    seed: 5,
    print: () => {},
  });
  // The same fixed evaluation draw (seed 99) for the teacher's copy and for the student.
  const pdConfig = rddPreset("pd");
  const evalLoss = (student: tf.LayersModel) => {
    const src = pdBatchSource({
      images,
      teacher: networkTeacher(teacher, schedule, "x0"),
      schedule,
      teacherSteps: 2,
      seed: 99,
    });
    const b = src.next();
    const loss = tf.tidy(() =>
      distillObjective({ student, schedule, parameterization: "x0", config: pdConfig })({
        batch: b,
        step: 0,
        rng: new Rng(0),
      }).loss.dataSync()[0]
    );
    tf.dispose(b as unknown as tf.TensorContainer);
    return loss;
  };
  const before = evalLoss(teacher), after = evalLoss(r.student);
  assertAlmostEquals(r.losses[0], before, 0.5 * before, "first-step loss ~ the initial gap");
  assertLess(after, 0.8 * before, `held-out PD loss ${before} -> ${after}`);
  [teacher, r.student].forEach((m) => m.dispose());
});

Deno.test("pdBatchSource: state round trip reproduces the next batch", () => {
  const teacher = tinyTeacher(6);
  const set = tinyImages(B, 7);
  const make = () =>
    pdBatchSource({
      images: fixedImages(set),
      teacher: networkTeacher(teacher, schedule, "x0"),
      schedule,
      teacherSteps: 8,
      seed: 9,
    });
  const a = make();
  tf.dispose(a.next() as unknown as tf.TensorContainer);
  const st = JSON.parse(JSON.stringify(a.getState()));
  const x1 = a.next();
  const b = make();
  b.setState(st);
  const x2 = b.next();
  assertEquals(Array.from(x1.netIndex.dataSync()), Array.from(x2.netIndex.dataSync()));
  assertEquals(x1.xTarget.dataSync(), x2.xTarget.dataSync());
  tf.dispose([x1, x2] as unknown as tf.TensorContainer);
  teacher.dispose();
});

Deno.test("distillRound: rcfd without a classifier is a TypeError", async () => {
  const teacher = tinyTeacher(1);
  await assertRejects(
    () =>
      distillRound({
        teacher,
        schedule,
        parameterization: "x0",
        teacherSteps: 4,
        method: "rcfd",
        data: fixedImages(tinyImages(B, 1)),
        steps: 1,
        seed: 0,
      }),
    TypeError,
    "classifier",
  );
  teacher.dispose();
});

Deno.test("distillRound rdd: head and student both update, classifier frozen, queue saved", async () => {
  const dir = await Deno.makeTempDir();
  const teacher = tinyTeacher(8);
  const classifier = createClassifier({ imageSize: S, inChannels: 1, numClasses: 3, width: 4 });
  const clfBefore = classifier.getWeights().map((w) => new Float32Array(w.dataSync()));
  const seed = 13;
  const r = await distillRound({
    teacher,
    schedule,
    parameterization: "x0",
    teacherSteps: 4,
    method: "rdd",
    rdd: { queueSize: 32, contrastSize: 8, enqueuePerStep: 4, pdMseWeight: 0.5 },
    classifier,
    data: fixedImages(tinyImages(B, 9)),
    optimizer: { lr: 1e-2 },
    steps: 2,
    seed,
    runDir: dir,
    logEvery: 1,
    print: () => {},
  });
  assert(r.head !== null, "rdd must train a projection head");
  const fresh = createProjectionHead(16, { seed });
  assert(maxDiff(weightsOf(r.head), weightsOf(fresh)) > 1e-6, "head weights must change");
  assert(maxDiff(weightsOf(r.student), weightsOf(teacher)) > 1e-6, "student weights must change");
  const clfAfter = classifier.getWeights().map((w) => new Float32Array(w.dataSync()));
  assertEquals(maxDiff(clfAfter, clfBefore), 0);
  const lines = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  for (const k of ["rcfd", "isp2p", "mp2p", "pixel", "lr_student", "lr_head"]) {
    assert(Number.isFinite(lines[0][k]), `metrics must log ${k}: ${JSON.stringify(lines[0])}`);
  }
  const latest = (await Deno.readTextFile(`${dir}/checkpoints/latest`)).trim();
  const q = JSON.parse(await Deno.readTextFile(`${dir}/checkpoints/${latest}/queue.json`));
  assertEquals([q.size, q.updates], [32, 2]);
  [teacher, classifier, r.student, r.head, fresh].forEach((m) => m.dispose());
  await Deno.remove(dir, { recursive: true });
});

Deno.test("progressiveDistill: a rerun skips finished rounds and matches an uninterrupted chain", async () => {
  const teacher = tinyTeacher(21);
  const images = tinyImages(8, 22);
  const common = {
    teacher,
    schedule,
    parameterization: "x0" as const,
    fromSteps: 4,
    finalMethod: "pd" as const,
    finalRounds: 0,
    images,
    batchSize: B,
    steps: 3,
    optimizer: { lr: 1e-3 },
    seed: 3,
    print: () => {},
  };
  const dirA = await Deno.makeTempDir(), dirB = await Deno.makeTempDir();
  const a = await progressiveDistill({ ...common, toSteps: 1, runDir: dirA });
  assertEquals(a.map((r) => [r.teacherSteps, r.studentSteps, r.skipped]), [[4, 2, false], [
    2,
    1,
    false,
  ]]);
  // "Killed" after round 1: only 4 -> 2 exists; the rerun must not retrain it.
  const b1 = await progressiveDistill({ ...common, toSteps: 2, runDir: dirB });
  b1[0].student.dispose();
  const metrics = `${dirB}/round_4_to_2/metrics.jsonl`;
  const before = (await Deno.stat(metrics)).mtime?.getTime();
  const b = await progressiveDistill({ ...common, toSteps: 1, runDir: dirB });
  assertEquals(b.map((r) => r.skipped), [true, false]);
  assertEquals((await Deno.stat(metrics)).mtime?.getTime(), before);
  assertLess(maxDiff(weightsOf(a[1].student), weightsOf(b[1].student)), 1e-6);
  // Changing a finished round's settings is refused (naming the field) instead of silently
  // reusing the old student; safe fields (lr schedule, steps) may change.
  await assertRejects(
    () => progressiveDistill({ ...common, seed: 4, toSteps: 1, runDir: dirB }),
    Error,
    "different settings: seed (saved 3, now 4)",
  );
  const c = await progressiveDistill({
    ...common,
    optimizer: { lr: 2e-3 },
    toSteps: 1,
    runDir: dirB,
  });
  assertEquals(c.map((r) => r.skipped), [true, true]);
  c[1].student.dispose();
  [teacher, a[1].student, b[1].student].forEach((m) => m.dispose());
  await Deno.remove(dirA, { recursive: true });
  await Deno.remove(dirB, { recursive: true });
});

Deno.test("cloneModel: same outputs, independent weights", async () => {
  const m = tinyTeacher(30);
  const c = await cloneModel(m);
  const x = tf.randomNormal([2, S, S, 1]) as tf.Tensor4D;
  const t = tf.tensor1d([3, 5]);
  const y1 = m.apply([x, t]) as tf.Tensor, y2 = c.apply([x, t]) as tf.Tensor;
  assertEquals(y1.dataSync(), y2.dataSync());
  c.trainableWeights[0].write(tf.zerosLike(c.trainableWeights[0].read()));
  assert(maxDiff(weightsOf(m), weightsOf(c)) > 0);
  tf.dispose([x, t, y1, y2]);
  [m, c].forEach((v) => v.dispose());
});

Deno.test("parseDistillArgs (deno task distill): flags > --config file > defaults", async () => {
  const dir = await Deno.makeTempDir();
  const cfg = `${dir}/c.json`;
  await Deno.writeTextFile(
    cfg,
    JSON.stringify({
      stepsPerRound: 7,
      batchSize: 8,
      optimizer: { lr: 3e-4 },
      rdd: { mp2pWeight: 0.2 },
    }),
  );
  const a = await parseDistillArgs([
    "--teacher",
    "runs/t",
    "--classifier",
    "runs/c",
    "--config",
    cfg,
    "--batch",
    "16",
    "--from-steps",
    "64",
    "--to-steps",
    "2",
  ]);
  assertEquals(a.config.method, DISTILL_DEFAULTS.method);
  assertEquals([a.config.stepsPerRound, a.config.batchSize], [7, 16]);
  assertEquals([a.config.fromSteps, a.config.toSteps], [64, 2]);
  assertEquals(a.config.optimizer.lr, 3e-4);
  assertEquals(a.config.optimizer.gradClipNorm, 1);
  assertEquals(a.config.rdd.mp2pWeight, 0.2);
  assertEquals(a.run, "runs/distill_rdd_64_to_2");
  await assertRejects(() => parseDistillArgs(["--teacher", "t", "--method", "rcfd"]), UsageError);
  await assertRejects(() => parseDistillArgs(["--teacher", "t", "--lr", "0"]), UsageError, "--lr");
  await assertRejects(() => parseDistillArgs(["--teacher", "t", "--method", "x"]), UsageError);
  assertEquals(
    (await parseDistillArgs(["--teacher", "t", "--method", "pd", "--lr", "2e-4"])).config
      .optimizer.lr,
    2e-4,
  );
  await Deno.remove(dir, { recursive: true });
});

/**
 * A resumable 3-step RDD round (checkpoint every step) of a tiny teacher on fixed images;
 * `crashing(n)` gives its data with a simulated crash at batch n.
 */
function rddSetup(seed: number) {
  const teacher = tinyTeacher(seed);
  const classifier = createClassifier({ imageSize: S, inChannels: 1, numClasses: 3, width: 4 });
  const set = tinyImages(B, seed + 1);
  const crashing = (after: number): DataSource<tf.Tensor4D> => {
    const inner = fixedImages(set);
    let n = 0;
    return {
      ...inner,
      next: () => {
        if (n++ === after) throw new Error("simulated crash");
        return inner.next();
      },
    };
  };
  const run = (runDir: string, data: DataSource<tf.Tensor4D> = fixedImages(set)) =>
    distillRound({
      teacher,
      schedule,
      parameterization: "x0",
      teacherSteps: 4,
      method: "rdd",
      rdd: { queueSize: 16, contrastSize: 8, enqueuePerStep: 4 },
      classifier,
      data,
      optimizer: { lr: 1e-2 },
      steps: 3,
      seed: 2,
      runDir,
      resume: true,
      checkpointEvery: 1,
      print: () => {},
    });
  return { teacher, classifier, set, crashing, run };
}

Deno.test("distillRound rdd: resumed after a crash = uninterrupted (weights, head, queue)", async () => {
  const { teacher, classifier, set, crashing, run } = rddSetup(40);
  const dirA = await Deno.makeTempDir(), dirB = await Deno.makeTempDir();
  const a = await run(dirA, fixedImages(set));
  await assertRejects(() => run(dirB, crashing(2)), Error, "simulated crash");
  const b = await run(dirB, fixedImages(set));
  assertEquals(b.losses.length, 1, "only the last step is redone");
  assertLess(maxDiff(weightsOf(a.student), weightsOf(b.student)), 1e-6);
  assertLess(maxDiff(weightsOf(a.head!), weightsOf(b.head!)), 1e-6);
  assertAlmostEquals(a.losses[2], b.losses[0], 1e-6);
  [teacher, classifier, a.student, a.head!, b.student, b.head!].forEach((m) => m.dispose());
  await Deno.remove(dirA, { recursive: true });
  await Deno.remove(dirB, { recursive: true });
});

Deno.test("distillRound rdd: the memory queue is in each checkpoint before latest names it", async () => {
  const { teacher, classifier, run } = rddSetup(50);
  const dir = await Deno.makeTempDir();
  const rename = Deno.rename;
  const seen: string[] = [];
  Deno.rename = async (from: string | URL, to: string | URL) => {
    if (String(to) === `${dir}/checkpoints/latest`) {
      const name = (await Deno.readTextFile(from)).trim();
      const files = (await Array.fromAsync(Deno.readDir(`${dir}/checkpoints/${name}`)))
        .map((e) => e.name);
      for (const f of ["queue.json", "queue.bin", "student.json", "head.json", "state.json"]) {
        assert(files.includes(f), `${name} lacks ${f} when latest moves to it: ${files}`);
      }
      seen.push(name);
    }
    return await rename(from, to);
  };
  try {
    const r = await run(dir);
    [r.student, r.head!].forEach((m) => m.dispose());
  } finally {
    Deno.rename = rename;
  }
  assertEquals(seen, ["step_00000001", "step_00000002", "step_00000003"]);
  [teacher, classifier].forEach((m) => m.dispose());
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "distillRound rdd: a kill before any write of a checkpoint resumes to the same losses",
  ignore: Deno.env.get("RDD_SLOW") !== "1",
  fn: async () => {
    const { teacher, classifier, crashing, run } = rddSetup(60);
    const dirA = await Deno.makeTempDir();
    const a = await run(dirA);
    const base = await Deno.makeTempDir(); // crashed after step 1 (checkpoint 1 written)
    await assertRejects(() => run(base, crashing(1)), Error, "simulated crash");
    let writes = 0; // counted by the first pass (k = -1: not killed)
    for (let k = -1; k < writes; k++) {
      const dir = await Deno.makeTempDir();
      await new Deno.Command("cp", { args: ["-r", `${base}/.`, dir] }).output();
      // Step 2 and its checkpoint, killed before write k (then a crash at batch 3).
      const n = await killedAt(k, () =>
        run(dir, crashing(1)).catch((e) => {
          if ((e as Error).message !== "simulated crash") throw e;
        }));
      if (k === -1) writes = n;
      const b = await run(dir);
      assertEquals(b.losses, a.losses.slice(3 - b.losses.length), `kill at write ${k}`);
      assertLess(maxDiff(weightsOf(a.student), weightsOf(b.student)), 1e-6);
      assertLess(maxDiff(weightsOf(a.head!), weightsOf(b.head!)), 1e-6);
      [b.student, b.head!].forEach((m) => m.dispose());
      await Deno.remove(dir, { recursive: true });
    }
    assert(writes >= 8, `a checkpoint write has several steps, saw ${writes}`);
    [teacher, classifier, a.student, a.head!].forEach((m) => m.dispose());
    await Deno.remove(dirA, { recursive: true });
    await Deno.remove(base, { recursive: true });
  },
});

Deno.test("pdBatchSource keepData: x0, the noise of z_t and the teacher's x0 at z_t (for gt)", () => {
  const teacher = tinyTeacher(6);
  const set = tinyImages(B, 7);
  const make = (keepData: boolean) =>
    pdBatchSource({
      images: fixedImages(set),
      teacher: networkTeacher(teacher, schedule, "x0"),
      schedule,
      teacherSteps: 8,
      seed: 9,
      keepData,
    });
  const plain = make(false).next();
  assertEquals(plain.data, undefined);
  const b = make(true).next();
  const d = b.data!;
  assertEquals(d.x0.dataSync(), Float32Array.from(set.images.data.slice(0, B * S * S)));
  const idx = b.netIndex.dataSync(), zt = b.zt.dataSync(), x0 = d.x0.dataSync();
  const noise = d.noise.dataSync(), per = zt.length / B;
  zt.forEach((z, k) => {
    const ab = schedule.alphasBar[idx[Math.floor(k / per)]];
    assertAlmostEquals(z, Math.sqrt(ab) * x0[k] + Math.sqrt(1 - ab) * noise[k], 1e-5);
  });
  const want = networkTeacher(teacher, schedule, "x0")(b.zt, b.netIndex) as {
    x0: tf.Tensor;
    eps: tf.Tensor;
  };
  assertEquals(d.teacherX0.dataSync(), want.x0.dataSync());
  tf.dispose([plain, b, want] as unknown as tf.TensorContainer);
  teacher.dispose();
});
