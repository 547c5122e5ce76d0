import { assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  CIFAR10_CLASSES,
  CIFAR10_RECORD_BYTES,
  parseCifar10,
  readCifar10,
  readCifar10Batch,
} from "../lib/data/cifar10.ts";

/** Two records: labels 3 and 9; pixel byte of (record r, channel c, y, x) = (r*7 + c*50 + y + 2x) % 256. */
function fixture(): Uint8Array {
  const bytes = new Uint8Array(2 * CIFAR10_RECORD_BYTES);
  [3, 9].forEach((label, r) => {
    const at = r * CIFAR10_RECORD_BYTES;
    bytes[at] = label;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          bytes[at + 1 + c * 1024 + y * 32 + x] = (r * 7 + c * 50 + y + 2 * x) % 256;
        }
      }
    }
  });
  return bytes;
}

Deno.test("readCifar10Batch: planes become NHWC in [-1, 1] with labels", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/data_batch_1.bin`;
  await Deno.writeFile(path, fixture());
  const set = await readCifar10Batch(path);
  assertEquals(set.images.shape, [2, 32, 32, 3]);
  assertEquals(Array.from(set.labels!), [3, 9]);
  assertEquals(set.classNames![9], "truck");
  assertEquals(CIFAR10_CLASSES.length, 10);
  for (const [r, c, y, x] of [[0, 0, 0, 0], [0, 2, 5, 31], [1, 1, 31, 0], [1, 2, 17, 9]]) {
    const b = (r * 7 + c * 50 + y + 2 * x) % 256;
    assertAlmostEquals(set.images.get(r, y, x, c), b / 127.5 - 1, 1e-6);
  }
  assertEquals(set.images.get(0, 0, 0, 0), -1);
  const both = await readCifar10([path, path]);
  assertEquals(both.images.shape, [4, 32, 32, 3]);
  assertEquals(Array.from(both.labels!), [3, 9, 3, 9]);
  assertEquals(both.images.get(3, 17, 9, 2), set.images.get(1, 17, 9, 2));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseCifar10 rejects a truncated file and a bad label, naming file and offset", async () => {
  const bytes = fixture();
  assertThrows(
    () => parseCifar10(bytes.subarray(0, 3073 + 100), "cut.bin"),
    RangeError,
    "cut.bin: length 3173 is not a positive multiple of 3073; the record at offset 3073",
  );
  assertThrows(() => parseCifar10(new Uint8Array(0), "empty.bin"), RangeError, "empty.bin");
  const bad = bytes.slice();
  bad[3073] = 10;
  assertThrows(
    () => parseCifar10(bad, "bad.bin"),
    RangeError,
    "bad.bin: label 10 at offset 3073 (record 1) must be in 0..9",
  );
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/x.bin`, bytes.subarray(0, 10));
  await assertRejects(() => readCifar10Batch(`${dir}/x.bin`), RangeError, `${dir}/x.bin`);
  await Deno.remove(dir, { recursive: true });
});
