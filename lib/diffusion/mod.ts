/**
 * The diffusion process itself (package subpath `./diffusion`): discrete noise schedules and
 * their derived tables, timestep paths for samplers, the x0/eps/v parameterisations (float64
 * batches and tfjs tensors), the reference-numerics mode of the coefficients, the training-loss
 * weightings and the {@link Denoiser} contract every sampler is written against.
 *
 * ```ts
 * import { cosineSchedule, spacedTimesteps } from "@rdd/diffusion-distill/diffusion";
 * const schedule = cosineSchedule(1000); // alphasBar: 1001 entries (t = 0..1000)
 * const path = spacedTimesteps(1000, 4, "trailing"); // [999, 749, 499, 249, -1]
 * ```
 * @module
 */
export * from "./schedule.ts";
export * from "./timesteps.ts";
export * from "./param.ts";
export * from "./numerics.ts";
export * from "./weighting.ts";
export * from "./denoiser.ts";
export * from "./param_tf.ts";
