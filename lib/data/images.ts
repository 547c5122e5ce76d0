/**
 * Image sets: a float32 `npm:ndarray` view of shape `[N, H, W, C]` (NHWC, values in
 * [-1, 1]) plus optional integer class labels, and the conversions every loader shares
 * (bytes <-> [-1, 1], gathering rows, making tfjs tensors).
 * @module
 */
// @ts-types="@types/ndarray"
import ndarray from "ndarray";
import * as tf from "@tensorflow/tfjs";

/** A float32 n-d array view. Image arrays are `[N, H, W, C]`; single images `[H, W, C]`. */
export type ImageArray = ndarray.NdArray<Float32Array>;

/** Integer class labels, one per image (length N). */
export type Labels = Int32Array | Uint8Array;

/** A set of N images `[N, H, W, C]` in [-1, 1] with optional labels `[N]`. */
export interface ImageSet {
  /** Pixels, NHWC, float32, in [-1, 1]; a C-contiguous view (see {@link imageArray}). */
  readonly images: ImageArray;
  /** Class labels `[N]`, or undefined for unlabelled data. */
  readonly labels?: Labels;
  /** Optional class names: `classNames[label]` (e.g. sub-folder names of a PNG folder). */
  readonly classNames?: readonly string[];
}

/**
 * Checks that `a` is a C-contiguous (row-major, possibly offset) float32 view of rank
 * `rank`; returns the number of elements of one row along axis 0. `name` is used in errors.
 */
export function checkContiguous(a: ImageArray, rank: number, name: string): number {
  if (!(a.data instanceof Float32Array)) {
    throw new TypeError(`${name} must be an ndarray over a Float32Array`);
  }
  if (a.shape.length !== rank || a.shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new RangeError(`${name} must have rank ${rank} (NHWC), got shape [${a.shape}]`);
  }
  let expected = 1;
  for (let k = rank - 1; k >= 0; k--) {
    if (a.shape[k] > 1 && a.stride[k] !== expected) {
      throw new RangeError(
        `${name} must be C-contiguous (row-major), got shape [${a.shape}] stride [${a.stride}]`,
      );
    }
    expected *= a.shape[k];
  }
  return a.shape.slice(1).reduce((x, y) => x * y, 1);
}

/**
 * Wraps `data` (length `prod(shape)`) as an image array without copying. `shape` is
 * `[N, H, W, C]` for sets or `[H, W, C]` for single images; N may be 0.
 */
export function imageArray(data: Float32Array, shape: readonly number[]): ImageArray {
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new RangeError(`shape must be non-negative integers, got [${shape}]`);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (data.length !== size) {
    throw new RangeError(`data has length ${data.length} but shape [${shape}] needs ${size}`);
  }
  return ndarray(data, [...shape]);
}

/**
 * Builds an {@link ImageSet} after checking that `images` is a contiguous `[N, H, W, C]`
 * float32 view and `labels` (if any) has length N with non-negative integers.
 */
export function imageSet(
  images: ImageArray,
  labels?: Labels,
  classNames?: readonly string[],
): ImageSet {
  checkContiguous(images, 4, "images");
  if (labels !== undefined && labels.length !== images.shape[0]) {
    throw new RangeError(
      `labels must have length N = ${
        images.shape[0]
      } (images [${images.shape}]), got ${labels.length}`,
    );
  }
  if (labels instanceof Int32Array) {
    const bad = labels.findIndex((l) => l < 0);
    if (bad >= 0) throw new RangeError(`labels[${bad}] must be >= 0, got ${labels[bad]}`);
  }
  return { images, labels, classNames };
}

/** Maps a byte value 0..255 to [-1, 1]: `b / 127.5 - 1`. */
export function byteToUnit(b: number): number {
  return b / 127.5 - 1;
}

/**
 * Maps a value in [-1, 1] to a byte 0..255 (clipped, rounded). Throws a RangeError for
 * NaN; `where` names the value in the message.
 */
export function unitToByte(x: number, where: string): number {
  if (Number.isNaN(x)) throw new RangeError(`${where} is NaN; expected a value in [-1, 1]`);
  const b = Math.round((x + 1) * 127.5);
  return b < 0 ? 0 : b > 255 ? 255 : b;
}

/**
 * Copies the rows `indices` (default: all, in order) of an `[N, ...]` array into a new
 * contiguous Float32Array of shape `[indices.length, ...]`.
 */
export function gatherRows(images: ImageArray, indices?: ArrayLike<number>): ImageArray {
  const rank = images.shape.length;
  const row = checkContiguous(images, rank, "images");
  const n = images.shape[0];
  const idx = indices ?? Int32Array.from({ length: n }, (_, i) => i);
  const out = new Float32Array(idx.length * row);
  for (let b = 0; b < idx.length; b++) {
    const i = idx[b];
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      throw new RangeError(`indices[${b}] must be an integer in [0, ${n - 1}], got ${i}`);
    }
    const start = images.offset + i * row;
    out.set(images.data.subarray(start, start + row), b * row);
  }
  return ndarray(out, [idx.length, ...images.shape.slice(1)]);
}

/**
 * The rows `indices` of an image set (images copied, labels gathered, class names kept).
 * Default: all rows, as a copy.
 */
export function subset(set: ImageSet, indices?: ArrayLike<number>): ImageSet {
  const images = gatherRows(set.images, indices);
  if (!set.labels) return { images, classNames: set.classNames };
  const labels = set.labels instanceof Uint8Array
    ? new Uint8Array(images.shape[0])
    : new Int32Array(images.shape[0]);
  for (let b = 0; b < labels.length; b++) labels[b] = set.labels[indices ? indices[b] : b];
  return { images, labels, classNames: set.classNames };
}

/**
 * Concatenates image sets along N. All must share `[H, W, C]`; either all or none are
 * labelled. Labels come out as Int32Array; class names are taken from the first set.
 */
export function concatSets(sets: readonly ImageSet[]): ImageSet {
  if (sets.length === 0) throw new RangeError("sets must contain at least one ImageSet");
  const [first] = sets;
  const dims = first.images.shape.slice(1);
  const row = checkContiguous(first.images, 4, "sets[0].images");
  let n = 0;
  sets.forEach((s, k) => {
    checkContiguous(s.images, 4, `sets[${k}].images`);
    if (s.images.shape.slice(1).join() !== dims.join()) {
      throw new RangeError(
        `sets[${k}].images must have [H, W, C] = [${dims}], got [${s.images.shape.slice(1)}]`,
      );
    }
    if (!s.labels !== !first.labels) {
      throw new TypeError(`sets[${k}] ${s.labels ? "has" : "lacks"} labels unlike sets[0]`);
    }
    n += s.images.shape[0];
  });
  const data = new Float32Array(n * row);
  const labels = first.labels ? new Int32Array(n) : undefined;
  let at = 0;
  for (const s of sets) {
    const m = s.images.shape[0];
    data.set(s.images.data.subarray(s.images.offset, s.images.offset + m * row), at * row);
    labels?.set(s.labels!, at);
    at += m;
  }
  return { images: ndarray(data, [n, ...dims]), labels, classNames: first.classNames };
}

/**
 * A tfjs tensor `[B, H, W, C]` float32 of the rows `indices` (default: all rows) of an
 * `[N, H, W, C]` image array or image set. The caller owns (and must dispose) the tensor.
 */
export function toTensor(
  images: ImageArray | ImageSet,
  indices?: ArrayLike<number>,
): tf.Tensor4D {
  const arr = "images" in images ? images.images : images;
  checkContiguous(arr, 4, "images");
  const rows = gatherRows(arr, indices);
  const [b, h, w, c] = rows.shape;
  return tf.tensor4d(rows.data, [b, h, w, c], "float32");
}

/**
 * An image array `[B, H, W, C]` (float32, contiguous) holding the values of a 4-D tfjs
 * tensor (e.g. generated samples), for PNG grids and `.npy` files.
 */
export async function fromTensor(x: tf.Tensor4D): Promise<ImageArray> {
  if (x.rank !== 4) throw new RangeError(`x must be a 4-D tensor [B,H,W,C], got [${x.shape}]`);
  const data = await x.data();
  return ndarray(Float32Array.from(data), [...x.shape]);
}

/**
 * Bilinear resize of one image `[H, W, C]` to `[height, width, C]` (pixel centres aligned
 * as in `tf.image.resizeBilinear(..., halfPixelCenters=true)`; no antialiasing, so strong
 * downscaling aliases).
 */
export function resizeBilinear(image: ImageArray, height: number, width: number): ImageArray {
  checkContiguous(image, 3, "image");
  for (const [k, v] of [["height", height], ["width", width]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${k} must be a positive integer, got ${v}`);
    }
  }
  const [h, w, c] = image.shape;
  const src = (y: number, x: number, k: number) => image.data[image.offset + (y * w + x) * c + k];
  const out = new Float32Array(height * width * c);
  const axis = (i: number, from: number, to: number): [number, number, number] => {
    const p = Math.min(Math.max((i + 0.5) * (from / to) - 0.5, 0), from - 1);
    const i0 = Math.floor(p);
    return [i0, Math.min(i0 + 1, from - 1), p - i0];
  };
  for (let y = 0; y < height; y++) {
    const [y0, y1, fy] = axis(y, h, height);
    for (let x = 0; x < width; x++) {
      const [x0, x1, fx] = axis(x, w, width);
      for (let k = 0; k < c; k++) {
        const top = src(y0, x0, k) * (1 - fx) + src(y0, x1, k) * fx;
        const bottom = src(y1, x0, k) * (1 - fx) + src(y1, x1, k) * fx;
        out[(y * width + x) * c + k] = top * (1 - fy) + bottom * fy;
      }
    }
  }
  return ndarray(out, [height, width, c]);
}
