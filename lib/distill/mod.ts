/**
 * Diffusion distillation (package subpath `./distill`): the progressive-distillation target,
 * the RCFD, IS_P2P, M_P2P and RKD loss terms on tfjs tensors (feature maps NHWC), the RDD
 * objective with the paper's presets, the PyTorch-semantics BatchNorm of the M_P2P head, and
 * whole distillation rounds and chains ({@link distillRound}, {@link progressiveDistill}).
 * @module
 */
export * from "./rcfd.ts";
export * from "./pd_target.ts";
export * from "./isp2p.ts";
export * from "./mp2p.ts";
export * from "./torch_batch_norm.ts";
export * from "./rkd.ts";
export * from "./rdd_objective.ts";
export * from "./rounds.ts";
