/**
 * The one training loop of the toolkit, reused by the teacher, the classifier and the
 * distillation students: gradient step per trainable model (each with its own Adam/AdamW,
 * lr schedule and clipping), EMA of the main model, seeded randomness, throttled progress,
 * JSON-lines metrics, periodic evaluation and atomic, resumable checkpoints.
 *
 * Resume contract: a run resumed from its latest checkpoint on the same backend produces
 * the same losses as an uninterrupted run, because the checkpoint holds the weights, the
 * optimiser moments, the EMA weights, the step, the RNG state and the data-source state;
 * each step's loss runs with dropout masks seeded by (seed, step) (models/dropout.ts).
 * (Layers with their own unseeded randomness, e.g. tfjs' stock Dropout, break this.)
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Rng, type RngState } from "../core/rng.ts";
import { AdamOptimizer, type AdamState, type OptimizerConfig } from "./optim.ts";
import { Ema } from "./ema.ts";
import {
  latestCheckpointStep,
  loadCheckpoint,
  loadLayersModelFiles,
  removeStaleTemporaries,
  saveCheckpoint,
  writeFileAtomic,
} from "./checkpoint.ts";
import {
  configChanges,
  describeChanges,
  RunDirError,
  SAFE_RESUME_FIELDS,
  unsafeChanges,
} from "./run_dir.ts";
import { ProgressReporter } from "./progress.ts";
import { stepDropoutSeed, withDropoutSeed } from "../models/dropout.ts";

/** A source of training batches whose position can be saved and restored. */
export interface DataSource<B> {
  /** The next batch. Tensors in it are disposed by the trainer after the step. */
  next(): B;
  /** JSON-serialisable position (epoch, order seed, offset, ...). */
  getState(): unknown;
  /** Restores a position returned by {@link DataSource.getState}. */
  setState(state: unknown): void;
}

/** What the loss function sees at each step. */
export interface StepContext<B> {
  /** The batch of this step. */
  batch: B;
  /** 0-based index of this step (= updates applied before it). */
  step: number;
  /** The run's seeded RNG (timesteps, noise, ...); its state is checkpointed. */
  rng: Rng;
}

/** The loss of one step: a scalar to minimise, and optional scalar metrics to log. */
export interface StepLoss {
  /** Scalar loss; gradients flow from it to every trainable model. */
  loss: tf.Scalar;
  /** Extra scalars to log (not differentiated). */
  metrics?: Record<string, tf.Scalar>;
}

/** Trainer settings. */
export interface TrainerOptions<B> {
  /**
   * Models whose weights are trained and checkpointed. The first entry is the main model
   * (EMA applies to it). Non-trainable weights (BatchNorm statistics) are saved too.
   */
  models: Record<string, tf.LayersModel>;
  /** Optimiser per model name; a model without an entry uses `optimizer`. */
  optimizers?: Record<string, OptimizerConfig>;
  /** Default optimiser settings. */
  optimizer: OptimizerConfig;
  /** EMA decay of the main model's weights; omit for no EMA. */
  emaDecay?: number;
  /** Loss of one step. Runs inside `tf.variableGrads`; create tensors freely. */
  loss: (ctx: StepContext<B>) => StepLoss;
  /** Batches. */
  data: DataSource<B>;
  /** Samples per batch, for images/s (optional). */
  batchSize?: number;
  /** Seed of the run's RNG. */
  seed: number;
  /** Run directory for checkpoints and metrics.jsonl; omit to keep nothing on disk. */
  runDir?: string;
  /** Checkpoint every this many steps (and at the end). Default: 0 = only at the end. */
  checkpointEvery?: number;
  /** Log a metrics line every this many steps. Default 10. */
  logEvery?: number;
  /** Call `onEval` every this many steps (and at the end). Default 0 = never. */
  evalEvery?: number;
  /** Periodic evaluation hook; its numbers are appended to metrics.jsonl. */
  onEval?: (step: number, trainer: Trainer<B>) => Promise<Record<string, number> | void>;
  /** JSON-serialisable config saved into every checkpoint (and compared on resume). */
  config?: Record<string, unknown>;
  /**
   * Config fields (dotted paths) that may differ from the checkpoint's on resume; the new
   * values apply from the resumed step on. Default {@link SAFE_RESUME_FIELDS}.
   */
  safeConfigFields?: readonly string[];
  /** Progress line prefix. Default "train". */
  label?: string;
  /** Progress print interval in seconds. Default 10. */
  progressIntervalSec?: number;
  /** Progress line sink (default console.log). */
  print?: (line: string) => void;
}

/** Thrown when the loss becomes NaN or infinite; the last checkpoint is left intact. */
export class NonFiniteLossError extends Error {
  /** 0-based index of the step whose loss was not finite. */
  readonly step: number;
  /** The loss (NaN or +-Infinity). */
  readonly value: number;

  /** An error naming the step and the loss value, with what to do next. */
  constructor(step: number, value: number) {
    super(
      `loss is ${value} at step ${step}: training stopped; the last good checkpoint (if any) ` +
        `was kept. Lower the learning rate (optimizer.lr may change on --resume) or enable ` +
        `gradient clipping.`,
    );
    this.name = "NonFiniteLossError";
    this.step = step;
    this.value = value;
  }
}

function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

/** The training loop. State is real here: optimisers, EMA, RNG, step. */
export class Trainer<B> {
  /** The settings this trainer was built with. */
  readonly options: TrainerOptions<B>;
  /** One optimiser per model name. */
  readonly optimizers: Record<string, AdamOptimizer>;
  /** EMA of the main model's weights (null without `emaDecay`). */
  readonly ema: Ema | null;
  /** The run's seeded RNG (restored by {@link Trainer.resume}). */
  rng: Rng;
  #step = 0;
  /** Loss of every step run by this process, in order (for tests and plots). */
  readonly losses: number[] = [];

  /** Builds optimisers and EMA for `options.models`; nothing is read or written yet. */
  constructor(options: TrainerOptions<B>) {
    if (Object.keys(options.models).length === 0) {
      throw new RangeError("models must name at least one model to train");
    }
    this.options = options;
    this.optimizers = Object.fromEntries(
      Object.entries(options.models).map(([name, m]) => [
        name,
        new AdamOptimizer(trainableVariables(m), options.optimizers?.[name] ?? options.optimizer),
      ]),
    );
    const main = Object.values(options.models)[0];
    this.ema = options.emaDecay === undefined
      ? null
      : new Ema(trainableVariables(main), options.emaDecay);
    this.rng = new Rng(options.seed);
  }

  /** Updates applied so far. */
  get step(): number {
    return this.#step;
  }

  /**
   * Restores the latest checkpoint of `runDir` into the models, optimisers, EMA, RNG and
   * data source. Returns the restored step, or 0 when the run has no checkpoint yet.
   * Throws if the checkpoint's config differs from this trainer's config in a field that
   * is not in `safeConfigFields`; changed safe fields (e.g. a lower lr after a NaN stop)
   * take effect from the resumed step on.
   */
  async resume(): Promise<number> {
    const { runDir } = this.options;
    if (!runDir) throw new RangeError("resume() needs options.runDir");
    await removeStaleTemporaries(runDir);
    const ck = await loadCheckpoint(runDir);
    if (!ck) return 0;
    const bad = unsafeChanges(
      configChanges(ck.state.config ?? {}, this.options.config ?? {}),
      this.options.safeConfigFields ?? SAFE_RESUME_FIELDS,
    );
    if (bad.length > 0) {
      throw new Error(
        `checkpoint ${ck.dir} was written with a different config: ${describeChanges(bad)}`,
      );
    }
    for (const [name, model] of Object.entries(this.options.models)) {
      const saved = await loadLayersModelFiles(ck.dir, name);
      if (saved.weights.length !== model.weights.length) {
        throw new Error(
          `checkpoint ${ck.dir}/${name}.json has ${saved.weights.length} weights, ` +
            `the model has ${model.weights.length}: mismatched architecture`,
        );
      }
      model.setWeights(saved.getWeights());
      saved.dispose();
      const st: AdamState = {
        step: ck.step,
        m: ck.arrays[`${name}.adam.m`],
        v: ck.arrays[`${name}.adam.v`],
      };
      this.optimizers[name].importState(st);
    }
    if (this.ema) this.ema.importState(ck.arrays["ema"]);
    this.rng = new Rng(this.options.seed, ck.state.rng as RngState);
    this.options.data.setState(ck.state.data);
    this.#step = ck.step;
    return ck.step;
  }

  /**
   * Keeps only metrics lines up to `step`: lines a killed process wrote after its last
   * checkpoint (or before its first) are redone, never duplicated.
   */
  async #truncateMetrics(step: number): Promise<void> {
    const path = `${this.options.runDir}/metrics.jsonl`;
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    const lines = text.split("\n").filter((l) => l);
    const kept = lines.filter((l) => JSON.parse(l).step <= step);
    if (kept.length < lines.length) {
      await writeFileAtomic(path, kept.map((l) => l + "\n").join(""));
    }
  }

  /**
   * Extra files (name -> contents) of a checkpoint, written with it in one atomic write.
   * Subclasses with more state (e.g. a memory queue) override this; default none.
   */
  protected checkpointFiles(): Promise<Record<string, string | Uint8Array>> {
    return Promise.resolve({});
  }

  /** Writes a checkpoint of the current state (no-op without runDir). */
  async checkpoint(): Promise<string | null> {
    const { runDir } = this.options;
    if (!runDir) return null;
    const arrays: Record<string, Float32Array[]> = {};
    for (const [name, opt] of Object.entries(this.optimizers)) {
      const st = await opt.exportState();
      arrays[`${name}.adam.m`] = st.m;
      arrays[`${name}.adam.v`] = st.v;
    }
    if (this.ema) arrays["ema"] = await this.ema.exportState();
    return await saveCheckpoint(runDir, this.options.models, {
      step: this.#step,
      arrays,
      state: {
        rng: this.rng.state(),
        data: this.options.data.getState(),
        config: this.options.config ?? {},
      },
    }, { files: await this.checkpointFiles() });
  }

  /** Runs one optimisation step; returns its loss and metrics. */
  trainStep(): { loss: number; metrics: Record<string, number> } {
    const o = this.options;
    const batch = o.data.next();
    const names = Object.keys(o.models);
    const vars = names.flatMap((n) => this.optimizers[n].variables);
    let kept: Record<string, tf.Scalar> = {};
    const { value, grads } = tf.variableGrads(() => {
      const step = this.#step;
      const r = withDropoutSeed(
        stepDropoutSeed(o.seed, step),
        () => o.loss({ batch, step, rng: this.rng }),
      );
      kept = Object.fromEntries(
        Object.entries(r.metrics ?? {}).map(([k, v]) => [k, tf.keep(v)]),
      );
      return r.loss;
    }, vars);
    tf.dispose(batch as unknown as tf.TensorContainer);
    const loss = value.dataSync()[0];
    value.dispose();
    const metrics = Object.fromEntries(
      Object.entries(kept).map(([k, v]) => [k, v.dataSync()[0]]),
    );
    Object.values(kept).forEach((v) => v.dispose());
    if (!Number.isFinite(loss)) {
      Object.values(grads).forEach((g) => g.dispose());
      throw new NonFiniteLossError(this.#step, loss);
    }
    for (const n of names) {
      const opt = this.optimizers[n];
      const r = opt.apply(opt.variables.map((v) => grads[v.name]));
      metrics[names.length > 1 ? `lr_${n}` : "lr"] = r.lr;
      if (!Number.isNaN(r.gradNorm)) {
        metrics[names.length > 1 ? `gradNorm_${n}` : "gradNorm"] = r.gradNorm;
      }
    }
    Object.values(grads).forEach((g) => g.dispose());
    this.ema?.update();
    this.#step++;
    this.losses.push(loss);
    return { loss, metrics };
  }

  /**
   * Trains until `totalSteps` updates have been applied in all (counting those restored
   * by {@link resume}). Logs, evaluates and checkpoints as configured; the final state is
   * always checkpointed when a run directory is set. Refuses (RunDirError) to start in a
   * run directory whose latest checkpoint is ahead of this trainer (a run not resumed).
   */
  async run(totalSteps: number): Promise<void> {
    const o = this.options;
    if (!Number.isInteger(totalSteps) || totalSteps < 0) {
      throw new RangeError(`totalSteps must be a non-negative integer, got ${totalSteps}`);
    }
    if (o.runDir) {
      await Deno.mkdir(o.runDir, { recursive: true });
      await removeStaleTemporaries(o.runDir);
      const saved = await latestCheckpointStep(o.runDir);
      if (saved !== null && saved > this.#step) {
        throw new RunDirError(
          `${o.runDir} holds a checkpoint of step ${saved} but this trainer is at step ` +
            `${this.#step}: call resume() to continue that run, or use another run directory`,
        );
      }
      await this.#truncateMetrics(this.#step);
    }
    const progress = new ProgressReporter(o.label ?? "train", totalSteps, {
      intervalSec: o.progressIntervalSec,
      print: o.print,
    });
    const logEvery = o.logEvery ?? 10;
    const t0 = performance.now();
    while (this.#step < totalSteps) {
      const { loss, metrics } = this.trainStep();
      const step = this.#step;
      const lr = metrics.lr ?? metrics[`lr_${Object.keys(o.models)[0]}`];
      await progress.update({ step, loss, batchSize: o.batchSize, extra: { lr } });
      let line: Record<string, number> | null = step % logEvery === 0 || step === totalSteps
        ? { step, loss, ...metrics, seconds: (performance.now() - t0) / 1000 }
        : null;
      if (o.onEval && o.evalEvery && (step % o.evalEvery === 0 || step === totalSteps)) {
        const ev = await o.onEval(step, this);
        if (ev) line = { ...(line ?? { step }), ...ev };
      }
      if (line && o.runDir) {
        await Deno.writeTextFile(`${o.runDir}/metrics.jsonl`, JSON.stringify(line) + "\n", {
          append: true,
        });
      }
      if (o.checkpointEvery && step % o.checkpointEvery === 0 && step !== totalSteps) {
        await this.checkpoint();
      }
    }
    await this.checkpoint();
  }

  /** Frees optimiser and EMA state (not the models). */
  dispose(): void {
    Object.values(this.optimizers).forEach((o) => o.dispose());
    this.ema?.dispose();
  }
}
