import { assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  encodeIdx,
  type IdxData,
  parseIdx,
  readIdx,
  readIdxImageSet,
  writeIdx,
} from "../lib/data/idx.ts";

Deno.test("parseIdx reads hand-written big-endian ubyte and float files", async () => {
  // ubyte [2, 2, 3]: magic 00 00 08 03, dims 2, 2, 3, then 12 bytes.
  const ubyte = new Uint8Array([
    0,
    0,
    8,
    3,
    0,
    0,
    0,
    2,
    0,
    0,
    0,
    2,
    0,
    0,
    0,
    3,
    ...Array.from({ length: 12 }, (_, i) => i * 20),
  ]);
  const a = parseIdx(ubyte, "u.idx");
  assertEquals(a.dtype, "ubyte");
  assertEquals(a.shape, [2, 2, 3]);
  assertEquals(Array.from(a.data), [0, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200, 220]);
  // float [2]: 1.5 = 0x3fc00000, -2 = 0xc0000000 (big-endian).
  const float = new Uint8Array([0, 0, 0x0d, 1, 0, 0, 0, 2, 0x3f, 0xc0, 0, 0, 0xc0, 0, 0, 0]);
  const f = parseIdx(float, "f.idx");
  assertEquals(f.dtype, "float");
  assertEquals(Array.from(f.data), [1.5, -2]);

  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/images.idx3`, ubyte);
  await writeIdx(`${dir}/labels.idx1`, [2], new Uint8Array([7, 1]));
  const set = await readIdxImageSet(`${dir}/images.idx3`, `${dir}/labels.idx1`);
  assertEquals(set.images.shape, [2, 2, 3, 1]);
  assertEquals(Array.from(set.labels!), [7, 1]);
  assertAlmostEquals(set.images.get(1, 1, 2, 0), 220 / 127.5 - 1, 1e-6);
  assertEquals((await readIdx(`${dir}/labels.idx1`)).shape, [2]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("encodeIdx/parseIdx round-trip every dtype", () => {
  const cases: IdxData[] = [
    new Uint8Array([0, 255, 7]),
    new Int8Array([-128, 127, 0]),
    new Int16Array([-32768, 32767, 12345]),
    new Int32Array([-2147483648, 2147483647, -5]),
    new Float32Array([0.1, -3.5e20, Infinity]),
    new Float64Array([Math.PI, -1e-300, 0.1]),
  ];
  for (const data of cases) {
    const back = parseIdx(encodeIdx([3, 1], data), "rt");
    assertEquals(back.shape, [3, 1]);
    assertEquals(back.data, data);
  }
  assertEquals(encodeIdx([1], new Int16Array([258])).subarray(8), new Uint8Array([1, 2]));
});

Deno.test("parseIdx rejects bad magic and truncated data, naming file and offset", async () => {
  const good = encodeIdx([2, 3], new Uint8Array(6));
  const bad = good.slice();
  bad[0] = 1;
  assertThrows(() => parseIdx(bad, "m.idx"), TypeError, "m.idx: bad IDX magic at offset 0");
  const badType = good.slice();
  badType[2] = 0x0a;
  assertThrows(() => parseIdx(badType, "t.idx"), TypeError, "t.idx: bad IDX magic");
  assertThrows(
    () => parseIdx(good.subarray(0, good.length - 2), "cut.idx"),
    RangeError,
    "cut.idx: IDX data truncated at offset 12: expected 6 bytes (shape [2,3] of ubyte), found 4",
  );
  assertThrows(
    () => parseIdx(good.subarray(0, 7), "h.idx"),
    RangeError,
    "h.idx: truncated IDX header at offset 4",
  );
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/x.idx`, bad);
  await assertRejects(() => readIdx(`${dir}/x.idx`), TypeError, `${dir}/x.idx: bad IDX magic`);
  await Deno.remove(dir, { recursive: true });
});
