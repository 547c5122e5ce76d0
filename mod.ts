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
export * from "./lib/data/images.ts";
export * from "./lib/data/batches.ts";
export * from "./lib/data/mnist.ts";
export * from "./lib/data/cifar10.ts";
export * from "./lib/data/idx.ts";
export * from "./lib/data/npy.ts";
export * from "./lib/data/png.ts";
export * from "./lib/data/png_folder.ts";
export * from "./lib/samplers/common.ts";
export * from "./lib/samplers/ddim.ts";
export * from "./lib/samplers/ddim_tf.ts";
export * from "./lib/samplers/ddpm.ts";
export * from "./lib/samplers/dpm_solver.ts";
export * from "./lib/analytic/gaussian.ts";
export * from "./lib/analytic/mixture.ts";
export * from "./lib/analytic/distance.ts";
export * from "./lib/notebook/show.ts";
export * from "./lib/notebook/figures.ts";
export * from "./lib/distill/rcfd.ts";
export * from "./lib/distill/pd_target.ts";
export * from "./lib/distill/isp2p.ts";
export * from "./lib/distill/mp2p.ts";
export * from "./lib/distill/torch_batch_norm.ts";
export * from "./lib/distill/rkd.ts";
export * from "./lib/distill/rdd_objective.ts";
export * from "./lib/distill/rounds.ts";
export * from "./lib/eval/cfid.ts";
export * from "./lib/tfjs/backend.ts";
export * from "./lib/tfjs/wasm_grads.ts";
export * from "./lib/models/layers.ts";
export * from "./lib/models/unet.ts";
export * from "./lib/models/dropout.ts";
export * from "./lib/models/classifier.ts";
export * from "./lib/models/tf_denoiser.ts";
export * from "./lib/tfjs/fast_cpu.ts";
export * from "./lib/eval/generate.ts";
export * from "./lib/train/run_config.ts";
export * from "./lib/config/mod.ts";
