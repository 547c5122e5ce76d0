/**
 * A small pre-activation ResNet image classifier with three outputs per call: the last
 * feature map (after its BatchNorm and ReLU), its global average pool, and the class logits.
 * It plays the role of the frozen classifier of RCFD / RDD (DenseNet-201 in the reference).
 *
 * Input normalisation: images are NHWC in [-1, 1] (the range diffusion models produce) and
 * enter the network as they are; no dataset mean/std is subtracted, so the same model can
 * score data and samples without any conversion.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { layerSeed } from "./layers.ts";
import { checkPositiveInt } from "../core/checks.ts";

/** Configuration of {@link createClassifier}. */
export interface ClassifierConfig {
  /** Height = width of the input (pixels), divisible by 8. The feature map is imageSize/8. */
  imageSize: number;
  /** Input channels. */
  inChannels: number;
  /** Number of classes. */
  numClasses: number;
  /** Base width w; the four stages are w, 2w, 4w, 4w wide. Default 16 (~150k parameters). */
  width?: number;
  /** Residual blocks per stage. Default 1. */
  blocksPerStage?: number;
}

/** The three outputs of {@link classify}. */
export interface ClassifierOutputs {
  /** Last feature map before pooling, after BatchNorm and ReLU: `[B, h, w, Cf]`, >= 0. */
  featureMap: tf.Tensor4D;
  /** Global average pool of `featureMap`: `[B, Cf]`. */
  pooled: tf.Tensor2D;
  /** Class logits: `[B, numClasses]`. */
  logits: tf.Tensor2D;
}

type Sym = tf.SymbolicTensor;

/** BatchNorm with PyTorch's default running-average momentum (0.1, i.e. 0.9 in tfjs terms). */
const bnRelu = (x: Sym, name: string): Sym => {
  const n = tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5, name: `${name}_bn` })
    .apply(x) as Sym;
  return tf.layers.reLU({ name: `${name}_relu` }).apply(n) as Sym;
};

const conv = (
  x: Sym,
  filters: number,
  kernelSize: number,
  strides: number,
  name: string,
  seed: number,
) =>
  tf.layers.conv2d({
    filters,
    kernelSize,
    strides,
    padding: "same",
    useBias: false,
    kernelInitializer: tf.initializers.heNormal({ seed: layerSeed(seed, name) }),
    name,
  }).apply(x) as Sym;

/** Pre-activation block: BN-ReLU-conv3x3(stride)-BN-ReLU-conv3x3 + shortcut. */
function block(
  x: Sym,
  cin: number,
  cout: number,
  stride: number,
  p: string,
  seed: number,
): Sym {
  const a = bnRelu(x, `${p}_pre`);
  let h = conv(a, cout, 3, stride, `${p}_conv1`, seed);
  h = conv(bnRelu(h, `${p}_mid`), cout, 3, 1, `${p}_conv2`, seed);
  const short = stride === 1 && cin === cout ? x : conv(a, cout, 1, stride, `${p}_shortcut`, seed);
  return tf.layers.add({ name: `${p}_add` }).apply([short, h]) as Sym;
}

/**
 * Builds the classifier: input `[B, imageSize, imageSize, inChannels]` in [-1, 1]; outputs
 * `[featureMap [B, s, s, 4w], pooled [B, 4w], logits [B, numClasses]]` with s = imageSize/8.
 * Stem conv3x3 to w, then four stages of pre-activation residual blocks (strides 1, 2, 2, 2),
 * then BatchNorm + ReLU (the feature map), global average pooling and a dense layer.
 * The initial weights are a function of `options.seed` (default 0; see {@link layerSeed}).
 */
export function createClassifier(
  cfg: ClassifierConfig,
  options: { seed?: number } = {},
): tf.LayersModel {
  const seed = options.seed ?? 0;
  const width = cfg.width ?? 16;
  const blocks = cfg.blocksPerStage ?? 1;
  const posInt = (v: number, name: string) => checkPositiveInt(name, v);
  posInt(cfg.imageSize, "imageSize");
  posInt(cfg.inChannels, "inChannels");
  posInt(cfg.numClasses, "numClasses");
  posInt(width, "width");
  posInt(blocks, "blocksPerStage");
  if (cfg.imageSize % 8 !== 0) {
    throw new RangeError(`imageSize must be divisible by 8, got ${cfg.imageSize}`);
  }
  const input = tf.input({ shape: [cfg.imageSize, cfg.imageSize, cfg.inChannels], name: "x" });
  let h = conv(input, width, 3, 1, "stem", seed);
  let c = width;
  [width, 2 * width, 4 * width, 4 * width].forEach((cout, s) => {
    for (let j = 0; j < blocks; j++) {
      h = block(h, c, cout, j === 0 && s > 0 ? 2 : 1, `s${s}b${j}`, seed);
      c = cout;
    }
  });
  const featureMap = bnRelu(h, "final");
  const pooled = tf.layers.globalAveragePooling2d({ name: "pool" }).apply(featureMap) as Sym;
  const logits = tf.layers.dense({
    units: cfg.numClasses,
    kernelInitializer: tf.initializers.glorotUniform({ seed: layerSeed(seed, "logits") }),
    name: "logits",
  }).apply(pooled) as Sym;
  return tf.model({ inputs: input, outputs: [featureMap, pooled, logits], name: "classifier" });
}

/**
 * Runs the classifier on `x` `[B, H, W, C]` in [-1, 1] and names its outputs. With
 * `training: true` BatchNorm uses batch statistics (and updates its running averages);
 * for a frozen classifier pass `training: false`. The caller disposes the outputs.
 */
export function classify(
  model: tf.LayersModel,
  x: tf.Tensor,
  opts: { training?: boolean } = {},
): ClassifierOutputs {
  if (x.rank !== 4) throw new RangeError(`x must be [B, H, W, C], got [${x.shape}]`);
  const out = model.apply(x, { training: opts.training ?? false });
  if (!Array.isArray(out) || out.length !== 3) {
    throw new TypeError("model must have three outputs [featureMap, pooled, logits]");
  }
  const [featureMap, pooled, logits] = out as tf.Tensor[];
  return {
    featureMap: featureMap as tf.Tensor4D,
    pooled: pooled as tf.Tensor2D,
    logits: logits as tf.Tensor2D,
  };
}
