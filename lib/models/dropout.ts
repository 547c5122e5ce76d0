/**
 * Seeded, resumable dropout. The mask of every dropout call is a pure function of a step
 * seed, the call's position within the step and the element index, computed by a
 * counter-based integer hash in one typed-array loop (no stateful JS randomness). The
 * {@link Trainer} runs each step's loss inside {@link withDropoutSeed} with the seed
 * {@link stepDropoutSeed}(run seed, step), so a run resumed from a checkpoint draws exactly
 * the masks an uninterrupted run draws.
 *
 * The layer multiplies by a mask tensor holding 0 or 1/(1-rate); tfjs' gradient of that
 * multiply reuses the same mask in the backward pass. The mask is built on the CPU and
 * uploaded, so the layer runs on every backend (cpu, wasm, webgpu).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { opOutput } from "../tfjs/op_arrays.ts";
import { freshArray } from "../tfjs/output_pool.ts";
import { fastCpuNative } from "../tfjs/fast_cpu.ts";

/** 32-bit avalanche hash (xor-shift-multiply finaliser); maps uint32 to uint32. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

const GOLDEN = 0x9e3779b9;
const SIGN_BIT = -0x80000000;

/**
 * The dropout seed of training step `step` (0-based) of a run seeded with `runSeed`: a hash
 * of both, so consecutive steps get unrelated masks. `runSeed` is taken modulo 2^32.
 */
export function stepDropoutSeed(runSeed: number, step: number): number {
  if (!Number.isInteger(step) || step < 0) {
    throw new RangeError(`step must be a non-negative integer, got ${step}`);
  }
  return mix32(mix32(runSeed >>> 0) ^ Math.imul(step + 1, GOLDEN));
}

/**
 * The mask of one dropout call: `n` float32 values, each 0 (dropped, probability `rate`) or
 * 1 / (1 - rate) (kept), drawn from the stream `(seed, call)`. The same arguments always
 * give the same mask. `alloc` makes the array (every value is written). With the fast CPU
 * path's native kernels the same loop runs there, split over its threads (equal masks).
 */
export function dropoutMask(
  n: number,
  rate: number,
  seed: number,
  call: number,
  alloc: (n: number) => Float32Array = freshArray,
): Float32Array {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`n must be a non-negative integer, got ${n}`);
  }
  checkRate(rate);
  const mask = alloc(n);
  const scale = 1 / (1 - rate);
  const key = mix32((seed >>> 0) ^ mix32(Math.imul(call + 1, GOLDEN)));
  // rate · 2^32 as a uint32 (a rate within 2^-33 of 1 would round to 2^32)
  const cut = Math.min(Math.round(rate * 2 ** 32), 2 ** 32 - 1);
  const native = fastCpuNative();
  if (native) {
    native.dropoutMask(mask, key, cut, scale);
    return mask;
  }
  // Keep element i iff mix32(key + i·GOLDEN) >= rate · 2^32 as uint32, compared as int32 with
  // both sides' sign bits flipped, and mix32 inlined: int32 arithmetic throughout (a uint32
  // result above 2^31 is a double in V8), ~1.2x faster than calling mix32.
  const threshold = (cut - 2 ** 31) | 0;
  let h = key | 0;
  for (let i = 0; i < n; i++) {
    let x = Math.imul(h ^ (h >>> 16), 0x7feb352d);
    x = Math.imul(x ^ (x >>> 15), 0x846ca68b | 0);
    mask[i] = (x ^ (x >>> 16) ^ SIGN_BIT) >= threshold ? scale : 0;
    h = (h + GOLDEN) | 0;
  }
  return mask;
}

function checkRate(rate: number): void {
  if (!(rate >= 0 && rate < 1)) throw new RangeError(`rate must be in [0, 1), got ${rate}`);
}

/** Where the next dropout call draws its mask: the step seed and the calls made so far. */
interface DropoutStream {
  seed: number;
  calls: number;
}

/** Used outside any {@link withDropoutSeed} scope: seed 0, counting for the whole process. */
const processStream: DropoutStream = { seed: 0, calls: 0 };
let active: DropoutStream = processStream;

/**
 * Runs `fn` with dropout masks drawn from the stream of `seed`: the k-th dropout call inside
 * `fn` (in execution order) uses {@link dropoutMask}(n, rate, seed, k). Scopes nest; the
 * previous stream is restored afterwards. `fn` must be synchronous (tfjs graphs are).
 */
export function withDropoutSeed<T>(seed: number, fn: () => T): T {
  const outer = active;
  active = { seed: seed >>> 0, calls: 0 };
  try {
    return fn();
  } finally {
    active = outer;
  }
}

/**
 * `x * mask` with a mask from the current dropout stream ({@link withDropoutSeed}); `x` of
 * any shape. Identity when `rate` is 0. Differentiable: the gradient is `dy * mask`.
 */
export function seededDropout<T extends tf.Tensor>(x: T, rate: number): T {
  checkRate(rate);
  if (rate === 0) return x;
  const mask = dropoutMask(x.size, rate, active.seed, active.calls++, opOutput);
  return tf.tidy(() => tf.mul(x, tf.tensor(mask, x.shape, "float32")));
}

/** Config of {@link SeededDropout}. */
export interface SeededDropoutArgs {
  /** Probability in [0, 1) that an element is zeroed. */
  rate: number;
  /** Layer name. */
  name?: string;
}

/**
 * Dropout layer with seeded, resumable masks ({@link seededDropout}); active only when
 * called with `training: true`, the identity otherwise. Any input shape. No weights.
 */
export class SeededDropout extends tf.layers.Layer {
  /** Registered class name (model.json). */
  static className = "RddDropout";
  private readonly rate: number;

  /** A dropout layer of `args.rate` (in [0, 1)), optionally named `args.name`. */
  constructor(args: SeededDropoutArgs) {
    super({ name: args.name });
    checkRate(args.rate);
    this.rate = args.rate;
  }

  /** Same shape as the input. */
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  /** `x * mask` with `kwargs.training`, else `x` unchanged. */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    if (Array.isArray(inputs) && inputs.length !== 1) {
      throw new TypeError(`SeededDropout takes one input, got ${inputs.length}`);
    }
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return kwargs.training ? seededDropout(x, this.rate) : x;
  }

  /** Serialised config: the rate and the base layer's fields. */
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate };
  }
}

tf.serialization.registerClass(SeededDropout);
