/**
 * RDD's M_P2P ("memory pixel-to-pixel") loss: student and teacher pixel embeddings are
 * compared through their similarities to a bank of past teacher pixel embeddings (a memory
 * queue), so relations to many earlier samples cost one matrix product with a fixed bank.
 *
 * Layout: feature maps are NHWC `[B, h, w, C]` (the reference's NCHW `[B, C, h, w]`
 * transposed); pixels are numbered row-major.
 *
 * Embedding layouts for what gets enqueued (method.md section 5, caution):
 * - "per-pixel" (default, the intended one): row (b, y, x) is the C-vector of that pixel.
 * - "reference-reshape": the reference's raw reshape of the NCHW map to `[C, B*h*w]`, whose
 *   columns are taken as the vectors. For B = 1 (any C, h, w) and for C = 1 it coincides
 *   with "per-pixel"; for B > 1 and C > 1 each vector mixes channels, pixels and samples.
 * The loss output reports which one was used.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Rng, type RngState } from "../core/rng.ts";
import {
  checkInt,
  checkOneOf,
  checkPositive,
  checkPositiveInt,
  checkShape,
  checkShapePair,
} from "../core/checks.ts";
import { klDivSum, l2NormalizeLastAxis, stopGradient } from "./rcfd.ts";
import { TorchBatchNorm } from "./torch_batch_norm.ts";

/** How a teacher feature map is flattened into queue rows (see the module doc). */
export type EmbeddingLayout = "per-pixel" | "reference-reshape";

/** The accepted {@link EmbeddingLayout}s. */
export const EMBEDDING_LAYOUTS: readonly EmbeddingLayout[] = ["per-pixel", "reference-reshape"];

/**
 * Flattens a feature map into `B*h*w` embedding rows of length C in the given layout.
 * @param map feature map `[B, h, w, C]`.
 * @param layout "per-pixel" or "reference-reshape".
 * @returns `[B*h*w, C]`; for "reference-reshape" row j holds element (i, j) of the NCHW
 *   map's row-major data read as a `[C, B*h*w]` matrix, for i = 0..C-1.
 */
export function embeddingRows(map: tf.Tensor4D, layout: EmbeddingLayout): tf.Tensor2D {
  checkShape("map", map, ["B", "h", "w", "C"]);
  const [B, h, w, C] = map.shape;
  const n = B * h * w;
  checkOneOf("layout", layout, EMBEDDING_LAYOUTS);
  if (layout === "per-pixel") return tf.reshape(map, [n, C]);
  return tf.tidy(() => tf.transpose(tf.reshape(tf.transpose(map, [0, 3, 1, 2]), [C, n])));
}

/** Round half to even (PyTorch's `torch.round`). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return (r - x === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

/**
 * The fixed contrast set: round(linspace(0, M - 1, K)) (float64 linspace, ties to even).
 * @param size queue size M >= 1.
 * @param count K in 1..M.
 * @returns Int32Array of K non-decreasing row indices in 0..M-1 (first 0, last M-1 if K > 1).
 */
export function contrastIndices(size: number, count: number): Int32Array {
  checkPositiveInt("size", size);
  checkInt("count", count, 1, size);
  if (count === 1) return Int32Array.of(0);
  const step = (size - 1) / (count - 1);
  return Int32Array.from({ length: count }, (_, i) => roundHalfEven(i * step));
}

/** Options of {@link MemoryQueue}. */
export interface MemoryQueueOptions {
  /** Number of rows M (default 20000). */
  readonly size?: number;
  /** Rows written per {@link MemoryQueue.enqueueFromMap} call, at most M (default min(128, M)). */
  readonly enqueuePerStep?: number;
  /** Seed of the initial bank and of the choice of enqueued pixels (default 0). */
  readonly seed?: number | string;
}

/** Everything needed to resume a queue exactly (for checkpoints). */
export interface MemoryQueueState {
  /** Number of rows M. */
  readonly size: number;
  /** Embedding length C. */
  readonly dim: number;
  /** Next write position, 0..M-1. */
  readonly pointer: number;
  /** Enqueue calls so far. */
  readonly updates: number;
  /** State of the queue's generator (initial bank done; enqueue choices to come). */
  readonly rng: RngState;
  /** Row-major `[size, dim]` bank. */
  readonly bank: Float32Array;
}

/**
 * The M_P2P memory queue: M L2-normalised teacher embeddings of length `dim` (a
 * non-trainable tf.Variable), initialised from seeded standard normals then normalised,
 * with a write pointer and an update counter.
 */
export class MemoryQueue {
  /** Number of rows M. */
  readonly size: number;
  /** Embedding length C. */
  readonly dim: number;
  /** Rows written per {@link MemoryQueue.enqueueFromMap}. */
  readonly enqueuePerStep: number;
  #bank: tf.Variable<tf.Rank.R2>;
  #pointer = 0;
  #updates = 0;
  #rng: Rng;

  /**
   * A queue of `options.size` seeded random unit rows.
   * @param dim embedding length C >= 1.
   * @param options size (default 20000), enqueuePerStep (default min(128, size)), seed (default 0).
   */
  constructor(dim: number, options: MemoryQueueOptions = {}) {
    const size = options.size ?? 20000;
    const perStep = options.enqueuePerStep ?? Math.min(128, size);
    checkPositiveInt("dim", dim);
    checkPositiveInt("options.size", size);
    checkInt("options.enqueuePerStep", perStep, 1, size);
    this.size = size;
    this.dim = dim;
    this.enqueuePerStep = perStep;
    this.#rng = new Rng(options.seed ?? 0);
    const init = Float32Array.from(this.#rng.normals(size * dim));
    this.#bank = tf.tidy(() =>
      tf.variable(l2NormalizeLastAxis(tf.tensor2d(init, [size, dim])), false)
    );
  }

  /** Next write position, in 0..M-1. */
  get pointer(): number {
    return this.#pointer;
  }

  /** Number of enqueue calls so far. */
  get updates(): number {
    return this.#updates;
  }

  /** The bank `[M, C]` itself (read-only use; do not dispose). */
  get bank(): tf.Tensor2D {
    return this.#bank;
  }

  /**
   * Writes n rows (each L2-normalised) at the pointer. If pointer + n >= M (the write would
   * reach the end), the LAST n rows M-n..M-1 are overwritten and the pointer resets to 0
   * (no wrap-around); otherwise rows pointer..pointer+n-1 are written and pointer += n.
   * @param rows `[n, C]` with 1 <= n <= M (detached).
   * @returns the first row written.
   */
  enqueue(rows: tf.Tensor2D): number {
    checkShape("rows", rows, [`n <= ${this.size}`, this.dim]);
    const n = rows.shape[0];
    checkInt("rows.shape[0]", n, 1, this.size);
    const overflow = this.#pointer + n >= this.size;
    const start = overflow ? this.size - n : this.#pointer;
    tf.tidy(() => {
      const pieces: tf.Tensor2D[] = [];
      if (start > 0) pieces.push(tf.slice(this.#bank, [0, 0], [start, -1]));
      pieces.push(l2NormalizeLastAxis(stopGradient(rows)));
      if (start + n < this.size) pieces.push(tf.slice(this.#bank, [start + n, 0], [-1, -1]));
      this.#bank.assign(tf.concat(pieces, 0));
    });
    this.#pointer = overflow ? 0 : this.#pointer + n;
    this.#updates++;
    return start;
  }

  /**
   * The per-step update: flattens the (channel-normalised) teacher map in `layout`, picks
   * min(B*h*w, enqueuePerStep) distinct rows with the queue's seeded generator (the first
   * rows of a random permutation) and {@link MemoryQueue.enqueue}s them.
   * @param teacherMap `[B, h, w, C]`, normalised over channels as in the reference.
   * @param layout "per-pixel" (default) or "reference-reshape".
   * @returns the chosen row indices into {@link embeddingRows}(teacherMap, layout).
   */
  enqueueFromMap(teacherMap: tf.Tensor4D, layout: EmbeddingLayout = "per-pixel"): Int32Array {
    checkShape("teacherMap", teacherMap, ["B", "h", "w", this.dim]);
    const rowsAll = embeddingRows(teacherMap, layout);
    const n = Math.min(rowsAll.shape[0], this.enqueuePerStep);
    const chosen = this.#rng.permutation(rowsAll.shape[0]).slice(0, n);
    tf.tidy(() => {
      this.enqueue(tf.gather(rowsAll, tf.tensor1d(chosen, "int32")));
    });
    rowsAll.dispose();
    return chosen;
  }

  /**
   * The contrast set: bank rows at {@link contrastIndices}(M, K), read now (call it after
   * the step's enqueue, as the reference does).
   * @param count K (default 4096), 1..M.
   * @returns `[K, C]` new tensor (caller disposes).
   */
  contrastRows(count = 4096): tf.Tensor2D {
    const idx = contrastIndices(this.size, count);
    return tf.tidy(() => tf.gather(this.#bank, tf.tensor1d(idx, "int32")));
  }

  /** Snapshot of the whole state (bank downloaded from the backend). */
  async state(): Promise<MemoryQueueState> {
    return {
      size: this.size,
      dim: this.dim,
      pointer: this.#pointer,
      updates: this.#updates,
      rng: this.#rng.state(),
      bank: Float32Array.from(await this.#bank.data()),
    };
  }

  /**
   * Restores a snapshot taken from a queue of the same size and dim.
   * @param state from {@link MemoryQueue.state}.
   */
  restore(state: MemoryQueueState): void {
    if (state.size !== this.size || state.dim !== this.dim) {
      throw new RangeError(
        `state must be for size ${this.size}, dim ${this.dim}; got ${state.size}, ${state.dim}`,
      );
    }
    if (state.bank.length !== this.size * this.dim) {
      throw new RangeError(`state.bank must have ${this.size * this.dim} entries`);
    }
    checkInt("state.pointer", state.pointer, 0, this.size - 1);
    tf.tidy(() => this.#bank.assign(tf.tensor2d(state.bank, [this.size, this.dim])));
    this.#pointer = state.pointer;
    this.#updates = state.updates;
    this.#rng = new Rng(0, state.rng);
  }

  /** Frees the bank. */
  dispose(): void {
    this.#bank.dispose();
  }
}

/** Options of {@link createProjectionHead}. */
export interface ProjectionHeadOptions {
  /** Channels after the first 1x1 conv (default: `outChannels`, as in the reference). */
  readonly hidden?: number;
  /** Output channels, must equal the teacher's C (default: the input channels). */
  readonly outChannels?: number;
  /** Seed of the kernel initialisers (default 0). */
  readonly seed?: number;
}

/**
 * The M_P2P projection head: 1x1 conv (no bias) -> BatchNorm -> ReLU -> 1x1 conv (no bias),
 * on NHWC maps of any spatial size. Initialisation and BatchNorm follow PyTorch's defaults
 * (kernels U(+-1/sqrt(fan_in)); {@link TorchBatchNorm}: momentum 0.1, eps 1e-5, running
 * variance updated with the unbiased batch variance, `num_batches_tracked` kept as a
 * non-trainable weight, so it is saved with the head's checkpoints).
 * Apply it with `head.apply(x, {training: true})` (the reference keeps it in training mode:
 * batch statistics, running statistics updated), or `{training: false}` for the running
 * statistics ({@link Mp2pOptions.headMode}). It is trained by its OWN optimiser (Adam at
 * the student's learning rate in the reference): pass {@link projectionHeadVariables} to
 * `tf.variableGrads` and apply those gradients with a second optimiser.
 * @param channels input channels C_s >= 1.
 * @param options hidden / output channels, seed.
 * @returns a `tf.Sequential` mapping `[B, h, w, C_s]` -> `[B, h, w, outChannels]`.
 */
export function createProjectionHead(
  channels: number,
  options: ProjectionHeadOptions = {},
): tf.Sequential {
  const out = options.outChannels ?? channels;
  const hidden = options.hidden ?? out;
  checkPositiveInt("channels", channels);
  checkPositiveInt("options.outChannels", out);
  checkPositiveInt("options.hidden", hidden);
  const seed = options.seed ?? 0;
  const kernel = (s: number) =>
    tf.initializers.varianceScaling({
      scale: 1 / 3,
      mode: "fanIn",
      distribution: "uniform",
      seed: s,
    });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [null, null, channels] as unknown as number[],
        filters: hidden,
        kernelSize: 1,
        useBias: false,
        kernelInitializer: kernel(seed),
      }),
      new TorchBatchNorm({ momentum: 0.1, epsilon: 1e-5 }),
      tf.layers.reLU(),
      tf.layers.conv2d({
        filters: out,
        kernelSize: 1,
        useBias: false,
        kernelInitializer: kernel(seed + 1),
      }),
    ],
  });
}

/**
 * How {@link mp2pLoss} runs the projection head: "train" (the reference: batch statistics,
 * running statistics updated) or "inference" (running statistics, nothing updated).
 */
export type HeadMode = "train" | "inference";

/** The accepted {@link HeadMode}s. */
export const HEAD_MODES: readonly HeadMode[] = ["train", "inference"];

/**
 * The trainable variables of a projection head (conv kernels, BN gamma and beta), for
 * `tf.variableGrads` and the head's own optimiser.
 * @param head from {@link createProjectionHead}.
 */
export function projectionHeadVariables(head: tf.LayersModel): tf.Variable[] {
  return head.trainableWeights.map((w) => w.read() as tf.Variable);
}

/** Temperatures of the M_P2P KL. */
export interface Mp2pTemperatures {
  /** Queue temperature dividing the cosine similarities (default 0.1). */
  readonly tau?: number;
  /** KD temperature dividing both sides' logits, loss multiplied by its square (default 1). */
  readonly kdTau?: number;
}

/**
 * The M_P2P KL given student and teacher embeddings and a contrast set (the head already
 * applied to the student, or an identity head). Both maps are L2-normalised over channels;
 * for every pixel p, logits_T(p) = <t_p, q_k> / tau and logits_S(p) = <s_p, q_k> / tau over
 * the K contrast rows q_k; then
 *   loss = kdTau^2 * sum_p KL(softmax(logits_T(p)/kdTau) || softmax(logits_S(p)/kdTau)) / (B * h * w),
 * i.e. the reference's "batchmean" over B followed by the division by h*w: the mean of the
 * per-pixel KL over all B*h*w pixels. The weight (0.1 in RDD) is applied by the caller.
 * The teacher map and the contrast set are detached.
 * @param studentEmb `[B, h, w, C]`.
 * @param teacherEmb `[B, h, w, C]`.
 * @param contrast `[K, C]` unit rows.
 * @param temperatures tau (default 0.1), kdTau (default 1).
 * @returns scalar, nats per pixel.
 */
export function mp2pKd(
  studentEmb: tf.Tensor4D,
  teacherEmb: tf.Tensor4D,
  contrast: tf.Tensor2D,
  temperatures: Mp2pTemperatures = {},
): tf.Scalar {
  const tau = temperatures.tau ?? 0.1, kdTau = temperatures.kdTau ?? 1;
  checkPositive("temperatures.tau", tau);
  checkPositive("temperatures.kdTau", kdTau);
  checkShapePair("studentEmb", studentEmb, "teacherEmb", teacherEmb, ["B", "h", "w", "C"]);
  const [B, h, w, C] = studentEmb.shape;
  checkShape("contrast", contrast, ["K", C]);
  return tf.tidy(() => {
    const q = stopGradient(contrast);
    // The temperatures scale the [B·h·w, C] unit rows, not the [B·h·w, K] logits.
    const logits = (x: tf.Tensor4D) =>
      tf.matMul(
        tf.reshape(tf.div(l2NormalizeLastAxis(x), tau * kdTau), [B * h * w, C]),
        q,
        false,
        true,
      );
    const kl = klDivSum(logits(stopGradient(teacherEmb)), logits(studentEmb));
    return tf.mul(kl, (kdTau * kdTau) / (B * h * w)) as tf.Scalar;
  });
}

/** Options of {@link mp2pLoss}. */
export interface Mp2pOptions extends Mp2pTemperatures {
  /** Layout of the enqueued teacher embeddings (default "per-pixel"). */
  readonly layout?: EmbeddingLayout;
  /** Contrast rows K (default 4096, at most the queue size). */
  readonly contrastSize?: number;
  /** How the head runs (default "train", the reference); see {@link HeadMode}. */
  readonly headMode?: HeadMode;
}

/** Result of {@link mp2pLoss}. */
export interface Mp2pResult {
  /** Unweighted M_P2P loss (scalar, nats per pixel). */
  readonly loss: tf.Scalar;
  /** Which embedding layout the queue update used. */
  readonly layout: EmbeddingLayout;
  /** Queue pointer after this step's enqueue. */
  readonly queuePointer: number;
}

/**
 * One M_P2P step as in the reference: normalise the teacher map over channels, enqueue
 * `queue.enqueuePerStep` random teacher embeddings, read the contrast rows AFTER the
 * enqueue, pass the student map through the head (`null` = identity; training mode unless
 * `options.headMode` is "inference") and evaluate {@link mp2pKd}. Mutates the queue (and,
 * in training mode, the head's BatchNorm running statistics).
 * @param studentMap student classifier map `[B, h, w, C_s]`.
 * @param teacherMap teacher classifier map `[B, h, w, C]`, C = queue.dim.
 * @param queue the memory queue.
 * @param head projection head `C_s -> C`, or null for the identity (needs C_s = C).
 * @param options temperatures, layout, contrast size, head mode.
 */
export function mp2pLoss(
  studentMap: tf.Tensor4D,
  teacherMap: tf.Tensor4D,
  queue: MemoryQueue,
  head: tf.LayersModel | null,
  options: Mp2pOptions = {},
): Mp2pResult {
  if (!(queue instanceof MemoryQueue)) throw new TypeError("queue must be a MemoryQueue");
  checkShape("studentMap", studentMap, ["B", "h", "w", "C_s"]);
  checkShape("teacherMap", teacherMap, ["B", "h", "w", "C"]);
  const layout = options.layout ?? "per-pixel";
  const headMode = options.headMode ?? "train";
  checkOneOf("options.headMode", headMode, HEAD_MODES);
  const loss = tf.tidy(() => {
    const t = l2NormalizeLastAxis(stopGradient(teacherMap));
    queue.enqueueFromMap(t, layout);
    const contrast = queue.contrastRows(options.contrastSize ?? 4096);
    const s = head
      ? head.apply(studentMap, { training: headMode === "train" }) as tf.Tensor4D
      : studentMap;
    return mp2pKd(s, t, contrast, options);
  });
  return { loss, layout, queuePointer: queue.pointer };
}
