/**
 * Samplers on paths of schedule indices (package subpath `./samplers`), each written against
 * the {@link Denoiser} contract of `lib/diffusion/denoiser.ts` on float64 batches
 * `[B, ...dims]`: DDIM (deterministic or with eta > 0, and the reference's strided DDIM), DDPM
 * ancestral sampling, DPM-Solver++(2M), the tensor-native DDIM for tfjs networks (NHWC
 * tensors kept on the backend), and the shared loop ({@link runSampler}) to write new ones.
 * @module
 */
export * from "./common.ts";
export * from "./ddim.ts";
export * from "./ddim_tf.ts";
export * from "./ddpm.ts";
export * from "./dpm_solver.ts";
