/** Typed access to the tfjs CPU backend's storage, shared by the fast kernels. */
import type { DataType, KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";

/** The part of tfjs' `MathBackendCPU` the fast kernels use. */
export interface CpuBackendLike {
  data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: DataType, values: Float32Array): TensorInfo;
}

/** The arguments tfjs passes to a kernel function. */
export type KernelArgs = Parameters<KernelFunc>[0];

/** The backend of a kernel call, as the CPU backend. */
export function cpuBackend(args: KernelArgs): CpuBackendLike {
  return args.backend as unknown as CpuBackendLike;
}

/**
 * The float32 values of `t` held by the CPU backend, or undefined when `t` is not plain
 * float32 data (the caller then falls back to the stock kernel).
 */
export function f32Values(backend: CpuBackendLike, t: TensorInfo): Float32Array | undefined {
  if (t.dtype !== "float32") return undefined;
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array ? v : undefined;
}

/**
 * Values of a fused-op bias that broadcasts along the last (channel) axis of size `channels`:
 * `{ ok: true, values }` for a bias of size 1 or of shape [..., channels] with size `channels`
 * (`values` undefined when there is no bias), `{ ok: false }` otherwise.
 */
export function channelBias(
  backend: CpuBackendLike,
  bias: TensorInfo | undefined,
  channels: number,
): { ok: boolean; values?: Float32Array } {
  if (!bias) return { ok: true };
  const values = f32Values(backend, bias);
  const last = bias.shape[bias.shape.length - 1];
  const fits = values !== undefined &&
    (values.length === 1 || (values.length === channels && last === channels));
  return fits ? { ok: true, values } : { ok: false };
}

/** Grow-only float32 scratch buffer (reused across kernel calls to avoid allocation churn). */
export class Scratch {
  #buf = new Float32Array(0);

  /** A view of exactly `n` floats; contents are unspecified. */
  get(n: number): Float32Array {
    if (this.#buf.length < n) this.#buf = new Float32Array(n);
    return this.#buf.subarray(0, n);
  }

  /** Releases the buffer. */
  clear(): void {
    this.#buf = new Float32Array(0);
  }
}
