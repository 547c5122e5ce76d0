/**
 * Diffusion-model distillation toolkit for Deno: noise schedules, samplers, analytic
 * denoisers, tfjs models and training, progressive distillation, RCFD and RDD losses.
 *
 * The root export holds the whole public API. The subpaths `./diffusion`, `./samplers`,
 * `./distill`, `./figures`, `./config` and `./sweep` hold the same symbols grouped by topic.
 * Kernel-level plumbing (the fast-CPU kernel internals, the wasm gradient kernels, the Adam
 * update loops) is not exported; it stays reachable by importing its module directly.
 * @module
 */
export * from "./lib/diffusion/mod.ts";
export * from "./lib/core/rng.ts";
export * from "./lib/core/batch.ts";
export {
  AdamOptimizer,
  type AdamState,
  clipByGlobalNorm,
  globalNorm,
  learningRateAt,
  type OptimizerConfig,
} from "./lib/train/optim.ts";
export * from "./lib/train/ema.ts";
export * from "./lib/train/checkpoint.ts";
export * from "./lib/train/run_dir.ts";
export * from "./lib/train/progress.ts";
export * from "./lib/train/trainer.ts";
export * from "./lib/train/objectives.ts";
export * from "./lib/eval/frechet.ts";
export * from "./lib/data/images.ts";
export * from "./lib/data/batches.ts";
export * from "./lib/data/mnist.ts";
export * from "./lib/data/cifar10.ts";
export * from "./lib/data/idx.ts";
export * from "./lib/data/npy.ts";
export * from "./lib/data/png.ts";
export * from "./lib/data/png_folder.ts";
export * from "./lib/samplers/mod.ts";
export * from "./lib/analytic/gaussian.ts";
export * from "./lib/analytic/mixture.ts";
export * from "./lib/analytic/distance.ts";
export * from "./lib/notebook/show.ts";
export * from "./lib/notebook/figures.ts";
export * from "./lib/distill/mod.ts";
export * from "./lib/eval/cfid.ts";
export * from "./lib/tfjs/backend.ts";
export * from "./lib/models/layers.ts";
export * from "./lib/models/unet.ts";
export * from "./lib/models/dropout.ts";
export * from "./lib/models/classifier.ts";
export * from "./lib/models/tf_denoiser.ts";
export {
  disableFastCpu,
  enableFastCpu,
  FAST_CPU_KERNELS,
  fastCpuFallbacks,
  type FastCpuOptions,
  type FastCpuStatus,
  fastCpuStatus,
  setFastCpuThreads,
} from "./lib/tfjs/fast_cpu.ts";
export * from "./lib/eval/generate.ts";
export * from "./lib/eval/speedup.ts";
export * from "./lib/train/run_config.ts";
export * from "./lib/config/mod.ts";
export * from "./lib/sweep/mod.ts";
export * from "./lib/figures/mod.ts";
