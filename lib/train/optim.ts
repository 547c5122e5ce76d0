/**
 * Optimisation pieces of the training loop: the learning-rate schedule (linear warmup,
 * cosine decay), global-norm gradient clipping, and Adam / AdamW whose state (step, first
 * and second moments) can be exported and restored exactly for resumable runs.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { fastCpuDnnl } from "../tfjs/fast_cpu.ts";
import { adamArrays } from "./adam_cpu.ts";
import { opOutput, opValues } from "../tfjs/op_arrays.ts";

/** Optimiser settings. `lr` is the peak learning rate (after warmup). */
export interface OptimizerConfig {
  /** "adam": L2-free Adam; "adamw": decoupled weight decay (Loshchilov & Hutter). */
  kind: "adam" | "adamw";
  /** Peak learning rate, > 0. */
  lr: number;
  /** First-moment decay, in [0, 1). Default 0.9. */
  beta1?: number;
  /** Second-moment decay, in [0, 1). Default 0.999. */
  beta2?: number;
  /** Denominator epsilon, > 0. Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay per unit lr (adamw only), >= 0. Default 0. */
  weightDecay?: number;
  /** Linear warmup length in steps, >= 0. Default 0. */
  warmupSteps?: number;
  /** Total steps of the run; the cosine decay reaches `minLr` there. */
  totalSteps: number;
  /** Cosine decay after warmup (default true); false keeps lr constant. */
  cosineDecay?: boolean;
  /** Floor of the cosine decay, >= 0. Default 0. */
  minLr?: number;
  /** Clip gradients to this global L2 norm; 0 or absent disables clipping. */
  gradClipNorm?: number;
}

function checkConfig(c: OptimizerConfig): void {
  if (c.kind !== "adam" && c.kind !== "adamw") {
    throw new RangeError(`optimizer.kind must be "adam" or "adamw", got "${c.kind}"`);
  }
  const positive: [string, number | undefined][] = [["lr", c.lr], ["eps", c.eps]];
  for (const [name, v] of positive) {
    if (v !== undefined && !(v > 0)) {
      throw new RangeError(`optimizer.${name} must be > 0, got ${v}`);
    }
  }
  for (const [name, v] of [["beta1", c.beta1], ["beta2", c.beta2]] as const) {
    if (v !== undefined && !(v >= 0 && v < 1)) {
      throw new RangeError(`optimizer.${name} must be in [0, 1), got ${v}`);
    }
  }
  if (!Number.isInteger(c.totalSteps) || c.totalSteps < 1) {
    throw new RangeError(`optimizer.totalSteps must be a positive integer, got ${c.totalSteps}`);
  }
  const nonNeg: [string, number | undefined][] = [
    ["weightDecay", c.weightDecay],
    ["warmupSteps", c.warmupSteps],
    ["minLr", c.minLr],
    ["gradClipNorm", c.gradClipNorm],
  ];
  for (const [name, v] of nonNeg) {
    if (v !== undefined && !(v >= 0)) {
      throw new RangeError(`optimizer.${name} must be >= 0, got ${v}`);
    }
  }
}

/**
 * Learning rate at optimiser step `step` (0-based: the lr used by the `step`-th update):
 * warmup `lr * (step + 1) / warmupSteps` for step < warmupSteps, then (if cosineDecay)
 * `minLr + (lr - minLr) * (1 + cos(pi * p)) / 2` with `p = (step - warmup) / (total - warmup)`
 * clamped to [0, 1]; otherwise constant `lr`.
 */
export function learningRateAt(config: OptimizerConfig, step: number): number {
  const warm = config.warmupSteps ?? 0;
  if (step < warm) return config.lr * (step + 1) / warm;
  if (config.cosineDecay === false) return config.lr;
  const minLr = config.minLr ?? 0;
  const span = Math.max(1, config.totalSteps - warm);
  const p = Math.min(1, Math.max(0, (step - warm) / span));
  return minLr + (config.lr - minLr) * (1 + Math.cos(Math.PI * p)) / 2;
}

/** Global L2 norm of a list of gradients (one host read). */
export function globalNorm(grads: tf.Tensor[]): number {
  const normT = tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))));
  const norm = normT.dataSync()[0];
  normT.dispose();
  return norm;
}

/**
 * Scales `grads` so that their global L2 norm is at most `maxNorm` (no change when already
 * below). Returns the clipped gradients (new tensors) and the norm before clipping.
 */
export function clipByGlobalNorm(
  grads: tf.Tensor[],
  maxNorm: number,
): { grads: tf.Tensor[]; norm: number } {
  if (!(maxNorm > 0)) throw new RangeError(`maxNorm must be > 0, got ${maxNorm}`);
  const norm = globalNorm(grads);
  const scale = norm > maxNorm ? maxNorm / norm : 1;
  return { grads: grads.map((g) => tf.mul(g, scale)), norm };
}

/** Per-step constants of one Adam update. */
export interface AdamHyper {
  /** Learning rate of this step. */
  lr: number;
  /** Gradient scale from clipping (1 when not clipped). */
  scale: number;
  /** Decay of the first moment (beta1). */
  b1: number;
  /** Decay of the second moment (beta2). */
  b2: number;
  /** Added to the root of the corrected second moment. */
  eps: number;
  /** Bias correction of the first moment, 1 - b1^k at step k (1-based). */
  bc1: number;
  /** Bias correction of the second moment, 1 - b2^k. */
  bc2: number;
  /** Decoupled weight decay times lr (0 for plain Adam). */
  decay: number;
}

/** One Adam/AdamW update of `w` with tfjs ops (any backend). */
export function adamStepOps(
  w: tf.Variable,
  grad: tf.Tensor,
  m: tf.Variable,
  v: tf.Variable,
  h: AdamHyper,
): void {
  tf.tidy(() => {
    const g = h.scale === 1 ? grad : tf.mul(grad, h.scale);
    const m1 = tf.add(tf.mul(m, h.b1), tf.mul(g, 1 - h.b1));
    const v1 = tf.add(tf.mul(v, h.b2), tf.mul(tf.square(g), 1 - h.b2));
    m.assign(m1);
    v.assign(v1);
    const step = tf.div(tf.div(m1, h.bc1), tf.add(tf.sqrt(tf.div(v1, h.bc2)), h.eps));
    const base = h.decay > 0 ? tf.sub(w, tf.mul(w, h.decay)) : w;
    w.assign(tf.sub(base, tf.mul(step, h.lr)));
  });
}

/**
 * The same update as {@link adamStepOps} over the CPU backend's typed arrays in one JS loop,
 * or oneDNN passes on the fast CPU path ({@link adamArrays}), instead of ~12 elementwise
 * kernels per variable; float32 results agree to rounding.
 */
export function adamStepLoop(
  w: tf.Variable,
  grad: tf.Tensor,
  m: tf.Variable,
  v: tf.Variable,
  h: AdamHyper,
): void {
  const wv = opValues(w), gv = opValues(grad), mv = opValues(m), vv = opValues(v);
  const n = wv.length;
  const nw = opOutput(n), nm = opOutput(n), nv = opOutput(n);
  adamArrays({ w: wv, g: gv, m: mv, v: vv, nw, nm, nv }, h, fastCpuDnnl());
  for (const [dst, arr] of [[w, nw], [m, nm], [v, nv]] as const) {
    const t = tf.tensor(arr, dst.shape, "float32");
    dst.assign(t);
    t.dispose();
  }
}

/** Exported optimiser state: step count and the moments, in the variables' order. */
export interface AdamState {
  /** Number of updates applied so far. */
  step: number;
  /** First moments, one Float32Array per variable (same length as the variable). */
  m: Float32Array[];
  /** Second moments, one Float32Array per variable. */
  v: Float32Array[];
}

/**
 * Adam / AdamW over a fixed, ordered list of variables, with the lr schedule of
 * {@link learningRateAt} and optional global-norm clipping. State is real here (moments),
 * hence a class. Update for each variable w with gradient g at step k (1-based):
 * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w -= lr_k * (m / (1-b1^k)) / (sqrt(v / (1-b2^k)) + eps);
 * AdamW additionally applies w -= lr_k * weightDecay * w before the Adam update.
 */
export class AdamOptimizer {
  /** Hyperparameters and lr schedule, as given to the constructor. */
  readonly config: OptimizerConfig;
  /** The optimised variables, in the order of gradients and saved state. */
  readonly variables: tf.Variable[];
  #m: tf.Variable[];
  #v: tf.Variable[];
  #step = 0;

  /**
   * Creates zero moments for each variable; throws RangeError for an invalid `config`.
   * @param variables trainable variables, in a fixed order (the order of saved state).
   * @param config optimiser kind, lr schedule, betas, eps, weight decay and clipping.
   */
  constructor(variables: tf.Variable[], config: OptimizerConfig) {
    checkConfig(config);
    this.config = config;
    this.variables = variables;
    this.#m = variables.map((w) => tf.variable(tf.zerosLike(w), false));
    this.#v = variables.map((w) => tf.variable(tf.zerosLike(w), false));
  }

  /** Updates applied so far. */
  get step(): number {
    return this.#step;
  }

  /** Learning rate that the next {@link apply} will use. */
  get currentLr(): number {
    return learningRateAt(this.config, this.#step);
  }

  /**
   * Applies one update from `grads` (same order and shapes as the variables; not disposed
   * here). Returns the lr used and the gradient norm (NaN when clipping is off).
   */
  apply(grads: tf.Tensor[]): { lr: number; gradNorm: number } {
    if (grads.length !== this.variables.length) {
      throw new RangeError(
        `grads must have one tensor per variable (${this.variables.length}), got ${grads.length}`,
      );
    }
    const c = this.config;
    const clip = c.gradClipNorm ?? 0;
    let gradNorm = NaN, scale = 1;
    if (clip > 0) {
      gradNorm = globalNorm(grads);
      if (gradNorm > clip) scale = clip / gradNorm;
    }
    const lr = this.currentLr;
    const k = this.#step + 1;
    const h: AdamHyper = {
      lr,
      scale,
      b1: c.beta1 ?? 0.9,
      b2: c.beta2 ?? 0.999,
      eps: c.eps ?? 1e-8,
      bc1: 1 - Math.pow(c.beta1 ?? 0.9, k),
      bc2: 1 - Math.pow(c.beta2 ?? 0.999, k),
      decay: c.kind === "adamw" ? (c.weightDecay ?? 0) * lr : 0,
    };
    const update = tf.getBackend() === "cpu" ? adamStepLoop : adamStepOps;
    this.variables.forEach((w, i) => update(w, grads[i], this.#m[i], this.#v[i], h));
    this.#step = k;
    return { lr, gradNorm };
  }

  /** Copies the state out (for checkpoints). */
  async exportState(): Promise<AdamState> {
    const read = (vs: tf.Variable[]) =>
      Promise.all(vs.map(async (x) => new Float32Array(await x.data() as Float32Array)));
    return { step: this.#step, m: await read(this.#m), v: await read(this.#v) };
  }

  /** Restores a state from {@link exportState}; shapes must match the variables. */
  importState(state: AdamState): void {
    const n = this.variables.length;
    if (state.m.length !== n || state.v.length !== n) {
      throw new RangeError(
        `optimizer state has ${state.m.length} moments for ${n} variables (mismatched model?)`,
      );
    }
    this.variables.forEach((w, i) => {
      for (
        const [name, arr, dst] of [["m", state.m[i], this.#m[i]], [
          "v",
          state.v[i],
          this.#v[i],
        ]] as const
      ) {
        if (arr.length !== w.size) {
          throw new RangeError(
            `optimizer state ${name}[${i}] has ${arr.length} values, variable ${w.name} needs ${w.size}`,
          );
        }
        dst.assign(tf.tensor(arr, w.shape, "float32"));
      }
    });
    this.#step = state.step;
  }

  /** Frees the moment variables. */
  dispose(): void {
    [...this.#m, ...this.#v].forEach((x) => x.dispose());
  }
}
