/**
 * The diffusion UNet of pytorch-ddpm (the network of the RDD / RCFD reference), as a tfjs
 * layers model that saves to model.json + weights and loads back with `tf.loadLayersModel`.
 *
 * Architecture (NHWC): sinusoidal embedding of the integer time index (width ch), then
 * Dense(4ch)-SiLU-Dense(4ch) = temb (plus a learned class embedding when `numClasses` is set);
 * head conv3x3 to ch; per level i: `numResBlocks` ResBlocks at ch*chMult[i] (+ attention when
 * the level's resolution is in `attnResolutions`), then a stride-2 conv3x3 downsample except at
 * the last level; middle ResBlock-Attn-ResBlock; the up path mirrors it with numResBlocks+1
 * ResBlocks per level on the concatenation [h, skip], then nearest x2 upsample + conv3x3;
 * tail GroupNorm-SiLU-conv3x3. ResBlock: GN-SiLU-conv3x3, + Dense(SiLU(temb)) as a
 * per-channel bias, GN-SiLU-Dropout-conv3x3, 1x1 shortcut when channels change. Attention:
 * GN, 1x1 q,k,v, softmax(q k^T / sqrt(C)) over positions, 1x1 proj, residual.
 *
 * Deviations from the reference that do not change the function class or parameter count:
 * 1x1 convolutions are dense layers on the channel axis; q, k, v are one dense layer of width
 * 3C; GroupNorm uses `groupNormGroups(C, 32, minGroupChannels)` groups (layers.ts), which by
 * default is 32 whenever C is a multiple of 32, as in the reference.
 * Initialisation follows pytorch-ddpm: Glorot-uniform weights and zero biases, with gain 1e-5
 * on the second conv of each ResBlock, the attention output projection and the tail conv.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { checkPositiveInt } from "../core/checks.ts";
import type { Parameterization } from "../diffusion/denoiser.ts";
import {
  ChannelBias,
  GroupNorm,
  layerSeed,
  SinusoidalEmbedding,
  SpatialSelfAttention,
} from "./layers.ts";
import { SeededDropout } from "./dropout.ts";

/** Configuration of {@link createUNet}. */
export interface UNetConfig {
  /** Height = width of the input images (pixels); must be divisible by 2^(levels-1). */
  imageSize: number;
  /** Input channels C. */
  inChannels: number;
  /** Output channels; default `inChannels`. */
  outChannels?: number;
  /** Base width `ch` (even); the time embedding is 4*ch wide. */
  ch: number;
  /** Width multiplier per level; level i runs at `imageSize / 2^i` with `ch * chMult[i]`. */
  chMult: number[];
  /** ResBlocks per level on the down path (the up path has one more). */
  numResBlocks: number;
  /** Resolutions (pixels) at which ResBlocks are followed by attention, e.g. [16]. */
  attnResolutions: number[];
  /** Dropout rate in [0, 1) inside each ResBlock (active only with `training: true`). */
  dropout: number;
  /** If set, the model takes a third input `label` [B] (class index) embedded into temb. */
  numClasses?: number;
  /**
   * Minimum channels per GroupNorm group (default 1: the reference's `GroupNorm(32, C)`).
   * With one channel per group GroupNorm cancels the per-channel time/class bias of a
   * ResBlock, so t is ignored at that width (the reference's 32-channel level has this
   * property); use >= 2 for narrow networks. See `groupNormGroups` in layers.ts.
   */
  minGroupChannels?: number;
  /** What the network predicts; default "x0" (the reference). Metadata for adapters. */
  parameterization?: Parameterization;
}

/** Named configurations. */
export const UNET_PRESETS = {
  /** The pytorch-ddpm UNet at ch 32 for 32x32 RGB: 1,113,955 parameters, 0.57 GFLOPs/image. */
  tiny: {
    imageSize: 32,
    inChannels: 3,
    ch: 32,
    chMult: [1, 2, 2],
    numResBlocks: 1,
    attnResolutions: [16],
    dropout: 0.1,
  },
  /**
   * The MNIST teacher (1 channel, 32x32, widths 16/32/32, GroupNorm groups of 4 channels so
   * that every ResBlock sees t): 280,177 parameters,
   * 0.126 GFLOPs/image forward (~0.38 per image per training step).
   */
  mnist: {
    imageSize: 32,
    inChannels: 1,
    ch: 16,
    chMult: [1, 2, 2],
    numResBlocks: 1,
    attnResolutions: [8],
    dropout: 0.1,
    minGroupChannels: 4,
  },
} as const satisfies Record<string, UNetConfig>;

/** One block of the UNet, in execution order (see {@link unetPlan}). */
export type UNetBlock =
  | { kind: "head"; cin: number; cout: number; res: number }
  | {
    kind: "res";
    cin: number;
    cout: number;
    res: number;
    attn: boolean;
    /** Channels of the skip concatenated to the input first (up path), 0 otherwise. */
    skip: number;
    /** Whether the output is kept as a skip (down path). */
    push: boolean;
  }
  | { kind: "down"; c: number; res: number }
  | { kind: "up"; c: number; res: number }
  | { kind: "tail"; cin: number; cout: number; res: number };

function checkConfig(cfg: UNetConfig): void {
  const posInt = (v: number, name: string) => checkPositiveInt(name, v);
  posInt(cfg.imageSize, "imageSize");
  posInt(cfg.inChannels, "inChannels");
  posInt(cfg.outChannels ?? cfg.inChannels, "outChannels");
  posInt(cfg.ch, "ch");
  if (cfg.ch % 2 !== 0) throw new RangeError(`ch must be even, got ${cfg.ch}`);
  posInt(cfg.numResBlocks, "numResBlocks");
  if (cfg.chMult.length < 1) throw new RangeError("chMult must have at least one level");
  cfg.chMult.forEach((m, i) => posInt(m, `chMult[${i}]`));
  const div = 2 ** (cfg.chMult.length - 1);
  if (cfg.imageSize % div !== 0) {
    throw new RangeError(
      `imageSize must be divisible by 2^(chMult.length-1) = ${div}, got ${cfg.imageSize}`,
    );
  }
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) {
    throw new RangeError(`dropout must be in [0, 1), got ${cfg.dropout}`);
  }
  if (cfg.numClasses !== undefined) posInt(cfg.numClasses, "numClasses");
  if (cfg.minGroupChannels !== undefined) posInt(cfg.minGroupChannels, "minGroupChannels");
  const p = cfg.parameterization ?? "x0";
  if (p !== "x0" && p !== "eps" && p !== "v") {
    throw new RangeError(`parameterization must be "x0", "eps" or "v", got ${p}`);
  }
}

/**
 * The UNet as a flat list of blocks in execution order (down path, middle, up path),
 * with channels and resolution of each; the single source of truth for {@link createUNet},
 * {@link unetParamCount} and {@link unetFlops}. The head, the downsamples and the down-path
 * res blocks (`push`) keep their output as a skip; up-path res blocks pop one (`skip` > 0).
 */
export function unetPlan(cfg: UNetConfig): UNetBlock[] {
  checkConfig(cfg);
  const plan: UNetBlock[] = [];
  const skips: number[] = [cfg.ch];
  let c = cfg.ch;
  let res = cfg.imageSize;
  const attnAt = (r: number) => cfg.attnResolutions.includes(r);
  plan.push({ kind: "head", cin: cfg.inChannels, cout: c, res });
  cfg.chMult.forEach((m, i) => {
    for (let j = 0; j < cfg.numResBlocks; j++) {
      plan.push({
        kind: "res",
        cin: c,
        cout: cfg.ch * m,
        res,
        attn: attnAt(res),
        skip: 0,
        push: true,
      });
      c = cfg.ch * m;
      skips.push(c);
    }
    if (i < cfg.chMult.length - 1) {
      plan.push({ kind: "down", c, res });
      res /= 2;
      skips.push(c);
    }
  });
  plan.push({ kind: "res", cin: c, cout: c, res, attn: true, skip: 0, push: false });
  plan.push({ kind: "res", cin: c, cout: c, res, attn: false, skip: 0, push: false });
  for (let i = cfg.chMult.length - 1; i >= 0; i--) {
    for (let j = 0; j <= cfg.numResBlocks; j++) {
      const skip = skips.pop()!;
      const cout = cfg.ch * cfg.chMult[i];
      plan.push({ kind: "res", cin: c + skip, cout, res, attn: attnAt(res), skip, push: false });
      c = cout;
    }
    if (i > 0) {
      plan.push({ kind: "up", c, res });
      res *= 2;
    }
  }
  plan.push({ kind: "tail", cin: c, cout: cfg.outChannels ?? cfg.inChannels, res });
  return plan;
}

const convParams = (k: number, cin: number, cout: number) => k * k * cin * cout + cout;

function blockParams(b: UNetBlock, tdim: number): number {
  switch (b.kind) {
    case "head":
      return convParams(3, b.cin, b.cout);
    case "down":
    case "up":
      return convParams(3, b.c, b.c);
    case "tail":
      return 2 * b.cin + convParams(3, b.cin, b.cout);
    case "res": {
      const body = 2 * b.cin + convParams(3, b.cin, b.cout) + convParams(1, tdim, b.cout) +
        2 * b.cout + convParams(3, b.cout, b.cout);
      const shortcut = b.cin === b.cout ? 0 : convParams(1, b.cin, b.cout);
      const attn = b.attn ? 2 * b.cout + 4 * convParams(1, b.cout, b.cout) : 0;
      return body + shortcut + attn;
    }
  }
}

/** Number of trainable parameters of the UNet of `cfg` (equals `model.countParams()`). */
export function unetParamCount(cfg: UNetConfig): number {
  const tdim = 4 * cfg.ch;
  const temb = convParams(1, cfg.ch, tdim) + convParams(1, tdim, tdim) +
    (cfg.numClasses ?? 0) * tdim;
  return unetPlan(cfg).reduce((s, b) => s + blockParams(b, tdim), temb);
}

/** FLOPs (2 per multiply-add) of a k x k conv at output resolution r. */
const convFlops = (k: number, cin: number, cout: number, r: number) =>
  2 * k * k * cin * cout * r * r;

function blockFlops(b: UNetBlock): number {
  switch (b.kind) {
    case "head":
    case "tail":
      return convFlops(3, b.cin, b.cout, b.res);
    case "down":
      return convFlops(3, b.c, b.c, b.res / 2);
    case "up":
      return convFlops(3, b.c, b.c, 2 * b.res);
    case "res": {
      const n = b.res * b.res;
      const body = convFlops(3, b.cin, b.cout, b.res) + convFlops(3, b.cout, b.cout, b.res);
      const shortcut = b.cin === b.cout ? 0 : convFlops(1, b.cin, b.cout, b.res);
      const attn = b.attn ? convFlops(1, b.cout, 4 * b.cout, b.res) + 2 * 2 * n * n * b.cout : 0;
      return body + shortcut + attn;
    }
  }
}

/**
 * Estimated forward FLOPs for ONE image (2 per multiply-add), counting convolutions, 1x1
 * projections and the two attention matMuls; normalisation, activations, the time MLP and
 * other elementwise work (a few percent) are left out. A training step costs about 3x this.
 */
export function unetFlops(cfg: UNetConfig): number {
  return unetPlan(cfg).reduce((s, b) => s + blockFlops(b), 0);
}

type Sym = tf.SymbolicTensor;

const glorot = (seed: number, gain = 1) =>
  tf.initializers.varianceScaling({
    scale: gain * gain,
    mode: "fanAvg",
    distribution: "uniform",
    seed,
  });

/** Small-gain init of the last layer of each residual branch and of the tail (pytorch-ddpm). */
const ZERO_GAIN = 1e-5;

interface Builder {
  seed: number; // model seed; each layer's initializer seed is layerSeed(seed, name)
  temb: Sym; // SiLU(temb), shared by all ResBlocks
  dropout: number;
  minGroupChannels: number;
  n: number; // running index for unique layer names
}

function conv3(x: Sym, cout: number, name: string, seed: number, opts: {
  stride?: number;
  gain?: number;
} = {}): Sym {
  const stride = opts.stride ?? 1;
  const input = stride === 1
    ? x
    : tf.layers.zeroPadding2d({ padding: [[1, 1], [1, 1]], name: `${name}_pad` }).apply(x) as Sym;
  return tf.layers.conv2d({
    filters: cout,
    kernelSize: 3,
    strides: stride,
    padding: stride === 1 ? "same" : "valid",
    kernelInitializer: glorot(layerSeed(seed, name), opts.gain),
    biasInitializer: "zeros",
    name,
  }).apply(input) as Sym;
}

function dense(x: Sym, units: number, name: string, seed: number, gain = 1): Sym {
  return tf.layers.dense({
    units,
    kernelInitializer: glorot(layerSeed(seed, name), gain),
    biasInitializer: "zeros",
    name,
  }).apply(x) as Sym;
}

const groupNorm = (b: Builder, x: Sym, name: string, siluAfter: boolean) =>
  new GroupNorm({ silu: siluAfter, minGroupChannels: b.minGroupChannels, name }).apply(x) as Sym;

const add = (a: Sym, c: Sym, name: string) => tf.layers.add({ name }).apply([a, c]) as Sym;

function attention(b: Builder, x: Sym, c: number, p: string): Sym {
  const qkv = dense(groupNorm(b, x, `${p}_norm`, false), 3 * c, `${p}_qkv`, b.seed);
  const mixed = new SpatialSelfAttention({ name: `${p}_softmax` }).apply(qkv) as Sym;
  return add(x, dense(mixed, c, `${p}_proj`, b.seed, ZERO_GAIN), `${p}_add`);
}

function resBlock(b: Builder, x: Sym, blk: Extract<UNetBlock, { kind: "res" }>): Sym {
  const p = `res${b.n++}`;
  let h = conv3(groupNorm(b, x, `${p}_norm1`, true), blk.cout, `${p}_conv1`, b.seed);
  h = new ChannelBias({ name: `${p}_temb_add` }).apply([
    h,
    dense(b.temb, blk.cout, `${p}_temb`, b.seed),
  ]) as Sym;
  h = groupNorm(b, h, `${p}_norm2`, true);
  if (b.dropout > 0) h = new SeededDropout({ rate: b.dropout, name: `${p}_drop` }).apply(h) as Sym;
  h = conv3(h, blk.cout, `${p}_conv2`, b.seed, { gain: ZERO_GAIN });
  const short = blk.cin === blk.cout ? x : dense(x, blk.cout, `${p}_shortcut`, b.seed);
  h = add(short, h, `${p}_add`);
  return blk.attn ? attention(b, h, blk.cout, `${p}_attn`) : h;
}

/**
 * Builds the UNet as a `tf.LayersModel` with inputs `x` `[B, H, W, inChannels]` float32 and
 * `t` `[B]` float32 (the integer schedule index the network is queried at), plus `label`
 * `[B]` (class index, float32 or int32) when `numClasses` is set; output
 * `[B, H, W, outChannels]`. Call it as `model.apply([x, t], {training})`; dropout is active
 * only with `training: true`, with seeded masks (dropout.ts; the Trainer seeds each step).
 * Importing this module registers the custom layers needed by `tf.loadLayersModel`.
 * The initial weights are a function of `options.seed` (default 0): each layer's
 * initializer is seeded with {@link layerSeed}(seed, layer name).
 */
export function createUNet(cfg: UNetConfig, options: { seed?: number } = {}): tf.LayersModel {
  const seed = options.seed ?? 0;
  const plan = unetPlan(cfg);
  const x = tf.input({ shape: [cfg.imageSize, cfg.imageSize, cfg.inChannels], name: "x" });
  const t = tf.input({ shape: [], name: "t" });
  const inputs = [x, t];
  let temb = new SinusoidalEmbedding({ dim: cfg.ch, name: "temb_sin" }).apply(t) as Sym;
  temb = dense(temb, 4 * cfg.ch, "temb_dense1", seed);
  temb = tf.layers.activation({ activation: "swish", name: "temb_silu1" }).apply(temb) as Sym;
  temb = dense(temb, 4 * cfg.ch, "temb_dense2", seed);
  if (cfg.numClasses !== undefined) {
    const label = tf.input({ shape: [], name: "label" });
    inputs.push(label);
    const emb = tf.layers.embedding({
      inputDim: cfg.numClasses,
      outputDim: 4 * cfg.ch,
      embeddingsInitializer: tf.initializers.randomNormal({
        stddev: 1,
        seed: layerSeed(seed, "class_emb"),
      }),
      name: "class_emb",
    }).apply(label) as Sym;
    temb = add(temb, emb, "temb_class_add");
  }
  const b: Builder = {
    temb: tf.layers.activation({ activation: "swish", name: "temb_silu2" }).apply(temb) as Sym,
    dropout: cfg.dropout,
    minGroupChannels: cfg.minGroupChannels ?? 1,
    n: 0,
    seed,
  };
  const skips: Sym[] = [];
  let h = x;
  plan.forEach((blk, i) => {
    switch (blk.kind) {
      case "head":
        h = conv3(h, blk.cout, "head", seed);
        skips.push(h);
        break;
      case "res":
        if (blk.skip > 0) {
          h = tf.layers.concatenate({ axis: -1, name: `cat${i}` }).apply([h, skips.pop()!]) as Sym;
        }
        h = resBlock(b, h, blk);
        if (blk.push) skips.push(h);
        break;
      case "down":
        h = conv3(h, blk.c, `down${i}`, seed, { stride: 2 });
        skips.push(h);
        break;
      case "up":
        h = tf.layers.upSampling2d({ size: [2, 2], interpolation: "nearest", name: `up${i}_nn` })
          .apply(h) as Sym;
        h = conv3(h, blk.c, `up${i}`, seed);
        break;
      case "tail":
        h = conv3(groupNorm(b, h, "tail_norm", true), blk.cout, "tail", seed, {
          gain: ZERO_GAIN,
        });
        break;
    }
  });
  return tf.model({ inputs, outputs: h, name: "unet" });
}
