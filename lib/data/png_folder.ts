/**
 * A folder of PNG images as an image set. Either flat (`dir/*.png`, unlabelled) or one
 * sub-folder per class (`dir/<class>/*.png`; label = index of the class in the sorted
 * sub-folder names). File and folder names are sorted by code unit, so the result does not
 * depend on the file system's listing order or the locale.
 * @module
 */
// @ts-types="@types/ndarray"
import ndarray from "ndarray";
import { type ImageArray, type ImageSet, resizeBilinear } from "./images.ts";
import { decodePng } from "./png.ts";

/** Options of {@link loadPngFolder}. */
export interface PngFolderOptions {
  /** Convert to one gray channel (luma 0.299 R + 0.587 G + 0.114 B); default false = RGB. */
  readonly grayscale?: boolean;
  /**
   * Output size: `S` for SxS or `[H, W]`; images of another size are resized bilinearly.
   * Default: the first image's size, and every image must have it.
   */
  readonly size?: number | readonly [number, number];
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

async function listDir(dir: string): Promise<{ files: string[]; dirs: string[] }> {
  const files: string[] = [];
  const dirs: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) dirs.push(e.name);
    else if (e.isFile && e.name.toLowerCase().endsWith(".png")) files.push(e.name);
  }
  return { files: files.sort(byCodeUnit), dirs: dirs.sort(byCodeUnit) };
}

/** Gray or RGB channels (alpha dropped) of a decoded image `[H, W, C]` (C in 1..4). */
function toChannels(image: ImageArray, grayscale: boolean): ImageArray {
  const [h, w, c] = image.shape;
  const outC = grayscale ? 1 : 3;
  const out = new Float32Array(h * w * outC);
  for (let p = 0; p < h * w; p++) {
    const at = image.offset + p * c;
    const [r, g, b] = c >= 3
      ? [image.data[at], image.data[at + 1], image.data[at + 2]]
      : [image.data[at], image.data[at], image.data[at]];
    if (grayscale) out[p] = 0.299 * r + 0.587 * g + 0.114 * b;
    else out.set([r, g, b], p * 3);
  }
  return ndarray(out, [h, w, outC]);
}

/**
 * Loads every `.png` of `dir` (flat) or of its sub-folders (one per class) into
 * `[N, H, W, C]` float32 in [-1, 1], C = 1 with `grayscale` else 3. Labelled sets get
 * Int32Array labels and `classNames` = the sorted sub-folder names. Throws a TypeError
 * naming the file for undecodable PNGs, a RangeError naming the file for a size mismatch
 * (without `size`), and a TypeError when `dir` mixes PNG files and class folders or holds
 * no PNG.
 */
export async function loadPngFolder(dir: string, opts: PngFolderOptions = {}): Promise<ImageSet> {
  const top = await listDir(dir);
  const classes: string[] = [];
  const paths: string[] = [];
  const labels: number[] = [];
  if (top.dirs.length > 0) {
    if (top.files.length > 0) {
      throw new TypeError(
        `${dir}: holds both PNG files (${top.files[0]}) and class folders (${top.dirs[0]}); ` +
          `expected one layout`,
      );
    }
    for (const d of top.dirs) {
      const { files } = await listDir(`${dir}/${d}`);
      if (files.length === 0) continue;
      for (const f of files) {
        paths.push(`${dir}/${d}/${f}`);
        labels.push(classes.length);
      }
      classes.push(d);
    }
  } else paths.push(...top.files.map((f) => `${dir}/${f}`));
  if (paths.length === 0) throw new TypeError(`${dir}: no .png files found`);

  const size = typeof opts.size === "number" ? [opts.size, opts.size] : opts.size;
  if (size && size.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new RangeError(`size must be a positive integer or [H, W] of them, got ${opts.size}`);
  }
  const grayscale = opts.grayscale ?? false;
  let data: Float32Array | undefined;
  let hw: readonly number[] | undefined = size;
  for (let i = 0; i < paths.length; i++) {
    let img = decodePng(await Deno.readFile(paths[i]), paths[i]);
    hw ??= img.shape.slice(0, 2);
    if (img.shape[0] !== hw[0] || img.shape[1] !== hw[1]) {
      if (!size) {
        throw new RangeError(
          `${paths[i]}: image is ${img.shape[0]}x${img.shape[1]}, expected ${hw[0]}x${hw[1]} ` +
            `like ${paths[0]} (pass size to resize)`,
        );
      }
      img = resizeBilinear(img, hw[0], hw[1]);
    }
    const px = toChannels(img, grayscale);
    data ??= new Float32Array(paths.length * px.data.length);
    data.set(px.data, i * px.data.length);
  }
  const images = ndarray(data!, [paths.length, hw![0], hw![1], grayscale ? 1 : 3]);
  return classes.length > 0
    ? { images, labels: Int32Array.from(labels), classNames: classes }
    : { images };
}
