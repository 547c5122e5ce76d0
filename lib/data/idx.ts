/**
 * IDX files (the original MNIST format): magic `0x00 0x00 <dtype> <ndim>`, then `ndim`
 * big-endian uint32 dimensions, then the values in big-endian, row-major order.
 * @module
 */
// @ts-types="@types/ndarray"
import ndarray from "ndarray";
import { byteToUnit, type ImageSet } from "./images.ts";

/** IDX element types: ubyte 0x08, sbyte 0x09, short 0x0B, int 0x0C, float 0x0D, double 0x0E. */
export type IdxDtype = "ubyte" | "sbyte" | "short" | "int" | "float" | "double";

/** The typed array holding each {@link IdxDtype}. */
export type IdxData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Float32Array
  | Float64Array;

/** A decoded IDX array: element type, shape (row-major) and values in native typed arrays. */
export interface IdxArray {
  /** Element type from the file's magic number. */
  readonly dtype: IdxDtype;
  /** Dimensions from the header, outermost first (MNIST images: `[N, 28, 28]`). */
  readonly shape: readonly number[];
  /** The values, flat in row-major order; length is the product of `shape`. */
  readonly data: IdxData;
}

interface IdxType {
  readonly code: number;
  readonly size: number;
  readonly make: (n: number) => IdxData;
  readonly get: (v: DataView, at: number) => number;
  readonly set: (v: DataView, at: number, x: number) => void;
}

const IDX_TYPES: Readonly<Record<IdxDtype, IdxType>> = {
  ubyte: {
    code: 0x08,
    size: 1,
    make: (n) => new Uint8Array(n),
    get: (v, at) => v.getUint8(at),
    set: (v, at, x) => v.setUint8(at, x),
  },
  sbyte: {
    code: 0x09,
    size: 1,
    make: (n) => new Int8Array(n),
    get: (v, at) => v.getInt8(at),
    set: (v, at, x) => v.setInt8(at, x),
  },
  short: {
    code: 0x0b,
    size: 2,
    make: (n) => new Int16Array(n),
    get: (v, at) => v.getInt16(at),
    set: (v, at, x) => v.setInt16(at, x),
  },
  int: {
    code: 0x0c,
    size: 4,
    make: (n) => new Int32Array(n),
    get: (v, at) => v.getInt32(at),
    set: (v, at, x) => v.setInt32(at, x),
  },
  float: {
    code: 0x0d,
    size: 4,
    make: (n) => new Float32Array(n),
    get: (v, at) => v.getFloat32(at),
    set: (v, at, x) => v.setFloat32(at, x),
  },
  double: {
    code: 0x0e,
    size: 8,
    make: (n) => new Float64Array(n),
    get: (v, at) => v.getFloat64(at),
    set: (v, at, x) => v.setFloat64(at, x),
  },
};

function dtypeOfCode(code: number): IdxDtype | undefined {
  return (Object.keys(IDX_TYPES) as IdxDtype[]).find((k) => IDX_TYPES[k].code === code);
}

function dtypeOfData(data: IdxData): IdxDtype {
  if (data instanceof Uint8Array) return "ubyte";
  if (data instanceof Int8Array) return "sbyte";
  if (data instanceof Int16Array) return "short";
  if (data instanceof Int32Array) return "int";
  if (data instanceof Float32Array) return "float";
  if (data instanceof Float64Array) return "double";
  throw new TypeError(
    "data must be a Uint8Array, Int8Array, Int16Array, Int32Array, Float32Array or Float64Array",
  );
}

/**
 * Parses IDX bytes. `name` (e.g. the file path) is named in every error: a bad magic
 * (first two bytes not zero, unknown type code, zero dimensions), a truncated header, or a
 * data section that is shorter or longer than the shape needs (with offset and sizes).
 */
export function parseIdx(bytes: Uint8Array, name: string): IdxArray {
  if (bytes.length < 4) {
    throw new RangeError(
      `${name}: truncated IDX header at offset 0: expected 4 magic bytes, found ${bytes.length}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dtype = dtypeOfCode(bytes[2]);
  const ndim = bytes[3];
  if (bytes[0] !== 0 || bytes[1] !== 0 || dtype === undefined || ndim === 0) {
    const hex = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, "0"));
    throw new TypeError(
      `${name}: bad IDX magic at offset 0: got 0x${hex.join(" 0x")}, expected 0x00 0x00 ` +
        `<type 0x08|0x09|0x0b|0x0c|0x0d|0x0e> <ndim >= 1>`,
    );
  }
  const dataStart = 4 + 4 * ndim;
  if (bytes.length < dataStart) {
    throw new RangeError(
      `${name}: truncated IDX header at offset 4: expected ${4 * ndim} bytes for ${ndim} ` +
        `dimensions, found ${bytes.length - 4}`,
    );
  }
  const shape = Array.from({ length: ndim }, (_, k) => view.getUint32(4 + 4 * k));
  const type = IDX_TYPES[dtype];
  const count = shape.reduce((a, b) => a * b, 1);
  const expected = count * type.size;
  const found = bytes.length - dataStart;
  if (found !== expected) {
    throw new RangeError(
      `${name}: IDX data ${found < expected ? "truncated" : "too long"} at offset ${dataStart}: ` +
        `expected ${expected} bytes (shape [${shape}] of ${dtype}), found ${found}`,
    );
  }
  const data = type.make(count);
  for (let i = 0; i < count; i++) data[i] = type.get(view, dataStart + i * type.size);
  return { dtype, shape, data };
}

/** Reads and parses an IDX file (see {@link parseIdx}; errors name `path`). */
export async function readIdx(path: string): Promise<IdxArray> {
  return parseIdx(await Deno.readFile(path), path);
}

/**
 * Encodes `data` with `shape` as IDX bytes; the IDX type follows the typed array
 * (Uint8Array -> ubyte, Int8Array -> sbyte, Int16Array -> short, Int32Array -> int,
 * Float32Array -> float, Float64Array -> double).
 */
export function encodeIdx(shape: readonly number[], data: IdxData): Uint8Array {
  const dtype = dtypeOfData(data);
  if (shape.length < 1 || shape.length > 255 || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new RangeError(`shape must be 1..255 non-negative integers, got [${shape}]`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new RangeError(`data has length ${data.length} but shape [${shape}] needs ${count}`);
  }
  const type = IDX_TYPES[dtype];
  const start = 4 + 4 * shape.length;
  const out = new Uint8Array(start + count * type.size);
  const view = new DataView(out.buffer);
  out.set([0, 0, type.code, shape.length]);
  shape.forEach((d, k) => view.setUint32(4 + 4 * k, d));
  for (let i = 0; i < count; i++) type.set(view, start + i * type.size, data[i]);
  return out;
}

/** Writes `data` with `shape` to an IDX file (see {@link encodeIdx}). */
export async function writeIdx(
  path: string,
  shape: readonly number[],
  data: IdxData,
): Promise<void> {
  await Deno.writeFile(path, encodeIdx(shape, data));
}

/**
 * An image set from IDX arrays: `images` ubyte `[N, H, W]` (gray) or `[N, H, W, C]`,
 * scaled to [-1, 1]; `labels` (optional) ubyte `[N]`. This is the layout of MNIST's
 * `train-images-idx3-ubyte` / `train-labels-idx1-ubyte`.
 */
export function idxImageSet(images: IdxArray, labels?: IdxArray): ImageSet {
  if (images.dtype !== "ubyte" || (images.shape.length !== 3 && images.shape.length !== 4)) {
    throw new RangeError(
      `images must be ubyte [N, H, W] or [N, H, W, C], got ${images.dtype} [${images.shape}]`,
    );
  }
  const [n, h, w, c = 1] = images.shape;
  if (labels && (labels.dtype !== "ubyte" || labels.shape.length !== 1 || labels.shape[0] !== n)) {
    throw new RangeError(`labels must be ubyte [${n}], got ${labels.dtype} [${labels.shape}]`);
  }
  const data = Float32Array.from(images.data, byteToUnit);
  return {
    images: ndarray(data, [n, h, w, c]),
    labels: labels ? Uint8Array.from(labels.data) : undefined,
  };
}

/** Reads an IDX image file and optional IDX label file into an image set ({@link idxImageSet}). */
export async function readIdxImageSet(imagesPath: string, labelsPath?: string): Promise<ImageSet> {
  return idxImageSet(
    await readIdx(imagesPath),
    labelsPath === undefined ? undefined : await readIdx(labelsPath),
  );
}
