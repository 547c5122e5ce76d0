/**
 * Diffusion-model distillation toolkit for Deno: noise schedules, samplers, analytic
 * denoisers, tfjs models and training, progressive distillation, RCFD and RDD losses.
 * @module
 */
export * from "./lib/diffusion/schedule.ts";
export * from "./lib/diffusion/timesteps.ts";
export * from "./lib/diffusion/param.ts";
export * from "./lib/diffusion/weighting.ts";
export * from "./lib/core/rng.ts";
export * from "./lib/core/batch.ts";
export * from "./lib/diffusion/denoiser.ts";
export * from "./lib/diffusion/param_tf.ts";
export * from "./lib/train/optim.ts";
export * from "./lib/train/ema.ts";
export * from "./lib/train/checkpoint.ts";
export * from "./lib/train/progress.ts";
export * from "./lib/train/trainer.ts";
export * from "./lib/train/objectives.ts";
export * from "./lib/eval/frechet.ts";
