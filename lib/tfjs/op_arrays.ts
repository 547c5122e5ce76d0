/**
 * Typed arrays for custom ops (`tf.customGrad` forward and gradient functions) on the CPU
 * backend, kept recyclable by the output pool (lib/tfjs/output_pool.ts): `dataSync()` marks
 * the array it returns as read by the caller, which the pool then never reuses.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { outputArray } from "./output_pool.ts";
import { type CpuBackendLike, f32Values } from "./kernels/cpu_access.ts";

/**
 * The float32 values of `t`, for a custom op that uses them only while it runs (it must not
 * keep them past the tensor's disposal): the CPU backend's own array, else `dataSync()`.
 */
export function opValues(t: tf.Tensor): Float32Array {
  const own = tf.getBackend() === "cpu"
    ? f32Values(tf.backend() as unknown as CpuBackendLike, t)
    : undefined;
  return own ?? t.dataSync() as Float32Array;
}

/**
 * An array of `n` floats that a custom op fills completely and hands to `tf.tensor` as its
 * output: recycled by the output pool on the CPU backend (contents unspecified), else new.
 */
export function opOutput(n: number): Float32Array {
  return tf.getBackend() === "cpu" ? outputArray(tf.backend(), n) : new Float32Array(n);
}
