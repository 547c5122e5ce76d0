/**
 * The toolkit's own native kernels (lib/tfjs/native/kernels.c): GroupNorm(+SiLU) forward and
 * backward over NHWC activations, the seeded dropout mask and the row-wise KL divergence of
 * softmaxes with its gradient, the fast CPU path's ops that oneDNN 2.6 has no primitive for.
 * Built with the system C compiler on first use (`cc -O3 -fopenmp`; on x86-64 the loops exist
 * for AVX-512, AVX2 and SSE2 and the loader picks the CPU's) into the checkout's gitignored
 * `.cache/native/`, named by a hash of the source, the flags and the compiler (a changed source
 * builds anew and removes the older builds), and called through Deno FFI. The kernels run on
 * OpenMP threads, the same libgomp pool as oneDNN's, so the fast path's thread count governs
 * both. The library is linked `-z nodelete`: once loaded it and libgomp stay for the life of
 * the process, because unloading libgomp while its workers still spin after a parallel region
 * (a close, or the process exiting right after a kernel) crashed the process.
 *
 * Without a C compiler, `--allow-run` for it, or write access to the cache, {@link openNative}
 * says why and the fast path keeps its oneDNN / JS versions of these ops.
 * @module
 */
import { createHash } from "node:crypto";

/** Activation sizes of one GroupNorm call: batch, pixels per image, channels, groups. */
export interface GroupNormDims {
  readonly b: number;
  readonly hw: number;
  readonly c: number;
  readonly groups: number;
}

/** The kernels of one built library. */
export interface NativeKernels {
  /** The shared library in use. */
  readonly path: string;
  /**
   * y = act(gamma (x - mean) rstd + beta) over x, y [b, hw, c] with statistics per (sample,
   * group) of c / groups contiguous channels (biased variance); act = SiLU when `silu`. Writes
   * y and mean, rstd [b * groups].
   */
  groupNormForward(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    d: GroupNormDims,
    eps: number,
    silu: boolean,
    out: { y: Float32Array; mean: Float32Array; rstd: Float32Array },
  ): void;
  /**
   * Gradients of {@link NativeKernels.groupNormForward} at x for upstream dy, from its mean
   * and rstd: writes dx [b, hw, c], dgamma and dbeta [c].
   */
  groupNormBackward(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    stats: { mean: Float32Array; rstd: Float32Array },
    dy: Float32Array,
    d: GroupNormDims,
    silu: boolean,
    out: { dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array },
  ): void;
  /**
   * mask[i] = `scale` when mix32(h + i·0x9e3779b9) >= `threshold` (uint32 compare), else 0:
   * the loop of lib/models/dropout.ts's `dropoutMask`, split over the threads.
   */
  dropoutMask(mask: Float32Array, h: number, threshold: number, scale: number): void;
  /**
   * kl[r] = KL(softmax(p_r) || softmax(q_r)) for every row r of k logits of p, q `[rows, k]`
   * (kl `[rows]`, float64).
   */
  klRows(p: Float32Array, q: Float32Array, k: number, kl: Float64Array): void;
  /**
   * dq = scale (softmax(q_r) - softmax(p_r)) row by row, p, q, dq `[rows, k]`: the gradient
   * in q of scale Σ_r KL(softmax(p_r) || softmax(q_r)).
   */
  klRowsGrad(p: Float32Array, q: Float32Array, k: number, scale: number, dq: Float32Array): void;
  /**
   * Releases the handle; the object must not be used afterwards (the code stays mapped: the
   * library is linked `-z nodelete`).
   */
  close(): void;
}

/** Outcome of {@link openNative}: the kernels, or why there are none. */
export type NativeOutcome = { kernels: NativeKernels } | { reason: string };

/** Options of {@link openNative}. */
export interface NativeOptions {
  /** C compiler (default: env CC, else `cc`). */
  readonly compiler?: string;
  /** Where built libraries are kept (default: the checkout's `.cache/native/`). */
  readonly cacheDir?: string;
  /**
   * More compiler flags (default none), e.g. `["-DRDD_SINGLE_TARGET", "-march=x86-64-v3"]` to
   * build one instruction-set version only (how the tests check each).
   */
  readonly extraFlags?: readonly string[];
}

/**
 * Compiler flags; part of the library's name, so changing them rebuilds. -fno-trapping-math
 * lets GCC if-convert the clamps of the kernels' exp, so the SiLU and softmax loops vectorise
 * (the KL rows ran ~6x faster with it on a 2-core AMD EPYC, AVX2 build); nothing here reads
 * floating-point exception flags. -z nodelete: see the module doc.
 */
const FLAGS = [
  "-O3",
  "-fopenmp",
  "-fPIC",
  "-shared",
  "-fno-math-errno",
  "-fno-trapping-math",
  "-Wl,-z,nodelete",
];

const SOURCE = new URL("./native/kernels.c", import.meta.url);

const SYMBOLS = {
  rdd_group_norm_forward: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "i64",
      "i64",
      "i64",
      "i64",
      "f32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "void",
  },
  rdd_group_norm_backward: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i64",
      "i64",
      "i64",
      "i64",
      "i32",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "void",
  },
  rdd_dropout_mask: { parameters: ["buffer", "i64", "u32", "u64", "f32"], result: "void" },
  rdd_kl_rows: { parameters: ["buffer", "buffer", "i64", "i64", "buffer"], result: "void" },
  rdd_kl_rows_grad: {
    parameters: ["buffer", "buffer", "i64", "i64", "f32", "buffer"],
    result: "void",
  },
} as const;

/**
 * Builds (once per source, flags, compiler and CPU) and opens the native kernels; never
 * throws for a missing compiler, permission or failed build, but returns the reason.
 */
export function openNative(options: NativeOptions = {}): NativeOutcome {
  if (SOURCE.protocol !== "file:") return { reason: `source ${SOURCE.href} is not a local file` };
  const compiler = options.compiler ?? env("CC") ?? "cc";
  const flags = [...FLAGS, ...options.extraFlags ?? []];
  const cacheDir = options.cacheDir ?? filePath(new URL("../../.cache/native", import.meta.url));
  try {
    const source = Deno.readTextFileSync(SOURCE);
    const key = createHash("sha256")
      .update([source, flags.join(" "), compiler].join("\0"))
      .digest("hex").slice(0, 16);
    const path = `${cacheDir}/kernels-${key}.so`;
    if (!exists(path)) {
      const built = build([compiler, ...flags], filePath(SOURCE), cacheDir, path);
      if (built) return { reason: built };
    }
    return { kernels: wrap(path, Deno.dlopen(path, SYMBOLS)) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { reason: `no C compiler ${compiler} found` };
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      return { reason: `not permitted: ${e.message}` };
    }
    throw e;
  }
}

/**
 * Compiles the source with `[compiler, ...flags]` into `path` (via a temporary file, renamed
 * when complete); returns the error, if any.
 */
function build(
  [compiler, ...flags]: string[],
  source: string,
  dir: string,
  path: string,
): string | undefined {
  Deno.mkdirSync(dir, { recursive: true });
  const tmp = `${path}.${Deno.pid}.tmp`;
  const r = new Deno.Command(compiler, {
    args: [...flags, "-o", tmp, source, "-lm"],
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  if (!r.success) {
    try {
      Deno.removeSync(tmp);
    } catch {
      // nothing was written
    }
    const first = new TextDecoder().decode(r.stderr).split("\n").find((l) => l.trim());
    return `${compiler} failed (exit ${r.code}): ${first ?? "no message"}`;
  }
  Deno.renameSync(tmp, path);
  // Builds of earlier sources (processes that loaded one keep their mapping).
  for (const e of Deno.readDirSync(dir)) {
    const old = `${dir}/${e.name}`;
    if (/^kernels-[0-9a-f]{16}\.so$/.test(e.name) && old !== path) Deno.removeSync(old);
  }
  return undefined;
}

function filePath(url: URL): string {
  return decodeURIComponent(url.pathname);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

/** Rows of k logits in p and q, after checking that both hold the same whole rows. */
function klRowCount(p: Float32Array, q: Float32Array, k: number): number {
  if (!(Number.isInteger(k) && k >= 1 && p.length % k === 0)) {
    throw new RangeError(`k: expected a divisor of the ${p.length} logits, got ${k}`);
  }
  if (q.length !== p.length) {
    throw new RangeError(`q: expected ${p.length} values, got ${q.length}`);
  }
  return p.length / k;
}

function wrap(path: string, lib: Deno.DynamicLibrary<typeof SYMBOLS>): NativeKernels {
  const s = lib.symbols;
  const dims = (d: GroupNormDims) => {
    if (!(d.groups >= 1 && d.c % d.groups === 0)) {
      throw new RangeError(`groups: expected a divisor of ${d.c} channels, got ${d.groups}`);
    }
    return [BigInt(d.b), BigInt(d.hw), BigInt(d.c), BigInt(d.groups)] as const;
  };
  const sizes = (d: GroupNormDims, arrays: Record<string, Float32Array>, kind: string) => {
    const want = { act: d.b * d.hw * d.c, channel: d.c, stat: d.b * d.groups }[kind]!;
    for (const [name, a] of Object.entries(arrays)) {
      if (a.length !== want) {
        throw new RangeError(`${name}: expected ${want} values, got ${a.length}`);
      }
    }
  };
  return {
    path,
    groupNormForward(x, gamma, beta, d, eps, silu, out) {
      const n = dims(d);
      sizes(d, { x, y: out.y }, "act");
      sizes(d, { gamma, beta }, "channel");
      sizes(d, { mean: out.mean, rstd: out.rstd }, "stat");
      s.rdd_group_norm_forward(
        x,
        gamma,
        beta,
        ...n,
        eps,
        silu ? 1 : 0,
        out.y,
        out.mean,
        out.rstd,
      );
    },
    groupNormBackward(x, gamma, beta, stats, dy, d, silu, out) {
      const n = dims(d);
      sizes(d, { x, dy, dx: out.dx }, "act");
      sizes(d, { gamma, beta, dgamma: out.dgamma, dbeta: out.dbeta }, "channel");
      sizes(d, stats, "stat");
      s.rdd_group_norm_backward(
        x,
        gamma,
        beta,
        stats.mean,
        stats.rstd,
        dy,
        ...n,
        silu ? 1 : 0,
        out.dx,
        out.dgamma,
        out.dbeta,
      );
    },
    dropoutMask(mask, h, threshold, scale) {
      s.rdd_dropout_mask(mask, BigInt(mask.length), h >>> 0, BigInt(threshold), scale);
    },
    klRows(p, q, k, kl) {
      const rows = klRowCount(p, q, k);
      if (kl.length !== rows) throw new RangeError(`kl: expected ${rows} values, got ${kl.length}`);
      s.rdd_kl_rows(p, q, BigInt(rows), BigInt(k), kl);
    },
    klRowsGrad(p, q, k, scale, dq) {
      const rows = klRowCount(p, q, k);
      if (dq.length !== p.length) {
        throw new RangeError(`dq: expected ${p.length} values, got ${dq.length}`);
      }
      s.rdd_kl_rows_grad(p, q, BigInt(rows), BigInt(k), scale, dq);
    },
    close: () => lib.close(),
  };
}
