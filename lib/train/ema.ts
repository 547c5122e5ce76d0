/**
 * Exponential moving average of model weights, kept as separate variables and used for
 * evaluation and sampling (as diffusion training usually does).
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/**
 * EMA of a fixed list of variables: after each {@link Ema.update},
 * `shadow = decay * shadow + (1 - decay) * w`. The shadow starts equal to the weights.
 */
export class Ema {
  /** Weight of the old shadow in each update, in [0, 1). */
  readonly decay: number;
  /** The tracked model variables, in the order of {@link Ema.exportState}. */
  readonly variables: tf.Variable[];
  #shadow: tf.Variable[];

  /**
   * Starts the shadow as a copy of `variables` (non-trainable tfjs variables of the same shapes).
   * @param variables the weights to average, in a fixed order (the order of saved state).
   * @param decay in [0, 1); 0.999-0.9999 are usual for diffusion models.
   */
  constructor(variables: tf.Variable[], decay: number) {
    if (!(decay >= 0 && decay < 1)) {
      throw new RangeError(`ema decay must be in [0, 1), got ${decay}`);
    }
    this.decay = decay;
    this.variables = variables;
    this.#shadow = variables.map((w) => tf.variable(w.clone(), false));
  }

  /** Moves the shadow weights towards the current weights. */
  update(): void {
    tf.tidy(() => {
      this.#shadow.forEach((s, i) => {
        s.assign(tf.add(tf.mul(s, this.decay), tf.mul(this.variables[i], 1 - this.decay)));
      });
    });
  }

  /** The shadow values as Float32Arrays (for checkpoints), in the variables' order. */
  async exportState(): Promise<Float32Array[]> {
    return await Promise.all(
      this.#shadow.map(async (s) => new Float32Array(await s.data() as Float32Array)),
    );
  }

  /** Restores shadow values saved by {@link exportState}. */
  importState(values: Float32Array[]): void {
    if (values.length !== this.#shadow.length) {
      throw new RangeError(
        `ema state has ${values.length} tensors for ${this.#shadow.length} variables`,
      );
    }
    this.#shadow.forEach((s, i) => {
      if (values[i].length !== s.size) {
        throw new RangeError(`ema state [${i}] has ${values[i].length} values, needs ${s.size}`);
      }
      s.assign(tf.tensor(values[i], s.shape, "float32"));
    });
  }

  /**
   * Runs `fn` with the model variables temporarily holding the EMA weights, then restores
   * the raw weights (also when `fn` throws).
   */
  async withEmaWeights<T>(fn: () => T | Promise<T>): Promise<T> {
    const saved = this.variables.map((w) => w.clone());
    this.variables.forEach((w, i) => w.assign(this.#shadow[i]));
    try {
      return await fn();
    } finally {
      this.variables.forEach((w, i) => w.assign(saved[i]));
      saved.forEach((t) => t.dispose());
    }
  }

  /** Frees the shadow variables. */
  dispose(): void {
    this.#shadow.forEach((s) => s.dispose());
  }
}
