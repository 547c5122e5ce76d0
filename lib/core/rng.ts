/**
 * Seeded random numbers for everything random in the toolkit (noise, timesteps, data
 * order, dropout seeds). Built on the `seedrandom` package's Alea generator, whose state
 * can be saved into a checkpoint and restored exactly.
 * @module
 */
// @ts-types="@types/seedrandom"
import seedrandom from "seedrandom";

/** Opaque, JSON-serialisable generator state (for checkpoints). */
export interface RngState {
  /** Alea's internal state as returned by `seedrandom`. */
  readonly alea: unknown;
  /** A cached second normal deviate from Box-Muller, or null. */
  readonly spare: number | null;
}

/** A seeded pseudo-random generator with uniform, normal and integer draws. */
export class Rng {
  #prng: seedrandom.StatefulPRNG<seedrandom.State.Alea>;
  #spare: number | null = null;

  /**
   * Starts the stream of `seed`, or continues a saved one.
   * @param seed any integer or string; the same seed gives the same stream.
   * @param state optional saved state (from {@link Rng.state}) to resume a stream.
   */
  constructor(seed: number | string, state?: RngState) {
    if (typeof seed === "number" && !Number.isFinite(seed)) {
      throw new RangeError(`seed must be a finite number or a string, got ${seed}`);
    }
    this.#prng = seedrandom.alea(String(seed), {
      state: (state?.alea as seedrandom.State.Alea | undefined) ?? true,
    }) as seedrandom.StatefulPRNG<seedrandom.State.Alea>;
    this.#spare = state?.spare ?? null;
  }

  /** Uniform double in [0, 1). */
  uniform(): number {
    return this.#prng.double();
  }

  /** Integer uniform in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi < lo) {
      throw new RangeError(`int(lo, hi) needs integers with lo <= hi, got (${lo}, ${hi})`);
    }
    return lo + Math.floor(this.#prng.double() * (hi - lo + 1));
  }

  /** Standard normal deviate (Box-Muller, polar form). */
  normal(): number {
    if (this.#spare !== null) {
      const s = this.#spare;
      this.#spare = null;
      return s;
    }
    let u = 0, v = 0, r = 0;
    do {
      u = 2 * this.#prng.double() - 1;
      v = 2 * this.#prng.double() - 1;
      r = u * u + v * v;
    } while (r >= 1 || r === 0);
    const f = Math.sqrt((-2 * Math.log(r)) / r);
    this.#spare = v * f;
    return u * f;
  }

  /** Fills `out` (or a new Float64Array of length `n`) with standard normal deviates. */
  normals(n: number, out: Float64Array = new Float64Array(n)): Float64Array {
    for (let i = 0; i < n; i++) out[i] = this.normal();
    return out;
  }

  /** A random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.#prng.double() * (i + 1));
      const tmp = p[i];
      p[i] = p[j];
      p[j] = tmp;
    }
    return p;
  }

  /** A 32-bit integer seed derived from this stream (for tfjs ops that take a seed). */
  seed32(): number {
    return this.#prng.int32() >>> 0;
  }

  /** The generator's state; `new Rng(seed, state)` continues the stream exactly. */
  state(): RngState {
    return { alea: this.#prng.state(), spare: this.#spare };
  }
}
