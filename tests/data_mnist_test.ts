import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { loadMnist, MNIST_COUNT, mnistAll } from "../lib/data/mnist.ts";

const PER_DIGIT = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

Deno.test("mnistAll: 10,000 padded digits in [-1, 1] with a -1 border and known counts", async () => {
  const { images, labels } = await mnistAll();
  assertEquals(images.shape, [MNIST_COUNT, 32, 32, 1]);
  assertEquals(labels!.length, MNIST_COUNT);
  let min = Infinity, max = -Infinity;
  for (const v of images.data) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  assertEquals(min, -1);
  assertEquals(max, 1);
  for (let n = 0; n < MNIST_COUNT; n += 97) {
    for (let k = 0; k < 32; k++) {
      for (const [y, x] of [[0, k], [1, k], [30, k], [31, k], [k, 0], [k, 1], [k, 30], [k, 31]]) {
        assertEquals(images.get(n, y, x, 0), -1, `border of image ${n} at (${y}, ${x})`);
      }
    }
  }
  const counts = new Array(10).fill(0);
  for (const l of labels!) counts[l]++;
  assertEquals(counts, PER_DIGIT);
  // Digits have ink: the mean image value is well above the all-black -1.
  const mean = images.data.reduce((a, b) => a + b, 0) / images.data.length;
  assert(mean > -0.95 && mean < -0.5, `mean pixel ${mean}`);
});

Deno.test("mnistAll(false) keeps 28x28 and equals the padded interior", async () => {
  const [small, padded] = [await mnistAll(false), await mnistAll(true)];
  assertEquals(small.images.shape, [MNIST_COUNT, 28, 28, 1]);
  for (const n of [0, 4321, 9999]) {
    for (let y = 0; y < 28; y += 3) {
      for (let x = 0; x < 28; x += 3) {
        assertEquals(small.images.get(n, y, x, 0), padded.images.get(n, y + 2, x + 2, 0));
      }
    }
  }
});

function digest(a: Float32Array): number {
  let h = 0;
  for (let i = 0; i < a.length; i += 7) h = (h * 31 + Math.round(a[i] * 1000)) % 1000000007;
  return h;
}

Deno.test("loadMnist: disjoint seeded split, deterministic per seed", async () => {
  const a = await loadMnist({ seed: 1 });
  assertEquals(a.train.images.shape[0], 9000);
  assertEquals(a.test.images.shape[0], 1000);
  const testCounts = new Array(10).fill(0);
  for (const l of a.test.labels!) testCounts[l]++;
  for (const [d, c] of testCounts.entries()) {
    assert(c > 50 && c < 160, `digit ${d}: ${c} of 1000 test digits is implausible`);
  }
  const b = await loadMnist({ seed: 1 });
  assertEquals(digest(b.test.images.data), digest(a.test.images.data));
  assertEquals(b.train.labels, a.train.labels);
  const c = await loadMnist({ seed: 2 });
  assertNotEquals(digest(c.test.images.data), digest(a.test.images.data));
  const f = await loadMnist({ seed: 1, split: { testFraction: 0.25 }, pad: false });
  assertEquals(f.train.images.shape, [7500, 28, 28, 1]);
  assertEquals(f.test.images.shape, [2500, 28, 28, 1]);
});
