// @ts-types="@types/ndarray"
import ndarray from "ndarray";
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import {
  BatchIterator,
  batchIterator,
  batchTensors,
  type DataBatch,
  flipHorizontal,
  shuffle,
  splitIndices,
  trainTestSplit,
} from "../lib/data/batches.ts";
import type { ImageSet } from "../lib/data/images.ts";
import { Rng } from "../lib/core/rng.ts";

/** N images [2, 3, 2]; value encodes (sample, y, x, channel) so every pixel is distinct. */
function toySet(n: number): ImageSet {
  const data = Float32Array.from({ length: n * 12 }, (_, i) => i / (n * 12));
  return {
    images: ndarray(data, [n, 2, 3, 2]),
    labels: Int32Array.from({ length: n }, (_, i) => i % 10),
  };
}

const ids = (batches: DataBatch[]) => batches.flatMap((b) => Array.from(b.indices));

Deno.test("shuffle and splitIndices are seeded, disjoint and complete", () => {
  const items = ["a", "b", "c", "d", "e", "f"];
  assertEquals(shuffle(items, new Rng(3)), shuffle(items, new Rng(3)));
  assertEquals([...shuffle(items, new Rng(3))].sort(), items);
  const s = splitIndices(50, { nTest: 12, seed: 7 });
  assertEquals(s.test.length, 12);
  assertEquals(
    [...s.train, ...s.test].sort((a, b) => a - b),
    Array.from({ length: 50 }, (_, i) => i),
  );
  assertEquals(splitIndices(50, { nTest: 12, seed: 7 }), s);
  assertNotEquals(splitIndices(50, { nTest: 12, seed: 8 }).test, s.test);
  assertEquals(splitIndices(50, { testFraction: 0.2 }).test.length, 10);
  assertThrows(
    () => splitIndices(50, { nTest: 50 }),
    RangeError,
    "nTest must be an integer in [0, 49]",
  );
  assertThrows(() => splitIndices(50, {}), TypeError, "exactly one of nTest or testFraction");
  const { train, test } = trainTestSplit(toySet(20), { nTest: 5, seed: 1 });
  assertEquals(train.images.shape, [15, 2, 3, 2]);
  const t0 = splitIndices(20, { nTest: 5, seed: 1 }).test[0];
  assertEquals(test.images.get(0, 1, 2, 1), toySet(20).images.get(t0, 1, 2, 1));
  assertEquals(test.labels![0], t0 % 10);
});

Deno.test("batchIterator covers every sample once per epoch; epochs differ; same seed same order", () => {
  const set = toySet(23);
  const it = batchIterator(set, { batchSize: 5, seed: 11 });
  assertEquals(it.batchesPerEpoch, 5);
  const e0 = [...it.epochBatches()];
  assertEquals(e0.map((b) => b.indices.length), [5, 5, 5, 5, 3]);
  assertEquals(ids(e0).sort((a, b) => a - b), Array.from({ length: 23 }, (_, i) => i));
  assert(e0.every((b) => b.epoch === 0));
  const e1 = [...it.epochBatches()];
  assertEquals(ids(e1).sort((a, b) => a - b), Array.from({ length: 23 }, (_, i) => i));
  assertNotEquals(ids(e1), ids(e0));
  assertEquals(e1[0].epoch, 1);
  const again = new BatchIterator(set, { batchSize: 5, seed: 11 });
  assertEquals(ids([...again.epochBatches()]), ids(e0));
  assertNotEquals(ids([...batchIterator(set, { batchSize: 5, seed: 12 }).epochBatches()]), ids(e0));
  // Pixels and labels are the gathered rows.
  const b = e0[1];
  for (let k = 0; k < b.indices.length; k++) {
    assertEquals(b.images.get(k, 1, 2, 0), set.images.get(b.indices[k], 1, 2, 0));
    assertEquals(b.labels![k], b.indices[k] % 10);
  }
  // dropLast skips the short batch; shuffle false keeps index order.
  const dl = batchIterator(set, { batchSize: 5, seed: 11, dropLast: true, shuffle: false });
  const d0 = [...dl.epochBatches()];
  assertEquals(d0.length, 4);
  assertEquals(ids(d0), Array.from({ length: 20 }, (_, i) => i));
  assertEquals(dl.next().epoch, 1);
});

Deno.test("resume from a saved state continues identically (mid-epoch and at epoch end)", () => {
  const set = toySet(17);
  const opts = { batchSize: 4, seed: "run-a", flip: "random-horizontal" as const };
  const ref = batchIterator(set, opts);
  const all = Array.from({ length: 12 }, () => ref.next());
  for (const cut of [3, 5, 7]) {
    const it = batchIterator(set, opts);
    for (let i = 0; i < cut; i++) it.next();
    const saved = JSON.parse(JSON.stringify(it.state()));
    const resumed = batchIterator(set, opts, saved);
    for (let i = cut; i < 12; i++) {
      const b = resumed.next();
      assertEquals(b.indices, all[i].indices, `batch ${i} after resume at ${cut}`);
      assertEquals(b.flipped, all[i].flipped);
      assertEquals(b.images.data, all[i].images.data);
      assertEquals(b.epoch, all[i].epoch);
    }
  }
  assertThrows(
    () => batchIterator(set, { ...opts, seed: "other" }, ref.state()),
    RangeError,
    "state.seed",
  );
  assertThrows(() => batchIterator(toySet(16), opts, ref.state()), RangeError, "state.size 17");
});

Deno.test("random-horizontal flip mirrors exactly the flagged samples", () => {
  const set = toySet(40);
  const it = batchIterator(set, { batchSize: 40, seed: 5, flip: "random-horizontal" });
  const b = it.next();
  const nFlipped = b.flipped.reduce((s, f) => s + f, 0);
  assert(nFlipped > 8 && nFlipped < 32, `${nFlipped} of 40 flipped`);
  for (let k = 0; k < 40; k++) {
    const i = b.indices[k];
    for (let y = 0; y < 2; y++) {
      for (let x = 0; x < 3; x++) {
        for (let c = 0; c < 2; c++) {
          const src = set.images.get(i, y, b.flipped[k] ? 2 - x : x, c);
          assertEquals(b.images.get(k, y, x, c), src);
        }
      }
    }
  }
  assertEquals(batchIterator(set, { batchSize: 40, seed: 5 }).next().flipped, new Uint8Array(40));
  // flipHorizontal in place, even width: a row [0, 1, 2, 3] becomes [3, 2, 1, 0].
  const row = ndarray(new Float32Array([0, 1, 2, 3, 4, 5, 6, 7]), [2, 1, 4, 1]);
  flipHorizontal(row, [false, true]);
  assertEquals(Array.from(row.data), [0, 1, 2, 3, 7, 6, 5, 4]);
});

Deno.test("batchTensors gives x [B,H,W,C] float32 and y int32", async () => {
  await tf.setBackend("cpu");
  await tf.ready();
  const b = batchIterator(toySet(6), { batchSize: 4, seed: 0 }).next();
  const { x, y } = batchTensors(b);
  assertEquals(x.shape, [4, 2, 3, 2]);
  assertEquals(x.dtype, "float32");
  assertEquals(await x.data(), b.images.data);
  assertEquals(Array.from(await y!.data()), Array.from(b.labels!));
  tf.dispose([x, y!]);
});

Deno.test("BatchIterator rejects bad options", () => {
  const set = toySet(3);
  assertThrows(() => batchIterator(set, { batchSize: 0, seed: 1 }), RangeError, "batchSize");
  assertThrows(
    () => batchIterator(set, { batchSize: 4, seed: 1, dropLast: true }),
    RangeError,
    "at least 4",
  );
  assertThrows(
    () => batchIterator(set, { batchSize: 2, seed: 1, flip: "vertical" as "none" }),
    RangeError,
    "flip must be",
  );
});
