/**
 * Progressive-distillation rounds (method.md sections 4-5) on top of the one training loop
 * ({@link Trainer}): a round distils a teacher sampled with N steps into a student sampled
 * with N/2 steps, with the plain PD pixel loss ("pd"), the RCFD classifier term ("rcfd") or
 * the full RDD objective ("rdd"); {@link progressiveDistill} chains rounds N -> N/2 -> ... -> K.
 *
 * Index convention: ONE schedule table, the teacher run's (maxIndex = T); the network always
 * sees table indices. A model "with N steps" is sampled with stride u = T/N. In a round with
 * teacher steps N, k is uniform in 1..N/2, the student input is z at table index 2k*u, the
 * teacher takes two DDIM steps 2k*u -> (2k-1)*u -> (2k-2)*u, and the target is the x0 for
 * which ONE student DDIM step 2k*u -> (2k-2)*u lands where the teacher landed. This is
 * {@link pdTarget} with teacher time indices t = 2k in 2..N and `timeScale` = u.
 *
 * The teacher target (and, for "rcfd"/"rdd", the frozen classifier's features of it) is
 * computed in the data source, outside the gradient tape: the teacher never costs backprop
 * memory. The source has its own seeded RNG, saved in checkpoints with the image position.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Rng, type RngState } from "../core/rng.ts";
import type { Parameterization } from "../diffusion/denoiser.ts";
import type { DiscreteSchedule } from "../diffusion/schedule.ts";
import { toX0AndEpsTensors } from "../diffusion/param_tf.ts";
import { classify } from "../models/classifier.ts";
import type { ImageSet } from "../data/images.ts";
import {
  type DataSource,
  type StepContext,
  type StepLoss,
  Trainer,
  type TrainerOptions,
} from "../train/trainer.ts";
import type { OptimizerConfig } from "../train/optim.ts";
import { loadCheckpoint, loadLayersModelFiles, saveModelDirAtomic } from "../train/checkpoint.ts";
import { writeFileAtomic } from "../train/checkpoint.ts";
import { configChanges, describeChanges, unsafeChanges } from "../train/run_dir.ts";
import { imageDataSource } from "../train/run_config.ts";
import { pdTarget, type PdTargetOptions, type PdTeacher, samplePdTimesteps } from "./pd_target.ts";
import {
  type ClassifierFeatures,
  createRddQueue,
  type DataTargets,
  type RddConfig,
  rddLoss,
  rddPreset,
  type RddPresetName,
} from "./rdd_objective.ts";
import { createProjectionHead, type MemoryQueue, type MemoryQueueState } from "./mp2p.ts";

/**
 * Default optimiser of a round (the reference: Adam, lr 5e-5, cosine decay to 0 over the
 * round, global-norm clipping 1.0). Small-scale runs usually want lr 1e-4..2e-4.
 */
export const DISTILL_OPTIMIZER: Readonly<Omit<OptimizerConfig, "totalSteps">> = Object.freeze({
  kind: "adam",
  lr: 5e-5,
  cosineDecay: true,
  gradClipNorm: 1,
});

/** A deep copy of a layers model (same topology, copied weights); the caller disposes it. */
export async function cloneModel(model: tf.LayersModel): Promise<tf.LayersModel> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler((a) => {
    artifacts = a;
    return Promise.resolve({
      modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" },
    });
  }));
  return await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
}

/** `alphasBar` at the table indices `idx` (float64, length B). */
function alphaBarsAt(schedule: DiscreteSchedule, idx: ArrayLike<number>): Float64Array {
  return Float64Array.from(idx, (j) => schedule.alphasBar[j]);
}

/**
 * The frozen network `model` (inputs `[x [B,H,W,C], t [B]]`, dropout off) as a
 * {@link PdTeacher}: it is queried at the table indices it is given and returns {x0, eps}
 * converted from its `parameterization` ("x0", "eps" or "v").
 */
export function networkTeacher(
  model: tf.LayersModel,
  schedule: DiscreteSchedule,
  parameterization: Parameterization,
): PdTeacher {
  return (z, tIndex) =>
    tf.tidy(() => {
      const pred = model.apply([z, tf.cast(tIndex, "float32")], { training: false }) as tf.Tensor;
      const abar = alphaBarsAt(schedule, tIndex.dataSync());
      const { x0, eps } = toX0AndEpsTensors(z, pred, parameterization, abar);
      return { x0: x0 as tf.Tensor4D, eps: eps as tf.Tensor4D };
    });
}

/** One training batch of a round; every tensor is disposed by the trainer after the step. */
export interface PdBatch {
  /** Student input z at table index `netIndex`, `[B, H, W, C]`. */
  zt: tf.Tensor4D;
  /** Table index the student is queried at (2k * u), `[B]` int32. */
  netIndex: tf.Tensor1D;
  /** PD target x~, `[B, H, W, C]`. */
  xTarget: tf.Tensor4D;
  /** eps~ implied by x~ at z_t, `[B, H, W, C]`. */
  epsTarget: tf.Tensor4D;
  /** Classifier feature map of x~ `[B, h, w, Cf]` (only when a classifier term is on). */
  teacherFeatureMap?: tf.Tensor4D;
  /** Pooled classifier features of x~ `[B, Cf]` (only when a classifier term is on). */
  teacherPooled?: tf.Tensor2D;
  /** Clean x0, noise and the teacher's first-step x0 (only with `keepData`, for `gt`). */
  data?: DataTargets;
}

/** Options of {@link pdBatchSource}. */
export interface PdBatchSourceOptions {
  /** Clean images `[B, H, W, C]` in [-1, 1]. */
  images: DataSource<tf.Tensor4D>;
  /** The frozen teacher. */
  teacher: PdTeacher;
  /** The one schedule table (maxIndex = T). */
  schedule: DiscreteSchedule;
  /** Teacher steps N: even, divides T. */
  teacherSteps: number;
  /** Frozen classifier: when set, its features of x~ are added to the batch. */
  classifier?: tf.LayersModel;
  /** Seed of the source's RNG (timesteps and noise). */
  seed: number;
  /** Last-round variant of the target (see {@link PdTargetOptions}). */
  finalStepTarget?: PdTargetOptions["finalStepTarget"];
  /** Keep {@link PdBatch.data} in each batch (needed by RDD's `gt` term). */
  keepData?: boolean;
  /** Numerics of the PD target (default "exact"; see {@link PdTargetOptions.numerics}). */
  numerics?: PdTargetOptions["numerics"];
}

/** Checks N: an even integer >= 2 dividing T; returns the teacher stride u = T/N. */
export function teacherStride(schedule: DiscreteSchedule, teacherSteps: number): number {
  const T = schedule.maxIndex;
  if (
    !Number.isInteger(teacherSteps) || teacherSteps < 2 || teacherSteps % 2 !== 0 ||
    T % teacherSteps !== 0
  ) {
    throw new RangeError(
      `teacherSteps must be an even integer >= 2 dividing schedule.maxIndex ${T}, got ${teacherSteps}`,
    );
  }
  return T / teacherSteps;
}

/**
 * A {@link DataSource} of {@link PdBatch}es: per batch of clean images it draws t = 2k
 * (k uniform in 1..N/2) then eps ~ N(0, I) (in that order, from its own RNG), and computes
 * the teacher's PD target with {@link pdTarget} (timeScale = T/N) and, with a classifier,
 * the classifier's features of x~ (inference mode). Its state = image position + RNG state.
 */
export function pdBatchSource(o: PdBatchSourceOptions): DataSource<PdBatch> {
  const u = teacherStride(o.schedule, o.teacherSteps);
  let rng = new Rng(o.seed);
  return {
    next(): PdBatch {
      const x0 = o.images.next();
      try {
        const t = samplePdTimesteps(rng, x0.shape[0], o.teacherSteps);
        const eps = tf.tensor(Float32Array.from(rng.normals(x0.size)), x0.shape) as tf.Tensor4D;
        const target = pdTarget(o.schedule, t, x0, eps, o.teacher, {
          timeScale: u,
          finalStepTarget: o.finalStepTarget,
          numerics: o.numerics,
        });
        target.zTeacher.dispose();
        const b: PdBatch = {
          zt: target.zt,
          netIndex: target.netIndex,
          xTarget: target.xTarget,
          epsTarget: target.epsTarget,
        };
        if (o.keepData) b.data = { x0: x0.clone(), noise: eps, teacherX0: target.teacherX0 };
        else tf.dispose([eps, target.teacherX0]);
        if (o.classifier) {
          const f = classify(o.classifier, target.xTarget, { training: false });
          f.logits.dispose();
          b.teacherFeatureMap = f.featureMap;
          b.teacherPooled = f.pooled;
        }
        return b;
      } finally {
        x0.dispose();
      }
    },
    getState: () => ({ images: o.images.getState(), rng: rng.state() }),
    setState(state: unknown) {
      const s = state as { images: unknown; rng: RngState };
      o.images.setState(s.images);
      rng = new Rng(o.seed, s.rng);
    },
  };
}

/** What the loss of {@link distillObjective} needs. */
export interface DistillObjectiveOptions {
  /** The student being trained (inputs `[x, t]`). */
  student: tf.LayersModel;
  /** The one schedule table. */
  schedule: DiscreteSchedule;
  /** What the student predicts. */
  parameterization: Parameterization;
  /** Loss weights and temperatures ({@link rddPreset}). */
  config: RddConfig;
  /** Frozen classifier (needed when a classifier term has a non-zero weight). */
  classifier?: tf.LayersModel;
  /** M_P2P memory queue (needed when `config.mp2pWeight > 0`). */
  queue?: MemoryQueue;
  /** M_P2P projection head (trained alongside the student by its own optimiser). */
  head?: tf.LayersModel;
}

/** True when `config` gives any classifier-feature term a non-zero weight. */
export function usesClassifier(config: RddConfig): boolean {
  return config.rcfdWeight > 0 || config.isp2pWeight > 0 || config.mp2pWeight > 0 ||
    config.rkdDistanceWeight > 0 || config.rkdAngleWeight > 0;
}

/**
 * The loss of one distillation step on a {@link PdBatch}: the student (training mode) is
 * queried at (z_t, netIndex), its output converted to (x0, eps); then {@link rddLoss} with
 * the PD pixel term (if weighted) and the classifier terms on classify(student x0) vs the
 * batch's features of x~ (classifier in inference mode, never trained). Metrics: the
 * unweighted terms.
 */
export function distillObjective(
  o: DistillObjectiveOptions,
): (ctx: StepContext<PdBatch>) => StepLoss {
  const features = usesClassifier(o.config);
  if (features && !o.classifier) {
    throw new TypeError("classifier is required when a classifier term has a non-zero weight");
  }
  return ({ batch }) => {
    const abar = alphaBarsAt(o.schedule, batch.netIndex.dataSync());
    const pred = o.student.apply([batch.zt, tf.cast(batch.netIndex, "float32")], {
      training: true,
    }) as tf.Tensor4D;
    const { x0, eps } = toX0AndEpsTensors(batch.zt, pred, o.parameterization, abar);
    let studentFeats: ClassifierFeatures | null = null;
    let teacherFeats: ClassifierFeatures | null = null;
    if (features) {
      if (!batch.teacherFeatureMap || !batch.teacherPooled) {
        throw new TypeError("batch must carry the teacher's classifier features (pdBatchSource)");
      }
      const f = classify(o.classifier!, x0 as tf.Tensor4D, { training: false });
      studentFeats = f;
      teacherFeats = { featureMap: batch.teacherFeatureMap, pooled: batch.teacherPooled };
    }
    const r = rddLoss(studentFeats, teacherFeats, o.queue ?? null, o.head ?? null, o.config, {
      studentX0: x0 as tf.Tensor4D,
      studentEps: eps as tf.Tensor4D,
      xTarget: batch.xTarget,
      epsTarget: batch.epsTarget,
      data: batch.data,
    });
    return { loss: r.total, metrics: r.terms as Record<string, tf.Scalar> };
  };
}

/** Reads the queue state saved next to a checkpoint (see {@link QueueTrainer}). */
async function readQueueState(dir: string): Promise<MemoryQueueState | null> {
  try {
    const meta = JSON.parse(await Deno.readTextFile(`${dir}/queue.json`));
    const bytes = await Deno.readFile(`${dir}/queue.bin`);
    return { ...meta, bank: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * A {@link Trainer} that also checkpoints the M_P2P memory queue (queue.json + queue.bin in
 * each checkpoint directory, part of the checkpoint's atomic write) and restores it on
 * {@link Trainer.resume}, so an RDD round resumed mid-way continues with the same bank,
 * pointer and RNG.
 */
class QueueTrainer extends Trainer<PdBatch> {
  constructor(
    options: TrainerOptions<PdBatch>,
    readonly queue: MemoryQueue,
  ) {
    super(options);
  }

  protected override async checkpointFiles(): Promise<Record<string, string | Uint8Array>> {
    const { bank, ...meta } = await this.queue.state();
    return {
      "queue.bin": new Uint8Array(bank.buffer, bank.byteOffset, bank.byteLength),
      "queue.json": JSON.stringify(meta),
    };
  }

  override async resume(): Promise<number> {
    const step = await super.resume();
    const ck = step > 0 ? await loadCheckpoint(this.options.runDir!) : null;
    const state = ck ? await readQueueState(ck.dir) : null;
    if (state) this.queue.restore(state);
    else if (ck) {
      throw new Error(
        `checkpoint ${ck.dir} has no queue.json + queue.bin (M_P2P memory queue): ` +
          `it cannot be resumed exactly; start the round over`,
      );
    }
    return step;
  }
}

/** Options of {@link distillRound}. */
export interface DistillRoundOptions {
  /** The frozen teacher (sampled with `teacherSteps`). */
  teacher: tf.LayersModel;
  /** The student; default a copy of the teacher ({@link cloneModel}). Trained in place. */
  student?: tf.LayersModel;
  /** The one schedule table (the teacher run's). */
  schedule: DiscreteSchedule;
  /** What teacher and student predict (the teacher run's parameterisation). */
  parameterization: Parameterization;
  /** Teacher steps N (even, divides T); the student gets N/2. */
  teacherSteps: number;
  /** "pd", "rcfd" or "rdd" ({@link rddPreset}). */
  method: RddPresetName;
  /** Overrides of the preset (weights, temperatures, queue sizes, pdMseWeight, ...). */
  rdd?: Partial<RddConfig>;
  /** Frozen classifier; required for "rcfd" / "rdd". Never updated. */
  classifier?: tf.LayersModel;
  /** Clean training images `[B, H, W, C]`. */
  data: DataSource<tf.Tensor4D>;
  /** Optimiser overrides on top of {@link DISTILL_OPTIMIZER}; totalSteps = `steps`. */
  optimizer?: Partial<OptimizerConfig>;
  /** Optimiser steps of the round. */
  steps: number;
  /** Seed of the round (timesteps, noise, queue, head init). */
  seed: number;
  /** Samples per batch (only for the images/s figure of the progress line). */
  batchSize?: number;
  /** Directory of the round's metrics.jsonl and checkpoints; omit for none. */
  runDir?: string;
  /** Continue from the latest checkpoint in `runDir`. */
  resume?: boolean;
  /** Checkpoint period (steps); default 0 = only at the end. */
  checkpointEvery?: number;
  /** Metrics period (steps); default 10. */
  logEvery?: number;
  /** Last-round variant of the PD target (default "identity", the reference). */
  finalStepTarget?: PdTargetOptions["finalStepTarget"];
  /** Progress line sink (default console.log). */
  print?: (line: string) => void;
}

/** Result of {@link distillRound}. */
export interface DistillRoundResult {
  /** The trained student (sample it with teacherSteps / 2 steps). */
  student: tf.LayersModel;
  /** The M_P2P head ("rdd" with mp2pWeight > 0), else null. Caller disposes. */
  head: tf.LayersModel | null;
  /** Loss of every step this process ran. */
  losses: number[];
  /** The loss configuration used. */
  config: RddConfig;
}

/** The JSON config of a round, compared on resume (everything that changes its result). */
export function roundConfig(o: DistillRoundOptions): Record<string, unknown> {
  const optimizer: OptimizerConfig = { ...DISTILL_OPTIMIZER, ...o.optimizer, totalSteps: o.steps };
  return {
    kind: "distill-round",
    method: o.method,
    teacherSteps: o.teacherSteps,
    studentSteps: o.teacherSteps / 2,
    parameterization: o.parameterization,
    schedule: { name: o.schedule.name, maxIndex: o.schedule.maxIndex },
    loss: rddPreset(o.method, o.rdd),
    optimizer,
    steps: o.steps,
    seed: o.seed,
    finalStepTarget: o.finalStepTarget ?? "identity",
  };
}

/**
 * Runs one distillation round with a new {@link Trainer} (fresh optimiser state): models
 * {student} (+ {head} with its own Adam at the same lr for M_P2P), the loss of
 * {@link distillObjective} on batches of {@link pdBatchSource}. No EMA.
 */
export async function distillRound(o: DistillRoundOptions): Promise<DistillRoundResult> {
  if (!Number.isInteger(o.steps) || o.steps < 1) {
    throw new RangeError(`steps must be a positive integer, got ${o.steps}`);
  }
  teacherStride(o.schedule, o.teacherSteps);
  const config = rddPreset(o.method, o.rdd);
  const features = usesClassifier(config);
  if (features && !o.classifier) {
    throw new TypeError(`classifier is required for method "${o.method}"`);
  }
  const student = o.student ?? await cloneModel(o.teacher);
  let head: tf.LayersModel | null = null;
  let queue: MemoryQueue | null = null;
  if (config.mp2pWeight > 0) {
    const shape = o.classifier!.outputs[0].shape;
    const C = shape[shape.length - 1];
    if (typeof C !== "number") {
      throw new TypeError("classifier feature map needs a static channel count");
    }
    head = createProjectionHead(C, { seed: o.seed });
    queue = createRddQueue(config, C, o.seed);
  }
  const data = pdBatchSource({
    images: o.data,
    teacher: networkTeacher(o.teacher, o.schedule, o.parameterization),
    schedule: o.schedule,
    teacherSteps: o.teacherSteps,
    classifier: features ? o.classifier : undefined,
    seed: o.seed,
    finalStepTarget: o.finalStepTarget,
    keepData: config.gt,
    numerics: config.numerics,
  });
  const cfg = roundConfig(o);
  const models: Record<string, tf.LayersModel> = head ? { student, head } : { student };
  const options: TrainerOptions<PdBatch> = {
    models,
    optimizer: cfg.optimizer as OptimizerConfig,
    loss: distillObjective({
      student,
      schedule: o.schedule,
      parameterization: o.parameterization,
      config,
      classifier: o.classifier,
      queue: queue ?? undefined,
      head: head ?? undefined,
    }),
    data,
    seed: o.seed,
    batchSize: o.batchSize,
    runDir: o.runDir,
    checkpointEvery: o.checkpointEvery,
    logEvery: o.logEvery,
    config: cfg,
    label: `${o.method} ${o.teacherSteps}->${o.teacherSteps / 2}`,
    print: o.print,
  };
  const trainer = queue ? new QueueTrainer(options, queue) : new Trainer<PdBatch>(options);
  try {
    if (o.resume) await trainer.resume();
    await trainer.run(o.steps);
    return { student, head, losses: trainer.losses, config };
  } finally {
    trainer.dispose();
    queue?.dispose();
  }
}

/** Options of {@link progressiveDistill}. */
export interface ProgressiveDistillOptions {
  /** The teacher sampled with `fromSteps` steps (not modified, not disposed). */
  teacher: tf.LayersModel;
  /** The one schedule table (maxIndex = T). */
  schedule: DiscreteSchedule;
  /** Parameterisation of teacher and students. */
  parameterization: Parameterization;
  /** Steps of the starting teacher N0 (divides T). */
  fromSteps: number;
  /** Steps of the final student K; fromSteps / toSteps must be a power of 2 (>= 2). */
  toSteps: number;
  /** Method of the last `finalRounds` rounds; earlier rounds use "pd". */
  finalMethod: RddPresetName;
  /** How many of the last rounds use `finalMethod` (default 1; 0 = all "pd"). */
  finalRounds?: number;
  /** Loss overrides for the `finalMethod` rounds. */
  rdd?: Partial<RddConfig>;
  /** Frozen classifier (required when `finalMethod` is "rcfd" or "rdd" and finalRounds > 0). */
  classifier?: tf.LayersModel;
  /** Training images; each round gets a fresh seeded batch iterator over them. */
  images: ImageSet;
  /** Batch size. */
  batchSize: number;
  /** Optimiser steps of a round, as a number or per student step count. */
  steps: number | ((studentSteps: number) => number);
  /** Optimiser overrides (on top of {@link DISTILL_OPTIMIZER}). */
  optimizer?: Partial<OptimizerConfig>;
  /** Seed of the chain; round r (0-based) uses seed + r. */
  seed: number;
  /** Run directory: round r is trained in `runDir/round_N_to_M/`; the student is saved in its `model/`. */
  runDir: string;
  /** Checkpoint period within a round (steps). */
  checkpointEvery?: number;
  /** Metrics period (steps). */
  logEvery?: number;
  /** Last-round variant of the PD target. */
  finalStepTarget?: PdTargetOptions["finalStepTarget"];
  /** Called after each round (trained or found finished) with its student. */
  onRound?: (info: RoundInfo) => Promise<void> | void;
  /** Progress line sink. */
  print?: (line: string) => void;
}

/** One round of a chain, as reported by {@link progressiveDistill}. */
export interface RoundInfo {
  /** 0-based position in the chain. */
  index: number;
  /** Sampling steps of the round's teacher. */
  teacherSteps: number;
  /** Sampling steps of the round's student (half the teacher's). */
  studentSteps: number;
  /** The distillation method (loss preset) the round trained with. */
  method: RddPresetName;
  /** The round's directory. */
  dir: string;
  /** True when the round was found finished on disk and not retrained. */
  skipped: boolean;
  /** The student (owned by the chain; valid during `onRound` and, for the last round, after). */
  student: tf.LayersModel;
}

/** The reference's round lengths: students with 2 or 1 steps train twice as long. */
export function referenceRoundSteps(base: number): (studentSteps: number) => number {
  return (studentSteps) => studentSteps <= 2 ? 2 * base : base;
}

/** Directory name of the round N -> N/2. */
export function roundDirName(teacherSteps: number): string {
  return `round_${teacherSteps}_to_${teacherSteps / 2}`;
}

async function readJsonOrNull(path: string): Promise<unknown> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Checks the shape of a chain of rounds before any work (fromSteps / toSteps a power of 2
 * >= 2, fromSteps a valid teacher step count of `schedule`, finalRounds in 0..rounds) and
 * returns the number of rounds and of final-method rounds (default 1).
 * @throws RangeError naming the parameter.
 */
export function checkChain(
  schedule: DiscreteSchedule,
  fromSteps: number,
  toSteps: number,
  finalRounds = 1,
): { rounds: number; finalRounds: number } {
  const ratio = fromSteps / toSteps;
  const rounds = Math.round(Math.log2(ratio));
  if (!Number.isInteger(toSteps) || toSteps < 1 || !(rounds >= 1) || 2 ** rounds !== ratio) {
    throw new RangeError(
      `fromSteps / toSteps must be a power of 2 >= 2, got ${fromSteps} / ${toSteps}`,
    );
  }
  teacherStride(schedule, fromSteps);
  if (!Number.isInteger(finalRounds) || finalRounds < 0 || finalRounds > rounds) {
    throw new RangeError(`finalRounds must be an integer in 0..${rounds}, got ${finalRounds}`);
  }
  return { rounds, finalRounds };
}

/**
 * Chains rounds fromSteps -> fromSteps/2 -> ... -> toSteps, each student (a copy of its
 * teacher at the start) becoming the next teacher. Round r is trained in
 * `runDir/round_N_to_M/` with checkpoints; when done, its student is saved to `model/` and its
 * config to `round.json`. A rerun skips rounds whose `model/` exists (after checking that
 * `round.json` differs from the current settings in safe fields only, `SAFE_RESUME_FIELDS`:
 * such changes apply to the rounds still to train) and resumes an unfinished round from its latest
 * checkpoint, so the whole chain is resumable.
 * @returns the rounds, in order; the caller disposes the last round's student.
 */
export async function progressiveDistill(o: ProgressiveDistillOptions): Promise<RoundInfo[]> {
  const { rounds, finalRounds } = checkChain(o.schedule, o.fromSteps, o.toSteps, o.finalRounds);
  const out: RoundInfo[] = [];
  let teacher = o.teacher;
  for (let r = 0; r < rounds; r++) {
    const N = o.fromSteps / 2 ** r;
    const method = r >= rounds - finalRounds ? o.finalMethod : "pd";
    const dir = `${o.runDir}/${roundDirName(N)}`;
    const steps = typeof o.steps === "number" ? o.steps : o.steps(N / 2);
    const roundOpts: DistillRoundOptions = {
      teacher,
      schedule: o.schedule,
      parameterization: o.parameterization,
      teacherSteps: N,
      method,
      rdd: method === "pd" ? undefined : o.rdd,
      classifier: method === "pd" ? undefined : o.classifier,
      data: imageDataSource(o.images, { batchSize: o.batchSize, seed: o.seed + r }).images,
      optimizer: o.optimizer,
      steps,
      seed: o.seed + r,
      batchSize: o.batchSize,
      runDir: dir,
      resume: true,
      checkpointEvery: o.checkpointEvery,
      logEvery: o.logEvery,
      finalStepTarget: o.finalStepTarget,
      print: o.print,
    };
    const want = roundConfig(roundOpts);
    const saved = await readJsonOrNull(`${dir}/round.json`);
    let student: tf.LayersModel;
    let skipped = false;
    if (saved !== null && await readJsonOrNull(`${dir}/model/model.json`) !== null) {
      const bad = unsafeChanges(configChanges(saved, want));
      if (bad.length > 0) {
        throw new Error(
          `${dir} was finished with different settings: ${describeChanges(bad)}; ` +
            `use another run directory`,
        );
      }
      student = await loadLayersModelFiles(`${dir}/model`);
      skipped = true;
    } else {
      const res = await distillRound(roundOpts);
      res.head?.dispose();
      student = res.student;
      await saveModelDirAtomic(student, `${dir}/model`);
      await writeFileAtomic(`${dir}/round.json`, JSON.stringify(want, null, 2));
    }
    const info: RoundInfo = {
      index: r,
      teacherSteps: N,
      studentSteps: N / 2,
      method,
      dir,
      skipped,
      student,
    };
    await o.onRound?.(info);
    out.push(info);
    if (teacher !== o.teacher) teacher.dispose();
    teacher = student;
  }
  return out;
}
