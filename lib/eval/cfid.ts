/**
 * Classifier-feature FID ("cFID"): the Fréchet distance between Gaussian fits of the frozen
 * classifier's pooled features (`classify(...).pooled`, `[N, Cf]`) of generated images and of
 * real held-out images. It is NOT the Inception FID of the paper: the feature extractor is
 * the toolkit's own classifier, so numbers are comparable only between runs that use the
 * same classifier weights (the reference statistics are keyed by their hash).
 *
 * Sample size: like FID, cFID is biased upwards at small n (the covariance estimate of n
 * samples in Cf dimensions is noisy, and the noise adds to the trace term), and the bias
 * shrinks roughly like 1/n. Only compare cFIDs computed with the same n and the same
 * sampling seed; report n with every number.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { checkPositiveInt } from "../core/checks.ts";
import type { Parameterization } from "../diffusion/denoiser.ts";
import type { DiscreteSchedule } from "../diffusion/schedule.ts";
import { classify } from "../models/classifier.ts";
import { checkContiguous, type ImageArray, type ImageSet, toTensor } from "../data/images.ts";
import { writeFileAtomic } from "../train/checkpoint.ts";
import { frechetDistance, type GaussianStats, gaussianStats } from "./frechet.ts";
import { generateImages, type GenerateOptions } from "./generate.ts";

/** Pooled classifier features of a set of images: row-major `[n, dim]`. */
export interface ClassifierFeatureSet {
  /** Number of images n. */
  n: number;
  /** Feature length Cf. */
  dim: number;
  /** `[n, dim]` values, sample-major. */
  features: Float32Array;
}

/**
 * The frozen classifier's pooled features (inference mode) of `images` `[N, H, W, C]` in
 * [-1, 1] (an image array or a tensor, not disposed), in batches of `batchSize` (default 250).
 */
export async function classifierFeatures(
  classifier: tf.LayersModel,
  images: ImageArray | tf.Tensor4D,
  batchSize = 250,
): Promise<ClassifierFeatureSet> {
  checkPositiveInt("batchSize", batchSize);
  const isTensor = images instanceof tf.Tensor;
  if (isTensor && images.rank !== 4) {
    throw new RangeError(`images must be [N, H, W, C], got [${images.shape}]`);
  }
  if (!isTensor) checkContiguous(images, 4, "images");
  const n = images.shape[0];
  const chunks: Float32Array[] = [];
  let dim = 0;
  for (let i = 0; i < n; i += batchSize) {
    const b = Math.min(batchSize, n - i);
    const x = isTensor
      ? tf.slice(images, [i, 0, 0, 0], [b, -1, -1, -1])
      : toTensor(images, Array.from({ length: b }, (_, k) => i + k));
    const out = classify(classifier, x, { training: false });
    dim = out.pooled.shape[1];
    chunks.push(new Float32Array(await out.pooled.data() as Float32Array));
    tf.dispose([x, out.featureMap, out.pooled, out.logits]);
  }
  const features = new Float32Array(n * dim);
  chunks.forEach((c, k) => features.set(c, k * batchSize * dim));
  return { n, dim, features };
}

function hex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * SHA-256 (hex) of a classifier's weights: shapes and float values of every weight in order
 * (trainable and BatchNorm statistics; layer names, which tfjs renumbers per process, are
 * not included).
 */
export async function classifierHash(classifier: tf.LayersModel): Promise<string> {
  const parts: Uint8Array[] = [];
  for (const w of classifier.weights) {
    const v = w.read();
    parts.push(new TextEncoder().encode(`[${v.shape}]${v.dtype};`));
    const d = new Float32Array(await v.data() as Float32Array);
    parts.push(new Uint8Array(d.buffer));
  }
  return hex(await crypto.subtle.digest("SHA-256", concatBytes(parts)));
}

function concatBytes(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** SHA-256 (hex) of an image set's shape and pixel values (identifies the data split). */
export async function imageSetHash(set: ImageSet | ImageArray): Promise<string> {
  const arr = "images" in set ? set.images : set;
  const row = checkContiguous(arr, 4, "images");
  const n = arr.shape[0];
  const pixels = arr.data.slice(arr.offset, arr.offset + n * row);
  const head = new TextEncoder().encode(`[${arr.shape}];`);
  return hex(
    await crypto.subtle.digest("SHA-256", concatBytes([head, new Uint8Array(pixels.buffer)])),
  );
}

/** Reference statistics of real images, as cached on disk. */
export interface ReferenceStats extends GaussianStats {
  /** {@link classifierHash} of the classifier the features came from. */
  classifierHash: string;
  /** {@link imageSetHash} of the real images. */
  dataHash: string;
}

interface CacheFile {
  classifierHash: string;
  dataHash: string;
  n: number;
  mu: number[];
  sigma: number[];
}

/**
 * Gaussian fit (mean, unbiased covariance) of the classifier's pooled features of the real
 * test images. With `cachePath`, the statistics are read from that JSON file when its
 * classifier and data hashes match, and (re)computed and written atomically otherwise, so a
 * cache made with other classifier weights or another split is never used.
 * @param classifier frozen classifier (3 outputs, see `classify`).
 * @param testSet real images `[N, H, W, C]` in [-1, 1], N >= 2.
 * @param cachePath optional JSON cache file.
 */
export async function referenceStats(
  classifier: tf.LayersModel,
  testSet: ImageSet | ImageArray,
  cachePath?: string,
): Promise<ReferenceStats> {
  const images = "images" in testSet ? testSet.images : testSet;
  const [cHash, dHash] = [await classifierHash(classifier), await imageSetHash(images)];
  if (cachePath) {
    try {
      const c = JSON.parse(await Deno.readTextFile(cachePath)) as CacheFile;
      if (c.classifierHash === cHash && c.dataHash === dHash) {
        return {
          classifierHash: cHash,
          dataHash: dHash,
          n: c.n,
          mu: Float64Array.from(c.mu),
          sigma: Float64Array.from(c.sigma),
        };
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound || e instanceof SyntaxError)) throw e;
    }
  }
  const f = await classifierFeatures(classifier, images);
  const st = gaussianStats(f.features, f.dim);
  if (cachePath) {
    const file: CacheFile = {
      classifierHash: cHash,
      dataHash: dHash,
      n: st.n,
      mu: Array.from(st.mu),
      sigma: Array.from(st.sigma),
    };
    await writeFileAtomic(cachePath, JSON.stringify(file));
  }
  return { ...st, classifierHash: cHash, dataHash: dHash };
}

/**
 * cFID of `images` `[n, H, W, C]` (n >= 2; in [-1, 1]) against reference statistics: the
 * squared Fréchet distance between the Gaussian fits of pooled classifier features
 * (feature units squared). Biased at small n: compare only at equal n and seed.
 */
export async function cfid(
  classifier: tf.LayersModel,
  images: ImageArray | tf.Tensor4D,
  refStats: GaussianStats,
): Promise<number> {
  const f = await classifierFeatures(classifier, images);
  if (f.dim !== refStats.mu.length) {
    throw new RangeError(
      `refStats must have dimension ${f.dim} (the classifier's pooled features), got ${refStats.mu.length}`,
    );
  }
  return frechetDistance(gaussianStats(f.features, f.dim), refStats);
}

/** Options of {@link evaluateStudent}. */
export interface EvaluateOptions extends Pick<GenerateOptions, "sampler" | "path"> {
  /** Teacher or student network (inputs `[x, t]`). */
  model: tf.LayersModel;
  /** Sampling steps K (default: strided DDIM on `schedule`, stride maxIndex / K). */
  steps: number;
  /** The one schedule table. */
  schedule: DiscreteSchedule;
  /** What the model predicts. */
  parameterization: Parameterization;
  /** Number of generated images (the cFID sample size). */
  n: number;
  /** Seed of the starting noise (same seed = same z_T for every model). */
  seed: number | string;
  /** Frozen classifier. */
  classifier: tf.LayersModel;
  /** Real-image statistics from {@link referenceStats}. */
  refStats: GaussianStats;
}

/** One row of an evaluation table. */
export interface EvaluationRow {
  /** Sampling steps K. */
  steps: number;
  /** Network evaluations per image. */
  nfe: number;
  /** cFID at `n` samples. */
  cfid: number;
  /** Sample size of the cFID. */
  n: number;
  /** Sampling wall-clock per image (ms), excluding the classifier. */
  msPerImage: number;
}

/**
 * Samples `n` images with `steps` steps of `sampler` on `path` (default strided DDIM;
 * {@link generateImages}, image shape read from the model's input) and scores them with
 * {@link cfid}.
 */
export async function evaluateStudent(o: EvaluateOptions): Promise<EvaluationRow> {
  const shape = o.model.inputs[0].shape;
  const [h, w, c] = shape.slice(1);
  if (typeof h !== "number" || typeof w !== "number" || typeof c !== "number") {
    throw new TypeError(
      `model's first input must have a static shape [B, H, W, C], got [${shape}]`,
    );
  }
  const g = await generateImages(o.model, {
    schedule: o.schedule,
    parameterization: o.parameterization,
    steps: o.steps,
    sampler: o.sampler,
    path: o.path,
    n: o.n,
    imageShape: [h, w, c],
    seed: o.seed,
  });
  const value = await cfid(o.classifier, g.images, o.refStats);
  return { steps: o.steps, nfe: g.nfe, cfid: value, n: o.n, msPerImage: g.msPerImage };
}
