/**
 * PNG encode/decode for images in [-1, 1] (via `fast-png`), and tiling a batch of images
 * into one grid picture for sample sheets.
 * @module
 */
// @ts-types="@types/ndarray"
import ndarray from "ndarray";
import { convertIndexedToRgb, decode, type DecodedPng, encode } from "fast-png";
import { byteToUnit, checkContiguous, type ImageArray, unitToByte } from "./images.ts";

/**
 * Encodes one image `[H, W, C]` (C = 1 gray, 2 gray+alpha, 3 RGB or 4 RGBA; values in
 * [-1, 1], clipped) as an 8-bit PNG. NaN pixels throw a RangeError naming the position.
 */
export function encodePng(image: ImageArray): Uint8Array {
  checkContiguous(image, 3, "image");
  const [h, w, c] = image.shape;
  if (c < 1 || c > 4 || h < 1 || w < 1) {
    throw new RangeError(
      `image must be [H, W, C] with H, W >= 1 and C in 1..4, got [${h},${w},${c}]`,
    );
  }
  const bytes = new Uint8Array(h * w * c);
  for (let i = 0; i < bytes.length; i++) {
    bytes[i] = unitToByte(image.data[image.offset + i], `image pixel at flat index ${i}`);
  }
  return encode({ width: w, height: h, data: bytes, depth: 8, channels: c });
}

/**
 * Decodes PNG bytes to an image `[H, W, C]` in [-1, 1] (C as stored: 1..4; palette images
 * become RGB or RGBA; 16-bit samples are scaled by 1/257 first). `name` (e.g. the file
 * path) is named in the errors: TypeError for bytes that are not a decodable PNG,
 * RangeError for 1/2/4-bit gray images (not supported).
 */
export function decodePng(bytes: Uint8Array, name: string): ImageArray {
  let png: DecodedPng;
  let data: ArrayLike<number>;
  try {
    png = decode(bytes);
    data = png.palette ? convertIndexedToRgb(png) : png.data;
  } catch (e) {
    throw new TypeError(`${name}: not a decodable PNG (${e instanceof Error ? e.message : e})`);
  }
  const channels = png.palette ? png.palette[0].length : png.channels;
  if (!png.palette && png.depth !== 8 && png.depth !== 16) {
    throw new RangeError(`${name}: PNG bit depth ${png.depth} is not supported; expected 8 or 16`);
  }
  const scale = png.depth === 16 && !png.palette ? 1 / 257 : 1;
  const out = new Float32Array(png.width * png.height * channels);
  for (let i = 0; i < out.length; i++) out[i] = byteToUnit(data[i] * scale);
  return ndarray(out, [png.height, png.width, channels]);
}

/** Layout of an image grid. */
export interface GridOptions {
  /** Images per row (default `ceil(sqrt(N))`). */
  readonly cols?: number;
  /** Border in pixels between and around images (default 2). */
  readonly pad?: number;
  /** Border value in [-1, 1] (default 1 = white). */
  readonly padValue?: number;
}

/**
 * Tiles images `[N, H, W, C]` row-major into one image `[rows*(H+pad)+pad,
 * cols*(W+pad)+pad, C]` (values copied, borders set to `padValue`).
 */
export function tileImages(images: ImageArray, opts: GridOptions = {}): ImageArray {
  checkContiguous(images, 4, "images");
  const [n, h, w, c] = images.shape;
  if (n < 1) throw new RangeError(`images must hold at least one image, got [${images.shape}]`);
  const cols = opts.cols ?? Math.ceil(Math.sqrt(n));
  const pad = opts.pad ?? 2;
  const padValue = opts.padValue ?? 1;
  if (!Number.isInteger(cols) || cols < 1) {
    throw new RangeError(`cols must be a positive integer, got ${cols}`);
  }
  if (!Number.isInteger(pad) || pad < 0) {
    throw new RangeError(`pad must be a non-negative integer, got ${pad}`);
  }
  if (!(padValue >= -1 && padValue <= 1)) {
    throw new RangeError(`padValue must be in [-1, 1], got ${padValue}`);
  }
  const rows = Math.ceil(n / cols);
  const gh = rows * (h + pad) + pad;
  const gw = cols * (w + pad) + pad;
  const out = new Float32Array(gh * gw * c).fill(padValue);
  for (let k = 0; k < n; k++) {
    const y0 = pad + Math.floor(k / cols) * (h + pad);
    const x0 = pad + (k % cols) * (w + pad);
    for (let y = 0; y < h; y++) {
      const src = images.offset + ((k * h + y) * w) * c;
      out.set(images.data.subarray(src, src + w * c), ((y0 + y) * gw + x0) * c);
    }
  }
  return ndarray(out, [gh, gw, c]);
}

/** PNG bytes of {@link tileImages}`(images, opts)`: a sample sheet of `[N, H, W, C]` images. */
export function imageGrid(images: ImageArray, opts: GridOptions = {}): Uint8Array {
  return encodePng(tileImages(images, opts));
}

/**
 * Writes a PNG file: `png` is either encoded PNG bytes (e.g. from {@link imageGrid}) or
 * one image `[H, W, C]` in [-1, 1] to encode with {@link encodePng}.
 */
export async function writePng(path: string, png: Uint8Array | ImageArray): Promise<void> {
  await Deno.writeFile(path, png instanceof Uint8Array ? png : encodePng(png));
}
