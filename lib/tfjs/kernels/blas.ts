/**
 * Minimal FFI binding to a single-precision GEMM: oneDNN's `dnnl_sgemm` (JIT, fastest on the
 * tall-skinny products of convolutions) or a CBLAS `cblas_sgemm` (OpenBLAS).
 *
 * Only what the fast CPU kernels need: row-major `sgemm` on `Float32Array` views (a view's
 * byte offset is honoured, so `subarray` selects a sub-matrix) and the thread count.
 */
import { openMpRuntime } from "../openmp.ts";

/**
 * Default shared-library paths tried in order by {@link loadBlas}; a path whose file name
 * contains "dnnl" is bound as oneDNN, any other as CBLAS.
 */
export const DEFAULT_BLAS_PATHS: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/libdnnl.so.2",
  "/usr/lib/aarch64-linux-gnu/libdnnl.so.2",
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
  "/usr/lib64/libopenblas.so.0",
  "/usr/lib/libopenblas.so.0",
  "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
  "/usr/local/opt/openblas/lib/libopenblas.dylib",
];

const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

const DNNL_SYMBOLS = {
  dnnl_sgemm: {
    parameters: [
      "u8",
      "u8",
      "i64",
      "i64",
      "i64",
      "f32",
      "buffer",
      "i64",
      "buffer",
      "i64",
      "f32",
      "buffer",
      "i64",
    ],
    result: "i32",
  },
} as const;

const CHAR_N = 78;
const CHAR_T = 84;

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
} as const;

const THREAD_SYMBOLS = {
  openblas_get_num_threads: { parameters: [], result: "i32" },
  openblas_set_num_threads: { parameters: ["i32"], result: "void" },
} as const;

/** A loaded BLAS library. */
export interface Blas {
  /** Path of the shared library that was opened. */
  readonly path: string;
  /**
   * Row-major C = alpha * op(A) @ op(B) + beta * C with op(A) [m, k], op(B) [k, n], C [m, n].
   * `lda`, `ldb`, `ldc` are the row strides (elements) of A, B, C as stored (A is [k, lda]
   * when `transA`). Views may be `subarray`s; their offset is used.
   */
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Float32Array,
    lda: number,
    b: Float32Array,
    ldb: number,
    beta: number,
    c: Float32Array,
    ldc: number,
  ): void;
  /** Number of BLAS worker threads (oneDNN: OpenMP max threads), or undefined when unknown. */
  threads(): number | undefined;
  /** Sets the number of BLAS worker threads (ignored by libraries without a thread hook). */
  setThreads(n: number): void;
  /** Unloads the library; the object must not be used afterwards. */
  close(): void;
}

function isDnnl(path: string): boolean {
  return (path.split("/").pop() ?? "").includes("dnnl");
}

function openDnnl(path: string): Blas {
  const lib = Deno.dlopen(path, DNNL_SYMBOLS);
  const omp = openMpRuntime();
  const gemm = lib.symbols.dnnl_sgemm as (...args: unknown[]) => number;
  return {
    path,
    sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
      if (m === 0 || n === 0) return;
      const status = gemm(
        transA ? CHAR_T : CHAR_N,
        transB ? CHAR_T : CHAR_N,
        m,
        n,
        k,
        alpha,
        a,
        lda,
        b,
        ldb,
        beta,
        c,
        ldc,
      );
      if (status !== 0) {
        throw new Error(`dnnl_sgemm(${m}, ${n}, ${k}) failed with status ${status}`);
      }
    },
    threads: () => omp?.symbols.omp_get_max_threads(),
    setThreads(n: number) {
      checkThreads(n);
      omp?.symbols.omp_set_num_threads(n);
    },
    close: () => lib.close(),
  };
}

function openWithThreads(path: string) {
  try {
    return { lib: Deno.dlopen(path, { ...SYMBOLS, ...THREAD_SYMBOLS }), threaded: true };
  } catch (e) {
    // A CBLAS without the OpenBLAS thread hooks is still usable.
    if (e instanceof Deno.errors.NotCapable) throw e;
    return { lib: Deno.dlopen(path, { ...SYMBOLS }), threaded: false };
  }
}

/**
 * Opens the first loadable library among `paths` (env `RDD_BLAS_LIB` is tried first).
 * Throws an Error naming every path tried and why it failed (library missing, `--allow-ffi`
 * not granted, ...).
 */
export function loadBlas(paths: readonly string[] = DEFAULT_BLAS_PATHS): Blas {
  const envPath = readEnv("RDD_BLAS_LIB");
  const candidates = envPath ? [envPath, ...paths] : [...paths];
  const failures: string[] = [];
  for (const path of candidates) {
    try {
      if (isDnnl(path)) return openDnnl(path);
      const opened = openWithThreads(path);
      return wrap(path, opened.lib, opened.threaded);
    } catch (e) {
      failures.push(`${path}: ${e instanceof Error ? e.message : String(e)}`);
      if (e instanceof Deno.errors.NotCapable) break;
    }
  }
  throw new Error(`no usable CBLAS library (${failures.join("; ")})`);
}

function checkThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`threads: expected an integer >= 1, got ${n}`);
  }
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

function wrap(
  path: string,
  // deno-lint-ignore no-explicit-any
  lib: Deno.DynamicLibrary<any>,
  threaded: boolean,
): Blas {
  const gemm = lib.symbols.cblas_sgemm as (...args: unknown[]) => void;
  const getThreads = lib.symbols.openblas_get_num_threads as (() => number) | undefined;
  const setThreads = lib.symbols.openblas_set_num_threads as ((n: number) => void) | undefined;
  return {
    path,
    sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
      if (m === 0 || n === 0) return;
      gemm(
        ROW_MAJOR,
        transA ? TRANS : NO_TRANS,
        transB ? TRANS : NO_TRANS,
        m,
        n,
        k,
        alpha,
        a,
        lda,
        b,
        ldb,
        beta,
        c,
        ldc,
      );
    },
    threads: () => threaded && getThreads ? getThreads() : undefined,
    setThreads(n: number) {
      checkThreads(n);
      if (threaded && setThreads) setThreads(n);
    },
    close: () => lib.close(),
  };
}
