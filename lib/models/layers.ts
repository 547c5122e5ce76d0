/**
 * Custom tfjs layers for the diffusion UNet: group normalisation (optionally fused with SiLU),
 * the sinusoidal embedding of the integer time index, a per-channel bias add for the time
 * embedding, and spatial self-attention. All are serialisable: each subclasses
 * `tf.layers.Layer`, has a `static className`, implements `getConfig`, and is registered with
 * `tf.serialization.registerClass` when this module is imported, so `tf.loadLayersModel`
 * can rebuild a saved model once this module has been loaded. Images are NHWC.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { checkPositiveInt } from "../core/checks.ts";
import { groupNormCpu } from "./group_norm_cpu.ts";
import { Rng } from "../core/rng.ts";

type Shape = (number | null)[];

function singleShape(inputShape: tf.Shape | tf.Shape[], layer: string): Shape {
  if (Array.isArray(inputShape[0])) {
    throw new TypeError(`${layer} takes one input, got ${inputShape.length}`);
  }
  return inputShape as Shape;
}

function singleTensor(inputs: tf.Tensor | tf.Tensor[], layer: string): tf.Tensor {
  if (Array.isArray(inputs)) {
    if (inputs.length !== 1) throw new TypeError(`${layer} takes one input, got ${inputs.length}`);
    return inputs[0];
  }
  return inputs;
}

function lastDim(shape: Shape, name: string, rank: number): number {
  const c = shape[shape.length - 1];
  if (shape.length !== rank || c == null) {
    throw new RangeError(`${name} must be rank ${rank} with a known last axis, got [${shape}]`);
  }
  return c;
}

/**
 * Seed of the initializer of the layer `name` in a model built with seed `modelSeed`: a
 * 31-bit integer drawn from the seeded generator of `"<modelSeed>/<name>"`, so every layer
 * gets its own stream and the initial weights depend only on the seed and the layer names.
 */
export function layerSeed(modelSeed: number, name: string): number {
  return new Rng(`${modelSeed}/${name}`).int(0, 2 ** 31 - 2);
}

/** x * sigmoid(x) (SiLU / swish), elementwise. */
export function silu<T extends tf.Tensor>(x: T): T {
  return tf.mul(x, tf.sigmoid(x));
}

/**
 * Number of groups GroupNorm uses for `channels` channels: the largest divisor g of
 * `channels` with g <= `maxGroups` (32 by default, as the reference) and
 * channels / g >= `minGroupChannels` (default 1). With the defaults this is exactly PyTorch's
 * `GroupNorm(32, C)` whenever C is a multiple of 32, and extends it to other widths (e.g.
 * 24 channels -> 24 groups, 48 -> 24), where the reference would fail.
 *
 * Caution: with ONE channel per group (e.g. C <= 32 with the defaults), GroupNorm removes any
 * per-channel constant, so a time / class embedding added as a per-channel bias right before it
 * (as in the UNet's ResBlocks) has no effect. `minGroupChannels` >= 2 avoids that.
 */
export function groupNormGroups(channels: number, maxGroups = 32, minGroupChannels = 1): number {
  const posInt = (v: number, name: string) => checkPositiveInt(name, v);
  posInt(channels, "channels");
  posInt(maxGroups, "maxGroups");
  posInt(minGroupChannels, "minGroupChannels");
  const top = Math.min(maxGroups, Math.floor(channels / minGroupChannels));
  for (let g = top; g > 1; g--) if (channels % g === 0) return g;
  return 1;
}

/** Config of {@link GroupNorm}. */
export interface GroupNormArgs {
  /** Upper bound on the number of groups; see {@link groupNormGroups}. Default 32. */
  maxGroups?: number;
  /** Lower bound on channels per group; see {@link groupNormGroups}. Default 1. */
  minGroupChannels?: number;
  /** Added to the variance. Default 1e-5 (PyTorch's default). */
  epsilon?: number;
  /** Apply SiLU after the affine transform (GroupNorm-SiLU fused into one layer). Default false. */
  silu?: boolean;
  /** Layer name. */
  name?: string;
}

/**
 * Group normalisation over `[B, H, W, C]`: channels split into G contiguous groups
 * (G = {@link groupNormGroups}(C, maxGroups, minGroupChannels)), each
 * normalised by the mean and (biased) variance over its H*W*(C/G) values per sample, then a
 * learned per-channel scale `gamma` and shift `beta` (init 1 and 0); optionally followed by
 * SiLU. Computed as one reshape to `[B, H*W, G, C/G]` and one `tf.moments` over axes (1, 3);
 * on the CPU backend by the fused loops of {@link groupNormCpu} (same values and gradients).
 */
export class GroupNorm extends tf.layers.Layer {
  /** Registered class name (model.json). */
  static className = "RddGroupNorm";
  private readonly maxGroups: number;
  private readonly minGroupChannels: number;
  private readonly epsilon: number;
  private readonly fuseSilu: boolean;
  private gamma!: tf.LayerVariable;
  private beta!: tf.LayerVariable;

  /** Validates the group bounds and epsilon (RangeError); weights are made in `build`. */
  constructor(args: GroupNormArgs = {}) {
    super({ name: args.name });
    this.maxGroups = args.maxGroups ?? 32;
    this.minGroupChannels = args.minGroupChannels ?? 1;
    this.epsilon = args.epsilon ?? 1e-5;
    this.fuseSilu = args.silu ?? false;
    groupNormGroups(1, this.maxGroups, this.minGroupChannels); // validates both bounds
    if (!(this.epsilon > 0)) throw new RangeError(`epsilon must be > 0, got ${this.epsilon}`);
  }

  /** Creates `gamma` (ones) and `beta` (zeros), each `[C]`, for an input `[B, H, W, C]`. */
  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const c = lastDim(singleShape(inputShape, "GroupNorm"), "GroupNorm input", 4);
    this.gamma = this.addWeight("gamma", [c], "float32", tf.initializers.ones());
    this.beta = this.addWeight("beta", [c], "float32", tf.initializers.zeros());
    this.built = true;
  }

  /** Same as the input shape `[B, H, W, C]`. */
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return singleShape(inputShape, "GroupNorm");
  }

  /** Normalises one float32 tensor `[B, H, W, C]` per group, then scales, shifts (and SiLU). */
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs, "GroupNorm") as tf.Tensor4D;
      const [b, h, w, c] = x.shape;
      const g = groupNormGroups(c, this.maxGroups, this.minGroupChannels);
      if (tf.getBackend() === "cpu") {
        const gamma = this.gamma.read() as tf.Tensor1D, beta = this.beta.read() as tf.Tensor1D;
        return groupNormCpu(x, gamma, beta, g, this.epsilon, this.fuseSilu);
      }
      const grouped = tf.reshape(x, [b, h * w, g, c / g]);
      const { mean, variance } = tf.moments(grouped, [1, 3], true);
      const normed = tf.mul(tf.sub(grouped, mean), tf.rsqrt(tf.add(variance, this.epsilon)));
      const y = tf.add(
        tf.mul(tf.reshape(normed, [b, h, w, c]), this.gamma.read()),
        this.beta.read(),
      );
      return this.fuseSilu ? silu(y) : y;
    });
  }

  /** The layer's config for model.json: the base config plus the {@link GroupNormArgs}. */
  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      maxGroups: this.maxGroups,
      minGroupChannels: this.minGroupChannels,
      epsilon: this.epsilon,
      silu: this.fuseSilu,
    };
  }
}

/**
 * Sinusoidal frequencies `w_i = 10000^(-2i/dim)`, i = 0..dim/2-1, as used by the pytorch-ddpm
 * time embedding. `dim` must be even.
 */
export function sinusoidalFrequencies(dim: number): Float32Array {
  if (!Number.isInteger(dim) || dim < 2 || dim % 2 !== 0) {
    throw new RangeError(`dim must be an even integer >= 2, got ${dim}`);
  }
  const f = new Float32Array(dim / 2);
  for (let i = 0; i < f.length; i++) f[i] = Math.exp(-(2 * i / dim) * Math.log(10000));
  return f;
}

/** Config of {@link SinusoidalEmbedding}. */
export interface SinusoidalEmbeddingArgs {
  /** Output width (even). */
  dim: number;
  /** Layer name. */
  name?: string;
}

/**
 * Sinusoidal embedding of the time index: `[B]` (float, the integer index t) ->
 * `[B, dim]` with interleaved `[sin(t w_0), cos(t w_0), sin(t w_1), cos(t w_1), ...]`
 * (the pytorch-ddpm layout). No weights.
 */
export class SinusoidalEmbedding extends tf.layers.Layer {
  /** Registered class name (model.json). */
  static className = "RddSinusoidalEmbedding";
  private readonly dim: number;
  private readonly freqs: Float32Array;

  /** Precomputes the `dim / 2` frequencies; RangeError unless `dim` is even and >= 2. */
  constructor(args: SinusoidalEmbeddingArgs) {
    super({ name: args.name });
    this.dim = args.dim;
    this.freqs = sinusoidalFrequencies(args.dim);
  }

  /** `[B]` -> `[B, dim]`; RangeError for an input of another rank. */
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = singleShape(inputShape, "SinusoidalEmbedding");
    if (s.length !== 1) throw new RangeError(`SinusoidalEmbedding input must be [B], got [${s}]`);
    return [s[0], this.dim];
  }

  /** Embeds the time indices `[B]` (cast to float32) as `[B, dim]` float32. */
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const t = tf.cast(singleTensor(inputs, "SinusoidalEmbedding"), "float32");
      if (t.rank !== 1) throw new RangeError(`t must be [B], got [${t.shape}]`);
      const phase = tf.mul(tf.expandDims(t, 1), tf.tensor2d(this.freqs, [1, this.freqs.length]));
      return tf.reshape(tf.stack([tf.sin(phase), tf.cos(phase)], 2), [t.shape[0], this.dim]);
    });
  }

  /** The layer's config for model.json: the base config plus `dim`. */
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), dim: this.dim };
  }
}

/**
 * Adds a per-sample, per-channel bias: inputs `[h: [B, H, W, C], bias: [B, C]]` ->
 * `h + bias[:, None, None, :]`. Used to inject the projected time embedding. No weights.
 */
export class ChannelBias extends tf.layers.Layer {
  /** Registered class name (model.json). */
  static className = "RddChannelBias";

  /** `[[B, H, W, C], [B, C]]` -> `[B, H, W, C]`; throws for other input shapes. */
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    if (!Array.isArray(inputShape[0]) || inputShape.length !== 2) {
      throw new TypeError("ChannelBias takes two inputs [h, bias]");
    }
    const [h, bias] = inputShape as Shape[];
    if (h.length !== 4 || bias.length !== 2 || h[3] !== bias[1]) {
      throw new RangeError(`ChannelBias needs h [B,H,W,C] and bias [B,C], got [${h}], [${bias}]`);
    }
    return h;
  }

  /** `h + bias[:, None, None, :]` for the inputs `[h: [B, H, W, C], bias: [B, C]]`. */
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    if (!Array.isArray(inputs) || inputs.length !== 2) {
      throw new TypeError("ChannelBias takes two inputs [h, bias]");
    }
    const [h, bias] = inputs as [tf.Tensor4D, tf.Tensor2D];
    return tf.tidy(() => tf.add(h, tf.reshape(bias, [bias.shape[0], 1, 1, bias.shape[1]])));
  }
}

/**
 * Single-head self-attention over spatial positions: input `[B, H, W, 3C]` holding q, k, v
 * (in that order along the last axis, each C wide) -> `[B, H, W, C]` =
 * `softmax(q k^T / sqrt(C)) v` with the softmax over the H*W key positions. Two batched
 * matMuls; the 1x1 projections around it are ordinary dense layers. No weights.
 */
export class SpatialSelfAttention extends tf.layers.Layer {
  /** Registered class name (model.json). */
  static className = "RddSpatialSelfAttention";

  /** `[B, H, W, 3C]` -> `[B, H, W, C]`; RangeError when the channels are not a multiple of 3. */
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = singleShape(inputShape, "SpatialSelfAttention");
    const c3 = lastDim(s, "SpatialSelfAttention input", 4);
    if (c3 % 3 !== 0) {
      throw new RangeError(`SpatialSelfAttention input needs 3C channels, got ${c3}`);
    }
    return [s[0], s[1], s[2], c3 / 3];
  }

  /** Attention of the packed q, k, v `[B, H, W, 3C]` over the H*W positions: `[B, H, W, C]`. */
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs, "SpatialSelfAttention") as tf.Tensor4D;
      const [b, h, w, c3] = x.shape;
      const c = c3 / 3;
      const [q, k, v] = tf.split(tf.reshape(x, [b, h * w, c3]), 3, 2) as tf.Tensor3D[];
      const logits = tf.matMul(tf.mul(q, 1 / Math.sqrt(c)), k, false, true);
      return tf.reshape(tf.matMul(tf.softmax(logits), v), [b, h, w, c]);
    });
  }
}

for (const cls of [GroupNorm, SinusoidalEmbedding, ChannelBias, SpatialSelfAttention]) {
  tf.serialization.registerClass(cls);
}
