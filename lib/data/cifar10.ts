/**
 * CIFAR-10 binary batches (`data_batch_1.bin` ... `data_batch_5.bin`, `test_batch.bin`):
 * records of 3073 bytes, 1 label byte (0..9) then 3072 pixel bytes as three 32x32 planes
 * (R, G, B), each plane row-major. Each batch file of the official release holds 10,000
 * records. Users bring their own files; nothing is downloaded.
 * @module
 */
// @ts-types="@types/ndarray"
import ndarray from "ndarray";
import { byteToUnit, concatSets, type ImageSet } from "./images.ts";

/** Side of a CIFAR-10 image in pixels. */
export const CIFAR10_SIZE = 32;
/** Bytes per record: 1 label byte + 3 planes of 32x32. */
export const CIFAR10_RECORD_BYTES: number = 1 + 3 * CIFAR10_SIZE * CIFAR10_SIZE;
/** Class names by label, from the dataset's `batches.meta.txt`. */
export const CIFAR10_CLASSES: readonly string[] = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
];

/**
 * Parses a CIFAR-10 binary batch into `[N, 32, 32, 3]` NHWC float32 in [-1, 1] with
 * Uint8Array labels `[N]`. Throws a RangeError naming `name`, the offset and the
 * expectation when the length is not a multiple of 3073 or a label byte exceeds 9.
 */
export function parseCifar10(bytes: Uint8Array, name: string): ImageSet {
  const rec = CIFAR10_RECORD_BYTES;
  if (bytes.length === 0 || bytes.length % rec !== 0) {
    const whole = Math.floor(bytes.length / rec);
    throw new RangeError(
      `${name}: length ${bytes.length} is not a positive multiple of ${rec}; the record at ` +
        `offset ${whole * rec} is truncated: expected ${rec} bytes (1 label + 3072 pixels), ` +
        `found ${bytes.length - whole * rec}`,
    );
  }
  const n = bytes.length / rec;
  const plane = CIFAR10_SIZE * CIFAR10_SIZE;
  const labels = new Uint8Array(n);
  const data = new Float32Array(n * 3 * plane);
  for (let i = 0; i < n; i++) {
    const at = i * rec;
    if (bytes[at] > 9) {
      throw new RangeError(
        `${name}: label ${bytes[at]} at offset ${at} (record ${i}) must be in 0..9`,
      );
    }
    labels[i] = bytes[at];
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < plane; p++) {
        data[(i * plane + p) * 3 + c] = byteToUnit(bytes[at + 1 + c * plane + p]);
      }
    }
  }
  return {
    images: ndarray(data, [n, CIFAR10_SIZE, CIFAR10_SIZE, 3]),
    labels,
    classNames: CIFAR10_CLASSES,
  };
}

/** Reads one CIFAR-10 binary batch file (see {@link parseCifar10}; errors name `path`). */
export async function readCifar10Batch(path: string): Promise<ImageSet> {
  return parseCifar10(await Deno.readFile(path), path);
}

/**
 * Reads several CIFAR-10 batch files (e.g. the five `data_batch_*.bin`, 50,000 images)
 * and concatenates them in the given order; labels come out as Int32Array `[N]`.
 */
export async function readCifar10(paths: readonly string[]): Promise<ImageSet> {
  const sets: ImageSet[] = [];
  for (const p of paths) sets.push(await readCifar10Batch(p));
  return concatSets(sets);
}

/**
 * Reads a CIFAR-10 binary directory: every `data_batch_*.bin` in it (name order; the
 * official five give 50,000 images) as the training set and `test_batch.bin` as the test
 * set, both `[N, 32, 32, 3]` in [-1, 1] with labels. Throws a RangeError naming `dir` when
 * either is missing.
 */
export async function readCifar10Dir(dir: string): Promise<{ train: ImageSet; test: ImageSet }> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && /^data_batch_.*\.bin$/.test(e.name)) names.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new RangeError(`data.path ${dir}: no such directory (CIFAR-10 binary files expected)`);
    }
    throw e;
  }
  const testPath = `${dir}/test_batch.bin`;
  const hasTest = await Deno.stat(testPath).then((s) => s.isFile, () => false);
  if (names.length === 0 || !hasTest) {
    throw new RangeError(
      `data.path ${dir}: expected data_batch_*.bin and test_batch.bin (CIFAR-10 binary version)`,
    );
  }
  names.sort();
  return {
    train: await readCifar10(names.map((n) => `${dir}/${n}`)),
    test: await readCifar10Batch(testPath),
  };
}
