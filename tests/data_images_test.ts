// @ts-types="@types/ndarray"
import ndarray from "ndarray";
import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  byteToUnit,
  concatSets,
  fromTensor,
  gatherRows,
  imageArray,
  imageSet,
  resizeBilinear,
  subset,
  toTensor,
  unitToByte,
} from "../lib/data/images.ts";

const set4 = () =>
  imageSet(
    imageArray(Float32Array.from({ length: 4 * 2 * 2 * 1 }, (_, i) => i / 16), [4, 2, 2, 1]),
    new Uint8Array([9, 8, 7, 6]),
  );

Deno.test("byteToUnit/unitToByte are inverse on byte levels and clip", () => {
  for (let b = 0; b < 256; b++) assertEquals(unitToByte(byteToUnit(b), "x"), b);
  assertEquals(byteToUnit(0), -1);
  assertEquals(byteToUnit(255), 1);
  assertEquals(unitToByte(7, "x"), 255);
  assertThrows(() => unitToByte(NaN, "pixel 3"), RangeError, "pixel 3 is NaN");
});

Deno.test("gatherRows, subset, concatSets copy the right rows", () => {
  const s = set4();
  const g = gatherRows(s.images, [3, 1]);
  assertEquals(g.shape, [2, 2, 2, 1]);
  assertEquals(Array.from(g.data), [12, 13, 14, 15, 4, 5, 6, 7].map((v) => v / 16));
  const sub = subset(s, [2]);
  assertEquals(sub.labels, new Uint8Array([7]));
  // Offset views (hi/lo along N) stay contiguous and are gathered from their offset.
  const tail = s.images.lo(2, 0, 0, 0);
  assertEquals(gatherRows(tail, [1]).data, s.images.data.slice(12, 16));
  const cat = concatSets([s, sub]);
  assertEquals(cat.images.shape, [5, 2, 2, 1]);
  assertEquals(cat.labels, new Int32Array([9, 8, 7, 6, 7]));
  assertEquals(cat.images.get(4, 1, 1, 0), s.images.get(2, 1, 1, 0));
  assertThrows(
    () => gatherRows(s.images, [4]),
    RangeError,
    "indices[0] must be an integer in [0, 3]",
  );
  assertThrows(
    () => imageSet(s.images, new Uint8Array(3)),
    RangeError,
    "labels must have length N = 4",
  );
  assertThrows(() => imageSet(s.images.transpose(0, 2, 1, 3)), RangeError, "C-contiguous");
  assertThrows(() => concatSets([s, { images: s.images }]), TypeError, "sets[1] lacks labels");
});

Deno.test("toTensor / fromTensor round trip, with and without indices", async () => {
  await tf.setBackend("cpu");
  await tf.ready();
  const s = set4();
  const all = toTensor(s);
  assertEquals(all.shape, [4, 2, 2, 1]);
  assertEquals(await all.data(), s.images.data);
  const two = toTensor(s.images, [1, 0]);
  const back = await fromTensor(two);
  assertEquals(back.shape, [2, 2, 2, 1]);
  assertEquals(back.data, gatherRows(s.images, [1, 0]).data);
  tf.dispose([all, two]);
});

Deno.test("resizeBilinear: identity at same size, matches tf.image.resizeBilinear(halfPixelCenters)", async () => {
  await tf.setBackend("cpu");
  await tf.ready();
  const img = imageArray(Float32Array.from({ length: 5 * 4 * 2 }, (_, i) => Math.sin(i)), [
    5,
    4,
    2,
  ]);
  assertEquals(resizeBilinear(img, 5, 4).data, img.data);
  for (const [h, w] of [[3, 7], [10, 2], [1, 1]]) {
    const ours = resizeBilinear(img, h, w);
    const t = tf.tensor3d(img.data, [5, 4, 2]);
    const ref = tf.image.resizeBilinear(t, [h, w], false, true);
    const refData = await ref.data();
    ours.data.forEach((v, i) => assertAlmostEquals(v, refData[i], 1e-5));
    tf.dispose([t, ref]);
  }
  assertThrows(
    () => resizeBilinear(ndarray(new Float32Array(4), [2, 2, 1]), 0, 2),
    RangeError,
    "height",
  );
});
