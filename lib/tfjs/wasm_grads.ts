/**
 * The convolution filter gradient for the tfjs wasm backend, which ships without a
 * `Conv2DBackpropFilter` kernel (tfjs issue 8474) and therefore cannot train conv nets.
 *
 * The filter gradient of an NHWC convolution is itself a convolution: with channels and
 * batch swapped, the input `x` is correlated with the output gradient `dy` used as a filter
 * whose taps are spaced by the forward stride (a dilation). The kernel below is composed
 * from kernels the wasm backend does have (`Slice`, `Transpose`, `Conv2D` with dilation
 * and explicit padding), so it runs on the backend's own (XNNPACK) convolution.
 * @module
 */
import {
  backend_util,
  type Conv2DBackpropFilterAttrs,
  getKernel,
  type KernelBackend,
  type KernelConfig,
  type NamedAttrMap,
  registerKernel,
  type TensorInfo,
} from "@tensorflow/tfjs-core";

/** Name of the tfjs wasm backend. */
const WASM = "wasm";
/** tfjs kernel name of the filter gradient of conv2d. */
const BACKPROP_FILTER = "Conv2DBackpropFilter";

/**
 * How to obtain the filter gradient of one NHWC conv2d as a stride-1 dilated conv2d.
 *
 * Let `x` be `[B, H, W, Ci]`, `dy` be `[B, outH, outW, Co]`. The gradient
 * `dW[i, j, c, o] = sum_{b, y, x} xPad[b, y * sH + i, x * sW + j, c] * dy[b, y, x, o]`
 * equals `conv2d(xT, dyT)` with `xT = transpose(x[:, :keepH, :keepW], [3, 1, 2, 0])`
 * `[Ci, keepH, keepW, B]`, `dyT = transpose(dy, [1, 2, 0, 3])` `[outH, outW, B, Co]`,
 * stride 1, dilation `[sH, sW]` and padding `pad`; its result `[Ci, kH, kW, Co]`
 * transposed by `[1, 2, 0, 3]` is `dW` `[kH, kW, Ci, Co]`.
 */
export interface FilterGradientPlan {
  /** Input rows actually read by the forward convolution (rows below are never used). */
  readonly keepH: number;
  /** Input columns actually read by the forward convolution. */
  readonly keepW: number;
  /** Explicit zero padding `[[0, 0], [top, bottom], [left, right], [0, 0]]`, pixels. */
  readonly pad: [[0, 0], [number, number], [number, number], [0, 0]];
  /** Dilation of the correlation = forward strides `[sH, sW]`. */
  readonly dilations: [number, number];
}

/**
 * Plans the filter gradient of a conv2d (NHWC, dilation 1) described by `convInfo`
 * (from `backend_util.computeConv2DInfo`). Pure function of the geometry.
 * @throws RangeError if `convInfo` uses channels-first data or a dilation other than 1.
 */
export function filterGradientPlan(convInfo: backend_util.Conv2DInfo): FilterGradientPlan {
  if (convInfo.dataFormat !== "channelsLast") {
    throw new RangeError(
      `convInfo.dataFormat must be "channelsLast" (NHWC), got "${convInfo.dataFormat}"`,
    );
  }
  if (convInfo.dilationHeight !== 1 || convInfo.dilationWidth !== 1) {
    throw new RangeError(
      `convInfo dilations must be [1, 1] for the filter gradient, got ` +
        `[${convInfo.dilationHeight}, ${convInfo.dilationWidth}]`,
    );
  }
  const rows = spanPlan(
    convInfo.inHeight,
    convInfo.filterHeight,
    convInfo.outHeight,
    convInfo.strideHeight,
    convInfo.padInfo.top,
  );
  const cols = spanPlan(
    convInfo.inWidth,
    convInfo.filterWidth,
    convInfo.outWidth,
    convInfo.strideWidth,
    convInfo.padInfo.left,
  );
  return {
    keepH: rows.keep,
    keepW: cols.keep,
    pad: [[0, 0], [rows.before, rows.after], [cols.before, cols.after], [0, 0]],
    dilations: [convInfo.strideHeight, convInfo.strideWidth],
  };
}

/**
 * One spatial axis: the forward conv reads padded positions `0 .. (out - 1) * stride + k - 1`
 * of an axis of length `size` padded by `before`. Returns how many input positions to keep
 * and the zero padding after them so the correlation yields exactly `k` outputs.
 */
function spanPlan(
  size: number,
  k: number,
  out: number,
  stride: number,
  before: number,
): { keep: number; before: number; after: number } {
  const after = (out - 1) * stride + k - before - size;
  return after >= 0 ? { keep: size, before, after } : { keep: size + after, before, after: 0 };
}

/** Runs a kernel already registered for the wasm backend on `backend`. */
function runWasmKernel(
  backend: KernelBackend,
  name: string,
  inputs: Record<string, TensorInfo>,
  attrs: NamedAttrMap,
): TensorInfo {
  const kernel = getKernel(name, WASM);
  if (kernel === undefined) {
    throw new Error(`the wasm backend has no "${name}" kernel, which the filter gradient needs`);
  }
  return kernel.kernelFunc({ inputs, backend, attrs }) as TensorInfo;
}

/** `Conv2DBackpropFilter` for the wasm backend: inputs `x` [B, H, W, Ci], `dy` [B, oH, oW, Co]. */
function conv2dBackpropFilterWasm(
  { inputs, backend, attrs }: {
    inputs: Record<string, TensorInfo>;
    backend: KernelBackend;
    attrs?: NamedAttrMap;
  },
): TensorInfo {
  const { x, dy } = inputs;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } =
    attrs as unknown as Conv2DBackpropFilterAttrs;
  const convInfo = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(dataFormat),
  );
  const plan = filterGradientPlan(convInfo);
  const temps: TensorInfo[] = [];
  const keep = (t: TensorInfo) => (temps.push(t), t);
  try {
    const [b, h, w, c] = x.shape;
    const xUsed = plan.keepH === h && plan.keepW === w ? x : keep(
      runWasmKernel(backend, "Slice", { x }, {
        begin: [0, 0, 0, 0],
        size: [b, plan.keepH, plan.keepW, c],
      }),
    );
    const xT = keep(runWasmKernel(backend, "Transpose", { x: xUsed }, { perm: [3, 1, 2, 0] }));
    const dyT = keep(runWasmKernel(backend, "Transpose", { x: dy }, { perm: [1, 2, 0, 3] }));
    const corr = keep(runWasmKernel(backend, "Conv2D", { x: xT, filter: dyT }, {
      strides: [1, 1],
      pad: plan.pad,
      dataFormat: "NHWC",
      dilations: plan.dilations,
      dimRoundingMode: undefined as unknown as string,
    }));
    return runWasmKernel(backend, "Transpose", { x: corr }, { perm: [1, 2, 0, 3] });
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}

/** Kernel config of the wasm filter gradient (backend "wasm", kernel "Conv2DBackpropFilter"). */
export const wasmConv2DBackpropFilterConfig: KernelConfig = {
  kernelName: BACKPROP_FILTER,
  backendName: WASM,
  kernelFunc: conv2dBackpropFilterWasm as KernelConfig["kernelFunc"],
};

/**
 * Registers the conv2d filter gradient on the wasm backend unless a kernel of that name is
 * already registered there (a later tfjs release may ship one). Idempotent; needs only the
 * `@tensorflow/tfjs-backend-wasm` package to be imported before the first gradient runs.
 * @returns the kernel names registered by this call (empty when nothing was missing).
 */
export function registerWasmConvGradients(): string[] {
  if (getKernel(BACKPROP_FILTER, WASM) !== undefined) return [];
  registerKernel(wasmConv2DBackpropFilterConfig);
  return [BACKPROP_FILTER];
}
