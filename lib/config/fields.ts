/**
 * Zod building blocks shared by the config schemas (not part of the public API).
 * @module
 */
import { z } from "zod";

/** An integer >= min. */
export const int = (min: number) => z.int().min(min);

/** A number in [0, 1). */
export const unit = () => z.number().min(0).lt(1);

/** `$schema`: the editor's reference to the JSON Schema of the file; ignored by the toolkit. */
export const schemaRefField = z.string().describe("JSON Schema of this file (for editors)");

/** Adam/AdamW settings without `totalSteps` (see `OptimizerConfig` in lib/train/optim.ts). */
export const optimizerFields = {
  kind: z.enum(["adam", "adamw"]).describe('"adam" or "adamw" (decoupled weight decay)'),
  lr: z.number().positive().describe("peak learning rate"),
  beta1: unit().optional().describe("first-moment decay in [0, 1), default 0.9"),
  beta2: unit().optional().describe("second-moment decay in [0, 1), default 0.999"),
  eps: z.number().positive().optional().describe("denominator epsilon, default 1e-8"),
  weightDecay: z.number().min(0).optional().describe("decoupled weight decay (adamw)"),
  warmupSteps: int(0).optional().describe("linear warmup steps, default 0"),
  cosineDecay: z.boolean().optional().describe("cosine decay after warmup, default true"),
  minLr: z.number().min(0).optional().describe("floor of the cosine decay, default 0"),
  gradClipNorm: z.number().min(0).optional().describe("clip to this global norm; 0 = off"),
};

/** True when A and B are mutually assignable (compile-time checks of schemas against types). */
export type SameType<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/** A schema's output type without the `$schema` field. */
export type WithoutRef<T> = T extends unknown ? Omit<T, "$schema"> : never;
