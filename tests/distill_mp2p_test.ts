import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertGreater,
  assertLess,
  assertThrows,
} from "@std/assert";
import {
  contrastIndices,
  createProjectionHead,
  embeddingRows,
  MemoryQueue,
  mp2pKd,
  mp2pLoss,
  projectionHeadVariables,
} from "../lib/distill/mp2p.ts";
import {
  checkGradFd,
  dotJs,
  klLogitsJs,
  maxAbsDiff,
  randn,
  unitJs,
  useCpu,
} from "./distill_helpers.ts";

await useCpu();

/** Rows of a 2-D tensor as JS arrays. */
const rowsOf = (x: tf.Tensor) => x.arraySync() as number[][];

Deno.test("MemoryQueue: initial bank has unit rows and is seeded", () => {
  const a = new MemoryQueue(4, { size: 10, seed: 3 }),
    b = new MemoryQueue(4, { size: 10, seed: 3 });
  const c = new MemoryQueue(4, { size: 10, seed: 4 });
  for (const r of rowsOf(a.bank)) assertAlmostEquals(Math.hypot(...r), 1, 1e-6);
  assertEquals(maxAbsDiff(a.bank, b.bank), 0);
  assertGreater(maxAbsDiff(a.bank, c.bank), 0.1);
  assertEquals([a.pointer, a.updates], [0, 0]);
  [a, b, c].forEach((q) => q.dispose());
});

Deno.test("MemoryQueue.enqueue: pointer, last-n overwrite on overflow, reset to 0", () => {
  const M = 10, q = new MemoryQueue(2, { size: M, seed: 1 });
  const block = (v: number) => tf.tensor2d([[v, 0], [0, v], [v, v]]); // 3 rows, normalised on write
  const unit = [[1, 0], [0, 1], [Math.SQRT1_2, Math.SQRT1_2]];
  const expectRows = (from: number, what: string) => {
    const rows = rowsOf(q.bank).slice(from, from + 3);
    rows.forEach((r, i) => {
      assertAlmostEquals(r[0], unit[i][0], 1e-6, what);
      assertAlmostEquals(r[1], unit[i][1], 1e-6, what);
    });
  };
  const starts: number[] = [], pointers: number[] = [];
  for (let k = 0; k < 3; k++) {
    const before = rowsOf(q.bank);
    const x = block(2 + k);
    starts.push(q.enqueue(x));
    x.dispose();
    pointers.push(q.pointer);
    expectRows(starts[k], `write ${k}`);
    const after = rowsOf(q.bank);
    after.forEach((r, i) => {
      if (i < starts[k] || i >= starts[k] + 3) assertEquals(r, before[i], `row ${i} untouched`);
    });
  }
  assertEquals(starts, [0, 3, 6]);
  assertEquals(pointers, [3, 6, 9]);
  // 9 + 3 >= 10: the LAST 3 rows (7, 8, 9) are overwritten and the pointer resets to 0
  const row6 = rowsOf(q.bank)[6];
  const x = block(-1);
  assertEquals(q.enqueue(x), 7);
  x.dispose();
  assertEquals(q.pointer, 0);
  assertEquals(rowsOf(q.bank)[6], row6);
  assertAlmostEquals(rowsOf(q.bank)[7][0], -1, 1e-6);
  assertEquals(q.updates, 4);
  q.dispose();
});

Deno.test("MemoryQueue.enqueue: a write that exactly reaches the end resets the pointer", () => {
  const q = new MemoryQueue(2, { size: 6, seed: 1 });
  const x = tf.ones([3, 2]) as tf.Tensor2D;
  assertEquals([q.enqueue(x), q.pointer], [0, 3]);
  assertEquals([q.enqueue(x), q.pointer], [3, 0]); // 3 + 3 >= 6
  assertEquals([q.enqueue(x), q.pointer], [0, 3]);
  assertThrows(() => q.enqueue(tf.ones([7, 2]) as tf.Tensor2D), RangeError, "rows");
  assertThrows(() => q.enqueue(tf.ones([2, 3]) as tf.Tensor2D), RangeError, "rows");
  x.dispose();
  q.dispose();
});

Deno.test("contrastIndices: round(linspace(0, M-1, K)) with ties to even", () => {
  const idx = contrastIndices(20000, 4096);
  assertEquals(idx.length, 4096);
  for (let i = 0; i < 4096; i++) assertEquals(idx[i], Math.round((i * 19999) / 4095));
  assertEquals(Array.from(contrastIndices(6, 3)), [0, 2, 5]); // 2.5 -> 2 as torch.round
  assertEquals(Array.from(contrastIndices(5, 1)), [0]);
  assertThrows(() => contrastIndices(5, 6), RangeError, "count");
});

Deno.test("MemoryQueue.contrastRows reads the bank after the enqueue", () => {
  const q = new MemoryQueue(2, { size: 7, seed: 2 });
  const idx = contrastIndices(7, 3); // 0, 3, 6
  const x = tf.tensor2d([[5, 0], [0, 5], [3, 4], [1, 0]]);
  q.enqueue(x); // rows 0..3
  const c = q.contrastRows(3);
  assertEquals(rowsOf(c)[0], [1, 0]);
  assertEquals(rowsOf(c)[1].map((v) => Math.round(v * 10) / 10), [1, 0]);
  assertEquals(rowsOf(c)[2], rowsOf(q.bank)[idx[2]]);
  tf.dispose([x, c]);
  q.dispose();
});

/** NCHW flat index of (b, c, y, x). */
const nchw = (C: number, h: number, w: number) => (b: number, c: number, p: number) =>
  ((b * C + c) * h * w) + p;

/** A map [B, h, w, C] whose NHWC element (b, p, c) has value = its NCHW flat index. */
function indexMap(B: number, h: number, w: number, C: number): tf.Tensor4D {
  const f = nchw(C, h, w), v = new Float32Array(B * h * w * C);
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < h * w; p++) {
      for (let c = 0; c < C; c++) v[(b * h * w + p) * C + c] = f(b, c, p);
    }
  }
  return tf.tensor4d(v, [B, h, w, C]);
}

Deno.test("embeddingRows: reference-reshape is the raw [C, B*h*w] read of NCHW data", () => {
  const [B, h, w, C] = [2, 2, 3, 4], n = B * h * w;
  const m = indexMap(B, h, w, C);
  const ref = rowsOf(embeddingRows(m, "reference-reshape"));
  const per = rowsOf(embeddingRows(m, "per-pixel"));
  const f = nchw(C, h, w);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < C; i++) assertEquals(ref[j][i], i * n + j); // element (i, j) of [C, n]
    const b = Math.floor(j / (h * w)), p = j % (h * w);
    for (let c = 0; c < C; c++) assertEquals(per[j][c], f(b, c, p));
  }
  assertGreater(maxAbsDiff(tf.tensor(ref), tf.tensor(per)), 0); // B > 1: the layouts differ
  m.dispose();
});

Deno.test("embeddingRows: the layouts coincide for B = 1 and for C = 1", () => {
  for (const [B, h, w, C] of [[1, 2, 3, 4], [1, 1, 1, 5], [3, 2, 2, 1]]) {
    const m = randn([B, h, w, C], B + C) as tf.Tensor4D;
    const a = embeddingRows(m, "per-pixel"), b = embeddingRows(m, "reference-reshape");
    assertEquals(maxAbsDiff(a, b), 0, `[${B}, ${h}, ${w}, ${C}]`);
    tf.dispose([m, a, b]);
  }
  const m = randn([2, 1, 1, 3], 1) as tf.Tensor4D; // B > 1, hw = 1: still mixed
  assertGreater(
    maxAbsDiff(embeddingRows(m, "per-pixel"), embeddingRows(m, "reference-reshape")),
    1e-3,
  );
  m.dispose();
});

Deno.test("MemoryQueue.enqueueFromMap: seeded choice of min(N, perStep) rows in the layout", () => {
  for (const layout of ["per-pixel", "reference-reshape"] as const) {
    const m = randn([2, 2, 2, 3], 5) as tf.Tensor4D; // N = 8 rows
    const q1 = new MemoryQueue(3, { size: 20, enqueuePerStep: 5, seed: 9 });
    const q2 = new MemoryQueue(3, { size: 20, enqueuePerStep: 5, seed: 9 });
    const chosen = q1.enqueueFromMap(m, layout);
    assertEquals(Array.from(q2.enqueueFromMap(m, layout)), Array.from(chosen));
    assertEquals(chosen.length, 5);
    assertEquals(new Set(chosen).size, 5);
    const rows = rowsOf(embeddingRows(m, layout)), bank = rowsOf(q1.bank);
    chosen.forEach((j, k) => {
      unitJs(rows[j]).forEach((v, c) => assertAlmostEquals(bank[k][c], v, 1e-6));
    });
    assertEquals(q1.pointer, 5);
    const q3 = new MemoryQueue(3, { size: 20, enqueuePerStep: 16, seed: 9 });
    assertEquals(q3.enqueueFromMap(m, layout).length, 8); // min(N, enqueuePerStep)
    [q1, q2, q3].forEach((q) => q.dispose());
    m.dispose();
  }
});

Deno.test("MemoryQueue: state round trip resumes exactly", async () => {
  const m = randn([2, 2, 2, 3], 6) as tf.Tensor4D;
  const q = new MemoryQueue(3, { size: 12, enqueuePerStep: 4, seed: 1 });
  q.enqueueFromMap(m);
  const saved = await q.state();
  const r = new MemoryQueue(3, { size: 12, enqueuePerStep: 4, seed: 77 });
  r.restore(saved);
  assertEquals(Array.from(q.enqueueFromMap(m)), Array.from(r.enqueueFromMap(m)));
  assertEquals([r.pointer, r.updates], [q.pointer, q.updates]);
  assertEquals(maxAbsDiff(q.bank, r.bank), 0);
  [q, r].forEach((x) => x.dispose());
  m.dispose();
});

/** M_P2P KL from its definition with plain loops; s[p], t[p] pixel vectors, q contrast rows. */
function mp2pJs(s: number[][], t: number[][], q: number[][], tau: number, kdTau: number): number {
  let total = 0;
  for (let p = 0; p < s.length; p++) {
    const ls = q.map((r) => dotJs(unitJs(s[p]), r) / tau / kdTau);
    const lt = q.map((r) => dotJs(unitJs(t[p]), r) / tau / kdTau);
    total += klLogitsJs(lt, ls);
  }
  return (kdTau * kdTau * total) / s.length;
}

Deno.test("mp2pKd: hand value (B=2, hw=2, C=2, K=3), kdTau^2 factor, zero when equal", () => {
  const s = [[1, 0.2], [-0.5, 1], [0.3, 0.3], [2, -1]];
  const t = [[0.9, 0.4], [0.1, 1], [-1, 0.2], [1, 1]];
  const q = [[1, 0], [0, 1], [Math.SQRT1_2, -Math.SQRT1_2]];
  const S = tf.tensor4d(s.flat(), [2, 1, 2, 2]), T = tf.tensor4d(t.flat(), [2, 1, 2, 2]);
  const Q = tf.tensor2d(q);
  for (const [tau, kdTau] of [[0.1, 1], [0.1, 2], [0.5, 0.7]]) {
    const got = tf.tidy(() => mp2pKd(S, T, Q, { tau, kdTau }).dataSync()[0]);
    assertAlmostEquals(got, mp2pJs(s, t, q, tau, kdTau), 1e-5 * Math.max(1, got));
  }
  assertAlmostEquals(tf.tidy(() => mp2pKd(T, T, Q).dataSync()[0]), 0, 1e-6);
  tf.dispose([S, T, Q]);
});

Deno.test("mp2pKd: non-negative on random inputs; gradient matches central differences", () => {
  const q = tf.tidy(() =>
    tf.div(randn([6, 3], 1), tf.norm(randn([6, 3], 1), 2, 1, true))
  ) as tf.Tensor2D;
  for (let seed = 0; seed < 4; seed++) {
    const v = tf.tidy(() =>
      mp2pKd(
        randn([2, 2, 2, 3], seed) as tf.Tensor4D,
        randn([2, 2, 2, 3], seed + 5) as tf.Tensor4D,
        q,
      )
        .dataSync()[0]
    );
    assertGreater(v, 0);
  }
  const t = randn([2, 2, 2, 3], 20) as tf.Tensor4D, s = randn([2, 2, 2, 3], 21);
  checkGradFd((x) => mp2pKd(x as tf.Tensor4D, t, q, { tau: 0.5, kdTau: 1.5 }), s);
  tf.dispose([q, t, s]);
});

Deno.test("mp2pLoss: identity head equals mp2pKd on the post-enqueue contrast set", () => {
  const t = randn([2, 2, 2, 3], 30) as tf.Tensor4D, s = randn([2, 2, 2, 3], 31) as tf.Tensor4D;
  const q = new MemoryQueue(3, { size: 50, enqueuePerStep: 8, seed: 4 });
  const r = mp2pLoss(s, t, q, null, { contrastSize: 10 });
  assertEquals(r.layout, "per-pixel");
  assertEquals([r.queuePointer, q.updates], [8, 1]);
  const c = q.contrastRows(10);
  assertAlmostEquals(r.loss.dataSync()[0], tf.tidy(() => mp2pKd(s, t, c).dataSync()[0]), 1e-6);
  const r2 = mp2pLoss(t, t, q, null, { contrastSize: 10, layout: "reference-reshape" });
  assertEquals(r2.layout, "reference-reshape");
  assertAlmostEquals(r2.loss.dataSync()[0], 0, 1e-6);
  tf.dispose([t, s, c, r.loss, r2.loss]);
  q.dispose();
});

Deno.test("projection head: shapes, BN in training mode, gradients reach its variables", () => {
  const head = createProjectionHead(3, { outChannels: 4, hidden: 5, seed: 1 });
  const vars = projectionHeadVariables(head);
  assertEquals(vars.length, 4); // conv kernel, gamma, beta, conv kernel
  const s = randn([2, 2, 2, 3], 40) as tf.Tensor4D, t = randn([2, 2, 2, 4], 41) as tf.Tensor4D;
  const bn = head.layers[1];
  const movingMean = () => bn.getWeights()[2].dataSync()[0];
  assertEquals(movingMean(), 0);
  const out = head.apply(s, { training: true }) as tf.Tensor4D;
  assertEquals(out.shape, [2, 2, 2, 4]);
  assertGreater(Math.abs(movingMean()), 0); // training mode updated the moving statistics
  const q = new MemoryQueue(4, { size: 30, enqueuePerStep: 4, seed: 5 });
  const { value, grads } = tf.variableGrads(
    () => mp2pLoss(s, t, q, head, { contrastSize: 8 }).loss,
    vars,
  );
  assert(Number.isFinite(value.dataSync()[0]) && value.dataSync()[0] >= 0);
  const norms = Object.values(grads).map((g) => tf.tidy(() => tf.norm(g).dataSync()[0]));
  assertGreater(Math.max(...norms), 0);
  norms.forEach((n) => assert(Number.isFinite(n)));
  assertEquals(q.updates, 1);
  tf.dispose([s, t, out, value, ...Object.values(grads)]);
  q.dispose();
  head.dispose();
});

Deno.test("mp2p: bad input throws naming the parameter", () => {
  assertThrows(() => new MemoryQueue(0), RangeError, "dim");
  assertThrows(
    () => new MemoryQueue(2, { size: 4, enqueuePerStep: 5 }),
    RangeError,
    "enqueuePerStep",
  );
  const q = new MemoryQueue(2, { size: 4, enqueuePerStep: 2 });
  const m = tf.zeros([1, 2, 2, 3]) as tf.Tensor4D;
  assertThrows(() => q.enqueueFromMap(m), RangeError, "teacherMap");
  assertThrows(() => embeddingRows(m, "nchw" as never), RangeError, "layout");
  const c = tf.zeros([4, 2]) as tf.Tensor2D;
  assertThrows(() => mp2pKd(m, m, c), RangeError, "contrast");
  assertThrows(() => mp2pKd(m, m, c, { kdTau: 0 }), RangeError, "kdTau");
  tf.dispose([m, c]);
  q.dispose();
});

Deno.test("MemoryQueue: reference size (M=20000, C=64) initialises and contrasts quickly", () => {
  const q = new MemoryQueue(64, { seed: 0 });
  const m = randn([4, 4, 4, 64], 50) as tf.Tensor4D;
  assertEquals(q.enqueueFromMap(m).length, 64);
  const c = q.contrastRows();
  assertEquals(c.shape, [4096, 64]);
  assertLess(Math.abs(tf.tidy(() => tf.sum(tf.square(c)).dataSync()[0]) - 4096), 0.05);
  tf.dispose([m, c]);
  q.dispose();
});
