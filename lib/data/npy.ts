/**
 * NumPy `.npy` (format versions 1.0, 2.0 and 3.0, C order) and `.npz` (a zip of `.npy`
 * members, stored or deflated) read and write.
 *
 * Supported dtypes and their typed arrays: `<f4` Float32Array, `<f8` Float64Array, `<i4`
 * Int32Array, `|u1` / `<u1` Uint8Array, `<i8` BigInt64Array (kept exact as BigInt; convert
 * with `Float64Array.from(a, Number)` if float64 is wanted). Written files use `|u1` for
 * Uint8Array, as numpy does. Big-endian dtypes and `fortran_order: True` throw. The typed
 * arrays use the host byte order, so this module assumes a little-endian host (every
 * platform Deno ships for is).
 * @module
 */
// @ts-types="@types/ndarray"
import ndarray from "ndarray";
import { unzipSync, zipSync } from "fflate";
import { byteToUnit, type ImageSet } from "./images.ts";

/** The `.npy` dtypes handled here. */
export type NpyDtype = "<f4" | "<f8" | "<i4" | "|u1" | "<u1" | "<i8";

/** The typed array holding each {@link NpyDtype}. */
export type NpyData = Float32Array | Float64Array | Int32Array | Uint8Array | BigInt64Array;

/** A C-ordered array: dtype descriptor, shape (`[]` for a scalar) and values. */
export interface NpyArray {
  /** The header's `descr`: byte order, kind and item size. */
  readonly dtype: NpyDtype;
  /** Dimensions, outermost first (C order). */
  readonly shape: readonly number[];
  /** The values, flat in C order; length is the product of `shape`. */
  readonly data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

const MAKERS: Readonly<Record<NpyDtype, (buf: ArrayBuffer) => NpyData>> = {
  "<f4": (b) => new Float32Array(b),
  "<f8": (b) => new Float64Array(b),
  "<i4": (b) => new Int32Array(b),
  "|u1": (b) => new Uint8Array(b),
  "<u1": (b) => new Uint8Array(b),
  "<i8": (b) => new BigInt64Array(b),
};

function dtypeOfData(data: NpyData): NpyDtype {
  if (data instanceof Float32Array) return "<f4";
  if (data instanceof Float64Array) return "<f8";
  if (data instanceof Int32Array) return "<i4";
  if (data instanceof Uint8Array) return "|u1";
  if (data instanceof BigInt64Array) return "<i8";
  throw new TypeError(
    "data must be a Float32Array, Float64Array, Int32Array, Uint8Array or BigInt64Array",
  );
}

function field(header: string, key: string, pattern: string, name: string): string {
  const m = new RegExp(`['"]${key}['"]\\s*:\\s*${pattern}`).exec(header);
  if (!m) throw new TypeError(`${name}: .npy header lacks a valid '${key}' entry: ${header}`);
  return m[1];
}

/**
 * Parses `.npy` bytes. Errors name `name` (e.g. the file path) and the offset: bad magic,
 * unsupported version, truncated header, unsupported dtype, Fortran order, or a data
 * section whose length differs from what the shape needs.
 */
export function parseNpy(bytes: Uint8Array, name: string): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new TypeError(`${name}: bad .npy magic at offset 0: expected "\\x93NUMPY"`);
  }
  const major = bytes[6];
  if (major < 1 || major > 3) {
    throw new RangeError(`${name}: .npy version ${major}.${bytes[7]} at offset 6: expected 1..3`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) {
    throw new RangeError(`${name}: truncated .npy header length at offset 8`);
  }
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = 8 + lenBytes;
  const dataStart = headerStart + headerLen;
  if (bytes.length < dataStart) {
    throw new RangeError(
      `${name}: truncated .npy header at offset ${headerStart}: expected ${headerLen} bytes, ` +
        `found ${bytes.length - headerStart}`,
    );
  }
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
    bytes.subarray(headerStart, dataStart),
  );
  const descr = field(header, "descr", "['\"]([^'\"]*)['\"]", name);
  if (!(descr in MAKERS)) {
    throw new TypeError(
      `${name}: unsupported .npy dtype '${descr}'; expected one of ${Object.keys(MAKERS)}`,
    );
  }
  if (field(header, "fortran_order", "(True|False)", name) === "True") {
    throw new TypeError(`${name}: fortran_order True is not supported; save a C-ordered array`);
  }
  const shapeText = field(header, "shape", "\\(([^)]*)\\)", name);
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new TypeError(`${name}: bad .npy shape (${shapeText})`);
  }
  const dtype = descr as NpyDtype;
  const itemSize = Number(dtype.slice(2));
  const expected = shape.reduce((a, b) => a * b, 1) * itemSize;
  const found = bytes.length - dataStart;
  if (found !== expected) {
    throw new RangeError(
      `${name}: .npy data ${found < expected ? "truncated" : "too long"} at offset ` +
        `${dataStart}: expected ${expected} bytes (shape [${shape}] of ${dtype}), found ${found}`,
    );
  }
  return { dtype, shape, data: MAKERS[dtype](bytes.slice(dataStart).buffer) };
}

/**
 * Encodes `data` with `shape` as `.npy` bytes (version 1.0, or 2.0 when the header needs
 * more than 65535 bytes), C order, dtype from the typed array (see the module doc).
 * The header is space-padded so that the data starts at a multiple of 64 bytes.
 */
export function encodeNpy(shape: readonly number[], data: NpyData): Uint8Array {
  const dtype = dtypeOfData(data);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new RangeError(`shape must be non-negative integers, got [${shape}]`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new RangeError(`data has length ${data.length} but shape [${shape}] needs ${count}`);
  }
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  const dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const version = dict.length + 64 > 65535 ? 2 : 1;
  const prefix = version === 1 ? 10 : 12;
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const header = dict.padEnd(total - prefix - 1, " ") + "\n";
  const out = new Uint8Array(total + data.byteLength);
  const view = new DataView(out.buffer);
  out.set(MAGIC);
  out.set([version, 0], 6);
  if (version === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(new TextEncoder().encode(header), prefix);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}

/** Reads a `.npy` file (see {@link parseNpy}; errors name `path`). */
export async function readNpy(path: string): Promise<NpyArray> {
  return parseNpy(await Deno.readFile(path), path);
}

/** Writes `data` with `shape` to a `.npy` file (see {@link encodeNpy}). */
export async function writeNpy(
  path: string,
  shape: readonly number[],
  data: NpyData,
): Promise<void> {
  await Deno.writeFile(path, encodeNpy(shape, data));
}

/**
 * Parses `.npz` bytes into arrays keyed by member name without the `.npy` suffix (as
 * `numpy.load(...)[key]`); members not ending in `.npy` are skipped. Errors from the zip layer or from a member name `name` and,
 * for members, `name:member.npy`.
 */
export function parseNpz(bytes: Uint8Array, name: string): Record<string, NpyArray> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (e) {
    throw new TypeError(`${name}: not a readable .npz zip (${e instanceof Error ? e.message : e})`);
  }
  const out: Record<string, NpyArray> = {};
  for (const [member, content] of Object.entries(files)) {
    if (!member.endsWith(".npy")) continue;
    out[member.slice(0, -4)] = parseNpy(content, `${name}:${member}`);
  }
  return out;
}

/**
 * Encodes arrays as `.npz` bytes: one `<key>.npy` member per entry, deflated when
 * `compress` (as `numpy.savez_compressed`), else stored (as `numpy.savez`).
 */
export function encodeNpz(
  arrays: Readonly<Record<string, { shape: readonly number[]; data: NpyData }>>,
  compress = false,
): Uint8Array {
  const files: Record<string, Uint8Array> = {};
  for (const [key, a] of Object.entries(arrays)) files[`${key}.npy`] = encodeNpy(a.shape, a.data);
  return zipSync(files, { level: compress ? 6 : 0 });
}

/** Reads a `.npz` file (see {@link parseNpz}). */
export async function readNpz(path: string): Promise<Record<string, NpyArray>> {
  return parseNpz(await Deno.readFile(path), path);
}

/** Writes arrays to a `.npz` file (see {@link encodeNpz}). */
export async function writeNpz(
  path: string,
  arrays: Readonly<Record<string, { shape: readonly number[]; data: NpyData }>>,
  compress = false,
): Promise<void> {
  await Deno.writeFile(path, encodeNpz(arrays, compress));
}

/**
 * An image set from `.npy` arrays: `images` `[N, H, W]` or `[N, H, W, C]`, either uint8
 * (scaled by `b / 127.5 - 1`) or float32/float64 already in [-1, 1] (other values throw);
 * `labels` (optional) integer `[N]` (`<i4`, `<i8` or uint8) with values >= 0.
 */
export function npyImageSet(images: NpyArray, labels?: NpyArray): ImageSet {
  const { shape, data } = images;
  if (shape.length !== 3 && shape.length !== 4) {
    throw new RangeError(`images must be [N, H, W] or [N, H, W, C], got [${shape}]`);
  }
  let pixels: Float32Array;
  if (data instanceof Uint8Array) pixels = Float32Array.from(data, byteToUnit);
  else if (data instanceof Float32Array || data instanceof Float64Array) {
    const bad = data.findIndex((x: number) => !(x >= -1 && x <= 1));
    if (bad >= 0) {
      throw new RangeError(`images values must be in [-1, 1], got ${data[bad]} at index ${bad}`);
    }
    pixels = Float32Array.from(data);
  } else throw new TypeError(`images must be uint8, float32 or float64, got ${images.dtype}`);
  const [n, h, w, c = 1] = shape;
  if (labels === undefined) return { images: ndarray(pixels, [n, h, w, c]) };
  if (
    labels.shape.length !== 1 || labels.shape[0] !== n || labels.data instanceof Float32Array ||
    labels.data instanceof Float64Array
  ) {
    throw new RangeError(`labels must be integer [${n}], got ${labels.dtype} [${labels.shape}]`);
  }
  const ints = Int32Array.from(labels.data as ArrayLike<number | bigint>, Number);
  const bad = ints.findIndex((l) => l < 0);
  if (bad >= 0) throw new RangeError(`labels[${bad}] must be >= 0, got ${ints[bad]}`);
  return { images: ndarray(pixels, [n, h, w, c]), labels: ints };
}
