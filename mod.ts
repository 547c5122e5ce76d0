/**
 * Diffusion-model distillation toolkit for Deno: noise schedules, samplers, analytic
 * denoisers, tfjs models and training, progressive distillation, RCFD and RDD losses.
 * @module
 */
