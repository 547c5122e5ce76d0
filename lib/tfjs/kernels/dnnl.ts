/**
 * FFI binding to oneDNN's (v2.x C API) primitives on plain float32 data: convolution forward
 * (with bias), backward-data and backward-weights on NHWC activations;
 * element-wise SiLU and sigmoid with their derivatives; last-axis softmax. Primitives are
 * created once per shape and cached; each call points their memory objects at the caller's
 * `Float32Array`s (no copies) and runs synchronously, vectorised, on oneDNN's OpenMP threads.
 *
 * Layouts: activations [batch, H, W, C]; filters tfjs' [kH, kW, inC, outC]; bias [outC].
 */
import type { ConvGeometry } from "./im2col.ts";
import { Scratch } from "./cpu_access.ts";

const SYMBOLS = {
  dnnl_engine_create: { parameters: ["buffer", "i32", "usize"], result: "i32" },
  dnnl_engine_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_stream_create: { parameters: ["buffer", "pointer", "u32"], result: "i32" },
  dnnl_stream_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
  dnnl_memory_desc_init_by_strides: {
    parameters: ["buffer", "i32", "buffer", "i32", "buffer"],
    result: "i32",
  },
  dnnl_convolution_forward_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_convolution_backward_data_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_convolution_backward_weights_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_eltwise_forward_desc_init: {
    parameters: ["buffer", "i32", "i32", "buffer", "f32", "f32"],
    result: "i32",
  },
  dnnl_eltwise_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "f32"],
    result: "i32",
  },
  dnnl_softmax_forward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "i32"],
    result: "i32",
  },
  dnnl_logsoftmax_forward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "i32"],
    result: "i32",
  },
  dnnl_binary_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_matmul_desc_init: {
    parameters: ["buffer", "buffer", "buffer", "pointer", "buffer"],
    result: "i32",
  },
  dnnl_reduction_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "f32"],
    result: "i32",
  },
  dnnl_primitive_attr_create: { parameters: ["buffer"], result: "i32" },
  dnnl_primitive_attr_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_attr_set_post_ops: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_post_ops_create: { parameters: ["buffer"], result: "i32" },
  dnnl_post_ops_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_post_ops_append_binary: { parameters: ["pointer", "i32", "buffer"], result: "i32" },
  dnnl_post_ops_append_eltwise: {
    parameters: ["pointer", "f32", "i32", "f32", "f32"],
    result: "i32",
  },
  dnnl_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_desc_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_desc_query: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
  dnnl_primitive_create: { parameters: ["buffer", "pointer"], result: "i32" },
  dnnl_primitive_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_execute: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
  dnnl_memory_create: { parameters: ["buffer", "pointer", "pointer", "pointer"], result: "i32" },
  dnnl_memory_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_memory_set_data_handle: { parameters: ["pointer", "buffer"], result: "i32" },
  dnnl_memory_desc_init_by_tag: {
    parameters: ["buffer", "i32", "buffer", "i32", "i32"],
    result: "i32",
  },
  dnnl_primitive_desc_query_md: { parameters: ["pointer", "i32", "i32"], result: "pointer" },
  dnnl_memory_desc_equal: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_memory_desc_get_size: { parameters: ["pointer"], result: "usize" },
  dnnl_reorder_primitive_desc_create: {
    parameters: ["buffer", "pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>;

// Constants of oneDNN 2.x (dnnl_types.h).
const ENGINE_CPU = 1;
const STREAM_IN_ORDER = 1;
const F32 = 3;
const FORWARD_TRAINING = 64;
const FORWARD_INFERENCE = 96;
const CONV_DIRECT = 1;
const QUERY_IMPL_INFO_STR = 8;
const QUERY_WEIGHTS_MD = 131;
const QUERY_DIFF_WEIGHTS_MD = 132;
const FORMAT_ANY = 1;
/**
 * oneDNN algorithm ids (dnnl_eltwise_*) and their alpha, beta parameters of the element-wise
 * functions offered: swish with alpha 1 is SiLU, relu's alpha is the negative slope, linear
 * alpha·x + beta with alpha -1 is negation.
 */
const ELTWISE_ALG = {
  silu: [223, 1, 0],
  sigmoid: [175, 0, 0],
  exp: [191, 0, 0],
  relu: [31, 0, 0],
  neg: [127, -1, 0],
} as const;

/**
 * Element-wise functions computed by {@link Dnnl.eltwise}: x·sigmoid(x), sigmoid(x), exp(x),
 * max(x, 0) and -x (the derivative, {@link Dnnl.eltwiseBackward}, for SiLU and sigmoid).
 */
export type DnnlEltwise = keyof typeof ELTWISE_ALG;
/** oneDNN algorithm ids of the binary ops offered. */
const BINARY_ALG = { add: 131056, sub: 131061, mul: 131057, div: 131060 } as const;
/** Binary ops computed by {@link Dnnl.binary}. */
export type DnnlBinary = keyof typeof BINARY_ALG;
/**
 * One post-op of {@link Dnnl.binary}: "sqrt" or "silu" of the result so far, or the result so
 * far (op) an operand of out's shape or of one value (a runtime scalar: one primitive serves
 * every value).
 */
export type DnnlPostOp =
  | "sqrt"
  | "silu"
  | { readonly op: DnnlBinary; readonly operand: Float32Array };
/** The eltwise post-ops as [alg, alpha, beta] (dnnl_eltwise_sqrt; SiLU as in ELTWISE_ALG). */
const ELTWISE_POST = { sqrt: [111, 0, 0], silu: ELTWISE_ALG.silu } as const;
/** A post-op as oneDNN takes it: an eltwise [alg, alpha, beta] or a binary alg and operand. */
type PostSpec =
  | { readonly eltwise: readonly [number, number, number] }
  | { readonly binary: number; readonly md: Uint8Array };
/** dnnl_alg_kind_t of the reductions (dnnl_reduction_max, dnnl_reduction_sum). */
const REDUCTION_ALG = { max: 196594, sum: 196596 } as const;

/** The reductions {@link Dnnl.reduce} runs. */
export type DnnlReduction = keyof typeof REDUCTION_ALG;
const ARG_SRC_1 = 2;
/** Argument id of the second operand of binary post-op `i` (DNNL_ARG_ATTR_MULTIPLE_POST_OP). */
const argPostOpSrc1 = (i: number) => (16384 * (i + 1)) | ARG_SRC_1;
const ARG = {
  src: 1,
  dst: 17,
  weights: 33,
  bias: 41,
  diffSrc: 129,
  diffDst: 145,
  diffWeights: 161,
} as const;
/** Bytes of dnnl_memory_desc_t / dnnl_convolution_desc_t (generous upper bounds for 2.x). */
const MD_BYTES = 1024;
const OP_DESC_BYTES = 8192;
const MAX_DIMS = 12;

/** One primitive with its argument array (memory objects fixed at creation). */
interface Step {
  readonly prim: Deno.PointerValue;
  readonly args: Uint8Array;
}

/**
 * A cached primitive: the steps to run in order (for convolutions, weight reorders around the
 * convolution) and the memory objects that take the caller's arrays, in argument order.
 */
interface Prim {
  readonly steps: Step[];
  readonly userMems: Deno.PointerValue[];
  /** Internal weight buffers in oneDNN's blocked layout (kept alive with the memories). */
  readonly buffers: Float32Array[];
  readonly impl: string;
}

/** One argument of a primitive: plain user layout, and whether oneDNN may re-layout it. */
interface Slot {
  readonly arg: number;
  readonly md: Uint8Array;
  /** Query id of the layout oneDNN chose (weights), with the data direction; else absent. */
  readonly chosen?: { query: number; output: boolean };
}

/** The three passes of a convolution: forward, data gradient, weight gradient. */
export type ConvPass = "fwd" | "bwd_data" | "bwd_weights";

/** The oneDNN primitives of one opened library. */
export interface Dnnl {
  /** Path of the opened library. */
  readonly path: string;
  /** y [batch, outH, outW, outC] = conv(x, w) + bias (bias [outC], optional). */
  forward(
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array | undefined,
    y: Float32Array,
    g: ConvGeometry,
  ): void;
  /** dx [batch, inH, inW, inC] from dy and w (dx overwritten). */
  backwardData(dy: Float32Array, w: Float32Array, dx: Float32Array, g: ConvGeometry): void;
  /** dw [kH, kW, inC, outC] from x and dy (overwritten). */
  backwardWeights(x: Float32Array, dy: Float32Array, dw: Float32Array, g: ConvGeometry): void;
  /**
   * oneDNN's implementation name for `pass` of `g` (`withBias`: the forward with a bias input),
   * e.g. "brgconv:avx512_core", or "x64:gemm:jit" where oneDNN has no direct kernel for the
   * geometry and runs its own im2col + GEMM. Creates (and caches) the primitive.
   */
  convImplementation(pass: ConvPass, g: ConvGeometry, withBias: boolean): string;
  /** y = f(x) elementwise over equal-length arrays (y may be x: in place). */
  eltwise(f: DnnlEltwise, x: Float32Array, y: Float32Array): void;
  /** dx = dy * f'(x) elementwise over equal-length arrays (dx may be dy). */
  eltwiseBackward(f: DnnlEltwise, x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  /** y = softmax (`log`: log-softmax) over the last axis of x viewed as [x.length / n, n]. */
  softmax(x: Float32Array, y: Float32Array, n: number, log?: boolean): void;
  /**
   * out = a (op) b, row-major arrays of equal-rank shapes `aShape` = `outShape` and `bShape`
   * (each axis of b equal to out's or 1: broadcast), then the `post` ops in order, all in one
   * execution. At most 12 axes.
   */
  binary(
    op: DnnlBinary,
    a: Float32Array,
    b: Float32Array,
    bShape: readonly number[],
    out: Float32Array,
    outShape: readonly number[],
    post?: readonly DnnlPostOp[],
  ): void;
  /**
   * out [batch, m, n] = op(a) @ op(b) per batch index: a [batch, m, k] ([batch, k, m] when
   * `transA`), b [batch, k, n] ([batch, n, k] when `transB`), row-major. One oneDNN matmul
   * execution for the whole batch.
   */
  matmul(
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    dims: { batch: number; m: number; n: number; k: number },
    transA: boolean,
    transB: boolean,
  ): void;
  /**
   * out = the sum or max of x (row-major, shape `xShape`) over the axes where `outShape` (same
   * rank) is 1 and x's is not. At most 12 axes. oneDNN's max does not propagate NaN.
   */
  reduce(
    op: DnnlReduction,
    x: Float32Array,
    xShape: readonly number[],
    out: Float32Array,
    outShape: readonly number[],
  ): void;
  /**
   * out = f(x * scale + shift + addend) for x, out (and `addend` when given) [n, hw, c] and
   * per-(row, channel) scale, shift [n, c] (broadcast over hw); f = SiLU when `silu`, else
   * identity. One fused pass (binary multiply with add and eltwise post-ops).
   */
  scaleShift(
    x: Float32Array,
    scale: Float32Array,
    shift: Float32Array,
    out: Float32Array,
    dims: readonly [number, number, number],
    silu: boolean,
    addend?: Float32Array,
  ): void;
  /**
   * Strided copy of an n-d box of `dims`: for every index i, dst[Σ i_k dstStrides_k] =
   * src[Σ i_k srcStrides_k] (element strides, from each view's start; a `subarray` picks the
   * start). One oneDNN reorder. RangeError when the box leaves either array.
   */
  copy(
    src: Float32Array,
    srcStrides: readonly number[],
    dst: Float32Array,
    dstStrides: readonly number[],
    dims: readonly number[],
  ): void;
  /** oneDNN's implementation names of the primitives created so far, by cache key. */
  implementations(): Record<string, string>;
  /** Destroys every primitive and unloads the library. */
  close(): void;
}

function check(status: number, what: string): void {
  if (status !== 0) throw new Error(`oneDNN ${what} failed with status ${status}`);
}

function dims(values: readonly number[]): BigInt64Array {
  const d = new BigInt64Array(MAX_DIMS);
  values.forEach((v, i) => d[i] = BigInt(v));
  return d;
}

function readPointer(out: BigUint64Array): Deno.PointerValue {
  return Deno.UnsafePointer.create(out[0]);
}

/** The arguments of {@link Dnnl.scaleShift}. */
type ScaleShiftArgs = Parameters<Dnnl["scaleShift"]>;

/**
 * Floats per row up to which scaleShift runs as two whole-tensor executions instead of one
 * per row. Per call at [32, 64, 32], AVX-512 Xeon, 2026-12-03: 0.039 vs 0.049 ms on one
 * thread, 0.023 vs 0.089 ms on two; at [32, 256, 32] the per-row form wins on one thread
 * (0.117 vs 0.157 ms).
 */
const SCALE_SHIFT_WHOLE_MAX = 4096;

/** Row width (floats) from which scaleShift runs its rows as given instead of widening them. */
const SCALE_SHIFT_WIDTH = 256;

/**
 * The factor r by which scaleShift widens its [hw, c] rows to [hw / r, r c]: the smallest
 * divisor of hw with r c >= {@link SCALE_SHIFT_WIDTH} (hw itself when none is).
 */
export function widening(hw: number, c: number): number {
  for (let r = 1; r < hw; r++) if (hw % r === 0 && r * c >= SCALE_SHIFT_WIDTH) return r;
  return hw;
}

/** Each row of c values of `v` ([n, c]) repeated r times: [n, r c] (in `scratch`'s buffer). */
function tiled(v: Float32Array, c: number, r: number, scratch: Scratch): Float32Array {
  if (r === 1) return v;
  const n = v.length / c, w = r * c;
  const out = scratch.get(n * w);
  for (let i = 0; i < n; i++) {
    const row = v.subarray(i * c, (i + 1) * c);
    for (let k = 0; k < r; k++) out.set(row, i * w + k * c);
  }
  return out;
}

/** Right/bottom padding that makes oneDNN's output-size formula give tfjs' output size. */
function trailingPad(inSize: number, outSize: number, k: number, stride: number, lead: number) {
  const pad = Math.max(0, (outSize - 1) * stride + k - inSize - lead);
  return Math.floor((inSize - k + lead + pad) / stride) + 1 === outSize ? pad : undefined;
}

/**
 * True when oneDNN can run this geometry as given (tfjs' implicit trailing padding expressed
 * as oneDNN right padding).
 */
export function dnnlSupports(g: ConvGeometry): boolean {
  return trailingPad(g.inH, g.outH, g.kH, g.strideH, g.padTop) !== undefined &&
    trailingPad(g.inW, g.outW, g.kW, g.strideW, g.padLeft) !== undefined;
}

/** Opens oneDNN at `path` (libdnnl.so.2); throws when it is missing or lacks the 2.x API. */
export function openDnnl(path: string): Dnnl {
  const lib: Lib = Deno.dlopen(path, SYMBOLS);
  const s = lib.symbols;
  const out = new BigUint64Array(1);
  check(s.dnnl_engine_create(out, ENGINE_CPU, 0n), "engine_create");
  const engine = readPointer(out);
  check(s.dnnl_stream_create(out, engine, STREAM_IN_ORDER), "stream_create");
  const stream = readPointer(out);
  const cache = new Map<string, Prim>();
  const pds: Deno.PointerValue[] = [];
  const memories: Deno.PointerValue[] = [];

  function md(shape: readonly number[], strides: readonly number[]): Uint8Array {
    const m = new Uint8Array(MD_BYTES);
    check(
      s.dnnl_memory_desc_init_by_strides(m, shape.length, dims(shape), F32, dims(strides)),
      "memory_desc_init_by_strides",
    );
    return m;
  }

  /** A descriptor of `shape` that lets the primitive choose the layout. */
  function anyMd(shape: readonly number[]): Uint8Array {
    const m = new Uint8Array(MD_BYTES);
    check(
      s.dnnl_memory_desc_init_by_tag(m, shape.length, dims(shape), F32, FORMAT_ANY),
      "memory_desc_init_by_tag",
    );
    return m;
  }

  /** Memory descriptors of one geometry (activations NHWC, filter HWIO as oneDNN OIHW). */
  function descs(g: ConvGeometry) {
    const wShape = [g.outC, g.inC, g.kH, g.kW];
    return {
      src: md([g.batch, g.inC, g.inH, g.inW], [g.inH * g.inW * g.inC, 1, g.inW * g.inC, g.inC]),
      weights: md(wShape, [1, g.outC, g.kW * g.inC * g.outC, g.inC * g.outC]),
      anyWeights: anyMd(wShape),
      bias: md([g.outC], [1]),
      none: new Uint8Array(MD_BYTES),
      dst: md(
        [g.batch, g.outC, g.outH, g.outW],
        [g.outH * g.outW * g.outC, 1, g.outW * g.outC, g.outC],
      ),
      strides: dims([g.strideH, g.strideW]),
      padL: dims([g.padTop, g.padLeft]),
      padR: dims([
        trailingPad(g.inH, g.outH, g.kH, g.strideH, g.padTop)!,
        trailingPad(g.inW, g.outW, g.kW, g.strideW, g.padLeft)!,
      ]),
    };
  }

  function primitiveDesc(
    opDesc: Uint8Array,
    hint: Deno.PointerValue,
    attr: Deno.PointerValue = null,
  ): Deno.PointerValue {
    check(s.dnnl_primitive_desc_create(out, opDesc, attr, engine, hint), "primitive_desc_create");
    const pd = readPointer(out);
    pds.push(pd);
    return pd;
  }

  /**
   * The primitive descriptor `make(weights)` with oneDNN's choice of weights layout
   * (`d.anyWeights`), unless that layout (queried by `query`) takes more bytes than the plain
   * filter: a blocked layout padding inC or outC up to 8 or 16, chosen at small channel counts,
   * whose JIT kernels corrupt the heap in oneDNN 2.6. Then the plain filter layout is used.
   */
  function withWeights(
    d: { weights: Uint8Array; anyWeights: Uint8Array },
    query: number,
    make: (weights: Uint8Array) => Deno.PointerValue,
  ): Deno.PointerValue {
    const pd = make(d.anyWeights);
    const chosen = s.dnnl_primitive_desc_query_md(pd, query, 0);
    const plainBytes = s.dnnl_memory_desc_get_size(Deno.UnsafePointer.of(d.weights));
    return s.dnnl_memory_desc_get_size(chosen) > plainBytes ? make(d.weights) : pd;
  }

  function forwardDesc(g: ConvGeometry, withBias: boolean, prop: number): Deno.PointerValue {
    const d = descs(g);
    return withWeights(d, QUERY_WEIGHTS_MD, (weights) => forwardOp(d, weights, withBias, prop));
  }

  function forwardOp(
    d: ReturnType<typeof descs>,
    weights: Uint8Array,
    withBias: boolean,
    prop: number,
  ): Deno.PointerValue {
    const op = new Uint8Array(OP_DESC_BYTES);
    check(
      s.dnnl_convolution_forward_desc_init(
        op,
        prop,
        CONV_DIRECT,
        d.src,
        weights,
        withBias ? d.bias : d.none,
        d.dst,
        d.strides,
        d.padL,
        d.padR,
      ),
      "convolution_forward_desc_init",
    );
    return primitiveDesc(op, null);
  }

  function memory(mdPtr: Deno.PointerValue, handle: Deno.PointerValue): Deno.PointerValue {
    check(s.dnnl_memory_create(out, mdPtr, engine, handle), "memory_create");
    const mem = readPointer(out);
    memories.push(mem);
    return mem;
  }

  function step(pd: Deno.PointerValue, args: [number, Deno.PointerValue][]): Step {
    check(s.dnnl_primitive_create(out, pd), "primitive_create");
    const prim = readPointer(out);
    const bytes = new Uint8Array(16 * args.length);
    const view = new DataView(bytes.buffer);
    args.forEach(([arg, mem], i) => {
      view.setInt32(16 * i, arg, true);
      view.setBigUint64(16 * i + 8, BigInt(Deno.UnsafePointer.value(mem)), true);
    });
    return { prim, args: bytes };
  }

  function reorder(from: Deno.PointerValue, to: Deno.PointerValue): Deno.PointerValue {
    check(
      s.dnnl_reorder_primitive_desc_create(out, from, engine, to, engine, null),
      "reorder_primitive_desc_create",
    );
    const pd = readPointer(out);
    pds.push(pd);
    return pd;
  }

  /**
   * The steps of one convolution `pd` over `slots`: user memories for every slot, and for
   * weights whose chosen layout differs from the user's, an internal buffer with a reorder
   * before (inputs) or after (outputs) the convolution.
   */
  function build(pd: Deno.PointerValue, slots: Slot[]): Prim {
    const before: Step[] = [], after: Step[] = [], buffers: Float32Array[] = [];
    const userMems: Deno.PointerValue[] = [];
    const convArgs: [number, Deno.PointerValue][] = [];
    for (const slot of slots) {
      const userMd = Deno.UnsafePointer.of(slot.md);
      const user = memory(userMd, null);
      userMems.push(user);
      const chosen = slot.chosen && s.dnnl_primitive_desc_query_md(pd, slot.chosen.query, 0);
      if (!chosen || s.dnnl_memory_desc_equal(userMd, chosen) === 1) {
        convArgs.push([slot.arg, user]);
        continue;
      }
      const buf = new Float32Array(Number(s.dnnl_memory_desc_get_size(chosen)) / 4);
      buffers.push(buf);
      const internal = memory(chosen, Deno.UnsafePointer.of(buf));
      convArgs.push([slot.arg, internal]);
      if (slot.chosen!.output) {
        after.push(step(reorder(chosen, userMd), [[ARG.src, internal], [ARG.dst, user]]));
      } else {
        before.push(step(reorder(userMd, chosen), [[ARG.src, user], [ARG.dst, internal]]));
      }
    }
    const conv = step(pd, convArgs);
    check(s.dnnl_primitive_desc_query(pd, QUERY_IMPL_INFO_STR, 0, out), "primitive_desc_query");
    const namePtr = readPointer(out);
    const impl = namePtr ? new Deno.UnsafePointerView(namePtr).getCString() : "?";
    return { steps: [...before, conv, ...after], userMems, buffers, impl };
  }

  function cached(key: string, make: () => Prim): Prim {
    let p = cache.get(key);
    if (!p) {
      p = make();
      cache.set(key, p);
    }
    return p;
  }

  function run(p: Prim, data: Float32Array[]): void {
    data.forEach((d, i) => {
      check(
        s.dnnl_memory_set_data_handle(p.userMems[i], d),
        "memory_set_data_handle",
      );
    });
    for (const st of p.steps) {
      check(
        s.dnnl_primitive_execute(st.prim, stream, st.args.length / 16, st.args),
        "primitive_execute",
      );
    }
    check(s.dnnl_stream_wait(stream), "stream_wait");
  }

  /** The cached primitive of one convolution pass (`withBias`: the forward's bias input). */
  function convPrim(pass: ConvPass, g: ConvGeometry, withBias: boolean): Prim {
    return cached(key(pass, g, withBias), () => convBuilders[pass](g, withBias));
  }

  const convBuilders: Record<ConvPass, (g: ConvGeometry, withBias: boolean) => Prim> = {
    fwd: (g, withBias) => {
      const d = descs(g);
      const pd = forwardDesc(g, withBias, FORWARD_INFERENCE);
      const slots: Slot[] = [
        { arg: ARG.src, md: d.src },
        { arg: ARG.weights, md: d.weights, chosen: weightsIn },
        { arg: ARG.dst, md: d.dst },
      ];
      if (withBias) slots.push({ arg: ARG.bias, md: d.bias });
      return build(pd, slots);
    },
    bwd_data: (g) => {
      const d = descs(g);
      const hint = forwardDesc(g, false, FORWARD_TRAINING);
      const pd = withWeights(d, QUERY_WEIGHTS_MD, (weights) => {
        const op = new Uint8Array(OP_DESC_BYTES);
        check(
          s.dnnl_convolution_backward_data_desc_init(
            op,
            CONV_DIRECT,
            d.src,
            weights,
            d.dst,
            d.strides,
            d.padL,
            d.padR,
          ),
          "convolution_backward_data_desc_init",
        );
        return primitiveDesc(op, hint);
      });
      return build(pd, [
        { arg: ARG.diffDst, md: d.dst },
        { arg: ARG.weights, md: d.weights, chosen: weightsIn },
        { arg: ARG.diffSrc, md: d.src },
      ]);
    },
    bwd_weights: (g) => {
      const d = descs(g);
      const hint = forwardDesc(g, false, FORWARD_TRAINING);
      const pd = withWeights(d, QUERY_DIFF_WEIGHTS_MD, (weights) => {
        const op = new Uint8Array(OP_DESC_BYTES);
        check(
          s.dnnl_convolution_backward_weights_desc_init(
            op,
            CONV_DIRECT,
            d.src,
            weights,
            d.none,
            d.dst,
            d.strides,
            d.padL,
            d.padR,
          ),
          "convolution_backward_weights_desc_init",
        );
        return primitiveDesc(op, hint);
      });
      return build(pd, [
        { arg: ARG.src, md: d.src },
        { arg: ARG.diffDst, md: d.dst },
        {
          arg: ARG.diffWeights,
          md: d.weights,
          chosen: { query: QUERY_DIFF_WEIGHTS_MD, output: true },
        },
      ]);
    },
  };

  function key(kind: string, g: ConvGeometry, extra: boolean): string {
    return `${kind}:${Object.values(g).join(",")}:${extra ? 1 : 0}`;
  }

  const weightsIn = { query: QUERY_WEIGHTS_MD, output: false };

  function eltwiseDesc(f: DnnlEltwise, data: Uint8Array, prop: number): Deno.PointerValue {
    const op = new Uint8Array(OP_DESC_BYTES);
    const [alg, alpha, beta] = ELTWISE_ALG[f];
    check(
      s.dnnl_eltwise_forward_desc_init(op, prop, alg, data, alpha, beta),
      "eltwise_forward_desc_init",
    );
    return primitiveDesc(op, null);
  }

  /** A dense row-major descriptor of `shape`. */
  function rowMajor(shape: readonly number[]): Uint8Array {
    const strides = new Array<number>(shape.length);
    for (let i = shape.length - 1, st = 1; i >= 0; i--) {
      strides[i] = st;
      st *= shape[i];
    }
    return md(shape, strides);
  }

  /**
   * A binary primitive `op`(src, operand) -> dst of `data`'s layout followed by `post` in
   * order: eltwise ops ([alg, alpha, beta]) and binary ones with an operand of layout `md`.
   * Slots: src, operand, dst, then the binary post-ops' operands in order.
   */
  function binaryPrim(op: number, data: Uint8Array, operand: Uint8Array, post: PostSpec[]): Prim {
    const desc = new Uint8Array(OP_DESC_BYTES);
    check(s.dnnl_binary_desc_init(desc, op, data, operand, data), "binary_desc_init");
    const slots: Slot[] = [
      { arg: ARG.src, md: data },
      { arg: ARG_SRC_1, md: operand },
      { arg: ARG.dst, md: data },
    ];
    if (post.length === 0) return build(primitiveDesc(desc, null), slots);
    check(s.dnnl_post_ops_create(out), "post_ops_create");
    const postOps = readPointer(out);
    check(s.dnnl_primitive_attr_create(out), "primitive_attr_create");
    const attr = readPointer(out);
    try {
      post.forEach((q, i) => {
        if ("eltwise" in q) {
          check(s.dnnl_post_ops_append_eltwise(postOps, 1, ...q.eltwise), "append_eltwise");
          return;
        }
        check(s.dnnl_post_ops_append_binary(postOps, q.binary, q.md), "append_binary");
        slots.push({ arg: argPostOpSrc1(i), md: q.md });
      });
      check(s.dnnl_primitive_attr_set_post_ops(attr, postOps), "attr_set_post_ops");
      return build(primitiveDesc(desc, null, attr), slots);
    } finally {
      s.dnnl_primitive_attr_destroy(attr);
      s.dnnl_post_ops_destroy(postOps);
    }
  }

  /**
   * A binary primitive `op`(data, operand) -> data followed by scaleShift's post-ops in order:
   * + `shift` (a [1, w] operand, when given), + an addend of data's shape (when `addend`),
   * SiLU (when `silu`). Slots: src, operand, dst, then the post-ops' operands.
   */
  function scaleShiftPrim(
    op: number,
    data: Uint8Array,
    operand: Uint8Array,
    shift: Uint8Array | undefined,
    addend: boolean,
    silu: boolean,
  ): Prim {
    const post: PostSpec[] = [];
    if (shift) post.push({ binary: BINARY_ALG.add, md: shift });
    if (addend) post.push({ binary: BINARY_ALG.add, md: data });
    if (silu) post.push({ eltwise: ELTWISE_ALG.silu });
    return binaryPrim(op, data, operand, post);
  }

  /**
   * scaleShift as one execution per row i over [hw, c] with [1, c] operands: oneDNN's JIT
   * binary kernels broadcast per channel, while a per-(row, channel) operand over [n, hw, c]
   * as a post-op runs a slow reference kernel. Narrow rows (c < SCALE_SHIFT_WIDTH) are viewed
   * as [hw / r, r c] with the operands tiled r times: the JIT kernel's cost per row of pixels
   * makes [1024, 16] 1.5-2x slower than the same data as [64, 256].
   */
  function perRowScaleShift(...[x, scale, shift, dst, dims, silu, addend]: ScaleShiftArgs) {
    const [n, hw, c] = dims;
    const r = widening(hw, c);
    const w = r * c;
    const p = cached(`scale_shift:${hw / r},${w}:${silu}:${addend !== undefined}`, () => {
      const data = rowMajor([hw / r, w]), perChannel = rowMajor([1, w]);
      return scaleShiftPrim(BINARY_ALG.mul, data, perChannel, perChannel, !!addend, silu);
    });
    const wideScale = tiled(scale, c, r, tiles[0]), wideShift = tiled(shift, c, r, tiles[1]);
    const rows = hw * c;
    for (let i = 0; i < n; i++) {
      const data = [
        x.subarray(i * rows, (i + 1) * rows),
        wideScale.subarray(i * w, (i + 1) * w),
        dst.subarray(i * rows, (i + 1) * rows),
        wideShift.subarray(i * w, (i + 1) * w),
      ];
      if (addend) data.push(addend.subarray(i * rows, (i + 1) * rows));
      run(p, data);
    }
  }

  /** {@link Dnnl.binary}. */
  function binary(
    op: DnnlBinary,
    a: Float32Array,
    b: Float32Array,
    bShape: readonly number[],
    out: Float32Array,
    outShape: readonly number[],
    post: readonly DnnlPostOp[] = [],
  ): void {
    sameLength(out, a, "a");
    const operands = post.flatMap((q) => typeof q === "string" ? [] : [q.operand]);
    operands.forEach((v) => {
      if (v.length !== 1) sameLength(out, v, "post-op operand");
    });
    const chain = post.map((q) =>
      typeof q === "string" ? q : `${q.op}${q.operand.length === 1 ? 1 : ""}`
    );
    const p = cached(`binary:${op}:${outShape}:${bShape}:${chain}`, () => {
      const dst = rowMajor(outShape), scalar = rowMajor(outShape.map(() => 1));
      return binaryPrim(
        BINARY_ALG[op],
        dst,
        rowMajor(bShape),
        post.map((q): PostSpec =>
          typeof q === "string" ? { eltwise: ELTWISE_POST[q] } : {
            binary: BINARY_ALG[q.op],
            md: q.operand.length === 1 ? scalar : dst,
          }
        ),
      );
    });
    run(p, [a, b, out, ...operands]);
  }

  /**
   * scaleShift as two executions over the whole [n, hw, c] with [n, 1, c] operands as the
   * binary's own second input (a JIT kernel; only as a post-op operand is it the reference
   * one): dst = x * scale, then dst = act(dst + shift + addend) in place. One more pass than
   * {@link perRowScaleShift} but two executions instead of n, which pays for small rows.
   */
  function wholeScaleShift(...[x, scale, shift, dst, dims, silu, addend]: ScaleShiftArgs) {
    const [n, hw, c] = dims;
    const data = [n, hw, c], perRow = [n, 1, c];
    binary("mul", x, scale, perRow, dst, data);
    const post: DnnlPostOp[] = addend ? [{ op: "add", operand: addend }] : [];
    binary("add", dst, shift, perRow, dst, data, silu ? [...post, "silu"] : post);
  }

  /** Reused buffers of {@link tiled} for scaleShift's two operands. */
  const tiles = [new Scratch(), new Scratch()];

  function sameLength(a: Float32Array, b: Float32Array, name: string): void {
    if (a.length !== b.length) {
      throw new RangeError(`${name}: expected length ${a.length}, got ${b.length}`);
    }
  }

  return {
    path,
    forward(x, w, bias, y, g) {
      run(convPrim("fwd", g, bias !== undefined), bias ? [x, w, y, bias] : [x, w, y]);
    },
    backwardData(dy, w, dx, g) {
      run(convPrim("bwd_data", g, false), [dy, w, dx]);
    },
    backwardWeights(x, dy, dw, g) {
      run(convPrim("bwd_weights", g, false), [x, dy, dw]);
    },
    convImplementation: (pass, g, withBias) => convPrim(pass, g, withBias).impl,
    eltwise(f, x, y) {
      sameLength(x, y, "y");
      const p = cached(`eltwise:${f}:${x.length}`, () => {
        const data = md([x.length], [1]);
        return build(eltwiseDesc(f, data, FORWARD_INFERENCE), [
          { arg: ARG.src, md: data },
          { arg: ARG.dst, md: data },
        ]);
      });
      run(p, [x, y]);
    },
    eltwiseBackward(f, x, dy, dx) {
      sameLength(x, dy, "dy");
      sameLength(x, dx, "dx");
      const p = cached(`eltwise_bwd:${f}:${x.length}`, () => {
        const data = md([x.length], [1]);
        const op = new Uint8Array(OP_DESC_BYTES);
        const [alg, alpha, beta] = ELTWISE_ALG[f];
        check(
          s.dnnl_eltwise_backward_desc_init(op, alg, data, data, alpha, beta),
          "eltwise_backward_desc_init",
        );
        return build(primitiveDesc(op, eltwiseDesc(f, data, FORWARD_TRAINING)), [
          { arg: ARG.src, md: data },
          { arg: ARG.diffDst, md: data },
          { arg: ARG.diffSrc, md: data },
        ]);
      });
      run(p, [x, dy, dx]);
    },
    softmax(x, y, n, log = false) {
      sameLength(x, y, "y");
      if (!Number.isInteger(n) || n < 1 || x.length % n !== 0) {
        throw new RangeError(`n: expected a divisor of x.length ${x.length}, got ${n}`);
      }
      const rows = x.length / n;
      const p = cached(`${log ? "logsoftmax" : "softmax"}:${rows}x${n}`, () => {
        const data = md([rows, n], [n, 1]);
        const op = new Uint8Array(OP_DESC_BYTES);
        const init = log ? s.dnnl_logsoftmax_forward_desc_init : s.dnnl_softmax_forward_desc_init;
        check(init(op, FORWARD_INFERENCE, data, 1), "softmax_forward_desc_init");
        return build(primitiveDesc(op, null), [
          { arg: ARG.src, md: data },
          { arg: ARG.dst, md: data },
        ]);
      });
      run(p, [x, y]);
    },
    binary,
    matmul(a, b, out, { batch, m, n, k }, transA, transB) {
      if (
        a.length !== batch * m * k || b.length !== batch * k * n || out.length !== batch * m * n
      ) {
        throw new RangeError(
          `matmul: expected a, b, out of ${batch} x (${m} x ${k}, ${k} x ${n}, ${m} x ${n}) ` +
            `values, got ${a.length}, ${b.length}, ${out.length}`,
        );
      }
      const p = cached(`matmul:${batch},${m},${n},${k}:${transA}:${transB}`, () => {
        // op(a) [batch, m, k] and op(b) [batch, k, n] as strided views of the stored arrays
        const src = md([batch, m, k], transA ? [m * k, 1, m] : [m * k, k, 1]);
        const weights = md([batch, k, n], transB ? [k * n, 1, k] : [k * n, n, 1]);
        const dst = rowMajor([batch, m, n]);
        const desc = new Uint8Array(OP_DESC_BYTES);
        check(s.dnnl_matmul_desc_init(desc, src, weights, null, dst), "matmul_desc_init");
        return build(primitiveDesc(desc, null), [
          { arg: ARG.src, md: src },
          { arg: ARG.weights, md: weights },
          { arg: ARG.dst, md: dst },
        ]);
      });
      run(p, [a, b, out]);
    },
    reduce(op, x, xShape, out, outShape) {
      const p = cached(`${op}:${xShape}:${outShape}`, () => {
        const src = rowMajor(xShape), dst = rowMajor(outShape);
        const desc = new Uint8Array(OP_DESC_BYTES);
        check(
          s.dnnl_reduction_desc_init(desc, REDUCTION_ALG[op], src, dst, 0, 0),
          "reduction_desc_init",
        );
        return build(primitiveDesc(desc, null), [
          { arg: ARG.src, md: src },
          { arg: ARG.dst, md: dst },
        ]);
      });
      run(p, [x, out]);
    },
    scaleShift(x, scale, shift, dst, dims, silu, addend) {
      const [n, hw, c] = dims;
      if (x.length !== n * hw * c) {
        throw new RangeError(`x: expected ${n} x ${hw} x ${c} values, got ${x.length}`);
      }
      sameLength(x, dst, "out");
      if (addend) sameLength(x, addend, "addend");
      sameLength(scale, shift, "shift");
      if (scale.length !== n * c) {
        throw new RangeError(`scale: expected ${n} x ${c} values, got ${scale.length}`);
      }
      if (hw * c <= SCALE_SHIFT_WHOLE_MAX) {
        wholeScaleShift(x, scale, shift, dst, dims, silu, addend);
      } else perRowScaleShift(x, scale, shift, dst, dims, silu, addend);
    },
    copy(src, srcStrides, dst, dstStrides, dims) {
      if (
        srcStrides.length !== dims.length || dstStrides.length !== dims.length ||
        [...srcStrides, ...dstStrides].some((v) => !(v >= 0))
      ) {
        throw new RangeError(`strides: expected ${dims.length} non-negative ones per array`);
      }
      if (dims.some((d) => d === 0)) return;
      const extent = (st: readonly number[]) => dims.reduce((e, d, k) => e + (d - 1) * st[k], 1);
      if (extent(srcStrides) > src.length || extent(dstStrides) > dst.length) {
        throw new RangeError(
          `copy: a [${dims}] box exceeds src ${src.length} or dst ${dst.length}`,
        );
      }
      const p = cached(`copy:${dims}:${srcStrides}:${dstStrides}`, () => {
        const from = md(dims, srcStrides), to = md(dims, dstStrides);
        return build(reorder(Deno.UnsafePointer.of(from), Deno.UnsafePointer.of(to)), [
          { arg: ARG.src, md: from },
          { arg: ARG.dst, md: to },
        ]);
      });
      run(p, [src, dst]);
    },
    implementations() {
      return Object.fromEntries([...cache].map(([k, p]) => [k, p.impl]));
    },
    close() {
      for (const p of cache.values()) {
        p.steps.forEach((st) => s.dnnl_primitive_destroy(st.prim));
      }
      memories.forEach((m) => s.dnnl_memory_destroy(m));
      pds.forEach((pd) => s.dnnl_primitive_desc_destroy(pd));
      cache.clear();
      s.dnnl_stream_destroy(stream);
      s.dnnl_engine_destroy(engine);
      lib.close();
    },
  };
}
