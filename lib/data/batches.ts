/**
 * Seeded data order: shuffling, train/test splits, random horizontal flips, and a batch
 * iterator whose position (seed, epoch, position) can be saved in a checkpoint so that a
 * resumed run sees exactly the batches it would have seen without the interruption.
 *
 * Each epoch's order and flips come from fresh generators seeded with
 * `"<seed>/order/<epoch>"` and `"<seed>/flip/<epoch>"`, so they depend only on the seed and
 * the epoch number, never on how many batches were drawn before.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Rng } from "../core/rng.ts";
import { checkContiguous, gatherRows, type ImageArray, type ImageSet, subset } from "./images.ts";

/** A shuffled copy of `items` (Fisher-Yates with `rng`). */
export function shuffle<T>(items: readonly T[], rng: Rng): T[] {
  return Array.from(rng.permutation(items.length), (i) => items[i]);
}

/** How to split: exactly one of `nTest` (a count) or `testFraction` (in [0, 1)). */
export interface SplitOptions {
  /** Number of test items, 0 <= nTest < N. */
  readonly nTest?: number;
  /** Fraction of items for the test part; nTest = round(fraction * N). */
  readonly testFraction?: number;
  /** Seed of the random choice of test items (default 0). */
  readonly seed?: number | string;
}

/**
 * Splits 0..n-1 into disjoint `train` and `test` index lists (each ascending) with a
 * seeded random choice of the test items: the same seed gives the same split.
 */
export function splitIndices(
  n: number,
  opts: SplitOptions,
): { train: Int32Array; test: Int32Array } {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be a positive integer, got ${n}`);
  if ((opts.nTest === undefined) === (opts.testFraction === undefined)) {
    throw new TypeError("split options need exactly one of nTest or testFraction");
  }
  if (opts.testFraction !== undefined && !(opts.testFraction >= 0 && opts.testFraction < 1)) {
    throw new RangeError(`testFraction must be in [0, 1), got ${opts.testFraction}`);
  }
  const nTest = opts.nTest ?? Math.round(opts.testFraction! * n);
  if (!Number.isInteger(nTest) || nTest < 0 || nTest >= n) {
    throw new RangeError(`nTest must be an integer in [0, ${n - 1}], got ${nTest}`);
  }
  const perm = new Rng(`${opts.seed ?? 0}/split`).permutation(n);
  return {
    train: perm.slice(nTest).sort(),
    test: perm.slice(0, nTest).sort(),
  };
}

/** Splits an image set into disjoint train and test sets (see {@link splitIndices}). */
export function trainTestSplit(
  set: ImageSet,
  opts: SplitOptions,
): { train: ImageSet; test: ImageSet } {
  const { train, test } = splitIndices(set.images.shape[0], opts);
  return { train: subset(set, train), test: subset(set, test) };
}

/**
 * Mirrors the images `b` with `which[b]` truthy left-right, in place. `images` is a
 * contiguous `[B, H, W, C]` array; `which` has length B.
 */
export function flipHorizontal(images: ImageArray, which: ArrayLike<number | boolean>): void {
  checkContiguous(images, 4, "images");
  const [n, h, w, c] = images.shape;
  if (which.length !== n) {
    throw new RangeError(`which must have length B = ${n}, got ${which.length}`);
  }
  const d = images.data;
  for (let b = 0; b < n; b++) {
    if (!which[b]) continue;
    for (let y = 0; y < h; y++) {
      const row = images.offset + (b * h + y) * w * c;
      for (let x = 0; x < w >> 1; x++) {
        const l = row + x * c;
        const r = row + (w - 1 - x) * c;
        for (let k = 0; k < c; k++) {
          const t = d[l + k];
          d[l + k] = d[r + k];
          d[r + k] = t;
        }
      }
    }
  }
}

/** Augmentation applied to each batch. */
export type FlipMode = "none" | "random-horizontal";

/** Options of a {@link BatchIterator}. */
export interface BatchOptions {
  /** Samples per batch (>= 1). */
  readonly batchSize: number;
  /** Seed of the data order and flips. */
  readonly seed: number | string;
  /** Skip an epoch's last batch when it is smaller than batchSize (default false). */
  readonly dropLast?: boolean;
  /** "random-horizontal": each sample is mirrored with probability 1/2 (default "none"). */
  readonly flip?: FlipMode;
  /** Visit samples in a seeded random order each epoch (default true) or in index order. */
  readonly shuffle?: boolean;
}

/** JSON-serialisable position of a {@link BatchIterator} (for checkpoints). */
export interface BatchIteratorState {
  /** The seed the iterator was created with. */
  readonly seed: number | string;
  /** Current epoch, from 0. */
  readonly epoch: number;
  /** Samples of the current epoch already served. */
  readonly position: number;
  /** N of the data set, checked on restore. */
  readonly size: number;
}

/** One batch: copied pixels plus where they came from. */
export interface DataBatch {
  /** Pixels `[B, H, W, C]` in [-1, 1] (a copy; flips already applied). */
  readonly images: ImageArray;
  /** Labels `[B]`, when the set is labelled. */
  readonly labels?: Int32Array;
  /** Row of each sample in the set `[B]`. */
  readonly indices: Int32Array;
  /** 1 where the sample was mirrored, else 0 `[B]`. */
  readonly flipped: Uint8Array;
  /** Epoch the batch belongs to. */
  readonly epoch: number;
}

/**
 * Serves batches of an image set epoch after epoch, endlessly. Every sample is served once
 * per epoch; a batch never spans two epochs. The position can be saved with
 * {@link BatchIterator.state} and restored by passing it to the constructor.
 */
export class BatchIterator {
  readonly #set: ImageSet;
  readonly #opts: Required<BatchOptions>;
  #epoch: number;
  #position: number;
  #order: Int32Array | null = null;
  #flips: Uint8Array | null = null;

  /**
   * Starts at epoch 0 (or at `state`); RangeError for a bad batch size or a mismatched state.
   * @param set the data (N >= batchSize when dropLast).
   * @param opts batch size, seed, dropLast, flip, shuffle.
   * @param state a saved {@link BatchIteratorState} to continue from (its seed and size
   *   must match `opts.seed` and the set's N).
   */
  constructor(set: ImageSet, opts: BatchOptions, state?: BatchIteratorState) {
    checkContiguous(set.images, 4, "set.images");
    const n = set.images.shape[0];
    const { batchSize } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    }
    if (n < 1 || (opts.dropLast && n < batchSize)) {
      throw new RangeError(
        `set must hold at least ${opts.dropLast ? batchSize : 1} images, got N = ${n}`,
      );
    }
    const flip = opts.flip ?? "none";
    if (flip !== "none" && flip !== "random-horizontal") {
      throw new RangeError(`flip must be "none" or "random-horizontal", got ${flip}`);
    }
    this.#set = set;
    this.#opts = { dropLast: false, shuffle: true, ...opts, flip };
    this.#epoch = state?.epoch ?? 0;
    this.#position = state?.position ?? 0;
    if (state) {
      if (state.seed !== opts.seed) {
        throw new RangeError(`state.seed ${state.seed} differs from opts.seed ${opts.seed}`);
      }
      if (state.size !== n) {
        throw new RangeError(`state.size ${state.size} differs from the set's N = ${n}`);
      }
      if (!Number.isInteger(state.epoch) || state.epoch < 0) {
        throw new RangeError(`state.epoch must be a non-negative integer, got ${state.epoch}`);
      }
      if (!Number.isInteger(state.position) || state.position < 0 || state.position > n) {
        throw new RangeError(
          `state.position must be an integer in [0, ${n}], got ${state.position}`,
        );
      }
    }
  }

  /** Current epoch (from 0). */
  get epoch(): number {
    return this.#epoch;
  }

  /** Batches per epoch: ceil(N / batchSize), or floor with dropLast. */
  get batchesPerEpoch(): number {
    const n = this.#set.images.shape[0];
    const round = this.#opts.dropLast ? Math.floor : Math.ceil;
    return round(n / this.#opts.batchSize);
  }

  /** The position to save; pass it to the constructor to continue identically. */
  state(): BatchIteratorState {
    return {
      seed: this.#opts.seed,
      epoch: this.#epoch,
      position: this.#position,
      size: this.#set.images.shape[0],
    };
  }

  /** True when the current epoch has no batch left (the next batch starts a new epoch). */
  get epochDone(): boolean {
    const left = this.#set.images.shape[0] - this.#position;
    return left === 0 || (this.#opts.dropLast && left < this.#opts.batchSize);
  }

  /** The next batch, moving to the next epoch first when the current one is done. */
  next(): DataBatch {
    if (this.epochDone) {
      this.#epoch++;
      this.#position = 0;
      this.#order = null;
      this.#flips = null;
    }
    const n = this.#set.images.shape[0];
    const order = this.#order ??= this.#opts.shuffle
      ? new Rng(`${this.#opts.seed}/order/${this.#epoch}`).permutation(n)
      : Int32Array.from({ length: n }, (_, i) => i);
    const end = Math.min(n, this.#position + this.#opts.batchSize);
    const indices = order.slice(this.#position, end);
    const flipped = new Uint8Array(indices.length);
    if (this.#opts.flip === "random-horizontal") {
      const flips = this.#flips ??= this.#epochFlips(n);
      flipped.set(flips.subarray(this.#position, end));
    }
    this.#position = end;
    const images = gatherRows(this.#set.images, indices);
    flipHorizontal(images, flipped);
    const labels = this.#set.labels
      ? Int32Array.from(indices, (i) => this.#set.labels![i])
      : undefined;
    return { images, labels, indices, flipped, epoch: this.#epoch };
  }

  /** The remaining batches of the current epoch (all of the next one if it is done). */
  *epochBatches(): Generator<DataBatch> {
    const epoch = this.epochDone ? this.#epoch + 1 : this.#epoch;
    while (!(this.#epoch === epoch && this.epochDone)) yield this.next();
  }

  #epochFlips(n: number): Uint8Array {
    const rng = new Rng(`${this.#opts.seed}/flip/${this.#epoch}`);
    return Uint8Array.from({ length: n }, () => (rng.uniform() < 0.5 ? 1 : 0));
  }
}

/** A {@link BatchIterator} over `set` (optionally resumed from `state`). */
export function batchIterator(
  set: ImageSet,
  opts: BatchOptions,
  state?: BatchIteratorState,
): BatchIterator {
  return new BatchIterator(set, opts, state);
}

/**
 * tfjs tensors of a batch: `x` float32 `[B, H, W, C]` and, when labelled, `y` int32 `[B]`.
 * The caller disposes them.
 */
export function batchTensors(batch: DataBatch): { x: tf.Tensor4D; y?: tf.Tensor1D } {
  const [b, h, w, c] = batch.images.shape;
  return {
    x: tf.tensor4d(batch.images.data, [b, h, w, c], "float32"),
    y: batch.labels ? tf.tensor1d(batch.labels, "int32") : undefined,
  };
}
