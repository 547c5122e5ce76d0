// @ts-types="@types/ndarray"
import ndarray from "ndarray";
import { encode } from "fast-png";
import { assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { decodePng, encodePng, imageGrid, tileImages, writePng } from "../lib/data/png.ts";
import { loadPngFolder } from "../lib/data/png_folder.ts";
import { imageArray } from "../lib/data/images.ts";

/** An image [h, w, c] whose pixel values are exact byte levels: (y*w*c + x*c + k)*5 % 256. */
function levels(h: number, w: number, c: number) {
  const bytes = Uint8Array.from({ length: h * w * c }, (_, i) => (i * 5) % 256);
  return { bytes, image: imageArray(Float32Array.from(bytes, (b) => b / 127.5 - 1), [h, w, c]) };
}

Deno.test("encodePng -> decodePng is exact for byte-level images, C = 1..4", () => {
  for (const c of [1, 2, 3, 4]) {
    const { image } = levels(5, 7, c);
    const back = decodePng(encodePng(image), "rt.png");
    assertEquals(back.shape, [5, 7, c]);
    assertEquals(back.data, image.data);
  }
  // Values are clipped to [-1, 1] and rounded to the nearest byte level.
  const clip = decodePng(encodePng(imageArray(new Float32Array([-3, 2, 0]), [1, 3, 1])), "c");
  assertEquals(Array.from(clip.data), [-1, 1, Math.fround(128 / 127.5 - 1)]);
  assertThrows(
    () => encodePng(imageArray(new Float32Array([0, NaN]), [1, 2, 1])),
    RangeError,
    "flat index 1 is NaN",
  );
});

Deno.test("decodePng handles 16-bit and palette PNGs and names the file on garbage", () => {
  const sixteen = encode({
    width: 2,
    height: 1,
    depth: 16,
    channels: 1,
    data: new Uint16Array([0, 65535]),
  });
  assertEquals(Array.from(decodePng(sixteen, "s").data), [-1, 1]);
  const palette = encode({
    width: 2,
    height: 1,
    depth: 8,
    channels: 1,
    data: new Uint8Array([1, 0]),
    palette: [[255, 0, 0], [0, 0, 255]],
  });
  const p = decodePng(palette, "p");
  assertEquals(p.shape, [1, 2, 3]);
  assertEquals(Array.from(p.data), [-1, -1, 1, 1, -1, -1]);
  assertThrows(
    () => decodePng(new Uint8Array([1, 2, 3]), "junk.png"),
    TypeError,
    "junk.png: not a decodable PNG",
  );
  const oneBit = encode({
    width: 8,
    height: 1,
    depth: 1,
    channels: 1,
    data: new Uint8Array([160]),
  });
  assertThrows(() => decodePng(oneBit, "bits.png"), RangeError, "bits.png: PNG bit depth 1");
});

Deno.test("tileImages/imageGrid lay images out row-major with borders", async () => {
  const data = new Float32Array(3 * 2 * 2 * 1);
  data.fill(-1, 0, 4);
  data.fill(0, 4, 8);
  data.fill(0.5, 8, 12);
  const imgs = ndarray(data, [3, 2, 2, 1]);
  const grid = tileImages(imgs, { cols: 2, pad: 1, padValue: 1 });
  assertEquals(grid.shape, [2 * 3 + 1, 2 * 3 + 1, 1]);
  assertEquals(grid.get(0, 0, 0), 1); // border
  assertEquals(grid.get(1, 1, 0), -1); // image 0 at (1, 1)
  assertEquals(grid.get(2, 5, 0), 0); // image 1 at (1, 4)
  assertEquals(grid.get(4, 1, 0), 0.5); // image 2 at (4, 1)
  assertEquals(grid.get(4, 4, 0), 1); // empty cell stays padValue
  assertEquals(grid.get(3, 1, 0), 1); // border row between image rows
  const png = imageGrid(imgs, { cols: 2, pad: 1 });
  assertEquals(decodePng(png, "grid").shape, [7, 7, 1]);
  const dir = await Deno.makeTempDir();
  await writePng(`${dir}/g.png`, png);
  await writePng(`${dir}/one.png`, levels(2, 2, 3).image);
  assertEquals(await Deno.readFile(`${dir}/g.png`), png);
  assertEquals(
    decodePng(await Deno.readFile(`${dir}/one.png`), "one").data,
    levels(2, 2, 3).image.data,
  );
  assertThrows(() => tileImages(imgs, { cols: 0 }), RangeError, "cols must be a positive integer");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadPngFolder: class sub-folders sorted, exact values, gray and resize", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/zebra`);
  await Deno.mkdir(`${dir}/ant`);
  const a = levels(4, 4, 3);
  const b = levels(4, 4, 1);
  const c = levels(4, 4, 4);
  await Deno.writeFile(
    `${dir}/zebra/b.png`,
    encode({ width: 4, height: 4, data: b.bytes, channels: 1 }),
  );
  await Deno.writeFile(
    `${dir}/zebra/a.png`,
    encode({ width: 4, height: 4, data: a.bytes, channels: 3 }),
  );
  await Deno.writeFile(
    `${dir}/ant/c.png`,
    encode({ width: 4, height: 4, data: c.bytes, channels: 4 }),
  );
  const set = await loadPngFolder(dir);
  assertEquals(set.images.shape, [3, 4, 4, 3]);
  assertEquals(set.classNames, ["ant", "zebra"]);
  assertEquals(set.labels, new Int32Array([0, 1, 1]));
  // ant/c.png: RGBA with alpha dropped.
  assertEquals(set.images.get(0, 1, 2, 1), c.image.get(1, 2, 1));
  // zebra/a.png exactly; zebra/b.png gray replicated to RGB.
  for (let k = 0; k < 3; k++) assertEquals(set.images.get(1, 3, 1, k), a.image.get(3, 1, k));
  for (let k = 0; k < 3; k++) assertEquals(set.images.get(2, 2, 3, k), b.image.get(2, 3, 0));

  const gray = await loadPngFolder(dir, { grayscale: true });
  assertEquals(gray.images.shape, [3, 4, 4, 1]);
  const [r, g, bl] = [0, 1, 2].map((k) => a.image.get(0, 1, k));
  assertAlmostEquals(gray.images.get(1, 0, 1, 0), 0.299 * r + 0.587 * g + 0.114 * bl, 1e-6);
  assertAlmostEquals(gray.images.get(2, 0, 1, 0), b.image.get(0, 1, 0), 1e-6);

  const small = await loadPngFolder(dir, { size: 2 });
  assertEquals(small.images.shape, [3, 2, 2, 3]);
  // Halving with half-pixel centres averages each 2x2 block.
  const block = [0, 1].flatMap((y) => [0, 1].map((x) => a.image.get(y, x, 0)));
  assertAlmostEquals(small.images.get(1, 0, 0, 0), block.reduce((s, v) => s + v) / 4, 1e-6);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadPngFolder: flat folder unlabelled; bad PNG and size mismatch name the file", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/1.png`, encodePng(levels(3, 3, 1).image));
  await Deno.writeFile(`${dir}/0.PNG`, encodePng(levels(3, 3, 3).image));
  await Deno.writeFile(`${dir}/notes.txt`, new Uint8Array([1]));
  const flat = await loadPngFolder(dir);
  assertEquals(flat.images.shape, [2, 3, 3, 3]);
  assertEquals(flat.labels, undefined);
  assertEquals(flat.images.get(0, 2, 2, 2), levels(3, 3, 3).image.get(2, 2, 2));
  await Deno.writeFile(`${dir}/2.png`, encodePng(levels(2, 3, 1).image));
  await assertRejects(
    () => loadPngFolder(dir),
    RangeError,
    `${dir}/2.png: image is 2x3, expected 3x3`,
  );
  await Deno.writeFile(`${dir}/2.png`, new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2]));
  await assertRejects(() => loadPngFolder(dir), TypeError, `${dir}/2.png: not a decodable PNG`);
  await Deno.mkdir(`${dir}/cls`);
  await assertRejects(() => loadPngFolder(dir), TypeError, "holds both PNG files");
  await Deno.remove(dir, { recursive: true });
});
